/* durod's start-up watch: a thread that reads the signals until the cores serve, so a stuck
 * start-up stops on SIGTERM and says what it was waiting for. */
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
#include <time.h>
#include <unistd.h>

static struct {
	pthread_t thread;
	int running;
	int sigfd;
	int wake; /* eventfd: startup_watch_stop */
	unsigned ncores;
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
	for (unsigned i = 0; i < w.ncores && n < cap; i++) {
		const char *s = atomic_load(&w.core_step[i]);
		n += (size_t)snprintf(out + n, cap - n, "%score %u: %s", i ? ", " : "; ", i,
				      s ? s : "not started");
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
				log_info("signal %u during start-up: nothing to reload yet", si.ssi_signo);
				continue;
			}
			describe(where, sizeof(where));
			log_warn("signal %u during start-up (%llu ms in, %s): exiting without serving",
				 si.ssi_signo, (unsigned long long)(mono_ms() - w.t0_ms), where);
			_exit(0);
		}
		now = mono_ms();
		if (now >= next_log) {
			describe(where, sizeof(where));
			log_warn("start-up: still under way after %llu s, %s",
				 (unsigned long long)(now - w.t0_ms) / 1000, where);
			next_log = now + STARTUP_WATCH_LOG_MS;
		}
	}
}

int startup_watch_start(int sigfd, unsigned ncores)
{
	w.sigfd = sigfd;
	w.ncores = ncores < DURO_MAX_CORES ? ncores : DURO_MAX_CORES;
	w.t0_ms = mono_ms();
	atomic_store(&w.step, "starting");
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
