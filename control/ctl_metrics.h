/* The metrics and dashboard listener (control.metrics): HTTP on the control thread's poll
 * loop, non-blocking, every connection with its own buffer and deadlines, a cap on them. */
#ifndef DURO_CONTROL_CTL_METRICS_H
#define DURO_CONTROL_CTL_METRICS_H

#include "ctl.h"

#include <poll.h>
#include <stdint.h>

#define CTL_METRICS_MAX_CONNS 16   /* beyond: 503 at once */
#define CTL_METRICS_HEAD_MS 5000   /* a request head must arrive within this: else 408 */
#define CTL_METRICS_SEND_MS 10000  /* a response that makes no progress this long is cut */
#define CTL_METRICS_SQL_MS 120000 /* a SQL view's query still unanswered is cut */
#define CTL_METRICS_CLIENT (1ull << 63) /* marks a worker job as a metrics connection's */
/* Slots ctl_metrics_pollfds fills: the listener, then one per connection. */
#define CTL_METRICS_POLLFDS (1 + CTL_METRICS_MAX_CONNS)

/* Listens on control.metrics when set (ctl->metrics stays NULL otherwise). Returns 0 or a
 * negative errno (logged). */
int ctl_metrics_open(struct ctl *ctl);
/* Closes the listener and every connection. */
void ctl_metrics_close(struct ctl *ctl);
/* Fills CTL_METRICS_POLLFDS entries of pfd (fd -1 where nothing is to be watched). */
void ctl_metrics_pollfds(struct ctl *ctl, struct pollfd *pfd);
/* After poll: accepts, reads, answers, writes; then cuts what is past its deadline. */
void ctl_metrics_serve(struct ctl *ctl, const struct pollfd *pfd, uint64_t now_ms);
/* On the control thread: a worker's reply to the SQL view's job `client` (as submitted,
 * CTL_METRICS_CLIENT set), written to its connection, or dropped when that went. Takes
 * the reference to reply (may be NULL: out of memory). */
void ctl_metrics_reply(struct ctl *ctl, uint64_t client, struct json_t *reply, uint64_t now_ms);
/* The earliest deadline of any connection (UINT64_MAX when none). */
uint64_t ctl_metrics_deadline(const struct ctl *ctl);

#endif
