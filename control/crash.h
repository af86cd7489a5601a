/* Containing a class that crashes or hangs durod (crash.c): a fatal signal writes a line
 * naming the class, version and object each core was running, and appends it to the data
 * directory's crash record, which the next start reads to roll back a version that keeps
 * crashing (ctl_deploy.c); the watchdog's hang report goes the same way. */
#ifndef DURO_CONTROL_CRASH_H
#define DURO_CONTROL_CRASH_H

#include <stdint.h>

/* The record: one line per crash, "<wall ms> <class> <sha> <core> <object id>". */
#define CRASH_RECORD "crash-record"

/* Opens <data_dir>/crash-record for appending and installs the handler for SIGSEGV,
 * SIGBUS, SIGILL, SIGFPE and SIGABRT (the previous handler, a sanitizer's say, runs after
 * it). Returns 0 or a negative errno (logged). */
int crash_init(const char *data_dir);
/* On a core's thread before its loop: the handler's name for the thread, and an alternate
 * signal stack (a class that overflows its stack is still reported). */
void crash_core_enter(unsigned core);
void crash_core_leave(void);
/* The watchdog found `core` stuck in one loop turn for stuck_ms: logs what it runs,
 * records it as that version's crash, and aborts. */
void crash_hang(unsigned core, uint64_t stuck_ms) __attribute__((noreturn));

#endif
