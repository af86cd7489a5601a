/* Cluster mode's forwarding (cluster_forward.c): a request for a slot another live box
 * owns is sent on, from the core that received it, to the owner's advertised address over
 * this core's keep-alive HTTP client pool, marked with the slot and epoch it expects. */
#ifndef DURO_OBJ_CLUSTER_FORWARD_H
#define DURO_OBJ_CLUSTER_FORWARD_H

#include <stddef.h>
#include <stdint.h>

struct core;
struct http_exchange;
struct ws_conn;

/* The hop marker a forwarded request carries: "<slot> <epoch>". The owner serves it only
 * when it owns that slot at that epoch now; else it refuses with Duro-Refused (before any
 * handler), and a forwarded request is never forwarded again. */
#define OBJ_CLUSTER_FWD_HEADER "Duro-Forwarded"
#define OBJ_CLUSTER_REFUSED_HEADER "Duro-Refused"
/* Parses a hop marker's value v[0..n) (untrusted: any client may send the field):
 * "<slot> <epoch>", decimal, one space, slot below slots, epoch at most 18 digits. Pure,
 * over the caller's bytes. Returns 0 and fills *slot and *epoch, or -1. */
static inline int obj_cluster_parse_marker(const char *v, size_t n, unsigned slots,
					   unsigned *slot, int64_t *epoch)
{
	size_t i = 0;
	uint64_t s = 0, e = 0;
	size_t d = 0;
	while (i < n && v[i] >= '0' && v[i] <= '9' && d < 6) {
		s = s * 10 + (uint64_t)(v[i++] - '0');
		d++;
	}
	if (d == 0 || i >= n || v[i] != ' ' || s >= slots)
		return -1;
	i++;
	d = 0;
	while (i < n && v[i] >= '0' && v[i] <= '9' && d < 18) {
		e = e * 10 + (uint64_t)(v[i++] - '0');
		d++;
	}
	if (d == 0 || i != n)
		return -1;
	*slot = (unsigned)s;
	*epoch = (int64_t)e;
	return 0;
}

/* After a refusal or a connection that failed before the request went out, the table is
 * waited for (and the owner asked again) at most this long from the first attempt. */
#define OBJ_CLUSTER_FWD_RETRY_MS 2000
#define OBJ_CLUSTER_FWD_TICK_MS 20
#define OBJ_CLUSTER_FWD_REASK_MS 250
/* Requests one core has in flight to other boxes; more are answered 503 at once (counted
 * in cluster_fwd_failed and the pool's cap hits). */
#define OBJ_CLUSTER_FWD_MAX_PER_CORE 8192
/* A forwarded request's whole answer, and its body. */
#define OBJ_CLUSTER_FWD_TIMEOUT_MS 30000
#define OBJ_CLUSTER_FWD_MAX_BODY (64ull << 20)

/* On the core that routed ex (route_result filled, the slot's owner another box): takes
 * ex over and answers it exactly once (the owner's answer, or 502/503/504). An event
 * stream (GET with Accept naming text/event-stream) that the owner answers 200 with one
 * is passed through as it arrives, for as long as both ends stay. minted: the
 * route minted ex's ID (".../new"), so the owner is sent the ID instead of "new". */
void obj_cluster_forward(struct core *c, struct http_exchange *ex, unsigned slot, int minted);

/* An event stream's client socket passed through by obj_cluster_forward closed (the ws
 * layer's on_closed for it, from obj_ws_site.c): the upstream is closed. */
void obj_cluster_sse_closed(struct core *c, struct ws_conn *wc);

/* On each core after a new slot table was installed (cluster_gate.c): a passed-through
 * stream whose slot changed owner or epoch since its owner was asked ends (the client's
 * reconnect then finds the new owner; the old one no longer runs the object). */
void obj_cluster_fwd_table(struct core *c);

/* What runs ex on this box once its slot turned out to be this box's meanwhile (the
 * dispatch past the gate: obj_dispatch_admitted). */
typedef void obj_cluster_serve_fn(struct core *c, struct http_exchange *ex, int minted);

/* Per core, after obj_cluster_core_init: the pool of requests in flight (cluster mode
 * only; a no-op returning 0 on a single box), and its end. Returns 0 or -ENOMEM. */
int obj_cluster_fwd_init(struct core *c, obj_cluster_serve_fn *serve);
void obj_cluster_fwd_fini(struct core *c);

#endif
