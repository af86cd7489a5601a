/* DPDK's log messages as durod log lines: the EAL writes to a stream of ours, whose lines
 * go through duro's logger with a timestamp and the message's level. */
#ifndef DURO_CONTROL_EAL_LOG_H
#define DURO_CONTROL_EAL_LOG_H

/* Call before rte_eal_init (which would otherwise pick stdout and syslog). Returns 0 or a
 * negative errno; on failure DPDK logs where it would have. */
int eal_log_redirect(void);

#endif
