/* durod's start-up watch: a thread that reads the signals until the cores serve (and again
 * while the process tears down after they stop), so a stuck step stops on SIGTERM and says
 * what it was waiting for. */
#include "startup_watch.h"
#include "base_limits.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static struct {
	pthread_t thread;
	int running;
	int sigfd;
	int wake; /* eventfd: startup_watch_stop */
	unsigned ncores;
	const char *phase; /* "start-up" or "shutdown" */
	uint64_t t0_ms;
	_Atomic(const char *) step;
	_Atomic(const char *) core_step[DURO_MAX_CORES];
} w = { .wake = -1 };

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "at <main step>; core 0: <step>, core 1: <step>" */
static void describe(char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "at %s", atomic_load(&w.step));
	const char *sep = "; ";
	for (unsigned i = 0; i < w.ncores && n < cap; i++) {
		const char *s = atomic_load(&w.core_step[i]);
		if (!s)
			continue; /* not started yet, or stopped */
		n += (size_t)snprintf(out + n, cap - n, "%score %u: %s", sep, i, s);
		sep = ", ";
	}
}

static void *watch_main(void *arg)
{
	(void)arg;
	uint64_t next_log = w.t0_ms + STARTUP_WATCH_LOG_MS;
	for (;;) {
		struct pollfd p[2] = { { .fd = w.sigfd, .events = POLLIN },
				       { .fd = w.wake, .events = POLLIN } };
		uint64_t now = mono_ms();
		int r = poll(p, 2, next_log > now ? (int)(next_log - now) : 0);
		if (p[1].revents)
			return NULL; /* the cores serve: signals are core 0's now */
		char where[64 + DURO_MAX_CORES * 64];
		if (r > 0 && p[0].revents) {
			struct signalfd_siginfo si;
			if (read(w.sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
				continue;
			if (si.ssi_signo == SIGHUP) {
				log_info("signal %u during %s: nothing to reload", si.ssi_signo, w.phase);
				continue;
			}
			describe(where, sizeof(where));
			log_warn("signal %u during %s (%llu ms in, %s): exiting %s", si.ssi_signo,
				 w.phase, (unsigned long long)(mono_ms() - w.t0_ms), where,
				 strcmp(w.phase, "start-up") ? "now" : "without serving");
			/* The system call itself, not _exit: sanitizers' exit hooks would report
			 * threads and memory that a step left mid-way, as after a crash. */
			syscall(SYS_exit_group, 0);
		}
		now = mono_ms();
		if (now >= next_log) {
			describe(where, sizeof(where));
			log_warn("%s: still under way after %llu s, %s", w.phase,
				 (unsigned long long)(now - w.t0_ms) / 1000, where);
			next_log = now + STARTUP_WATCH_LOG_MS;
		}
	}
}

int startup_watch_start(int sigfd, unsigned ncores, const char *phase)
{
	if (w.running)
		return -EBUSY;
	w.sigfd = sigfd;
	w.ncores = ncores < DURO_MAX_CORES ? ncores : DURO_MAX_CORES;
	w.phase = phase;
	w.t0_ms = mono_ms();
	atomic_store(&w.step, phase);
	for (unsigned i = 0; i < DURO_MAX_CORES; i++)
		atomic_store(&w.core_step[i], NULL);
	w.wake = eventfd(0, EFD_CLOEXEC);
	if (w.wake < 0)
		return -errno;
	int r = pthread_create(&w.thread, NULL, watch_main, NULL);
	if (r) {
		close(w.wake);
		w.wake = -1;
		return -r;
	}
	w.running = 1;
	return 0;
}

void startup_watch_step(const char *step) { atomic_store(&w.step, step); }

void startup_watch_core(unsigned core, const char *step)
{
	if (core < DURO_MAX_CORES)
		atomic_store(&w.core_step[core], step);
}

void startup_watch_stop(void)
{
	if (!w.running)
		return;
	uint64_t one = 1;
	if (write(w.wake, &one, sizeof(one)) != (ssize_t)sizeof(one))
		log_warn("start-up watch: eventfd write: %s", strerror(errno));
	pthread_join(w.thread, NULL);
	close(w.wake);
	w.wake = -1;
	w.running = 0;
}
