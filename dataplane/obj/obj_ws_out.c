/* Outbound WebSockets: duro_ws_connect checks the URL against outbound.allow (refused with
 * nothing sent), reserves a client socket on the object's core (so it hibernates with the
 * object's group like an accepted one), and queues its dial behind the event's writes
 * (the output gate: a WS_CONNECT batch, released with the event's sends). The ws layer
 * dials, checks the server's 101 and reports the open through the site (obj_ws_site.c),
 * which the group runs as the class's on_ws_open. */
#include "obj_ws_int.h"
#include "base_assert.h"
#include "core.h"
#include "fetch.h"
#include "log.h"

#include <errno.h>

int duro_ws_connect(struct duro_object *o, const char *url, const struct duro_str *tags,
		    size_t ntags, const struct duro_ws_connect_opts *opts, duro_ws *out)
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	struct obj_ws_core *w = c->obj->ws;
	DURO_ASSERT(obj->running);
	if (!url || strnlen(url, DURO_WS_MAX_URL + 1) > DURO_WS_MAX_URL ||
	    (opts && (opts->flags & ~DURO_WS_RECONNECT))) {
		w->ctr.outbound_refused++;
		return -EINVAL;
	}
	/* The target is large (a whole path): off the stack of a class's callback. */
	struct obj_target *t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	int r = obj_outbound_target(c, obj, url, 1, t);
	if (r < 0) {
		free(t);
		w->ctr.outbound_refused++;
		return r;
	}
	struct ws_conn *wc = obj_ws_site_reserve(c, &obj->id, obj->ns->index);
	if (!wc) {
		free(t);
		w->ctr.refused_core++;
		return -ENOSPC;
	}
	r = ws_client_prepare(c, wc, &t->dial, t->host, t->target);
	free(t);
	duro_ws ref = 0;
	if (r == 0)
		r = obj_ws_member_join(c, obj, ws_conn_handle(wc), WS_KIND_SOCKET, tags, ntags, &ref);
	struct ws_batch *b = NULL;
	if (r == 0 && !(b = ws_batch_new(c, c->index, WS_CONNECT, NULL, NULL, 1)))
		r = -ENOMEM;
	if (r < 0) {
		if (ref)
			obj_ws_member_leave(obj, ref);
		obj_ws_site_unreserve(c, wc);
		w->ctr.outbound_refused++;
		return r;
	}
	obj_ws_member(obj, ref)->outbound = 1;
	ws_conn_set_ref(wc, ref);
	b->targets[b->n++] = ws_conn_handle(wc);
	obj_ws_queue_out(obj, b);
	*out = ref;
	return 0;
}

int duro_ws_is_outbound(struct duro_object *o, duro_ws ws)
{
	struct ws_member *m = obj_ws_member((struct object *)o, ws);
	return m ? m->outbound : -ENOENT;
}
