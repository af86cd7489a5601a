/* Requests into the runtime: on the connection's core, a request is routed (route.c),
 * an upgrade gets its socket reserved, and the exchange goes to its object's owner core
 * by pointer over the ring (or runs here when this core owns it). The handler fills the
 * response there and http_respond sends it back; the exchange never leaves its owner's
 * pool. */
#include "dispatch.h"
#include "cluster_forward.h"
#include "cluster_gate.h"
#include "cluster_wsrelay.h"
#include "obj.h"
#include "core.h"
#include "event.h"
#include "http.h"
#include "obj_ws.h"
#include "request.h"
#include "route.h"

#include <string.h>

void obj_handle_http(struct core *c, struct http_exchange *ex)
{
	struct obj_core *oc = c->obj;
	struct route_target t;
	enum route_error e = route_match(&oc->view, ex->req.path, ex->req.path_len, &t);
	if (e != ROUTE_OK) {
		if (e == ROUTE_NO_ROUTE || e == ROUTE_NO_BINDING)
			oc->ctr.not_found++;
		else if (e == ROUTE_BAD_NAME || e == ROUTE_BAD_ID || e == ROUTE_FOREIGN_ID)
			oc->ctr.bad_ids++;
		http_respond_error(c, ex, route_error_status(e), route_error_text(e));
		return;
	}
	struct route_result *rr = route_result_of(ex);
	memset(rr, 0, sizeof(*rr));
	rr->id = t.id;
	rr->ns = (uint16_t)t.ns;
	rr->subpath_off = t.subpath_off;
	rr->name_off = t.name_off;
	rr->name_len = t.name_len;
	/* Cluster mode: a slot another box owns, or a fenced box, is refused here, before the
	 * object is reached on any core. */
	int a = obj_cluster_admit(c, ex, &t.id);
	if (a < 0)
		return;
	/* A socket to a new object (".../new") whose slot is here is served here: a relay
	 * would have to name the ID it has not got yet (it stays when the slot moves). */
	if (a == 2 && !(t.minted && obj_cluster_owns(c, &t.id))) {
		obj_cluster_wsr_upgrade(c, ex, slotmap_slot(t.id.bytes), t.minted);
		return;
	}
	if (a == 2)
		a = 0;
	if (a > 0) {
		obj_cluster_forward(c, ex, slotmap_slot(t.id.bytes), t.minted);
		return;
	}
	obj_dispatch_admitted(c, ex, t.minted);
}

void obj_dispatch_admitted(struct core *c, struct http_exchange *ex, int minted)
{
	struct obj_core *oc = c->obj;
	struct route_result *rr = route_result_of(ex);
	if (minted) {
		char hex[DURO_ID_HEX + 1];
		duro_id_to_string(&rr->id, hex);
		http_resp_header(ex, "Duro-Id", 7, hex, DURO_ID_HEX);
	}
	if (obj_ws_route(c, ex) < 0)
		return;
	if (rr->wc && oc->cluster)
		obj_cluster_wsr_inbound(c, ex); /* a relayed socket: its edge is watched */
	unsigned owner = slotmap_owner(&oc->view.map, rr->id.bytes);
	if (owner == c->index) {
		event_run_request(c, ex);
		return;
	}
	oc->ctr.forwarded++;
	ex->msg.type = MSG_OBJ_REQUEST;
	core_send(c, owner, &ex->msg);
}

static void on_request_msg(struct core *c, struct core_msg *m)
{
	event_run_request(c, (struct http_exchange *)m);
}

void dispatch_core_init(struct core *c) { core_set_msg_handler(c, MSG_OBJ_REQUEST, on_request_msg); }
