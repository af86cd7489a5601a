/* The control thread: line-delimited JSON over a Unix socket for duroctl, and an optional
 * HTTP listener for Prometheus and the dashboard. It never touches a core's state: figures
 * come from snapshots, and actions go to the owning core through its mailbox ring. */
#include "ctl_int.h"
#include "base_assert.h"
#include "clock.h"
#include "core.h"
#include "hex.h"
#include "log.h"
#include "obj.h"
#include "slotmap.h"
#include "store.h"
#include "tls.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdarg.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_ring.h>

#define CTL_MAX_CLIENTS 32
#define CTL_MAX_LINE (64 * 1024)
#define CTL_CMD_TIMEOUT_MS 5000
#define MAILBOX_SIZE 256

/* ---- commands that run on a core ---- */

void ctl_cmd_free(struct ctl_cmd *cmd)
{
	if (cmd->payload_free)
		cmd->payload_free(cmd->payload);
	free(cmd);
}

void ctl_cmd_finish(struct ctl_cmd *cmd)
{
	int expect = CMD_PENDING;
	if (!atomic_compare_exchange_strong(&cmd->state, &expect, CMD_DONE))
		ctl_cmd_free(cmd); /* the control thread gave up waiting: ours to free */
}

void ctl_core_tick(struct ctl *ctl, struct core *c)
{
	if (ctl_snapshot_due(ctl, c))
		ctl_publish(ctl, c);
	void *cmds[16];
	unsigned n = rte_ring_sc_dequeue_burst(ctl->mailbox[c->index], cmds, 16, NULL);
	for (unsigned i = 0; i < n; i++) {
		struct ctl_cmd *cmd = cmds[i];
		core_did_work(c);
		if (cmd->fn(c, cmd))
			ctl_cmd_finish(cmd);
	}
}

int ctl_post_to_core(struct ctl *ctl, unsigned core, struct ctl_cmd *cmd)
{
	atomic_store(&cmd->state, CMD_PENDING);
	return rte_ring_mp_enqueue(ctl->mailbox[core], cmd) == 0 ? 0 : -EAGAIN;
}

int ctl_wait(struct ctl *ctl, struct ctl_cmd *cmd)
{
	uint64_t deadline = clock_now_ms() + CTL_CMD_TIMEOUT_MS;
	while (atomic_load(&cmd->state) == CMD_PENDING) {
		/* Cores leaving their loops will not pick it up: give up at once. */
		if (clock_now_ms() >= deadline || atomic_load(&ctl->group->stop_now)) {
			int expect = CMD_PENDING;
			if (atomic_compare_exchange_strong(&cmd->state, &expect, CMD_ABANDONED))
				return -ETIMEDOUT;
			break; /* finished just now */
		}
		usleep(200);
	}
	return 0;
}

int ctl_run_on_core(struct ctl *ctl, unsigned core, struct ctl_cmd *cmd)
{
	if (ctl_post_to_core(ctl, core, cmd) < 0) {
		ctl_cmd_free(cmd);
		return -EAGAIN;
	}
	return ctl_wait(ctl, cmd);
}

#define run_on_core ctl_run_on_core
#define error_reply ctl_error_reply
#define cmd_finish ctl_cmd_finish
#define class_ns ctl_class_ns

int ctl_do_settled(struct core *c, struct ctl_cmd *cmd)
{
	cmd->result = obj_storage_settled(c);
	return 1;
}

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
	cmd_finish(cmd);
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

/* ---- replies ---- */

json_t *ctl_error_reply(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

/* Bytes as a JSON-safe string: printable ASCII as is, anything else as \xNN. */
static json_t *bytes_json(const char *p, size_t n)
{
	char *out = malloc(n * 4 + 1), *o = out;
	if (!out)
		return json_null();
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			*o++ = (char)ch;
		} else {
			static const char hx[] = "0123456789abcdef";
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hx[ch >> 4];
			*o++ = hx[ch & 15];
		}
	}
	json_t *j = json_stringn(out, (size_t)(o - out));
	free(out);
	return j;
}

static int get_id(json_t *req, unsigned *ns, struct duro_id *id, json_t **err)
{
	const char *hex = json_string_value(json_object_get(req, "id"));
	if (!hex) {
		*err = error_reply("\"id\": want the object's 64 hex digits");
		return -EINVAL;
	}
	int r = obj_parse_id(hex, strlen(hex), ns, id);
	if (r == -EINVAL)
		*err = error_reply("\"id\": malformed: want 64 hex digits");
	else if (r < 0)
		*err = error_reply("\"id\": no namespace of this durod minted %s", hex);
	return r;
}

/* Size and key count from the meta family ('s' ‖ ID), and the name ('n' ‖ ID). */
static void stored_figures(const struct duro_id *id, json_t *into)
{
	struct store *st = obj_runtime_store();
	char key[1 + DURO_ID_BYTES] = { 's' };
	memcpy(key + 1, id->bytes, DURO_ID_BYTES);
	struct store_value v;
	uint64_t stats[2] = { 0, 0 };
	if (store_get(st, STORE_CF_META, key, sizeof(key), &v) == 1) {
		if (v.len == sizeof(stats))
			memcpy(stats, v.data, sizeof(stats));
		store_value_release(&v);
	}
	json_object_set_new(into, "bytes", json_integer((json_int_t)stats[0]));
	json_object_set_new(into, "keys", json_integer((json_int_t)stats[1]));
	key[0] = 'n';
	if (store_get(st, STORE_CF_META, key, sizeof(key), &v) == 1) {
		json_object_set_new(into, "name", bytes_json(v.data, v.len));
		store_value_release(&v);
	}
}

int ctl_class_ns(const char *cls)
{
	for (unsigned i = 0; i < obj_namespaces(); i++)
		if (!strcmp(obj_namespace_class(i), cls) || !strcmp(obj_namespace_binding(i), cls))
			return (int)i;
	return -1;
}

/* objects: IDs that hold data, per class, in ID order, pageable with after/limit. */
/* Runs fn on the object's owner core: the finished command (the caller frees it), or
 * NULL with the reply in *err. */
static struct ctl_cmd *on_owner(struct ctl *ctl, int (*fn)(struct core *, struct ctl_cmd *),
				unsigned ns, const struct duro_id *id, const char *what, json_t **err)
{
	struct ctl_cmd *cmd = calloc(1, sizeof(*cmd));
	if (!cmd) {
		*err = error_reply("out of memory");
		return NULL;
	}
	cmd->fn = fn;
	cmd->ns = ns;
	cmd->id = *id;
	unsigned owner = obj_owner(id);
	if (run_on_core(ctl, owner, cmd) < 0) {
		*err = error_reply("%s: core %u did not finish in time", what, owner);
		return NULL;
	}
	return cmd;
}

static json_t *cmd_objects(json_t *req)
{
	const char *cls = json_string_value(json_object_get(req, "class"));
	const char *after = json_string_value(json_object_get(req, "after"));
	json_int_t limit = json_integer_value(json_object_get(req, "limit"));
	if (limit <= 0 || limit > 10000)
		limit = 100;
	unsigned lo = 0, hi = obj_namespaces();
	if (cls) {
		int ns = class_ns(cls);
		if (ns < 0)
			return error_reply("\"class\": no class or binding \"%s\"", cls);
		lo = (unsigned)ns;
		hi = lo + 1;
	}
	uint8_t start[DURO_ID_BYTES] = { 0 };
	int have_start = 0;
	if (after) {
		if (strlen(after) != DURO_ID_HEX || hex_decode(after, DURO_ID_BYTES, start) < 0)
			return error_reply("\"after\": want 64 hex digits");
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
			stored_figures(&id, o);
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
	if (get_id(req, &ns, &id, &err) < 0)
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
			return error_reply("\"prefix\" or \"after\" longer than a key");
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
					bytes_json(kk + DURO_ID_BYTES, kl - DURO_ID_BYTES), "bytes", (json_int_t)vl));
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
	free(cmd);
	stored_figures(&id, o);
	/* Alarms from the alarms family: 'o' ‖ ID ‖ name -> time. */
	char lo[1 + DURO_ID_BYTES] = { 'o' }, hi[1 + DURO_ID_BYTES + 1] = { 'o' };
	memcpy(lo + 1, id.bytes, DURO_ID_BYTES);
	memcpy(hi + 1, id.bytes, DURO_ID_BYTES);
	hi[1 + DURO_ID_BYTES] = (char)0xff;
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
			json_object_set_new(a, "name", bytes_json(k + sizeof(lo), kl - sizeof(lo)));
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
	if (get_id(req, &ns, &id, &err) < 0)
		return err;
	struct ctl_cmd *cmd = on_owner(ctl, fn, ns, &id, what, &err);
	if (!cmd)
		return err;
	int r = cmd->result;
	free(cmd);
	if (fn == do_evict) {
		if (r == -EBUSY)
			return error_reply("evict: the object is busy (an event running, writes not yet applied or responses held); try again");
		return json_pack("{s:b, s:b}", "ok", 1, "evicted", r == 1);
	}
	if (r < 0)
		return error_reply("%s: %s", what, strerror(-r));
	log_info("control: object %s deleted", json_string_value(json_object_get(req, "id")));
	return json_pack("{s:b, s:b}", "ok", 1, "deleted", 1);
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
		return error_reply("out of memory");
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

static json_t *cmd_tls_reload(struct ctl *ctl)
{
	if (!ctl->tls)
		return error_reply("tls-reload: no listener serves TLS");
	char err[512];
	if (tls_reload(&ctl->cfg->tls, err, sizeof(err)) < 0) {
		log_warn("control: TLS reload refused, the certificates in use stay: %s", err);
		return error_reply("tls-reload: %s (the certificates in use stay)", err);
	}
	log_info("control: TLS certificates reloaded; open connections keep theirs");
	return json_pack("{s:b}", "ok", 1);
}

void ctl_request_tls_reload(struct ctl *ctl)
{
	atomic_store(&ctl->reload_pending, 1);
	uint64_t one = 1;
	if (write(ctl->wake_fd, &one, sizeof(one)) != sizeof(one))
		log_warn("control: wake: %s", strerror(errno));
}

static json_t *handle(struct ctl *ctl, json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	if (!cmd)
		return error_reply("want {\"cmd\": \"...\"}: status, stats, shards, connections, config, log-level, drain, objects, object, evict, delete, export, import, tls-reload");
	if (!strcmp(cmd, "status"))
		return ctl_status_json(ctl);
	if (!strcmp(cmd, "stats"))
		return ctl_stats_json(ctl);
	if (!strcmp(cmd, "shards"))
		return cmd_shards(ctl);
	if (!strcmp(cmd, "connections"))
		return cmd_connections(ctl);
	if (!strcmp(cmd, "config")) {
		json_t *c = config_to_json(ctl->cfg);
		return c ? json_pack("{s:b, s:o}", "ok", 1, "config", c) : error_reply("out of memory");
	}
	if (!strcmp(cmd, "log-level")) {
		static const char *const names[] = { "error", "warn", "info", "debug" };
		const char *lv = json_string_value(json_object_get(req, "level"));
		if (lv) {
			enum log_level l;
			if (log_parse_level(lv, &l) < 0)
				return error_reply("\"level\": \"%s\": want error, warn, info or debug", lv);
			log_set_level(l);
			log_info("control: log level set to %s", lv);
		}
		return json_pack("{s:b, s:s}", "ok", 1, "level", names[log_get_level()]);
	}
	if (!strcmp(cmd, "drain")) {
		unsigned done = 0;
		for (unsigned i = 0; i < ctl->group->ncores; i++) {
			struct ctl_cmd *c = calloc(1, sizeof(*c));
			if (c) {
				c->fn = do_drain;
				if (run_on_core(ctl, i, c) == 0) {
					free(c);
					done++;
				}
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
		return cmd_tls_reload(ctl);
	if (!strcmp(cmd, "export")) {
		const char *cls = json_string_value(json_object_get(req, "class"));
		const char *path = json_string_value(json_object_get(req, "path"));
		if (!cls || !path || path[0] != '/')
			return error_reply("export wants \"class\" and an absolute \"path\"");
		return ctl_export(ctl, cls, path);
	}
	if (!strcmp(cmd, "import")) {
		const char *path = json_string_value(json_object_get(req, "path"));
		if (!path || path[0] != '/')
			return error_reply("import wants an absolute \"path\"");
		return ctl_import(ctl, path);
	}
	if (!strcmp(cmd, "delete")) {
		if (!json_is_true(json_object_get(req, "confirm")))
			return error_reply("delete removes all of the object's storage, alarms and name for good: send \"confirm\": true");
		return cmd_on_owner(ctl, req, do_delete, "delete");
	}
	return error_reply("unknown command \"%s\"", cmd);
}

/* ---- the Unix socket ---- */

struct client {
	int fd;
	char *buf;
	size_t len;
};

static int peer_allowed(struct ctl *ctl, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	if (cred.uid == 0 || cred.uid == geteuid())
		return 1;
	if (!ctl->cfg->control.group[0])
		return 0;
	struct group *gr = getgrnam(ctl->cfg->control.group);
	if (!gr)
		return 0;
	if (cred.gid == gr->gr_gid)
		return 1;
	struct passwd *pw = getpwuid(cred.uid);
	gid_t groups[64];
	int n = 64;
	if (pw && getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) >= 0)
		for (int i = 0; i < n; i++)
			if (groups[i] == gr->gr_gid)
				return 1;
	return 0;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return; /* a client that does not read is dropped at its next poll */
		p += w;
		n -= (size_t)w;
	}
}

static void reply(int fd, json_t *r)
{
	if (!r)
		r = error_reply("out of memory");
	char *text = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	if (!text)
		return;
	send_all(fd, text, strlen(text));
	send_all(fd, "\n", 1);
	free(text);
}

/* Handles the complete lines in the client's buffer; returns -1 to drop the client. */
static int client_lines(struct ctl *ctl, struct client *cl)
{
	char *start = cl->buf;
	char *nl;
	while ((nl = memchr(start, '\n', cl->len - (size_t)(start - cl->buf)))) {
		*nl = 0;
		if (nl > start && nl[-1] == '\r')
			nl[-1] = 0;
		atomic_fetch_add(&ctl->requests, 1);
		json_error_t jerr;
		json_t *req = *start ? json_loads(start, JSON_REJECT_DUPLICATES, &jerr) : NULL;
		if (*start == 0) {
			/* blank line: nothing */
		} else if (!req || !json_is_object(req)) {
			atomic_fetch_add(&ctl->errors, 1);
			reply(cl->fd, req ? error_reply("want a JSON object")
					  : error_reply("bad JSON at %d:%d: %s", jerr.line, jerr.column, jerr.text));
		} else {
			reply(cl->fd, handle(ctl, req));
		}
		json_decref(req);
		start = nl + 1;
	}
	size_t rest = cl->len - (size_t)(start - cl->buf);
	memmove(cl->buf, start, rest);
	cl->len = rest;
	if (cl->len >= CTL_MAX_LINE) {
		reply(cl->fd, error_reply("request line over %d bytes", CTL_MAX_LINE));
		return -1;
	}
	return 0;
}

/* ---- the metrics listener: one request per connection ---- */

static void http_reply(int fd, int status, const char *type, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
			 status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request", type, len);
	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

static void serve_metrics_conn(struct ctl *ctl, int fd)
{
	char req[4096];
	size_t got = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	/* A slow or silent client gets two seconds, then is dropped: it must not hold the
	 * control thread. */
	uint64_t deadline = clock_now_ms() + 2000;
	while (got < sizeof(req) - 1 && !memmem(req, got, "\r\n\r\n", 4)) {
		int left = (int)(deadline - clock_now_ms());
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return;
		ssize_t r = recv(fd, req + got, sizeof(req) - 1 - got, 0);
		if (r <= 0)
			return;
		got += (size_t)r;
	}
	req[got] = 0;
	if (strncmp(req, "GET ", 4) != 0) {
		http_reply(fd, 400, "text/plain", "GET only\n", 9);
		return;
	}
	char *path = req + 4, *sp = strchr(path, ' ');
	if (sp)
		*sp = 0;
	char *q = strchr(path, '?');
	if (q)
		*q = 0;
	if (!strcmp(path, "/metrics")) {
		size_t len = 0;
		char *text = ctl_prometheus(ctl, &len);
		if (text)
			http_reply(fd, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
		free(text);
	} else if (!strcmp(path, "/api/stats")) {
		json_t *s = ctl_stats_json(ctl);
		if (s)
			json_object_set_new(s, "status", ctl_status_json(ctl));
		char *text = s ? json_dumps(s, JSON_COMPACT) : NULL;
		json_decref(s);
		if (text)
			http_reply(fd, 200, "application/json", text, strlen(text));
		free(text);
	} else if (!strcmp(path, "/dashboard") || !strcmp(path, "/")) {
		http_reply(fd, 200, "text/html; charset=utf-8", ctl_dashboard_html, ctl_dashboard_html_len);
	} else {
		http_reply(fd, 404, "text/plain", "try /metrics, /dashboard or /api/stats\n", 39);
	}
}

/* ---- the thread ---- */

static void *ctl_main(void *arg)
{
	struct ctl *ctl = arg;
	struct client clients[CTL_MAX_CLIENTS];
	unsigned nclients = 0;
	for (;;) {
		struct pollfd pfd[CTL_MAX_CLIENTS + 4];
		unsigned n = 0;
		pfd[n++] = (struct pollfd){ .fd = ctl->stop_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = ctl->unix_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = ctl->metrics_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = ctl->wake_fd, .events = POLLIN };
		for (unsigned i = 0; i < nclients; i++)
			pfd[n++] = (struct pollfd){ .fd = clients[i].fd, .events = POLLIN };
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("control: poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents)
			break;
		if (pfd[3].revents & POLLIN) {
			uint64_t v;
			if (read(ctl->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_warn("control: wake: %s", strerror(errno));
			if (atomic_exchange(&ctl->reload_pending, 0))
				json_decref(cmd_tls_reload(ctl));
		}
		if (pfd[1].revents & POLLIN) {
			int fd = accept4(ctl->unix_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0) {
				struct timeval tv = { .tv_sec = 2 };
				setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
				if (!peer_allowed(ctl, fd)) {
					atomic_fetch_add(&ctl->refused, 1);
					log_warn("control: a client of another user was refused");
					reply(fd, error_reply("permission denied"));
					/* Half-close and take what it sent, so closing does not reset the
					 * connection and destroy the answer on its way. */
					shutdown(fd, SHUT_WR);
					struct pollfd one = { .fd = fd, .events = POLLIN };
					char junk[512];
					if (poll(&one, 1, 100) > 0 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) < 0)
						errno = 0;
					close(fd);
				} else if (nclients == CTL_MAX_CLIENTS) {
					reply(fd, error_reply("too many control clients"));
					close(fd);
				} else {
					clients[nclients++] = (struct client){ fd, malloc(CTL_MAX_LINE + 1), 0 };
					if (!clients[nclients - 1].buf)
						close(clients[--nclients].fd);
				}
			}
		}
		if (pfd[2].fd >= 0 && (pfd[2].revents & POLLIN)) {
			int fd = accept4(ctl->metrics_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0) {
				struct timeval tv = { .tv_sec = 2 };
				setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
				serve_metrics_conn(ctl, fd);
				close(fd);
			}
		}
		/* Backwards, so a dropped client's slot takes one already looked at. */
		for (unsigned i = nclients; i-- > 0;) {
			struct client *cl = &clients[i];
			int drop = 0;
			if (pfd[4 + i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = recv(cl->fd, cl->buf + cl->len, CTL_MAX_LINE - cl->len, MSG_DONTWAIT);
				if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
					drop = 1;
				} else if (r > 0) {
					cl->len += (size_t)r;
					drop = client_lines(ctl, cl) < 0;
				}
			}
			if (drop) {
				close(cl->fd);
				free(cl->buf);
				*cl = clients[--nclients];
			}
		}
	}
	for (unsigned i = 0; i < nclients; i++) {
		close(clients[i].fd);
		free(clients[i].buf);
	}
	return NULL;
}

static int listen_unix(struct ctl *ctl)
{
	const struct duro_config *cfg = ctl->cfg;
	if (cfg->control.socket[0])
		snprintf(ctl->socket_path, sizeof(ctl->socket_path), "%s", cfg->control.socket);
	else
		snprintf(ctl->socket_path, sizeof(ctl->socket_path), "%s/control.sock", cfg->obj.data_dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(ctl->socket_path) >= sizeof(sa.sun_path)) {
		log_error("control.socket: \"%s\" is longer than a Unix socket path may be (%zu bytes)",
			  ctl->socket_path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, ctl->socket_path, strlen(ctl->socket_path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket left by a durod that died: this one holds the data directory's lock. */
	unlink(ctl->socket_path);
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 16) < 0) {
		r = -errno;
		log_error("control socket %s: %s", ctl->socket_path, strerror(-r));
		close(fd);
		return r;
	}
	if (cfg->control.group[0]) {
		struct group *gr = getgrnam(cfg->control.group);
		if (!gr || chown(ctl->socket_path, (uid_t)-1, gr->gr_gid) < 0 ||
		    chmod(ctl->socket_path, 0660) < 0) {
			r = -errno;
			log_error("control socket %s: group %s: %s", ctl->socket_path, cfg->control.group,
				  strerror(errno ? errno : ENOENT));
			close(fd);
			return r ? r : -ENOENT;
		}
	} else if (chmod(ctl->socket_path, 0600) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	ctl->unix_fd = fd;
	return 0;
}

static int listen_metrics(struct ctl *ctl)
{
	ctl->metrics_fd = -1;
	if (!ctl->cfg->control.metrics[0])
		return 0;
	struct net_listen nl;
	if (net_parse_addr(ctl->cfg->control.metrics, &nl) < 0)
		return -EINVAL;
	int fd = socket(nl.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&nl.addr, nl.addrlen) < 0 || listen(fd, 64) < 0) {
		int r = -errno;
		log_error("control.metrics %s: %s", nl.text, strerror(-r));
		close(fd);
		return r;
	}
	ctl->metrics_fd = fd;
	return 0;
}

int ctl_init(struct ctl *ctl, const struct duro_config *cfg, struct core_group *group,
	     const char *version, const char *backend)
{
	ctl->cfg = cfg;
	ctl->group = group;
	ctl->version = version;
	ctl->backend = backend;
	ctl->started_wall_ms = clock_wall_ms();
	ctl->started_mono_ms = clock_now_ms();
	ctl->unix_fd = ctl->metrics_fd = ctl->stop_fd = ctl->wake_fd = -1;
	for (unsigned i = 0; i < group->ncores; i++) {
		char name[32];
		snprintf(name, sizeof(name), "ctl%u", i);
		/* Several control-side threads may post (control socket, telemetry): MP, SC. */
		ctl->mailbox[i] = rte_ring_create(name, MAILBOX_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
		if (!ctl->mailbox[i]) {
			log_error("rte_ring_create %s: %s", name, rte_strerror(rte_errno));
			return -ENOMEM;
		}
	}
	int r = listen_unix(ctl);
	if (r == 0)
		r = listen_metrics(ctl);
	if (r == 0 && (ctl->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0)
		r = -errno;
	if (r == 0 && (ctl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		r = -errno;
	return r;
}

int ctl_start(struct ctl *ctl)
{
	int r = pthread_create(&ctl->thread, NULL, ctl_main, ctl);
	if (r)
		return -r;
	/* Created from the main lcore, it would share core 0's CPU: let it run anywhere. */
	cpu_set_t all;
	CPU_ZERO(&all);
	for (long i = 0, n = sysconf(_SC_NPROCESSORS_ONLN); i < n && i < CPU_SETSIZE; i++)
		CPU_SET((int)i, &all);
	pthread_setaffinity_np(ctl->thread, sizeof(all), &all);
	pthread_setname_np(ctl->thread, "duro-ctl");
	ctl->running = 1;
	return 0;
}

void ctl_stop(struct ctl *ctl)
{
	if (ctl->running) {
		uint64_t one = 1;
		if (write(ctl->stop_fd, &one, sizeof(one)) != sizeof(one))
			log_warn("control: stop: %s", strerror(errno));
		pthread_join(ctl->thread, NULL);
		ctl->running = 0;
	}
	if (ctl->unix_fd >= 0) {
		close(ctl->unix_fd);
		unlink(ctl->socket_path);
	}
	if (ctl->metrics_fd >= 0)
		close(ctl->metrics_fd);
	if (ctl->stop_fd >= 0)
		close(ctl->stop_fd);
	if (ctl->wake_fd >= 0)
		close(ctl->wake_fd);
	for (unsigned i = 0; i < ctl->group->ncores; i++) {
		/* Commands never picked up (the cores stopped first) are freed here. */
		void *cmd;
		while (ctl->mailbox[i] && rte_ring_dequeue(ctl->mailbox[i], &cmd) == 0)
			free(cmd);
		rte_ring_free(ctl->mailbox[i]);
		ctl->mailbox[i] = NULL;
	}
}
