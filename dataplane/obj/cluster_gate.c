/* The per-core ownership gate of cluster mode (cluster_gate.h): a copy of the slot table
 * and the lease deadline, checked on the routing core before an object is reached. */
#include "cluster_gate.h"
#include "cluster_forward.h"
#include "cluster_wsrelay.h"
#include "base_assert.h"
#include "clock.h"
#include "core.h"
#include "log.h"
#include "http.h"
#include "object-t.h"
#include "runtime.h"
#include "slotmap.h"
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int obj_cluster_core_init(struct core *c)
{
	if (!c->obj->rt->cfg->cluster)
		return 0;
	struct obj_cluster_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t->owner, OBJ_CLUSTER_NO_OWNER, sizeof(t->owner));
	snprintf(t->why, sizeof(t->why), "this box has not joined its cluster yet");
	const char *trace = getenv("DURO_TRACE_ACTIVATIONS");
	t->trace = trace && atoi(trace) > 0;
	c->obj->cluster = t;
	return 0;
}

void obj_cluster_core_fini(struct core *c)
{
	free(c->obj->cluster);
	c->obj->cluster = NULL;
}

void obj_cluster_install(struct core *c, const struct obj_cluster_table *t, int lease_only)
{
	struct obj_cluster_table *mine = c->obj->cluster;
	if (!mine)
		return;
	if (!lease_only) {
		uint8_t trace = mine->trace;
		memcpy(mine, t, sizeof(*mine));
		mine->trace = trace;
		obj_cluster_wsr_table(c); /* relayed sockets of lost slots or gone edges */
		obj_cluster_fwd_table(c); /* passed-through streams whose slot moved */
		return;
	}
	mine->serving = t->serving;
	mine->deadline_ms = t->deadline_ms;
	mine->incarnation = t->incarnation;
	memcpy(mine->why, t->why, sizeof(mine->why));
}

int obj_cluster_owns(const struct core *c, const struct duro_id *id)
{
	const struct obj_cluster_table *t = c->obj->cluster;
	if (!t)
		return 1;
	unsigned slot = slotmap_slot(id->bytes);
	return t->serving && c->now_ms < t->deadline_ms && (t->owned[slot / 64] >> (slot % 64) & 1);
}

void obj_cluster_trace(const struct core *c, const struct duro_id *id, const char *what)
{
	const struct obj_cluster_table *t = c->obj->cluster;
	if (!t || !t->trace)
		return;
	unsigned slot = slotmap_slot(id->bytes);
	char hex[2 * sizeof(id->bytes) + 1];
	for (size_t i = 0; i < sizeof(id->bytes); i++)
		snprintf(hex + 2 * i, 3, "%02x", id->bytes[i]);
	const char *box = t->owner[slot] == OBJ_CLUSTER_NO_OWNER ? "-" : t->boxes[t->owner[slot]].name;
	log_info("cluster trace: %s id %s slot %u epoch %lld owner %s incarnation %lld core %u "
		 "mono_us %llu", what, hex, slot, (long long)t->epoch[slot], box,
		 (long long)t->incarnation, c->index, (unsigned long long)(clock_now_ns() / 1000));
}

/* refused: the Duro-Refused value a forwarding box reads as "not run, ask again", or
 * NULL for a client's own request. slot DURO_SLOTS: no Duro-Slot field. ran: the request
 * did run here (an answer held back past the lease): marked Duro-Outcome: unknown and
 * without Retry-After, so neither a client nor a harness takes the 503 for "not done". */
static void refuse(struct core *c, struct http_exchange *ex, const char *text,
		   const struct obj_cluster_table *t, unsigned slot, int with_owner,
		   const char *refused, int ran)
{
	http_resp_reset(ex);
	http_resp_status(ex, 503);
	char v[32];
	int n = 0;
	if (http_resp_header(ex, "Content-Type", 12, "text/plain; charset=utf-8", 25) < 0)
		goto out;
	if (ran ? http_resp_header(ex, "Duro-Outcome", 12, "unknown", 7) < 0
		: http_resp_header(ex, "Retry-After", 11, "1", 1) < 0)
		goto out;
	n = snprintf(v, sizeof(v), "%u", slot);
	if (slot < DURO_SLOTS && http_resp_header(ex, "Duro-Slot", 9, v, (size_t)n) < 0)
		goto out;
	if (refused && http_resp_header(ex, OBJ_CLUSTER_REFUSED_HEADER,
					sizeof(OBJ_CLUSTER_REFUSED_HEADER) - 1, refused,
					strlen(refused)) < 0)
		goto out;
	if (with_owner) {
		const struct obj_cluster_box *b = &t->boxes[t->owner[slot]];
		n = snprintf(v, sizeof(v), "%lld", (long long)t->epoch[slot]);
		if (http_resp_header(ex, "Duro-Owner", 10, b->name, strlen(b->name)) < 0 ||
		    http_resp_header(ex, "Duro-Owner-Address", 18, b->addr, strlen(b->addr)) < 0 ||
		    http_resp_header(ex, "Duro-Epoch", 10, v, (size_t)n) < 0)
			goto out;
	}
	if (http_resp_body(ex, text, strlen(text)) < 0 || http_resp_body(ex, "\n", 1) < 0)
		goto out;
	http_respond(c, ex);
	return;
out:
	http_respond_error(c, ex, 503, text);
}

int obj_cluster_may_answer(const struct core *c)
{
	const struct obj_cluster_table *t = c->obj->cluster;
	return !t || (t->serving && c->now_ms < t->deadline_ms);
}

void obj_cluster_answer_late(struct core *c, struct http_exchange *ex)
{
	const struct obj_cluster_table *t = c->obj->cluster;
	DURO_ASSERT(t);
	c->obj->ctr.cluster_late++;
	refuse(c, ex, "503 not serving objects: this box's etcd lease ran out before the answer "
		   "could leave (the request ran here; whether its writes outlive this box's "
		   "tenure of the slot is unknown)", t, DURO_SLOTS, 0, NULL, 1);
}

/* The hop marker of a request another box forwarded: 1 and its slot and epoch, or 0. A
 * malformed one reads as slot -1, which no box owns. */
static int forwarded_marker(const struct http_request *rq, long *slot, long long *epoch)
{
	for (unsigned i = 0; i < rq->nheaders; i++) {
		const struct http_header *h = &rq->headers[i];
		if (h->name_len != sizeof(OBJ_CLUSTER_FWD_HEADER) - 1 ||
		    strncasecmp(h->name, OBJ_CLUSTER_FWD_HEADER, h->name_len))
			continue;
		unsigned s;
		int64_t e;
		if (obj_cluster_parse_marker(h->value, h->value_len, DURO_SLOTS, &s, &e) < 0) {
			*slot = -1;
			*epoch = -1;
		} else {
			*slot = (long)s;
			*epoch = (long long)e;
		}
		return 1;
	}
	return 0;
}

int obj_cluster_admit(struct core *c, struct http_exchange *ex, const struct duro_id *id)
{
	const struct obj_cluster_table *t = c->obj->cluster;
	if (!t)
		return 0;
	unsigned slot = slotmap_slot(id->bytes);
	long fslot = 0;
	long long fepoch = 0;
	int hop = forwarded_marker(&ex->req, &fslot, &fepoch);
	char text[400];
	if (!t->serving || c->now_ms >= t->deadline_ms) {
		c->obj->ctr.cluster_fenced++;
		snprintf(text, sizeof(text), "503 not serving objects: %s",
			 t->serving ? "this box's etcd lease ran out before it was renewed (fenced)"
				    : t->why);
		refuse(c, ex, text, t, slot, 0, hop ? "fenced" : NULL, 0);
		return -1;
	}
	int mine = t->owned[slot / 64] >> (slot % 64) & 1;
	if (hop) {
		/* Forwarded: served only at the slot and epoch the sender expected, never sent on. */
		if (mine && fslot == (long)slot && fepoch == t->epoch[slot]) {
			if (ws_is_upgrade(&ex->req))
				c->obj->ctr.cluster_ws_inbound++; /* a relay (cluster_wsrelay.c) */
			return 0;
		}
		c->obj->ctr.cluster_not_owner++;
		int known = t->owner[slot] != OBJ_CLUSTER_NO_OWNER && t->owner[slot] < t->nboxes;
		snprintf(text, sizeof(text), "503 not owner: forwarded for slot %ld at epoch %lld; "
			 "this box %s slot %u at epoch %lld", fslot, fepoch,
			 mine ? "owns" : "does not own", slot, (long long)t->epoch[slot]);
		refuse(c, ex, text, t, slot, known, mine ? "epoch" : "not-owner", 0);
		return -1;
	}
	/* A WebSocket is relayed even to this box: its client then stays on this box when
	 * the slot moves away, and the relay dials the slot's next owner. */
	if (ws_is_upgrade(&ex->req))
		return 2; /* the caller relays it (cluster_wsrelay.h) */
	if (mine)
		return 0;
	return 1; /* the caller forwards it (cluster_forward.h), event streams too */
}
