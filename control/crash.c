/* The fatal-signal handler and the crash record. A C class runs in durod's own process, so
 * a bad pointer in it takes every core down; what can be done is to say which class,
 * version and object did it, and to remember it (ctl_deploy.c rolls a version back at the
 * next start after 3 such crashes within 10 minutes of its deploy). The handler uses only
 * async-signal-safe calls: it formats by hand, reads the cores' attribution (version.h,
 * lock-free atomics), write()s the line to stderr and the record, then lets the previous
 * handler (or the default action) end the process. */
#include "crash.h"
#include "clock.h"
#include "log.h"
#include "version.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALT_STACK_BYTES (64 * 1024)

static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
#define NFATAL (sizeof(fatal) / sizeof(fatal[0]))
static struct sigaction previous[NFATAL];
static int record_fd = -1;
static volatile sig_atomic_t hang_abort; /* the watchdog's abort(): already reported */
static __thread int thread_core = -1; /* the core this thread runs, -1 for others */
static __thread void *alt_stack;

/* ---- formatting without stdio ---- */

struct line {
	char buf[600];
	size_t n;
};

static void put(struct line *l, const char *s)
{
	while (*s && l->n < sizeof(l->buf) - 1)
		l->buf[l->n++] = *s++;
}

static void put_u64(struct line *l, uint64_t v)
{
	char d[24];
	int i = 0;
	do {
		d[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i && l->n < sizeof(l->buf) - 1)
		l->buf[l->n++] = d[--i];
}

static void put_id(struct line *l, const _Atomic uint64_t *words)
{
	static const char hex[] = "0123456789abcdef";
	for (unsigned w = 0; w < DURO_ID_BYTES / 8; w++) {
		uint64_t v = atomic_load_explicit(&words[w], memory_order_relaxed);
		uint8_t b[8];
		memcpy(b, &v, 8);
		for (unsigned i = 0; i < 8 && l->n < sizeof(l->buf) - 2; i++) {
			l->buf[l->n++] = hex[b[i] >> 4];
			l->buf[l->n++] = hex[b[i] & 15];
		}
	}
}

static const char *signame(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	case SIGABRT: return "SIGABRT";
	}
	return "signal";
}

static const char *what_name(int what)
{
	return what == ATTRIB_LOAD ? "on_load" : what == ATTRIB_UNLOAD ? "on_unload" : "an event";
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Appends "<wall ms> <class> <sha> <core> <id>\n" for what `core` runs (nothing when it
 * runs no class code). Async-signal-safe. Returns 1 when it recorded something. */
static int record(unsigned core, uint64_t wall_ms)
{
	struct obj_version *v = atomic_load(&obj_attrib[core].ver);
	if (!v || record_fd < 0)
		return 0;
	struct line r = { .n = 0 };
	put_u64(&r, wall_ms);
	put(&r, " ");
	put(&r, v->class_name);
	put(&r, " ");
	put(&r, v->sha);
	put(&r, " ");
	put_u64(&r, core);
	put(&r, " ");
	put_id(&r, obj_attrib[core].id);
	put(&r, "\n");
	write_all(record_fd, r.buf, r.n);
	return 1;
}

/* "core N running class C version V (what) object ID" into l. */
static void describe(struct line *l, unsigned core)
{
	struct obj_version *v = atomic_load(&obj_attrib[core].ver);
	put(l, "core ");
	put_u64(l, core);
	if (!v) {
		put(l, ", no class code running");
		return;
	}
	put(l, " running class ");
	put(l, v->class_name);
	put(l, " version ");
	put(l, v->label);
	put(l, " (");
	put(l, what_name(atomic_load_explicit(&obj_attrib[core].what, memory_order_relaxed)));
	put(l, ") object ");
	put_id(l, obj_attrib[core].id);
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	int saved = errno;
	if (sig == SIGABRT && hang_abort)
		goto out;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t wall_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	struct line l = { .n = 0 };
	put(&l, "durod: fatal signal ");
	put_u64(&l, (uint64_t)sig);
	put(&l, " (");
	put(&l, signame(sig));
	put(&l, ") on ");
	int core = thread_core;
	if (core >= 0 && core < DURO_MAX_CORES) {
		describe(&l, (unsigned)core);
		if (record((unsigned)core, wall_ms))
			put(&l, "; recorded against that version");
	} else {
		put(&l, "a thread that runs no class code");
	}
	put(&l, "\n");
	write_all(2, l.buf, l.n);
out:
	/* Whoever handled it before (a sanitizer), or the default action, ends the process:
	 * a fault re-executes into it; a raised signal is raised again once we return. */
	for (unsigned i = 0; i < NFATAL; i++)
		if (fatal[i] == sig)
			sigaction(sig, &previous[i], NULL);
	raise(sig);
	errno = saved;
}

int crash_init(const char *data_dir)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", data_dir, CRASH_RECORD);
	record_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (record_fd < 0) {
		int e = errno;
		log_error("crash record %s: %s", path, strerror(e));
		return -e;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fatal;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (unsigned i = 0; i < NFATAL; i++)
		if (sigaction(fatal[i], &sa, &previous[i]) < 0)
			log_warn("crash handler for signal %d: %s", fatal[i], strerror(errno));
	return 0;
}

void crash_core_enter(unsigned core)
{
	thread_core = (int)core;
	alt_stack = malloc(ALT_STACK_BYTES);
	if (!alt_stack)
		return;
	stack_t ss = { .ss_sp = alt_stack, .ss_size = ALT_STACK_BYTES, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL) < 0) {
		free(alt_stack);
		alt_stack = NULL;
	}
}

void crash_core_leave(void)
{
	thread_core = -1;
	if (!alt_stack)
		return;
	stack_t ss = { .ss_flags = SS_DISABLE };
	sigaltstack(&ss, NULL);
	free(alt_stack);
	alt_stack = NULL;
}

void crash_hang(unsigned core, uint64_t stuck_ms)
{
	struct line l = { .n = 0 };
	put(&l, "watchdog: ");
	describe(&l, core);
	put(&l, ": no loop turn finished for ");
	put_u64(&l, stuck_ms);
	put(&l, " ms (watchdog_ms); aborting");
	if (record(core, clock_wall_ms()))
		put(&l, " (recorded against that version)");
	l.buf[l.n] = 0;
	log_error("%s", l.buf);
	hang_abort = 1;
	abort();
}
