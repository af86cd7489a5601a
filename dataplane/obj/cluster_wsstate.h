/* Cluster mode's socket state that follows a slot (cluster_wsstate.c): a relayed
 * WebSocket's tags and attachment, kept as a reserved key of its object whenever the
 * object sets the attachment, so they move with the slot's data; when the edge dials the
 * new owner again (reopen), the object's socket there gets them back. */
#ifndef DURO_OBJ_CLUSTER_WSSTATE_H
#define DURO_OBJ_CLUSTER_WSSTATE_H

#include "object-t.h"

struct core;
struct http_exchange;
struct ws_member;

/* The record's reserved key: this prefix and the relay's 8-byte state ID (the edge picks
 * it at random for the client's socket and sends it on every dial, Duro-Relay-State). */
#define OBJ_CLUSTER_WSSTATE_PREFIX "\xff\xffwsstate/"
#define OBJ_CLUSTER_WSSTATE_PREFIX_LEN 10

/* From the accepting event (accept_common), once member m joined: a relayed socket's state
 * ID is taken from ex (cluster mode only); on a reopen the stored record, if any, is read
 * now (before the class can write it) and kept for obj_cluster_ws_restore. */
void obj_cluster_ws_accepted(struct core *c, struct object *obj, struct http_exchange *ex,
			     struct ws_member *m);
/* After on_request of the accepting event, for the socket it accepted (m, or NULL): the
 * record read at accept replaces the tags and attachment the class gave the socket again,
 * and is written back. */
void obj_cluster_ws_restore(struct object *obj, struct ws_member *m);
/* In an event of obj: writes m's record (its attachment changed). Returns 0 or a negative
 * errno from the write. */
int obj_cluster_ws_save(struct object *obj, struct ws_member *m);
/* In an event of obj: deletes the record of a socket that closed. */
void obj_cluster_ws_forget(struct object *obj, uint64_t state_id);
/* Frees what m holds for this (its record read at accept, not yet restored). */
void obj_cluster_ws_member_free(struct ws_member *m);

#endif
