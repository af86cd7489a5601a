/* What the runtime keeps in an HTTP exchange's scratch area while it is routed, handled by
 * its object and answered: the route's result, the socket reserved for an upgrade, the
 * object handling it. The duro_req_* and duro_res_* calls read it (request.c). */
#ifndef DURO_OBJ_REQUEST_H
#define DURO_OBJ_REQUEST_H

#include "http-t.h"
#include "object-t.h"

struct ws_conn;

struct route_result {
	struct duro_id id;
	uint16_t ns;
	uint16_t subpath_off; /* offset of the subpath in req.path */
	uint16_t name_off, name_len; /* the name's segment of req.path (raw), 0 long if none */
	uint8_t ws_kind;      /* enum ws_kind of the reserved socket */
	uint8_t accepted;     /* the object took the socket (duro_ws_accept, duro_sse_accept) */
	uint8_t is_call;      /* the exchange is an object's call (call.h), not HTTP */
	struct object *obj;   /* set on the owner core while its handler runs */
	struct ws_conn *wc;   /* the socket reserved for an upgrade: the connection's core only */
	uint64_t ws_handle;   /* the same as a value any core may keep; 0 when none */
	uint64_t member;      /* the object's name for it once accepted */
};
_Static_assert(sizeof(struct route_result) <= HTTP_USER_BYTES, "route result fits");

static inline struct route_result *route_result_of(struct http_exchange *ex)
{
	return (struct route_result *)ex->user;
}

#endif
