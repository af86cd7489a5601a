/* Log lines to stderr: one write(2) per line so lines from several cores never interleave.
 * Text is made only here, at the edge; callers pass the failed call and the errno. */
#ifndef DURO_BASE_LOG_H
#define DURO_BASE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Messages above this level are dropped; default LOG_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Returns 0, or -EINVAL for an unknown name ("error", "warn", "info", "debug"). */
int log_parse_level(const char *name, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                        \
	do {                                                                  \
		if (log_get_level() >= LOG_DEBUG)                             \
			log_msg(LOG_DEBUG, __VA_ARGS__);                      \
	} while (0)

#endif
