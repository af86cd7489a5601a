/* DPDK's log messages as durod log lines. By default the EAL writes its messages to stdout
 * and to syslog: raw lines without a time or level in the operator's log (and the same
 * lines again in syslog). A stream made with fopencookie and given to rte_openlog_stream
 * before rte_eal_init (which then keeps it) turns each line into a log_msg call at the
 * level DPDK gave it, prefixed "dpdk: ". */
#include "eal_log.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_log.h>

/* The line being cut out of a write. rte_log writes a message with one vfprintf and then
 * fflush, under the stream's own lock, so one thread at a time is in here. */
static struct {
	char line[1024];
	size_t len;
} pending;

static enum log_level level_of_current(void)
{
	int l = rte_log_cur_msg_loglevel();
	if (l <= (int)RTE_LOG_ERR)
		return LOG_ERROR;
	if (l == (int)RTE_LOG_WARNING)
		return LOG_WARN;
	if (l <= (int)RTE_LOG_INFO)
		return LOG_INFO;
	return LOG_DEBUG;
}

static void emit(void)
{
	size_t n = pending.len;
	while (n && (pending.line[n - 1] == '\n' || pending.line[n - 1] == '\r'))
		n--;
	if (n)
		log_msg(level_of_current(), "dpdk: %.*s", (int)n, pending.line);
	pending.len = 0;
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t size)
{
	(void)cookie;
	for (size_t i = 0; i < size; i++) {
		pending.line[pending.len++] = buf[i];
		if (buf[i] == '\n' || pending.len == sizeof(pending.line))
			emit();
	}
	/* The stream is flushed at the end of each message: a message without its newline
	 * still ends here, at its own level. */
	emit();
	return (ssize_t)size;
}

int eal_log_redirect(void)
{
	static const cookie_io_functions_t io = { .write = cookie_write };
	FILE *f = fopencookie(NULL, "w", io);
	if (!f)
		return -errno;
	/* Line-buffered: a message is handed over whole even if DPDK skipped its fflush. */
	setvbuf(f, NULL, _IOLBF, 0);
	if (rte_openlog_stream(f) < 0) {
		fclose(f);
		return -EINVAL;
	}
	return 0;
}
