/* Cluster mode's WebSockets (cluster_wsrelay.c): the client's socket stays on the box and
 * core that accepted it (the edge); a relay socket from that core to the slot's owner box
 * (this box too, through its own address) carries its messages both ways, so the object
 * sees one of its own sockets, with tags, attachments, hibernation and auto-responses as on
 * a single box, and the client stays connected when the slot moves to another box. */
#ifndef DURO_OBJ_CLUSTER_WSRELAY_H
#define DURO_OBJ_CLUSTER_WSRELAY_H

#include "cluster_forward.h"
#include "cluster_relay_wire.h"

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
/* How an owner closes a relayed socket whose slot left it: the edge dials the new owner. */
#define OBJ_CLUSTER_WSR_MOVED_CODE 1012
#define OBJ_CLUSTER_WSR_MOVED "the object's slot moved to another box"
/* A relay's opening request carries Duro-Forwarded and Duro-Relay (cluster_relay_wire.h:
 * the edge box and its incarnation, "reopen" when it dials again after losing the owner). */

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

/* On the owner, the routing core of a relayed upgrade (both fields present) once its socket
 * is reserved (route_result's wc): the socket is watched, and obj_cluster_wsr_table cuts it
 * off (1006 to the object) when its edge box's member key is gone, or closes it 1012 when
 * its slot left this box, so the edge dials the new owner. A no-op for other upgrades. */
void obj_cluster_wsr_inbound(struct core *c, struct http_exchange *ex);
/* On each core after a new slot table was installed (cluster_gate.c). */
void obj_cluster_wsr_table(struct core *c);

/* Per core after obj_cluster_core_init (cluster mode only; a no-op returning 0 on a single
 * box), and its end. Returns 0 or -ENOMEM. */
int obj_cluster_wsr_init(struct core *c);
void obj_cluster_wsr_fini(struct core *c);

#endif
