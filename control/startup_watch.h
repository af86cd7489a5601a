/* durod's start-up watch: until every core serves, and again while the process tears down
 * after they stop, a thread of its own takes SIGTERM and SIGINT (a step that waits forever
 * still stops) and logs the step a slow start or stop is at. */
#ifndef DURO_CONTROL_STARTUP_WATCH_H
#define DURO_CONTROL_STARTUP_WATCH_H

/* How often a start-up still under way says where it is. */
#define STARTUP_WATCH_LOG_MS 5000

/* Starts the thread, which reads `sigfd` (a signalfd of SIGTERM, SIGINT and SIGHUP, blocked
 * in every thread) until startup_watch_stop; `phase` ("start-up", "shutdown", a static
 * string) names the watch in its log lines. On SIGTERM or SIGINT it logs the step each part
 * is at and exits the process with status 0 at once: nothing is being served, and what is
 * on disk is as after a crash, which the next start recovers. Returns 0, -EBUSY when a
 * watch runs, or a negative errno (no thread: the phase goes on unwatched). */
int startup_watch_start(int sigfd, unsigned ncores, const char *phase);
/* The main thread's step and a core's, as static strings ("replaying commit logs"). */
void startup_watch_step(const char *step);
void startup_watch_core(unsigned core, const char *step);
/* Ends the watch and joins its thread (idempotent): signals are core 0's to read from here
 * on; one sent meanwhile stays pending on the signalfd for it. */
void startup_watch_stop(void);

#endif
