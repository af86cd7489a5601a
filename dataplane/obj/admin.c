/* What the control plane asks of objects on their owner core (obj.h's control section):
 * describe, evict, hard delete, and restore from an export, each as events of their own
 * where they touch storage, so they serialize with the object's other events. */
#include "obj.h"
#include "commit.h"
#include "core.h"
#include "event.h"
#include "keys.h"
#include "kv.h"
#include "obj_ws.h"
#include "object.h"
#include "sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void obj_describe(struct core *c, unsigned ns, const struct duro_id *id, struct obj_info *out)
{
	struct object *obj = object_find(c, id);
	memset(out, 0, sizeof(*out));
	if (obj && obj->ns->index == ns) {
		out->in_memory = 1;
		out->running = obj->running;
		out->deferred = obj->ndeferred;
	}
	out->sockets = (unsigned)obj_ws_count(c, ns, id);
	out->hibernated = !out->in_memory && out->sockets > 0;
}

int obj_evict(struct core *c, unsigned ns, const struct duro_id *id)
{
	struct object *obj = object_find(c, id);
	if (!obj || obj->ns->index != ns)
		return 0;
	if (obj->running || kv_dirty(c, obj) || obj->ndeferred || !list_empty(&obj->conts) ||
	    obj->ncalls)
		return -EBUSY;
	object_unload(c, obj);
	return 1;
}

static int any_key(void *arg, struct duro_str k, struct duro_str v)
{
	(void)k;
	(void)v;
	*(int *)arg = 1;
	return 1;
}

struct delete_wait {
	void (*done)(void *arg, int status);
	void *arg;
	/* The event's writes were refused (disk under its reserve, no memory for the batch):
	 * the sync then waits only for the object's earlier writes and would report them
	 * durable, so this is what done hears. */
	int refused;
};

static void delete_synced(struct duro_object *o, int status, void *arg)
{
	(void)o;
	struct delete_wait *w = arg;
	w->done(w->arg, w->refused ? w->refused : status);
	free(w);
}

/* The SQL database's size record and its pages (keys.h): loaded through sql.c, which
 * writes them to the sql family and the size record when the event commits. */
static int is_sql_key(const struct duro_kv *e)
{
	return (e->key.len == KEYS_SQL_SIZE_LEN && !memcmp(e->key.ptr, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN)) ||
	       (e->key.len == KEYS_SQL_EXPORT_PAGE_LEN + 4 &&
		!memcmp(e->key.ptr, KEYS_SQL_EXPORT_PAGE, KEYS_SQL_EXPORT_PAGE_LEN));
}

static int import_sql(struct object *obj, const struct duro_kv *entries, size_t n)
{
	uint64_t size = 0;
	int have = 0, r = 0;
	for (size_t i = 0; i < n; i++)
		if (entries[i].key.len == KEYS_SQL_SIZE_LEN &&
		    !memcmp(entries[i].key.ptr, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN)) {
			if (entries[i].value.len != sizeof(size))
				return -EBADMSG;
			memcpy(&size, entries[i].value.ptr, sizeof(size));
			have = 1;
		}
	for (size_t i = 0; i < n && r >= 0; i++) {
		const struct duro_kv *e = &entries[i];
		if (!is_sql_key(e) || e->key.len == KEYS_SQL_SIZE_LEN)
			continue;
		if (!have)
			return -EBADMSG; /* pages without a database */
		if (have == 1) {
			if ((r = sql_load_size(obj, size)) < 0)
				return r;
			have = 2;
		}
		const unsigned char *p = (const unsigned char *)e->key.ptr + KEYS_SQL_EXPORT_PAGE_LEN;
		uint32_t pgno = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		r = sql_load_page(obj, pgno, e->value.ptr, e->value.len);
	}
	if (r >= 0 && have == 1)
		r = sql_load_size(obj, size); /* a database of no pages: SQLite writes none */
	return r;
}

int obj_import(struct core *c, unsigned ns, const struct duro_id *id, const char *name,
	       size_t name_len, const struct duro_kv *entries, size_t n,
	       void (*done)(void *arg, int status), void *arg)
{
	int err = 0;
	struct object *obj = event_activate(c, ns, id, &err);
	if (!obj)
		return err ? err : -EIO;
	if (obj->running)
		return -EBUSY;
	struct delete_wait *w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct delete_wait){ done, arg, 0 };
	event_begin(c, obj);
	struct duro_list_options all = { .limit = 1 };
	int found = 0;
	int r = kv_list(obj, &all, any_key, &found, 1);
	if (r >= 0 && found)
		r = -EEXIST;
	for (size_t i = 0; r >= 0 && i < n; i++)
		if (!is_sql_key(&entries[i]))
			r = kv_write(obj, entries[i].key.ptr, entries[i].key.len, entries[i].value.ptr,
				     entries[i].value.len, 1);
	if (r >= 0)
		r = import_sql(obj, entries, n);
	if (r >= 0 && name_len && !obj->name && (obj->name = malloc(name_len))) {
		memcpy(obj->name, name, name_len);
		obj->name_len = (uint16_t)name_len;
	}
	if (r >= 0)
		r = duro_sync((struct duro_object *)obj, delete_synced, w);
	int wrote = event_end(c, obj, r >= 0);
	if (r < 0) {
		free(w);
		return r;
	}
	if (wrote < 0)
		w->refused = wrote; /* done hears it through the sync, next turn */
	return 0;
}

int obj_delete(struct core *c, unsigned ns, const struct duro_id *id,
	       void (*done)(void *arg, int status), void *arg)
{
	struct delete_wait *w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct delete_wait){ done, arg, 0 };
	int err = 0;
	struct object *obj = event_activate(c, ns, id, &err);
	if (!obj) {
		free(w);
		return err ? err : -EIO;
	}
	if (obj->running) {
		free(w);
		return -EBUSY;
	}
	event_begin(c, obj);
	int r = duro_delete_all((struct duro_object *)obj);
	if (r == 0)
		r = duro_sync((struct duro_object *)obj, delete_synced, w);
	int wrote = event_end(c, obj, r == 0);
	if (r < 0) {
		free(w);
		return r;
	}
	if (wrote < 0)
		w->refused = wrote; /* done hears it through the sync, which frees w */
	return 0;
}

int obj_sql(struct core *c, unsigned ns, const struct duro_id *id, const char *sql, size_t len,
	    const struct duro_sql_value *params, size_t nparams, int write, duro_sql_row_fn *fn,
	    void *arg, struct duro_sql_result *res, char *err, size_t errlen,
	    void (*done)(void *arg, int status), void *done_arg)
{
	int e = 0;
	err[0] = 0;
	struct object *obj = event_activate(c, ns, id, &e);
	if (!obj) {
		snprintf(err, errlen, "the object failed to load");
		return e ? e : -EIO;
	}
	if (obj->running)
		return -EBUSY;
	struct delete_wait *w = NULL;
	if (write && !(w = malloc(sizeof(*w))))
		return -ENOMEM;
	if (w)
		*w = (struct delete_wait){ done, done_arg, 0 };
	event_begin(c, obj);
	struct duro_object *o = (struct duro_object *)obj;
	int r = write ? 0 : sql_event_readonly(obj);
	if (r == 0)
		r = duro_sql_exec(o, sql, len, params, nparams, fn, arg, res);
	if (r < 0)
		snprintf(err, errlen, "%s", duro_sql_error(o));
	if (r == 0 && w)
		r = duro_sync(o, delete_synced, w);
	int wrote = event_end(c, obj, write && r == 0);
	if (r < 0 || !w) {
		free(w);
		return r < 0 ? r : 1;
	}
	if (wrote < 0) {
		w->refused = wrote; /* done hears it through the sync, which frees w */
		if (!err[0])
			snprintf(err, errlen, "%s", wrote == -ENOSPC ? "storage full: the write was not saved"
									   : duro_sql_error(o));
	}
	return 0; /* the sync reports the outcome (a refused write too) */
}

int obj_storage_settled(struct core *c) { return commit_applied_seq(c) >= commit_durable_seq(c); }
