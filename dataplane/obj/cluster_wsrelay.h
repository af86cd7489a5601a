/* Cluster mode's WebSockets for a slot another box owns (cluster_wsrelay.c): the client's
 * socket stays on the box and core that accepted it (the edge); a relay socket from that
 * core to the owner box carries its messages both ways, so the object sees one of its own
 * sockets, with tags, attachments, hibernation and auto-responses as on a single box. */
#ifndef DURO_OBJ_CLUSTER_WSRELAY_H
#define DURO_OBJ_CLUSTER_WSRELAY_H

#include "cluster_forward.h"

#include <stddef.h>

struct buf;
struct core;
struct http_exchange;
struct ws_conn;

/* Relays one core holds (each is two sockets: the client's and the one to the owner). */
#define OBJ_CLUSTER_WSR_MAX_PER_CORE 16384
/* The owner's socket lost (its box died, shut down, or gave the slot up): the client's
 * messages wait, at most this many and bytes, while the slot's owner is looked up and
 * dialed again; past OBJ_CLUSTER_WSR_REROUTE_MS without one, the client is closed 1013. */
#define OBJ_CLUSTER_WSR_MAX_PENDING 64
#define OBJ_CLUSTER_WSR_MAX_PENDING_BYTES (1u << 20)
#define OBJ_CLUSTER_WSR_REROUTE_MS 15000
/* The field a relay's opening request carries (with Duro-Forwarded), naming the edge box:
 * the owner counts such sockets (and a class may read it). "reopen" follows the box name
 * when the relay dials again after it lost the owner. */
#define OBJ_CLUSTER_WSR_HEADER "Duro-Relay"

/* On the core that routed ex, a WebSocket upgrade whose slot another box owns (or none
 * yet): takes ex over and answers it exactly once: the 101 once the owner accepted the
 * relay socket, or the owner's refusal's status (502/503 when there was none). minted
 * upgrades (".../new") are refused 503. */
void obj_cluster_wsr_upgrade(struct core *c, struct http_exchange *ex, unsigned slot, int minted);

/* The socket layer's events for the two sockets of a relay (obj_ws_site.c sends them here
 * when the socket's site is a relay's). Same contracts as struct ws_events. */
void obj_cluster_wsr_message(struct core *c, struct ws_conn *wc, int binary, struct buf *msg);
void obj_cluster_wsr_closed(struct core *c, struct ws_conn *wc, unsigned code,
			    const char *reason, size_t rlen, int clean);
void obj_cluster_wsr_open(struct core *c, struct ws_conn *wc, int err);

/* Per core after obj_cluster_core_init (cluster mode only; a no-op returning 0 on a single
 * box), and its end. serve runs an upgrade whose slot came to this box meanwhile. Returns
 * 0 or -ENOMEM. */
int obj_cluster_wsr_init(struct core *c, obj_cluster_serve_fn *serve);
void obj_cluster_wsr_fini(struct core *c);

#endif
