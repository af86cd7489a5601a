/* The runtime on one core: sets up and tears down each part in the order they depend on
 * each other, wiring the events the lower parts report (a commit failed, an alarm is due,
 * a socket spoke) to the event layer that runs them. The only file that knows every part. */
#include "obj.h"
#include "alarm.h"
#include "call_event.h"
#include "cluster_forward.h"
#include "cluster_gate.h"
#include "cluster_wsrelay.h"
#include "cluster_capture.h"
#include "fetch.h"
#include "commit.h"
#include "core.h"
#include "dispatch.h"
#include "event.h"
#include "obj_ws.h"
#include "object.h"
#include "runtime.h"
#include "switch.h"
#include "pitr.h"
#include "sql.h"

#include <errno.h>
#include <stdlib.h>

static const struct commit_events commit_events = { .on_failed = event_commit_failed,
						    .release_msg = call_released };

int obj_core_init(struct core *c)
{
	struct obj_core *oc = calloc(1, sizeof(*oc));
	if (!oc)
		return -ENOMEM;
	c->obj = oc;
	oc->rt = obj_runtime();
	obj_view_install_initial(c, &oc->view);
	dispatch_core_init(c);
	core_set_msg_handler(c, MSG_OBJ_VIEW, obj_runtime_view_msg);
	pitr_core_init(c);
	int r = sql_core_init(c);
	if (r == 0)
		sql_ahead_init(c, event_run_parked);
	if (r == 0)
		r = object_table_init(c);
	if (r == 0)
		r = commit_core_init(c, &commit_events);
	if (r == 0)
		r = alarm_core_init(c, event_run_alarm);
	if (r == 0)
		r = obj_ws_core_init(c, event_run_socket);
	if (r == 0)
		obj_ws_out_init(c);
	if (r == 0)
		r = switch_core_init(c);
	if (r == 0)
		r = call_core_init(c, &call_events);
	if (r == 0)
		r = fetch_core_init(c);
	if (r == 0)
		r = obj_cluster_core_init(c);
	if (r == 0)
		r = obj_cluster_fwd_init(c, obj_dispatch_admitted);
	if (r == 0)
		r = obj_cluster_wsr_init(c);
	return r;
}

void obj_core_fini(struct core *c)
{
	struct obj_core *oc = c->obj;
	if (!oc)
		return;
	object_table_fini(c); /* unloads every object: before what they hang from */
	obj_cluster_wsr_fini(c);
	obj_cluster_fwd_fini(c);
	obj_cluster_move_fini(c);
	obj_cluster_core_fini(c);
	switch_core_fini(c);
	call_core_fini(c);
	fetch_core_fini(c);
	obj_ws_out_fini(c);
	obj_ws_core_fini(c);
	pitr_core_fini(c);
	alarm_core_fini(c);
	commit_core_fini(c);
	sql_ahead_fini(c); /* the objects are unloaded: no job is left unclaimed */
	sql_core_fini(c);
	free(oc);
	c->obj = NULL;
}

int obj_idle(struct core *c) { return !c->obj || commit_idle(c); }

const struct obj_counters *obj_counters(struct core *c) { return &c->obj->ctr; }
const struct obj_ws_counters *obj_ws_counters(struct core *c) { return obj_ws_core_counters(c); }
const struct obj_commit_counters *obj_commit_counters(struct core *c) { return commit_counters(c); }
const struct obj_alarm_counters *obj_alarm_counters(struct core *c) { return alarm_counters(c); }
const struct obj_call_counters *obj_call_counters(struct core *c) { return call_counters(c); }
void obj_calls_fini(void) { call_runtime_fini(); }
