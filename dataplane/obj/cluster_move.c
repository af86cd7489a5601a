/* The cores' part of a slot move (cluster_move.h): emptying a slot from memory on the box
 * that gives it away, and its alarms' schedule on both ends. */
#include "cluster_move.h"
#include "alarm.h"
#include "core.h"
#include "kv.h"
#include "object.h"
#include "slotmap.h"

unsigned obj_cluster_quiesce(struct core *c, unsigned slot, int cut)
{
	struct obj_core *oc = c->obj;
	unsigned busy = 0;
	struct list_node *n = oc->lru.next;
	while (n != &oc->lru) {
		struct object *obj = LIST_CONTAINER(n, struct object, lru);
		n = n->next;
		if (slotmap_slot(obj->id.bytes) != slot)
			continue;
		if (obj->running || kv_dirty(c, obj) || (obj->ndeferred && !cut) ||
		    !list_empty(&obj->conts) || obj->ncalls || obj->syncs || obj->answered) {
			busy++;
			continue;
		}
		object_unload(c, obj); /* answers what it held: 503 */
	}
	return busy;
}

size_t obj_cluster_slot_gone(struct core *c, unsigned slot)
{
	return alarm_drop_slot(c, slot);
}

size_t obj_cluster_slot_arrived(struct core *c, unsigned slot)
{
	return alarm_load_slot(c, slot);
}
