/* Requests into the runtime (dispatch.c): routing on the connection's core and the hand-off
 * to the object's owner core. obj_handle_http (obj.h) is the entry. */
#ifndef DURO_OBJ_DISPATCH_H
#define DURO_OBJ_DISPATCH_H

struct core;

/* Takes requests forwarded to this core (MSG_OBJ_REQUEST). */
void dispatch_core_init(struct core *c);

#endif
