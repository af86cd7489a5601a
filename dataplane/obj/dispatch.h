/* Requests into the runtime (dispatch.c): routing on the connection's core and the hand-off
 * to the object's owner core. obj_handle_http (obj.h) is the entry. */
#ifndef DURO_OBJ_DISPATCH_H
#define DURO_OBJ_DISPATCH_H

struct core;
struct http_exchange;

/* Runs ex here, past the cluster gate (obj_cluster_admit said 0, or a forwarded request's
 * slot became this box's): reserves an upgrade's socket, hands ex to its owner core.
 * minted: the route minted ex's ID, told to the client in Duro-Id. */
void obj_dispatch_admitted(struct core *c, struct http_exchange *ex, int minted);

/* Takes requests forwarded to this core (MSG_OBJ_REQUEST). */
void dispatch_core_init(struct core *c);

#endif
