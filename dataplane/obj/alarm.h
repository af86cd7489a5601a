/* Alarms (alarm.c): each core's schedule of pending alarms, the alarm calls of duro.h, and
 * the part of an event's commit that mirrors its alarm writes into the alarms family. */
#ifndef DURO_OBJ_ALARM_H
#define DURO_OBJ_ALARM_H

#include "object-t.h"

struct store_batch;

/* Runs a due alarm's handler as an event of its object (the event layer's): returns 0
 * when it succeeded (the alarm is then cleared unless re-set), else the failure. With
 * `drop`, the handler is not called: the alarm is only cleared (it failed too often). */
typedef int alarm_run_fn(struct core *c, const struct duro_id *id, unsigned ns, const char *name,
			 size_t namelen, int64_t time_ms, unsigned retries, int drop);

/* Sets up this core's schedule and loads its share of the stored alarms. `run` fires them. */
int alarm_core_init(struct core *c, alarm_run_fn *run);
void alarm_core_fini(struct core *c);

/* At the end of an event that wrote: mirrors the alarm keys it wrote (and a delete_all)
 * into the alarms family in batch b, and notes each change for the schedule, which
 * follows once batch seq is durable. Call before kv_event_commit. */
void alarm_event_commit(struct core *c, struct object *obj, struct store_batch *b, uint64_t seq);

const struct obj_alarm_counters *alarm_counters(struct core *c);
/* Cluster mode, a slot's data arrived on or left this box (cluster_move.c): schedules the
 * stored alarms of the slot's objects this core runs, or unschedules every alarm of the
 * slot's objects (their keys left with the slot). Each returns how many. */
size_t alarm_load_slot(struct core *c, unsigned slot);
size_t alarm_drop_slot(struct core *c, unsigned slot);
/* How long a failed alarm waits before retry `retries` (0 for the first): doubling from
 * alarms.retry_initial_ms, the doubling capped at 2^20. */
uint64_t alarm_retry_delay_ms(const struct obj_alarm_config *cfg, unsigned retries);

#endif
