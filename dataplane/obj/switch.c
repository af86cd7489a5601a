/* Switching objects to a deployed version, on each core. A view whose namespace entry has
 * a new deploy_gen starts a pass over the core's table (a bounded number of buckets per
 * turn, so a core with a million objects does not stall): every object whose version is
 * not the one its ID now gets (version.h) switches at once if it is quiescent, else joins
 * the core's list of objects waiting to switch, which is looked at again each millisecond.
 *
 * Quiescent: no event running (always so between turns: handlers run to completion), no
 * deferred response held, no sync() callback pending, since each of those is a way back
 * into the old version's code. A switch runs the old on_unload and leaves the object's
 * storage cache, sockets (hibernated or not: tags, attachments and auto-responses live
 * with the runtime) and table entry where they are; the new version's on_load runs before
 * its next event (event.c). Once the deploy's force_at_ms passes, a waiting object is
 * switched anyway: its sync() callbacks run first, on the old code, with -ECANCELED, and
 * the responses it holds are answered 503. Old code is never unmapped. */
#include "switch.h"
#include "base_assert.h"
#include "call.h"
#include "core.h"
#include "event.h"
#include "log.h"
#include "object.h"
#include "version.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Buckets of the object table one pass looks at per loop turn. */
#define SWITCH_PASS_BUCKETS 1024

struct switch_core {
	uint64_t view_gen;                      /* the view last looked at */
	uint64_t seen_deploy[DURO_MAX_BINDINGS]; /* each namespace's deploy_gen then */
	uint8_t deploying[DURO_MAX_BINDINGS];    /* namespaces the current pass looks for */
	size_t cursor;                          /* next bucket of the pass */
	size_t pass_buckets;                    /* the table's size when the pass began; 0 none */
	uint64_t waiting_checked_ms;
	uint64_t failed_logged_ms;
};

/* Switches obj to `to` if it may now; else it waits (or stays waiting). */
static void consider(struct core *c, struct object *obj, struct obj_version *to)
{
	struct obj_core *oc = c->obj;
	const struct obj_ns_entry *e = &oc->view.ns[obj->ns->index];
	int forced = 0;
	if (!object_quiescent(obj)) {
		if (obj->running || c->now_ms < e->force_at_ms) {
			if (!list_linked(&obj->switch_node))
				list_add_tail(&oc->switching, &obj->switch_node);
			return;
		}
		forced = 1;
		unsigned conts = 0, deferred = obj->ndeferred;
		for (struct list_node *n = obj->conts.next; n != &obj->conts; n = n->next)
			conts++;
		event_cancel_conts(c, obj);
		call_cancel_pending(c, obj); /* answers into the old code: -ECANCELED now */
		oc->ctr.switch_cancelled += conts;
		oc->ctr.switch_deferred_503 += deferred;
	}
	struct obj_version *from = obj->ver;
	if (object_switch(c, obj, to) < 0) {
		if (c->now_ms >= oc->sw->failed_logged_ms + 1000) {
			oc->sw->failed_logged_ms = c->now_ms;
			log_warn("deploy: class %s: an object could not switch from %s to %s: out of memory (it stays and tries again)",
				 to->class_name, from->label, to->label);
		}
		if (!list_linked(&obj->switch_node))
			list_add_tail(&oc->switching, &obj->switch_node);
		return;
	}
	oc->ctr.switches++;
	oc->ctr.switches_forced += forced;
}

/* A new view: which namespaces had a deploy since the last one. */
static void view_changed(struct core *c)
{
	struct obj_core *oc = c->obj;
	struct switch_core *sw = oc->sw;
	int any = 0;
	for (unsigned i = 0; i < oc->view.nns; i++) {
		if (oc->view.ns[i].deploy_gen == sw->seen_deploy[i])
			continue;
		sw->seen_deploy[i] = oc->view.ns[i].deploy_gen;
		sw->deploying[i] = 1;
		any = 1;
	}
	if (any) {
		sw->cursor = 0; /* (re)start the pass over the whole table */
		sw->pass_buckets = oc->nbuckets;
	}
}

static void pass_step(struct core *c)
{
	struct obj_core *oc = c->obj;
	struct switch_core *sw = oc->sw;
	if (oc->nbuckets != sw->pass_buckets) {
		/* The table grew: objects moved between buckets. Look at all of them again. */
		sw->cursor = 0;
		sw->pass_buckets = oc->nbuckets;
	}
	size_t end = sw->cursor + SWITCH_PASS_BUCKETS;
	if (end > oc->nbuckets)
		end = oc->nbuckets;
	for (; sw->cursor < end; sw->cursor++) {
		for (struct object *o = oc->buckets[sw->cursor], *next; o; o = next) {
			next = o->hnext; /* a switch never removes an object from its bucket */
			unsigned ns = o->ns->index;
			if (!sw->deploying[ns])
				continue;
			struct obj_version *to = obj_version_target(&oc->view.ns[ns], &o->id);
			if (to != o->ver)
				consider(c, o, to);
		}
	}
	if (sw->cursor == oc->nbuckets) {
		sw->pass_buckets = 0;
		memset(sw->deploying, 0, sizeof(sw->deploying));
	}
}

static void waiting_step(struct core *c)
{
	struct obj_core *oc = c->obj;
	struct switch_core *sw = oc->sw;
	if (c->now_ms == sw->waiting_checked_ms)
		return;
	sw->waiting_checked_ms = c->now_ms;
	/* Take the list as it is: what consider() puts back waits for the next look. */
	struct list_node todo;
	list_init(&todo);
	if (!list_empty(&oc->switching)) {
		todo.next = oc->switching.next;
		todo.prev = oc->switching.prev;
		todo.next->prev = &todo;
		todo.prev->next = &todo;
		list_init(&oc->switching);
	}
	while (!list_empty(&todo)) {
		struct object *o = LIST_CONTAINER(todo.next, struct object, switch_node);
		list_del(&o->switch_node);
		struct obj_version *to = obj_version_target(&oc->view.ns[o->ns->index], &o->id);
		if (to != o->ver)
			consider(c, o, to);
	}
	uint64_t n = 0;
	for (struct list_node *p = oc->switching.next; p != &oc->switching; p = p->next)
		n++;
	oc->ctr.switch_waiting = n;
}

static void switch_hook(struct core *c)
{
	struct obj_core *oc = c->obj;
	struct switch_core *sw = oc->sw;
	if (oc->view.gen != sw->view_gen) {
		sw->view_gen = oc->view.gen;
		view_changed(c);
	}
	if (sw->pass_buckets)
		pass_step(c);
	if (!list_empty(&oc->switching) || oc->ctr.switch_waiting)
		waiting_step(c);
}

int switch_core_init(struct core *c)
{
	struct obj_core *oc = c->obj;
	struct switch_core *sw = calloc(1, sizeof(*sw));
	if (!sw)
		return -ENOMEM;
	oc->sw = sw;
	/* The view the core starts with is no deploy: objects start on what it names. */
	sw->view_gen = oc->view.gen;
	for (unsigned i = 0; i < oc->view.nns; i++)
		sw->seen_deploy[i] = oc->view.ns[i].deploy_gen;
	core_add_hook(c, switch_hook);
	return 0;
}

void switch_core_fini(struct core *c)
{
	free(c->obj->sw);
	c->obj->sw = NULL;
}
