/* The control socket's commands: one JSON request in, one JSON reply out. Those that
 * wait on cores, storage or files (ctl_request_kind) run on a worker thread, the others on
 * the control thread; the cores are only ever reached through their mailboxes. */
#include "ctl_int.h"
#include "ctl_mailbox.h"
#include "cluster.h"
#include "hex.h"
#include "log.h"
#include "keys.h"
#include "obj.h"
#include "slotmap.h"
#include "store.h"
#include "tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- what runs on a core ---- */

static int do_drain(struct core *c, struct ctl_cmd *cmd)
{
	(void)cmd;
	http_drain(c);
	return 1;
}

static int do_describe(struct core *c, struct ctl_cmd *cmd)
{
	obj_describe(c, cmd->ns, &cmd->id, &cmd->info);
	return 1;
}

static int do_evict(struct core *c, struct ctl_cmd *cmd)
{
	cmd->result = obj_evict(c, cmd->ns, &cmd->id);
	return 1;
}

static void delete_done(void *arg, int status)
{
	struct ctl_cmd *cmd = arg;
	cmd->result = status;
	ctl_cmd_finish(cmd);
}

static int do_delete(struct core *c, struct ctl_cmd *cmd)
{
	int r = obj_delete(c, cmd->ns, &cmd->id, delete_done, cmd);
	if (r < 0) {
		cmd->result = r;
		return 1;
	}
	return 0;
}

/* ---- the commands ---- */

/* Size and key count from the meta family, and the name (storage/keys.h). */
static void stored_figures(const struct duro_id *id, int cf, json_t *into)
{
	struct store *st = obj_runtime_store();
	char key[KEYS_META_ID_LEN];
	keys_tagged_id(key, KEYS_META_STATS, id->bytes);
	struct store_value v;
	struct keys_stats stats = { 0, 0 };
	if (store_get(st, STORE_CF_META, key, sizeof(key), &v) == 1) {
		if (v.len == sizeof(stats))
			memcpy(&stats, v.data, sizeof(stats));
		store_value_release(&v);
	}
	json_object_set_new(into, "bytes", json_integer((json_int_t)stats.bytes));
	json_object_set_new(into, "keys", json_integer((json_int_t)stats.keys));
	keys_tagged_id(key, KEYS_META_NAME, id->bytes);
	if (store_get(st, STORE_CF_META, key, sizeof(key), &v) == 1) {
		json_object_set_new(into, "name", ctl_bytes_json(v.data, v.len));
		store_value_release(&v);
	}
	/* The SQL database's size record: a reserved key of the object (keys.h). */
	char sk[KEYS_ID_BYTES + KEYS_SQL_SIZE_LEN];
	uint64_t sql_bytes = 0;
	size_t sl = keys_data(sk, id->bytes, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN);
	if (store_get(st, cf, sk, sl, &v) == 1) {
		if (v.len == sizeof(sql_bytes))
			memcpy(&sql_bytes, v.data, sizeof(sql_bytes));
		store_value_release(&v);
	}
	json_object_set_new(into, "sql_bytes", json_integer((json_int_t)sql_bytes));
}

/* Runs fn on the object's owner core: the finished command (the caller frees it), or
 * NULL with the reply in *err. */
static struct ctl_cmd *on_owner(struct ctl *ctl, int (*fn)(struct core *, struct ctl_cmd *),
				unsigned ns, const struct duro_id *id, const char *what, json_t **err)
{
	struct ctl_cmd *cmd = ctl_cmd_new(fn);
	if (!cmd) {
		*err = ctl_error_reply("out of memory");
		return NULL;
	}
	cmd->ns = ns;
	cmd->id = *id;
	unsigned owner = obj_owner(id);
	int r = ctl_mailbox_call(&ctl->mb, owner, cmd);
	if (r < 0) {
		*err = r == -ECANCELED ? ctl_error_reply("%s: durod is stopping", what)
				       : ctl_error_reply("%s: core %u did not finish in time", what, owner);
		return NULL;
	}
	return cmd;
}

/* objects: IDs that hold data, per class, in ID order, pageable with after/limit. */
static json_t *cmd_objects(json_t *req)
{
	const char *cls = json_string_value(json_object_get(req, "class"));
	const char *after = json_string_value(json_object_get(req, "after"));
	json_int_t limit = json_integer_value(json_object_get(req, "limit"));
	if (limit <= 0 || limit > 10000)
		limit = 100;
	unsigned lo = 0, hi = obj_namespaces();
	if (cls) {
		int ns = ctl_class_ns(cls);
		if (ns < 0)
			return ctl_error_reply("\"class\": no class or binding \"%s\"", cls);
		lo = (unsigned)ns;
		hi = lo + 1;
	}
	uint8_t start[DURO_ID_BYTES] = { 0 };
	int have_start = 0;
	if (after) {
		if (strlen(after) != DURO_ID_HEX || hex_decode(after, DURO_ID_BYTES, start) < 0)
			return ctl_error_reply("\"after\": want 64 hex digits");
		/* The next ID after it: add one to the 32-byte big-endian number. */
		int k = DURO_ID_BYTES - 1;
		while (k >= 0 && ++start[k] == 0)
			k--;
		have_start = k >= 0;
		if (!have_start)
			return json_pack("{s:b, s:[]}", "ok", 1, "objects");
	}
	json_t *list = json_array();
	char last[DURO_ID_HEX + 1] = "";
	for (unsigned ns = lo; ns < hi && (json_int_t)json_array_size(list) < limit; ns++) {
		/* Several classes share a column family only when renamed; one per ns here. */
		int seen = 0;
		for (unsigned p = lo; p < ns; p++)
			seen |= obj_namespace_cf(p) == obj_namespace_cf(ns);
		if (seen)
			continue;
		uint8_t cur[DURO_ID_BYTES];
		memcpy(cur, start, sizeof(cur));
		int more = 1;
		while (more && (json_int_t)json_array_size(list) < limit) {
			struct store_iter *it = store_iter_open(obj_runtime_store(), obj_namespace_cf(ns),
								 cur, DURO_ID_BYTES, NULL, 0, 0);
			if (!it)
				break;
			const char *k, *v;
			size_t kl, vl;
			struct duro_id id;
			int r = store_iter_next(it, &k, &kl, &v, &vl);
			if (r > 0 && kl >= DURO_ID_BYTES)
				memcpy(id.bytes, k, DURO_ID_BYTES); /* before the close frees k */
			store_iter_close(it);
			if (r <= 0 || kl < DURO_ID_BYTES) {
				more = 0;
				break;
			}
			char hex[DURO_ID_HEX + 1];
			duro_id_to_string(&id, hex);
			json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "id", hex, "class",
					      obj_namespace_class(ns), "binding", obj_namespace_binding(ns),
					      "core", (int)obj_owner(&id));
			stored_figures(&id, obj_namespace_cf(ns), o);
			json_array_append_new(list, o);
			memcpy(last, hex, sizeof(last));
			/* Skip the rest of this object's keys: seek to the next ID. */
			memcpy(cur, id.bytes, DURO_ID_BYTES);
			int c2 = DURO_ID_BYTES - 1;
			while (c2 >= 0 && ++cur[c2] == 0)
				c2--;
			if (c2 < 0)
				more = 0;
		}
	}
	json_t *reply = json_pack("{s:b, s:o}", "ok", 1, "objects", list);
	if ((json_int_t)json_array_size(list) == limit)
		json_object_set_new(reply, "next", json_string(last));
	return reply;
}

static json_t *cmd_object(struct ctl *ctl, json_t *req)
{
	unsigned ns;
	struct duro_id id;
	json_t *err;
	if (ctl_object_of(req, &ns, &id, &err) < 0)
		return err;
	char hex[DURO_ID_HEX + 1];
	duro_id_to_string(&id, hex);
	int cf = obj_namespace_cf(ns);
	if (json_is_true(json_object_get(req, "keys"))) {
		const char *prefix = json_string_value(json_object_get(req, "prefix"));
		const char *after = json_string_value(json_object_get(req, "after"));
		json_int_t limit = json_integer_value(json_object_get(req, "limit"));
		if (limit <= 0 || limit > 10000)
			limit = 100;
		size_t plen = prefix ? strlen(prefix) : 0, alen = after ? strlen(after) : 0;
		if (plen > DURO_MAX_KEY || alen > DURO_MAX_KEY)
			return ctl_error_reply("\"prefix\" or \"after\" longer than a key");
		char lo[DURO_ID_BYTES + DURO_MAX_KEY + 1], hi[DURO_ID_BYTES + DURO_MAX_KEY + 1];
		memcpy(lo, id.bytes, DURO_ID_BYTES);
		size_t lol = DURO_ID_BYTES;
		if (after && (!prefix || strncmp(after, prefix, plen) >= 0)) {
			memcpy(lo + lol, after, alen);
			lol += alen;
			lo[lol++] = 0; /* just past `after` */
		} else if (prefix) {
			memcpy(lo + lol, prefix, plen);
			lol += plen;
		}
		/* Upper bound: the ID (and prefix) with its last byte raised, or the next ID. */
		memcpy(hi, id.bytes, DURO_ID_BYTES);
		size_t hil = DURO_ID_BYTES;
		if (prefix) {
			memcpy(hi + hil, prefix, plen);
			hil += plen;
		}
		int k = (int)hil - 1;
		while (k >= 0 && (unsigned char)hi[k] == 0xff)
			k--;
		json_t *keys = json_array();
		if (k >= 0) {
			hi[k]++;
			hil = (size_t)k + 1;
			struct store_iter *it = store_iter_open(obj_runtime_store(), cf, lo, lol, hi, hil, 0);
			const char *kk, *vv;
			size_t kl, vl;
			while (it && (json_int_t)json_array_size(keys) < limit &&
			       store_iter_next(it, &kk, &kl, &vv, &vl) == 1) {
				if (kl - DURO_ID_BYTES >= 2 && !memcmp(kk + DURO_ID_BYTES, "\xff\xff", 2))
					continue; /* duro's own (alarms) */
				json_array_append_new(keys, json_pack("{s:o, s:I}", "key",
					ctl_bytes_json(kk + DURO_ID_BYTES, kl - DURO_ID_BYTES), "bytes", (json_int_t)vl));
			}
			if (it)
				store_iter_close(it);
		}
		return json_pack("{s:b, s:s, s:o}", "ok", 1, "id", hex, "keys", keys);
	}
	unsigned owner = obj_owner(&id);
	struct ctl_cmd *cmd = on_owner(ctl, do_describe, ns, &id, "describe", &err);
	if (!cmd)
		return err;
	json_t *o = json_pack("{s:b, s:s, s:s, s:s, s:i, s:b, s:b, s:i, s:i}", "ok", 1, "id", hex,
			      "class", obj_namespace_class(ns), "binding", obj_namespace_binding(ns),
			      "core", (int)owner, "in_memory", cmd->info.in_memory, "hibernated",
			      cmd->info.hibernated, "sockets", (int)cmd->info.sockets, "deferred",
			      (int)cmd->info.deferred);
	ctl_cmd_free(cmd);
	stored_figures(&id, cf, o);
	/* Alarms from the alarms family: every key of the object's range, name after the ID. */
	char lo[KEYS_META_ID_LEN], hi[KEYS_META_ID_LEN];
	keys_tagged_id_range(lo, hi, KEYS_ALARMS_OBJECT, id.bytes);
	json_t *alarms = json_array();
	struct store_iter *it = store_iter_open(obj_runtime_store(), STORE_CF_ALARMS, lo, sizeof(lo), hi,
						sizeof(hi), 0);
	const char *k, *v;
	size_t kl, vl;
	while (it && store_iter_next(it, &k, &kl, &v, &vl) == 1) {
		int64_t t = 0;
		if (vl >= sizeof(t))
			memcpy(&t, v, sizeof(t));
		json_t *a = json_pack("{s:I}", "time_ms", (json_int_t)t);
		if (kl > sizeof(lo))
			json_object_set_new(a, "name", ctl_bytes_json(k + sizeof(lo), kl - sizeof(lo)));
		json_array_append_new(alarms, a);
	}
	if (it)
		store_iter_close(it);
	json_object_set_new(o, "alarms", alarms);
	return o;
}

static json_t *cmd_on_owner(struct ctl *ctl, json_t *req, int (*fn)(struct core *, struct ctl_cmd *),
			    const char *what)
{
	unsigned ns;
	struct duro_id id;
	json_t *err;
	if (ctl_object_of(req, &ns, &id, &err) < 0)
		return err;
	struct ctl_cmd *cmd = on_owner(ctl, fn, ns, &id, what, &err);
	if (!cmd)
		return err;
	int r = cmd->result;
	ctl_cmd_free(cmd);
	char hex[DURO_ID_HEX + 1];
	duro_id_to_string(&id, hex);
	if (fn == do_evict) {
		if (r == -EBUSY)
			return ctl_error_reply("evict: the object is busy (an event running, writes not yet applied or responses held); try again");
		return json_pack("{s:b, s:s, s:b}", "ok", 1, "id", hex, "evicted", r == 1);
	}
	if (r < 0)
		return ctl_error_reply("%s: %s", what, strerror(-r));
	log_info("control: object %s deleted", hex);
	return json_pack("{s:b, s:s, s:b}", "ok", 1, "id", hex, "deleted", 1);
}

static json_t *cmd_shards(struct ctl *ctl)
{
	struct slotmap m;
	slotmap_build(&m, ctl->group->ncores);
	json_t *map = json_array(), *counts = json_array();
	unsigned per[DURO_MAX_CORES] = { 0 };
	for (unsigned s = 0; s < DURO_SLOTS; s++) {
		json_array_append_new(map, json_integer(m.owner[s]));
		per[m.owner[s]]++;
	}
	for (unsigned i = 0; i < ctl->group->ncores; i++)
		json_array_append_new(counts, json_integer(per[i]));
	return json_pack("{s:b, s:i, s:i, s:o, s:o}", "ok", 1, "slots", DURO_SLOTS, "cores",
			 (int)ctl->group->ncores, "slots_per_core", counts, "owner", map);
}

static json_t *cmd_connections(struct ctl *ctl)
{
	json_t *cores = json_array();
	struct ctl_snapshot *s = malloc(sizeof(*s));
	if (!s)
		return ctl_error_reply("out of memory");
	uint64_t t_open = 0, t_ws = 0;
	for (unsigned i = 0; i < ctl->group->ncores; i++) {
		if (ctl_read_snapshot(ctl, i, s) < 0)
			memset(s, 0, sizeof(*s));
		t_open += s->net.active;
		t_ws += s->ws.active;
		json_array_append_new(cores, json_pack(
			"{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "core", (int)i,
			"open", (json_int_t)s->net.active, "http", (json_int_t)s->http.conns_open,
			"websockets", (json_int_t)s->ws.active, "accepted", (json_int_t)s->net.accepted,
			"refused", (json_int_t)s->net.refused, "ws_refused", (json_int_t)s->ws.refused,
			"slow_closes", (json_int_t)s->ws.closes_slow));
	}
	free(s);
	return json_pack("{s:b, s:I, s:I, s:o}", "ok", 1, "open", (json_int_t)t_open, "websockets",
			 (json_int_t)t_ws, "cores", cores);
}

json_t *ctl_tls_reload(struct ctl *ctl)
{
	if (!ctl->tls)
		return ctl_error_reply("tls-reload: no listener serves TLS");
	char err[512];
	if (tls_reload(&ctl->cfg->tls, err, sizeof(err)) < 0) {
		log_warn("control: TLS reload refused, the certificates in use stay: %s", err);
		return ctl_error_reply("tls-reload: %s (the certificates in use stay)", err);
	}
	log_info("control: TLS certificates reloaded; open connections keep theirs");
	return json_pack("{s:b}", "ok", 1);
}

json_t *ctl_request(struct ctl *ctl, json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	if (!cmd)
		return ctl_error_reply("want {\"cmd\": \"...\"}: status, stats, shards, connections, cluster-status, cluster-drain, cluster-rebalance, config, log-level, drain, objects, object, evict, delete, sql, bookmark, restore, export, import, tls-reload, deploy, versions, rollback");
	if (!strcmp(cmd, "status"))
		return ctl_status_json(ctl);
	if (!strcmp(cmd, "cluster-status")) {
		if (!ctl->cluster)
			return ctl_error_reply("not in cluster mode: the config has no cluster section");
		json_t *st = cluster_status_json(ctl->cluster);
		return st ? st : ctl_error_reply("out of memory");
	}
	if (!strcmp(cmd, "cluster-drain") || !strcmp(cmd, "cluster-rebalance")) {
		if (!ctl->cluster)
			return ctl_error_reply("not in cluster mode: the config has no cluster section");
		if (!strcmp(cmd, "cluster-rebalance")) {
			cluster_request_rebalance(ctl->cluster);
			return json_pack("{s:b}", "ok", 1);
		}
		const char *box = json_string_value(json_object_get(req, "box"));
		if (!box || cluster_request_drain(ctl->cluster, box,
						  json_is_true(json_object_get(req, "undo"))) < 0)
			return ctl_error_reply("cluster-drain: want {\"box\": NAME} (and \"undo\": true to stop draining)");
		return json_pack("{s:b, s:s}", "ok", 1, "box", box);
	}
	if (!strcmp(cmd, "stats"))
		return ctl_stats_json(ctl);
	if (!strcmp(cmd, "shards"))
		return cmd_shards(ctl);
	if (!strcmp(cmd, "connections"))
		return cmd_connections(ctl);
	if (!strcmp(cmd, "config")) {
		json_t *c = config_to_json(ctl->cfg);
		return c ? json_pack("{s:b, s:o}", "ok", 1, "config", c) : ctl_error_reply("out of memory");
	}
	if (!strcmp(cmd, "log-level")) {
		static const char *const names[] = { "error", "warn", "info", "debug" };
		const char *lv = json_string_value(json_object_get(req, "level"));
		if (lv) {
			enum log_level l;
			if (log_parse_level(lv, &l) < 0)
				return ctl_error_reply("\"level\": \"%s\": want error, warn, info or debug", lv);
			log_set_level(l);
			log_info("control: log level set to %s", lv);
		}
		return json_pack("{s:b, s:s}", "ok", 1, "level", names[log_get_level()]);
	}
	if (!strcmp(cmd, "drain")) {
		unsigned done = 0;
		for (unsigned i = 0; i < ctl->group->ncores; i++) {
			struct ctl_cmd *c = ctl_cmd_new(do_drain);
			if (c && ctl_mailbox_call(&ctl->mb, i, c) == 0) {
				ctl_cmd_free(c);
				done++;
			}
		}
		log_info("control: draining: no new connections; open ones finish");
		return json_pack("{s:b, s:i}", "ok", done == ctl->group->ncores, "cores_drained", (int)done);
	}
	if (!strcmp(cmd, "objects"))
		return cmd_objects(req);
	if (!strcmp(cmd, "object"))
		return cmd_object(ctl, req);
	if (!strcmp(cmd, "evict"))
		return cmd_on_owner(ctl, req, do_evict, "evict");
	if (!strcmp(cmd, "tls-reload"))
		return ctl_tls_reload(ctl);
	if (!strcmp(cmd, "export")) {
		const char *cls = json_string_value(json_object_get(req, "class"));
		const char *path = json_string_value(json_object_get(req, "path"));
		if (!cls || !path || path[0] != '/')
			return ctl_error_reply("export wants \"class\" and an absolute \"path\"");
		return ctl_export(ctl, cls, path);
	}
	if (!strcmp(cmd, "import")) {
		const char *path = json_string_value(json_object_get(req, "path"));
		if (!path || path[0] != '/')
			return ctl_error_reply("import wants an absolute \"path\"");
		return ctl_import(ctl, path);
	}
	if (!strcmp(cmd, "deploy")) {
		const char *path = json_string_value(json_object_get(req, "path"));
		if (!path || path[0] != '/')
			return ctl_error_reply("deploy wants \"class\" and an absolute \"path\"");
		return ctl_deploy(ctl, req);
	}
	if (!strcmp(cmd, "rollback"))
		return ctl_rollback(ctl, req);
	if (!strcmp(cmd, "versions"))
		return ctl_versions(ctl, req);
	if (!strcmp(cmd, "sql"))
		return ctl_sql(ctl, req);
	if (!strcmp(cmd, "bookmark"))
		return ctl_bookmark(ctl, req);
	if (!strcmp(cmd, "restore"))
		return ctl_restore(ctl, req);
	if (!strcmp(cmd, "delete")) {
		if (!json_is_true(json_object_get(req, "confirm")))
			return ctl_error_reply("delete removes all of the object's storage, alarms and name for good: send \"confirm\": true");
		return cmd_on_owner(ctl, req, do_delete, "delete");
	}
	return ctl_error_reply("unknown command \"%s\"", cmd);
}

int ctl_request_privileged(json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	return cmd && (!strcmp(cmd, "deploy") || !strcmp(cmd, "rollback"));
}

enum ctl_request_kind ctl_request_kind(json_t *req)
{
	static const char *const slow[] = { "objects", "object", "evict", "delete", "drain",
					    "deploy", "rollback", "versions", "sql", "bookmark",
					    "restore", NULL };
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	if (!cmd)
		return CTL_REQ_INLINE;
	if (!strcmp(cmd, "export") || !strcmp(cmd, "import"))
		return CTL_REQ_BACKUP;
	for (unsigned i = 0; slow[i]; i++)
		if (!strcmp(cmd, slow[i]))
			return CTL_REQ_WORKER;
	return CTL_REQ_INLINE;
}
