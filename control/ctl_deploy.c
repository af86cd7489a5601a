/* Deploying class versions to a running durod: `duroctl deploy`, `versions` and
 * `rollback`, the record of each class's versions in the meta family, and, at start,
 * restoring what was deployed (rolling back a version that keeps crashing durod).
 *
 *   deploy CLASS FILE: refuse a file others may write -> copy it to
 *     <data_dir>/classes/CLASS/<sha256>.so (dlopen hands back the handle it has for a
 *     path already loaded, so each version is a file of its own) -> load and check it
 *     (--check stops here) -> record it in meta (durable) -> publish a view naming it:
 *     new activations take it once each core has the view; resident objects switch at
 *     their next quiescent point, or by force after --max-delay (switch.c).
 *
 * The record ("deploy/<class>" in meta, JSON): the current version, the old one and the
 * percentage during a gradual deploy, the seed of the objects' shares, and the last
 * DEPLOY_KEEP versions (sha, deploy time, crashes, quarantined). A version that is not
 * built in has its file in the data directory, so a rollback or a restart finds it
 * whatever became of the file it was deployed from. */
#include "ctl_int.h"
#include "clock.h"
#include "crash.h"
#include "keys.h"
#include "log.h"
#include "module.h"
#include "runtime.h"
#include "sha256.h"
#include "store.h"
#include "version.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEPLOY_KEEP 10                         /* versions a record keeps */
#define DEPLOY_CRASH_WINDOW_MS (10 * 60 * 1000) /* crashes this soon after a deploy count */
#define DEPLOY_CRASH_LIMIT 3                   /* that many: rolled back at the next start */
#define DEPLOY_DEFAULT_MAX_DELAY_S 300
#define DEPLOY_MAX_DELAY_S 86400
#define DEPLOY_PUBLISH_MS 10000                /* a view must reach every core within this */

static pthread_mutex_t deploy_lock = PTHREAD_MUTEX_INITIALIZER; /* one deploy at a time */
static _Atomic uint64_t crash_rollbacks;

uint64_t ctl_deploy_crash_rollbacks(void) { return atomic_load(&crash_rollbacks); }

/* ---- the record in meta ---- */

static size_t record_key(char *out, size_t cap, const char *cls)
{
	return (size_t)snprintf(out, cap, "%s%s", KEYS_META_DEPLOY, cls);
}

/* The class's record, or a fresh one; NULL when out of memory or unreadable (-EIO). */
static json_t *record_load(const char *cls)
{
	char key[KEYS_META_DEPLOY_LEN + OBJ_NAME_MAX];
	size_t kl = record_key(key, sizeof(key), cls);
	struct store_value v;
	int r = store_get(obj_runtime_store(), STORE_CF_META, key, kl, &v);
	if (r < 0)
		return NULL;
	json_t *rec = NULL;
	if (r == 1) {
		rec = json_loadb(v.data, v.len, 0, NULL);
		store_value_release(&v);
		if (!rec || !json_is_object(rec) || !json_is_array(json_object_get(rec, "versions"))) {
			log_error("deploy: class %s: the record in meta is not valid JSON; starting a new one",
				  cls);
			json_decref(rec);
			rec = NULL;
		}
	}
	if (!rec)
		rec = json_pack("{s:n, s:n, s:i, s:[]}", "current", "old", "percent", 100, "versions");
	return rec;
}

static int record_save(const char *cls, json_t *rec)
{
	char key[KEYS_META_DEPLOY_LEN + OBJ_NAME_MAX];
	size_t kl = record_key(key, sizeof(key), cls);
	char *text = json_dumps(rec, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	struct store *st = obj_runtime_store();
	struct store_batch *b = store_batch_new();
	int r = -ENOMEM;
	if (b) {
		store_batch_put(st, b, STORE_CF_META, key, kl, text, strlen(text));
		r = store_write_durable(st, b);
		store_batch_free(b);
	}
	free(text);
	return r;
}

static const char *rec_str(json_t *rec, const char *k)
{
	return json_string_value(json_object_get(rec, k));
}

static json_t *rec_entry(json_t *rec, const char *sha)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(rec, "versions"), i, e)
		if (sha && !strcmp(rec_str(e, "sha") ? rec_str(e, "sha") : "", sha))
			return e;
	return NULL;
}

/* The entry of `sha` moved to the front (newest), made when absent. */
static json_t *rec_touch(json_t *rec, const char *sha, const char *source)
{
	json_t *vs = json_object_get(rec, "versions");
	json_t *e = rec_entry(rec, sha);
	if (e) {
		json_incref(e);
		size_t i;
		json_t *x;
		json_array_foreach(vs, i, x)
			if (x == e) {
				json_array_remove(vs, i);
				break;
			}
	} else {
		e = json_pack("{s:s, s:s, s:I, s:i, s:i, s:b}", "sha", sha, "source", source,
			      "deployed_ms", (json_int_t)0, "crashes", 0, "early_crashes", 0,
			      "quarantined", 0);
	}
	json_array_insert_new(vs, 0, e);
	return e;
}

/* At most DEPLOY_KEEP versions, the current and old ones always among them. Returns the
 * shas dropped (the caller owns the array), whose files go once the record is saved. */
static json_t *rec_trim(json_t *rec)
{
	json_t *vs = json_object_get(rec, "versions");
	json_t *dropped = json_array();
	const char *cur = rec_str(rec, "current"), *old = rec_str(rec, "old");
	for (size_t i = json_array_size(vs); i-- > 0 && json_array_size(vs) > DEPLOY_KEEP;) {
		const char *sha = rec_str(json_array_get(vs, i), "sha");
		if ((cur && !strcmp(sha, cur)) || (old && !strcmp(sha, old)))
			continue;
		json_array_append_new(dropped, json_string(sha));
		json_array_remove(vs, i);
	}
	return dropped;
}

static void seed_of(json_t *rec, uint8_t seed[16])
{
	const char *hex = rec_str(rec, "seed");
	memset(seed, 0, 16);
	if (hex && strlen(hex) == 32) {
		for (unsigned i = 0; i < 16; i++) {
			unsigned b;
			if (sscanf(hex + 2 * i, "%2x", &b) == 1)
				seed[i] = (uint8_t)b;
		}
		return;
	}
	/* A new class record: its objects' shares are keyed by a seed of its own. */
	if (getrandom(seed, 16, 0) != 16)
		for (unsigned i = 0; i < 16; i++)
			seed[i] = (uint8_t)(clock_now_ns() >> (i % 8 * 8));
	char out[33];
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", seed[i]);
	json_object_set_new(rec, "seed", json_string(out));
}

/* ---- module files in the data directory ---- */

static int class_name_ok(const char *cls)
{
	if (!cls[0] || strlen(cls) >= OBJ_NAME_MAX)
		return 0;
	for (const char *p = cls; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-' || *p == '.'))
			return 0;
	return cls[0] != '.';
}

static void stored_path(char *out, size_t cap, const char *data_dir, const char *cls, const char *sha)
{
	snprintf(out, cap, "%s/classes/%s/%s.so", data_dir, cls, sha);
}

static int mkdirs(const char *data_dir, const char *cls)
{
	char p[700];
	snprintf(p, sizeof(p), "%s/classes", data_dir);
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(p, sizeof(p), "%s/classes/%s", data_dir, cls);
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* Copies the module at `src` (checked: a regular file only its owner may write) into the
 * data directory under its SHA-256, durably. Returns 0 with sha and dst filled, or a
 * negative errno with one line in err. */
static int copy_in(const char *data_dir, const char *cls, const char *src, char sha[65],
		   char *dst, size_t dstcap, char *err, size_t errlen)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		snprintf(err, errlen, "module %s: %s", src, strerror(errno));
		return -errno;
	}
	int r = obj_module_check_fd(in, src, err, errlen);
	if (r < 0) {
		close(in);
		return r;
	}
	if ((r = mkdirs(data_dir, cls)) < 0) {
		snprintf(err, errlen, "%s/classes/%s: %s", data_dir, cls, strerror(-r));
		close(in);
		return r;
	}
	char tmp[700];
	snprintf(tmp, sizeof(tmp), "%s/classes/%s/incoming.%d.tmp", data_dir, cls, (int)getpid());
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0500);
	if (out < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		close(in);
		return r;
	}
	struct sha256 h;
	sha256_init(&h);
	char buf[65536];
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "module %s: read: %s", src, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > OBJ_MODULE_MAX_BYTES) {
			r = -EFBIG;
			snprintf(err, errlen, "module %s: over the %u bytes a module may have", src,
				 OBJ_MODULE_MAX_BYTES);
			break;
		}
		sha256_update(&h, buf, (size_t)n);
		for (ssize_t off = 0; off < n && r == 0;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				r = w < 0 ? -errno : -EIO;
				snprintf(err, errlen, "%s: write: %s", tmp, strerror(-r));
			} else {
				off += w;
			}
		}
		if (r < 0)
			break;
	}
	close(in);
	if (r == 0 && fsync(out) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: fsync: %s", tmp, strerror(errno));
	}
	close(out);
	if (r == 0) {
		uint8_t d[32];
		sha256_final(&h, d);
		for (unsigned i = 0; i < 32; i++)
			snprintf(sha + 2 * i, 3, "%02x", d[i]);
		stored_path(dst, dstcap, data_dir, cls, sha);
		if (rename(tmp, dst) < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", dst, strerror(errno));
		}
	}
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/classes/%s", data_dir, cls);
	fsync_dir(dir);
	return 0;
}

/* The files of versions the record no longer keeps (saved without them, so neither a
 * rollback nor a restart can want them): removed. A version still mapped keeps running;
 * its pages stay until the process ends. Takes `dropped`. */
static void remove_files(const char *data_dir, const char *cls, json_t *dropped)
{
	size_t i;
	json_t *x;
	int any = 0;
	json_array_foreach(dropped, i, x) {
		const char *sha = json_string_value(x);
		if (!sha || !strcmp(sha, OBJ_SHA_BUILTIN))
			continue;
		char path[700];
		stored_path(path, sizeof(path), data_dir, cls, sha);
		if (unlink(path) == 0) {
			any = 1;
			log_info("deploy: class %s: version %.12s is no longer among the last %d: %s removed",
				 cls, sha, DEPLOY_KEEP, path);
		} else if (errno != ENOENT) {
			log_warn("deploy: class %s: removing %s: %s", cls, path, strerror(errno));
		}
	}
	json_decref(dropped);
	if (any) {
		char dir[700];
		snprintf(dir, sizeof(dir), "%s/classes/%s", data_dir, cls);
		fsync_dir(dir);
	}
}

/* The version `sha` of class `cls`: already running, built in, or loaded from its file
 * in the data directory. NULL with one line in err. */
static struct obj_version *resolve(const char *data_dir, const char *cls, const char *sha,
				   char *err, size_t errlen)
{
	struct obj_version *v = obj_version_find(cls, sha);
	if (v && !strcmp(v->sha, sha))
		return v;
	if (!strcmp(sha, OBJ_SHA_BUILTIN)) {
		const struct duro_class *c = obj_find_class(cls);
		if (!c || obj_class_module(cls)) {
			snprintf(err, errlen, "class %s has no built-in version in this durod", cls);
			return NULL;
		}
		return obj_version_of(c, NULL, NULL);
	}
	char path[700];
	stored_path(path, sizeof(path), data_dir, cls, sha);
	struct obj_module *m;
	if (obj_module_load(path, &m, err, errlen) < 0)
		return NULL;
	const struct duro_class *c = obj_module_class(m, cls);
	if (!c) {
		snprintf(err, errlen, "module %s defines no class \"%s\"", path, cls);
		return NULL;
	}
	if (!(v = obj_version_of(c, sha, m)))
		snprintf(err, errlen, "out of memory");
	return v;
}

/* ---- views ---- */

/* What the current view runs for class `cls` (its first namespace), or -ENOENT. */
static int running(const char *cls, struct obj_ns_entry *out)
{
	struct obj_view *v = obj_view_copy();
	if (!v)
		return -ENOMEM;
	int r = -ENOENT;
	for (unsigned i = 0; i < v->nns && r; i++)
		if (!strcmp(v->ns[i].ver->class_name, cls)) {
			*out = v->ns[i];
			r = 0;
		}
	free(v);
	return r;
}

/* Publishes a view in which every namespace of `cls` runs ver (old for objects outside
 * the split), switching resident objects within max_delay_ms, and waits until every core
 * has it. Returns 0, -ENOENT (the class is not bound), -ETIMEDOUT or -ENOMEM. */
static int publish(const char *cls, struct obj_version *ver, struct obj_version *old,
		   unsigned split, const uint8_t seed[16], uint64_t max_delay_ms)
{
	uint64_t deadline = clock_now_ms() + DEPLOY_PUBLISH_MS;
	for (;;) {
		struct obj_view *v = obj_view_copy();
		if (!v)
			return -ENOMEM;
		unsigned hit = 0;
		uint64_t now = clock_now_ms();
		for (unsigned i = 0; i < v->nns; i++) {
			struct obj_ns_entry *e = &v->ns[i];
			if (strcmp(e->ver->class_name, cls))
				continue;
			e->ver = ver;
			e->cls = ver->cls;
			e->old = split < OBJ_SPLIT_ALL && old != ver ? old : NULL;
			e->split = (uint16_t)(e->old ? split : OBJ_SPLIT_ALL);
			memcpy(e->seed, seed, sizeof(e->seed));
			e->force_at_ms = now + max_delay_ms;
			e->deploy_gen++;
			hit++;
		}
		if (!hit) {
			free(v);
			return -ENOENT;
		}
		uint64_t gen = v->gen + 1; /* publications are serialized by deploy_lock */
		int r = obj_runtime_publish(v);
		if (r == 0) {
			while (obj_runtime_installed_gen() < gen) {
				if (clock_now_ms() > deadline)
					return -ETIMEDOUT;
				nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
			}
			return 0;
		}
		if (r != -EBUSY || clock_now_ms() > deadline)
			return r == -EBUSY ? -ETIMEDOUT : r;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
}

/* ---- commands ---- */

static int max_delay_of(json_t *req, uint64_t *ms, json_t **err)
{
	json_t *md = json_object_get(req, "max_delay_s");
	json_int_t s = DEPLOY_DEFAULT_MAX_DELAY_S;
	if (json_is_true(json_object_get(req, "immediate"))) {
		if (md) {
			*err = ctl_error_reply("--immediate and --max-delay go apart: --immediate is --max-delay 0");
			return -EINVAL;
		}
		s = 0;
	} else if (md) {
		s = json_integer_value(md);
		if (!json_is_integer(md) || s < 0 || s > DEPLOY_MAX_DELAY_S) {
			*err = ctl_error_reply("\"max_delay_s\": want seconds in [0, %d]", DEPLOY_MAX_DELAY_S);
			return -EINVAL;
		}
	}
	*ms = (uint64_t)s * 1000;
	return 0;
}

static const char *source_of(const struct obj_version *v)
{
	return !v->module ? "builtin" : "config";
}

/* The first entry of a class's record: the version it ran before any deploy, its file
 * (a config's module) kept in the data directory beside the deployed ones. */
static int record_first(struct ctl *ctl, const char *cls, json_t *rec, struct obj_version *cur,
			char *err, size_t errlen)
{
	if (rec_entry(rec, cur->sha))
		return 0;
	if (cur->module) {
		char sha[65], dst[700];
		int r = copy_in(ctl->cfg->obj.data_dir, cls, cur->module->path, sha, dst, sizeof(dst),
				err, errlen);
		if (r < 0)
			return r;
	}
	json_t *e = rec_touch(rec, cur->sha, source_of(cur));
	json_object_set_new(e, "deployed_ms", json_integer((json_int_t)ctl->started_wall_ms));
	json_object_set_new(rec, "current", json_string(cur->sha));
	return 0;
}

static json_t *switch_to(struct ctl *ctl, const char *cls, json_t *rec, struct obj_version *ver,
			 unsigned percent, uint64_t max_delay_ms, const char *what)
{
	uint8_t seed[16];
	seed_of(rec, seed);
	const char *old_sha = rec_str(rec, "old");
	struct obj_version *old = NULL;
	char err[512];
	if (percent < 100 && old_sha &&
	    !(old = resolve(ctl->cfg->obj.data_dir, cls, old_sha, err, sizeof(err))))
		return ctl_error_reply("%s: the old version: %s", what, err);
	json_t *dropped = rec_trim(rec);
	int r = record_save(cls, rec);
	if (r < 0) {
		json_decref(dropped);
		return ctl_error_reply("%s: recording it in meta: %s (nothing changed)", what, strerror(-r));
	}
	remove_files(ctl->cfg->obj.data_dir, cls, dropped);
	r = publish(cls, ver, old, percent * 100, seed, max_delay_ms);
	if (r < 0)
		return ctl_error_reply("%s: recorded, but the cores did not take it: %s (it runs after a restart)",
				       what, strerror(-r));
	log_info("deploy: class %s: %s version %s%s%s to %u%% of objects; resident ones switch within %llu s",
		 cls, what, ver->label, old ? ", others stay on " : "", old ? old->label : "", percent,
		 (unsigned long long)(max_delay_ms / 1000));
	return json_pack("{s:b, s:s, s:s, s:s, s:o, s:i, s:I}", "ok", 1, "class", cls, "sha", ver->sha,
			 "label", ver->label, "old", old ? json_string(old->sha) : json_null(),
			 "percent", (int)percent, "max_delay_s", (json_int_t)(max_delay_ms / 1000));
}

/* FILE copied in and loaded as a version of cls (*dst: its copy). NULL with a reply. */
static struct obj_version *load_file(struct ctl *ctl, const char *cls, const char *path,
				     char sha[65], json_t **reply)
{
	char err[768], dst[700];
	int r = copy_in(ctl->cfg->obj.data_dir, cls, path, sha, dst, sizeof(dst), err, sizeof(err));
	if (r < 0) {
		log_warn("deploy: class %s refused: %s", cls, err);
		*reply = ctl_error_reply("%s", err);
		return NULL;
	}
	struct obj_version *ver = resolve(ctl->cfg->obj.data_dir, cls, sha, err, sizeof(err));
	if (!ver) {
		/* Named by the file the operator gave, not our copy. */
		char *at = strstr(err, dst);
		char msg[1024];
		if (at)
			snprintf(msg, sizeof(msg), "%.*s%s%s", (int)(at - err), err, path, at + strlen(dst));
		else
			snprintf(msg, sizeof(msg), "%s", err);
		log_warn("deploy: class %s refused: %s", cls, msg);
		*reply = ctl_error_reply("%s", msg);
		/* Never loaded, so no version runs it and none can: not kept. */
		unlink(dst);
	}
	return ver;
}

/* A module may define several classes; a deploy names one and runs only that one. The
 * others are said, in the log and the reply, never dropped in silence. NULL for none. */
static json_t *others_of(const struct obj_version *ver, const char *cls)
{
	if (!ver->module || ver->module->nclasses < 2)
		return NULL;
	json_t *names = json_array();
	char list[512] = "";
	for (size_t i = 0; i < ver->module->nclasses; i++) {
		const char *n = ver->module->classes[i]->name;
		if (!strcmp(n, cls))
			continue;
		json_array_append_new(names, json_string(n));
		size_t len = strlen(list);
		snprintf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "", n);
	}
	log_info("deploy: module %.12s defines %zu classes: only %s is deployed; not deployed: %s (deploy each by its name)",
		 ver->sha, ver->module->nclasses, cls, list);
	return names;
}

static int binding_name_ok(const char *s)
{
	if (!s[0] || strlen(s) >= OBJ_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_'))
			return 0;
	return 1;
}

/* Checks a new route against the view's: refused when its prefix is taken, or an earlier
 * route's prefix starts it (routes are tried in order: it would never match). */
static int route_check(const struct obj_view *v, const struct obj_route *rt, char *err, size_t errlen)
{
	size_t n = strlen(rt->prefix);
	if (n < 2 || rt->prefix[0] != '/' || rt->prefix[n - 1] != '/') {
		snprintf(err, errlen, "route \"%s\": a prefix starts and ends with '/', like /mine/", rt->prefix);
		return -EINVAL;
	}
	if (v->nroutes >= DURO_MAX_ROUTES) {
		snprintf(err, errlen, "route \"%s\": this durod has %d routes, the most it holds",
			 rt->prefix, DURO_MAX_ROUTES);
		return -ENOSPC;
	}
	for (unsigned i = 0; i < v->nroutes; i++) {
		const char *p = v->routes[i].prefix;
		if (!strncmp(rt->prefix, p, strlen(p))) {
			snprintf(err, errlen, "route \"%s\": %s route %s comes first and takes its requests",
				 rt->prefix, !strcmp(p, rt->prefix) ? "taken: the" : "the", p);
			return -EEXIST;
		}
	}
	return 0;
}

/* JSON of a binding a live deploy made, as meta keeps it ("binding/<NAME>"). */
static char *binding_text(const char *cls, const char *tag, const char *sha, const struct obj_route *rt)
{
	json_t *j = json_pack("{s:s, s:s, s:s}", "class", cls, "tag", tag, "sha", sha);
	if (j && rt) {
		json_object_set_new(j, "route", json_string(rt->prefix));
		json_object_set_new(j, "id", json_string(rt->kind == ROUTE_ID ? "string" : "name"));
	}
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return text;
}

/* deploy of a class no binding names: a live migration. Its storage (a column family),
 * the tag, the binding and the class's deploy record are written in one synced meta batch
 * (store_migrate_live); only then is the class registered and a view holding the new
 * namespace published. A crash before the batch leaves at most an unnamed family. */
static json_t *deploy_new(struct ctl *ctl, json_t *req, const char *cls, const char *path,
			  uint64_t max_delay_ms)
{
	(void)max_delay_ms; /* no object runs another version of a new class */
	const char *tag = json_string_value(json_object_get(req, "tag"));
	const char *bname = json_string_value(json_object_get(req, "binding"));
	const char *prefix = json_string_value(json_object_get(req, "route"));
	const char *idk = json_string_value(json_object_get(req, "route_id"));
	if (!tag || !bname)
		return ctl_error_reply("deploy: class %s is not bound in this durod; to add it live, give its migration tag and binding: duroctl deploy %s FILE --tag TAG --binding NAME [--route /PREFIX/]",
				       cls, cls);
	json_t *jp = json_object_get(req, "percent");
	if (jp && json_integer_value(jp) != 100)
		return ctl_error_reply("deploy: class %s is new: every object runs it (--percent is for a new version of a bound class)", cls);
	if (!class_name_ok(tag))
		return ctl_error_reply("deploy: --tag \"%s\": a migration tag of letters, digits, '_', '-' and '.'", tag);
	if (!binding_name_ok(bname))
		return ctl_error_reply("deploy: --binding \"%s\": a binding name of letters, digits and '_' (not starting with a digit)", bname);
	const struct duro_namespace *taken = duro_namespace(bname);
	if (taken)
		return ctl_error_reply("deploy: binding %s is taken (by class %s)", bname,
				       obj_namespace_class(taken->index));
	if (obj_find_class(cls))
		return ctl_error_reply("deploy: class %s is known to this durod already (%s) but not bound: bind it in the config",
				       cls, obj_class_module(cls) ? "from a module" : "built in");
	if (obj_namespaces() >= DURO_MAX_BINDINGS)
		return ctl_error_reply("deploy: this durod has %d bindings, the most it holds", DURO_MAX_BINDINGS);
	struct obj_route route, *rtp = NULL;
	char err[768];
	if (prefix) {
		memset(&route, 0, sizeof(route));
		if (strlen(prefix) >= sizeof(route.prefix))
			return ctl_error_reply("deploy: route \"%s\": over %d bytes", prefix, OBJ_PREFIX_MAX - 1);
		snprintf(route.prefix, sizeof(route.prefix), "%s", prefix);
		if (idk && strcmp(idk, "name") && strcmp(idk, "string"))
			return ctl_error_reply("deploy: --route-id \"%s\": want name or string", idk);
		route.kind = idk && !strcmp(idk, "string") ? ROUTE_ID : ROUTE_NAME;
		struct obj_view *v = obj_view_copy();
		if (!v)
			return ctl_error_reply("deploy: out of memory");
		int r = route_check(v, &route, err, sizeof(err));
		free(v);
		if (r < 0)
			return ctl_error_reply("deploy: %s", err);
		rtp = &route;
	}
	char sha[65];
	json_t *reply = NULL;
	struct obj_version *ver = load_file(ctl, cls, path, sha, &reply);
	if (!ver)
		return reply;
	json_t *others = others_of(ver, cls);
	if (json_is_true(json_object_get(req, "check"))) {
		reply = json_pack("{s:b, s:b, s:s, s:s, s:s}", "ok", 1, "checked", 1, "class", cls,
				  "sha", ver->sha, "label", ver->label);
		if (others)
			json_object_set_new(reply, "not_deployed", others);
		return reply;
	}
	/* The class's record, as a first deploy leaves it; and its binding. */
	json_t *rec = json_pack("{s:s, s:n, s:i, s:[]}", "current", sha, "old", "percent", 100, "versions");
	json_t *ent = rec ? rec_touch(rec, sha, "deploy") : NULL;
	uint8_t seed[16];
	char *rec_text = NULL, *b_text = NULL;
	if (ent) {
		json_object_set_new(ent, "deployed_ms", json_integer((json_int_t)clock_wall_ms()));
		seed_of(rec, seed);
		rec_text = json_dumps(rec, JSON_COMPACT);
		b_text = binding_text(cls, tag, sha, rtp);
	}
	json_decref(rec);
	char rkey[KEYS_META_DEPLOY_LEN + OBJ_NAME_MAX], bkey[KEYS_META_BINDING_LEN + OBJ_NAME_MAX];
	struct store_meta_put extra[2] = {
		{ .key = rkey, .klen = record_key(rkey, sizeof(rkey), cls), .val = rec_text,
		  .vlen = rec_text ? strlen(rec_text) : 0 },
		{ .key = bkey, .klen = (size_t)snprintf(bkey, sizeof(bkey), "%s%s", KEYS_META_BINDING, bname),
		  .val = b_text, .vlen = b_text ? strlen(b_text) : 0 },
	};
	int cf = -1, r = -ENOMEM;
	uint8_t secret[32];
	if (rec_text && b_text)
		r = store_migrate_live(obj_runtime_store(), tag, cls, extra, 2, &cf, secret, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "out of memory");
	free(rec_text);
	free(b_text);
	if (r < 0) {
		json_decref(others);
		log_warn("deploy: new class %s refused: %s", cls, err);
		return ctl_error_reply("deploy: new class %s: %s (nothing changed)", cls, err);
	}
	char dup[200];
	if (obj_registry_add(ver->cls, ver->module, dup, sizeof(dup)) < 0)
		log_warn("deploy: new class %s: %s", cls, dup); /* checked above, under deploy_lock */
	struct obj_binding b;
	memset(&b, 0, sizeof(b));
	snprintf(b.name, sizeof(b.name), "%s", bname);
	snprintf(b.class_name, sizeof(b.class_name), "%s", cls);
	int ns = obj_runtime_add_namespace(&b, ver, cf, secret, rtp, clock_now_ms() + DEPLOY_PUBLISH_MS);
	if (ns < 0) {
		json_decref(others);
		log_error("deploy: new class %s: storage made and recorded, but the cores did not take its binding: %s (it is served after a restart)",
			  cls, strerror(-ns));
		return ctl_error_reply("deploy: new class %s: storage made and recorded, but the cores did not take its binding: %s (it is served after a restart)",
				       cls, strerror(-ns));
	}
	log_info("deploy: new class %s version %s bound as %s%s%s (migration tag \"%s\"): its storage is made and every core serves it",
		 cls, ver->label, bname, rtp ? ", route " : "", rtp ? rtp->prefix : "", tag);
	reply = json_pack("{s:b, s:s, s:s, s:s, s:n, s:i, s:I, s:b, s:s, s:s}", "ok", 1, "class", cls,
			  "sha", ver->sha, "label", ver->label, "old", "percent", 100, "max_delay_s",
			  (json_int_t)0, "new_class", 1, "binding", bname, "tag", tag);
	if (rtp)
		json_object_set_new(reply, "route", json_string(rtp->prefix));
	if (others)
		json_object_set_new(reply, "not_deployed", others);
	return reply;
}

static json_t *deploy_locked(struct ctl *ctl, json_t *req)
{
	const char *cls = json_string_value(json_object_get(req, "class"));
	const char *path = json_string_value(json_object_get(req, "path"));
	if (!cls || !path || path[0] != '/')
		return ctl_error_reply("deploy wants \"class\" and an absolute \"path\"");
	if (!class_name_ok(cls))
		return ctl_error_reply("deploy: \"%s\": a class name of letters, digits, '_', '-' and '.'", cls);
	json_t *jp = json_object_get(req, "percent");
	json_int_t percent = jp ? json_integer_value(jp) : 100;
	if (jp && (!json_is_integer(jp) || percent < 1 || percent > 100))
		return ctl_error_reply("\"percent\": want 1 to 100");
	uint64_t max_delay_ms;
	json_t *e;
	if (max_delay_of(req, &max_delay_ms, &e) < 0)
		return e;
	struct obj_ns_entry cur;
	if (running(cls, &cur) < 0)
		return deploy_new(ctl, req, cls, path, max_delay_ms);
	if (json_object_get(req, "tag") || json_object_get(req, "binding") || json_object_get(req, "route"))
		return ctl_error_reply("deploy: class %s is bound already: --tag, --binding and --route are for a new class", cls);
	char err[768], sha[65];
	int r;
	json_t *reply = NULL;
	struct obj_version *ver = load_file(ctl, cls, path, sha, &reply);
	if (!ver)
		return reply;
	json_t *others = others_of(ver, cls);
	if (json_is_true(json_object_get(req, "check"))) {
		reply = json_pack("{s:b, s:b, s:s, s:s, s:s}", "ok", 1, "checked", 1, "class", cls,
				  "sha", ver->sha, "label", ver->label);
		if (others)
			json_object_set_new(reply, "not_deployed", others);
		return reply;
	}
	json_t *rec = record_load(cls);
	if (!rec) {
		json_decref(others);
		return ctl_error_reply("deploy: reading class %s's record in meta failed", cls);
	}
	if ((r = record_first(ctl, cls, rec, cur.ver, err, sizeof(err))) < 0) {
		reply = ctl_error_reply("deploy: keeping the running version's file: %s", err);
	} else {
		const char *current = rec_str(rec, "current");
		json_int_t at = json_integer_value(json_object_get(rec, "percent"));
		int same = current && !strcmp(current, sha);
		if (!same && at > 0 && at < 100) {
			reply = ctl_error_reply("deploy: a gradual deploy of %.12s is at %lld%%: finish it (deploy it with --percent 100) or roll back first",
						current, (long long)at);
		} else {
			if (!same) {
				json_object_set(rec, "old", json_object_get(rec, "current"));
				json_object_set_new(rec, "current", json_string(sha));
			}
			json_t *ent = rec_touch(rec, sha, "deploy");
			if (!same || percent > at) {
				json_object_set_new(ent, "deployed_ms", json_integer((json_int_t)clock_wall_ms()));
				json_object_set_new(ent, "early_crashes", json_integer(0));
			}
			json_object_set_new(ent, "quarantined", json_false());
			json_object_set_new(rec, "percent", json_integer(percent));
			reply = switch_to(ctl, cls, rec, ver, (unsigned)percent, max_delay_ms, "deployed");
		}
	}
	json_decref(rec);
	if (others && json_is_true(json_object_get(reply, "ok")))
		json_object_set_new(reply, "not_deployed", others);
	else
		json_decref(others);
	return reply;
}

json_t *ctl_deploy(struct ctl *ctl, json_t *req)
{
	pthread_mutex_lock(&deploy_lock);
	json_t *r = deploy_locked(ctl, req);
	pthread_mutex_unlock(&deploy_lock);
	return r;
}

static json_t *rollback_locked(struct ctl *ctl, json_t *req)
{
	const char *cls = json_string_value(json_object_get(req, "class"));
	const char *want = json_string_value(json_object_get(req, "sha"));
	if (!cls || !class_name_ok(cls))
		return ctl_error_reply("rollback wants \"class\"");
	uint64_t max_delay_ms;
	json_t *e;
	if (max_delay_of(req, &max_delay_ms, &e) < 0)
		return e;
	json_t *rec = record_load(cls);
	if (!rec)
		return ctl_error_reply("rollback: reading class %s's record in meta failed", cls);
	const char *current = rec_str(rec, "current");
	json_int_t at = json_integer_value(json_object_get(rec, "percent"));
	json_t *target = NULL;
	if (want) {
		size_t n = strlen(want);
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(rec, "versions"), i, x) {
			const char *s = rec_str(x, "sha");
			if (n >= 6 && !strncmp(s, want, n)) {
				if (target) {
					json_decref(rec);
					return ctl_error_reply("rollback: \"%s\" names more than one version of %s", want, cls);
				}
				target = x;
			} else if (!strcmp(s, want)) {
				target = x;
			}
		}
	} else if (at > 0 && at < 100 && rec_str(rec, "old")) {
		target = rec_entry(rec, rec_str(rec, "old")); /* a gradual deploy: back to all-old */
	} else {
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(rec, "versions"), i, x)
			if ((!current || strcmp(rec_str(x, "sha"), current)) &&
			    !json_is_true(json_object_get(x, "quarantined"))) {
				target = x;
				break;
			}
	}
	if (!target) {
		json_decref(rec);
		if (want)
			return ctl_error_reply("rollback: class %s has no version %s among its last %d (duroctl versions %s)",
					       cls, want, DEPLOY_KEEP, cls);
		return ctl_error_reply("rollback: class %s has no earlier version to go back to (duroctl versions %s)",
				       cls, cls);
	}
	char sha[65], err[768];
	snprintf(sha, sizeof(sha), "%s", rec_str(target, "sha"));
	struct obj_version *ver = resolve(ctl->cfg->obj.data_dir, cls, sha, err, sizeof(err));
	json_t *reply;
	if (!ver) {
		reply = ctl_error_reply("rollback: %s", err);
	} else {
		json_object_set_new(rec, "old", json_null());
		json_object_set_new(rec, "current", json_string(sha));
		json_object_set_new(rec, "percent", json_integer(100));
		json_t *ent = rec_touch(rec, sha, "deploy");
		json_object_set_new(ent, "quarantined", json_false());
		reply = switch_to(ctl, cls, rec, ver, 100, max_delay_ms, "rolled back to");
	}
	json_decref(rec);
	return reply;
}

json_t *ctl_rollback(struct ctl *ctl, json_t *req)
{
	pthread_mutex_lock(&deploy_lock);
	json_t *r = rollback_locked(ctl, req);
	pthread_mutex_unlock(&deploy_lock);
	return r;
}

json_t *ctl_versions(struct ctl *ctl, json_t *req)
{
	(void)ctl;
	const char *cls = json_string_value(json_object_get(req, "class"));
	if (!cls)
		return ctl_error_reply("versions wants \"class\"");
	struct obj_ns_entry cur;
	memset(&cur, 0, sizeof(cur)); /* read only when bound; gcc -O2 cannot tell */
	int bound = running(cls, &cur) == 0;
	json_t *rec = record_load(cls);
	if (!rec)
		return ctl_error_reply("versions: reading class %s's record in meta failed", cls);
	if (!bound && !json_array_size(json_object_get(rec, "versions"))) {
		json_decref(rec);
		return ctl_error_reply("versions: no class %s here", cls);
	}
	json_t *list = json_array();
	size_t i;
	json_t *x;
	if (bound && !rec_entry(rec, cur.ver->sha)) {
		/* Never deployed: the version it runs is all there is. */
		json_t *ent = rec_touch(rec, cur.ver->sha, source_of(cur.ver));
		json_object_set_new(ent, "deployed_ms", json_integer((json_int_t)ctl->started_wall_ms));
	}
	json_array_foreach(json_object_get(rec, "versions"), i, x) {
		const char *sha = rec_str(x, "sha");
		struct obj_version *v = obj_version_find(cls, sha);
		struct obj_version_totals t = { 0, 0, 0, 0 };
		if (v && !strcmp(v->sha, sha))
			obj_version_totals(v, &t);
		json_t *o = json_deep_copy(x);
		json_object_set_new(o, "label", json_sprintf("%.12s", sha));
		json_object_set_new(o, "running", json_boolean(bound && (cur.ver->sha == sha ||
			!strcmp(cur.ver->sha, sha) || (cur.old && !strcmp(cur.old->sha, sha)))));
		json_object_set_new(o, "objects", json_integer((json_int_t)t.objects));
		json_object_set_new(o, "events", json_integer((json_int_t)t.events));
		json_object_set_new(o, "errors", json_integer((json_int_t)t.errors));
		json_array_append_new(list, o);
	}
	json_t *reply = json_pack("{s:b, s:s, s:o, s:o, s:i, s:o}", "ok", 1, "class", cls, "current",
				  bound ? json_string(cur.ver->sha) : json_incref(json_object_get(rec, "current")),
				  "old", bound && cur.old ? json_string(cur.old->sha) : json_null(),
				  "percent", bound && cur.old ? cur.split / 100 : 100, "versions", list);
	json_decref(rec);
	return reply;
}

/* ---- at start ---- */

struct crash_line {
	uint64_t ms;
	char cls[OBJ_NAME_MAX], sha[65];
};

/* Reads the crash record the fatal-signal handler appends to; *n lines. */
static struct crash_line *read_crashes(const char *data_dir, size_t *n)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", data_dir, CRASH_RECORD);
	FILE *f = fopen(path, "re");
	*n = 0;
	if (!f)
		return NULL;
	struct crash_line *v = NULL;
	size_t cap = 0;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		struct crash_line c;
		unsigned long long ms;
		if (sscanf(line, "%llu %63s %64s", &ms, c.cls, c.sha) != 3)
			continue; /* a line cut short by the crash itself */
		c.ms = ms;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			struct crash_line *nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[(*n)++] = c;
	}
	fclose(f);
	return v;
}

/* Folds this class's crashes into its record; when the current version crashed
 * DEPLOY_CRASH_LIMIT times within DEPLOY_CRASH_WINDOW_MS of its deploy, quarantines it and
 * makes the version before it current. Returns 1 when the record changed. */
static int apply_crashes(const char *cls, json_t *rec, const struct crash_line *cr, size_t n)
{
	int changed = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cr[i].cls, cls))
			continue;
		json_t *e = rec_entry(rec, cr[i].sha);
		if (!e)
			e = rec_touch(rec, cr[i].sha, strcmp(cr[i].sha, OBJ_SHA_BUILTIN) ? "config" : "builtin");
		json_object_set_new(e, "crashes", json_integer(json_integer_value(json_object_get(e, "crashes")) + 1));
		uint64_t at = (uint64_t)json_integer_value(json_object_get(e, "deployed_ms"));
		if (at && cr[i].ms >= at && cr[i].ms - at <= DEPLOY_CRASH_WINDOW_MS)
			json_object_set_new(e, "early_crashes",
					    json_integer(json_integer_value(json_object_get(e, "early_crashes")) + 1));
		changed = 1;
	}
	const char *current = rec_str(rec, "current");
	json_t *ce = current ? rec_entry(rec, current) : NULL;
	if (!ce || json_is_true(json_object_get(ce, "quarantined")) ||
	    json_integer_value(json_object_get(ce, "early_crashes")) < DEPLOY_CRASH_LIMIT)
		return changed;
	json_int_t at = json_integer_value(json_object_get(rec, "percent"));
	json_t *back = NULL;
	if (at > 0 && at < 100 && rec_str(rec, "old"))
		back = rec_entry(rec, rec_str(rec, "old"));
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(rec, "versions"), i, x)
		if (!back && x != ce && !json_is_true(json_object_get(x, "quarantined")))
			back = x;
	json_object_set_new(ce, "quarantined", json_true());
	if (!back) {
		log_error("deploy: class %s: version %.12s crashed durod %lld times within 10 minutes of its deploy, and no earlier version is there to go back to",
			  cls, current, (long long)json_integer_value(json_object_get(ce, "early_crashes")));
		return 1;
	}
	char from[65];
	snprintf(from, sizeof(from), "%s", current);
	json_object_set(rec, "current", json_object_get(back, "sha"));
	json_object_set_new(rec, "old", json_null());
	json_object_set_new(rec, "percent", json_integer(100));
	atomic_fetch_add(&crash_rollbacks, 1);
	log_warn("deploy: class %s: version %.12s crashed durod %lld times within 10 minutes of its deploy: rolled back to %.12s (%.12s is quarantined; `duroctl rollback %s %.12s` runs it again)",
		 cls, from, (long long)json_integer_value(json_object_get(ce, "early_crashes")),
		 rec_str(back, "sha"), from, cls, from);
	return 1;
}

int ctl_deploy_restore(const struct duro_config *cfg)
{
	const char *data_dir = cfg->obj.data_dir;
	size_t ncrash = 0;
	struct crash_line *crashes = read_crashes(data_dir, &ncrash);
	int failed = 0;
	for (unsigned ns = 0; ns < obj_namespaces(); ns++) {
		const char *cls = obj_namespace_class(ns);
		int seen = 0;
		for (unsigned k = 0; k < ns; k++)
			seen |= !strcmp(obj_namespace_class(k), cls);
		if (seen)
			continue;
		char key[KEYS_META_DEPLOY_LEN + OBJ_NAME_MAX];
		size_t kl = record_key(key, sizeof(key), cls);
		struct store_value sv;
		int have = store_get(obj_runtime_store(), STORE_CF_META, key, kl, &sv) == 1;
		if (have)
			store_value_release(&sv);
		int crashed = 0;
		for (size_t i = 0; i < ncrash; i++)
			crashed |= !strcmp(crashes[i].cls, cls);
		if (!have && !crashed)
			continue; /* never deployed: it runs what the config says */
		json_t *rec = record_load(cls);
		if (!rec) {
			failed = 1;
			continue;
		}
		if (apply_crashes(cls, rec, crashes, ncrash) && record_save(cls, rec) < 0) {
			log_error("deploy: class %s: recording its crashes in meta failed", cls);
			failed = 1;
		}
		const char *current = rec_str(rec, "current"), *old = rec_str(rec, "old");
		json_int_t percent = json_integer_value(json_object_get(rec, "percent"));
		char err[768];
		struct obj_version *ver = current ? resolve(data_dir, cls, current, err, sizeof(err)) : NULL;
		struct obj_version *ov = NULL;
		if (current && !ver)
			log_error("deploy: class %s: its deployed version %.12s cannot run: %s; it runs what the config gives instead",
				  cls, current, err);
		if (ver && percent > 0 && percent < 100 && old &&
		    !(ov = resolve(data_dir, cls, old, err, sizeof(err))))
			log_error("deploy: class %s: the old version of its gradual deploy (%.12s) cannot run: %s; every object runs %.12s",
				  cls, old, err, current);
		if (ver) {
			uint8_t seed[16];
			seed_of(rec, seed);
			for (unsigned k = ns; k < obj_namespaces(); k++)
				if (!strcmp(obj_namespace_class(k), cls))
					obj_runtime_set_version(k, ver, ov, ov ? (unsigned)percent * 100 : OBJ_SPLIT_ALL, seed);
			if (ver->module || ov)
				log_info("deploy: class %s runs version %s%s%s", cls, ver->label,
					 ov ? ", and for some objects " : "", ov ? ov->label : "");
		}
		/* This process's view of each version's crashes, for stats and versions. */
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(rec, "versions"), i, x) {
			struct obj_version *v = obj_version_find(cls, rec_str(x, "sha"));
			if (v && !strcmp(v->sha, rec_str(x, "sha")))
				atomic_store(&v->crashes, (uint64_t)json_integer_value(json_object_get(x, "crashes")));
		}
		json_decref(rec);
	}
	free(crashes);
	if (!failed && ncrash) {
		/* Folded into the records (durably): start the record afresh. */
		char path[700];
		snprintf(path, sizeof(path), "%s/%s", data_dir, CRASH_RECORD);
		if (truncate(path, 0) < 0)
			log_warn("crash record %s: %s", path, strerror(errno));
	}
	return 0;
}

void ctl_deploy_restore_bindings(const struct duro_config *cfg)
{
	struct store *st = obj_runtime_store();
	struct store_iter *it = store_iter_open(st, STORE_CF_META, KEYS_META_BINDING,
						KEYS_META_BINDING_LEN, "binding0", KEYS_META_BINDING_LEN, 0);
	if (!it)
		return;
	const char *k, *val;
	size_t kl, vl;
	while (store_iter_next(it, &k, &kl, &val, &vl) == 1) {
		char name[OBJ_NAME_MAX], err[768];
		snprintf(name, sizeof(name), "%.*s", (int)(kl - KEYS_META_BINDING_LEN), k + KEYS_META_BINDING_LEN);
		json_t *j = json_loadb(val, vl, 0, NULL);
		const char *cls = json_string_value(json_object_get(j, "class"));
		const char *tag = json_string_value(json_object_get(j, "tag"));
		const char *prefix = json_string_value(json_object_get(j, "route"));
		const char *idk = json_string_value(json_object_get(j, "id"));
		if (!cls || !class_name_ok(cls) || !binding_name_ok(name)) {
			log_error("deploy: binding %s in meta is not valid: left out", name);
			json_decref(j);
			continue;
		}
		const struct duro_namespace *have = duro_namespace(name);
		if (have) {
			if (strcmp(obj_namespace_class(have->index), cls))
				log_warn("deploy: binding %s, added live for class %s, is bound to class %s by the config: the config's binding is used",
					 name, cls, obj_namespace_class(have->index));
			json_decref(j);
			continue; /* the config restates it: its binding and routes are the ones */
		}
		int cf;
		uint8_t secret[32];
		char deleted_by[STORE_NAME_MAX];
		if (store_class(st, cls, &cf, secret, deleted_by) < 0) {
			log_warn("deploy: binding %s, added live for class %s, is left out: the class %s%s%s",
				 name, cls, deleted_by[0] ? "was deleted by migration tag \"" : "has no storage",
				 deleted_by, deleted_by[0] ? "\"" : "");
			json_decref(j);
			continue;
		}
		/* The version it runs: the deployed one (ctl_deploy_restore may change it). */
		json_t *rec = record_load(cls);
		const char *sha = rec ? rec_str(rec, "current") : NULL;
		if (!sha)
			sha = json_string_value(json_object_get(j, "sha"));
		struct obj_version *ver = sha ? resolve(cfg->obj.data_dir, cls, sha, err, sizeof(err)) : NULL;
		if (!ver) {
			log_error("deploy: binding %s (class %s, added live with tag \"%s\") is left out: its version %.12s cannot run: %s",
				  name, cls, tag ? tag : "", sha ? sha : "(none)", sha ? err : "no version recorded");
			json_decref(rec);
			json_decref(j);
			continue;
		}
		json_decref(rec);
		char dup[200];
		if (!obj_find_class(cls) && obj_registry_add(ver->cls, ver->module, dup, sizeof(dup)) < 0)
			log_warn("deploy: class %s: %s", cls, dup);
		struct obj_route route, *rtp = NULL;
		if (prefix && strlen(prefix) < sizeof(route.prefix)) {
			memset(&route, 0, sizeof(route));
			snprintf(route.prefix, sizeof(route.prefix), "%s", prefix);
			route.kind = idk && !strcmp(idk, "string") ? ROUTE_ID : ROUTE_NAME;
			struct obj_view *v = obj_view_copy();
			if (v && route_check(v, &route, err, sizeof(err)) == 0)
				rtp = &route;
			else
				log_warn("deploy: binding %s (class %s): its %s; served without it", name, cls,
					 v ? err : "route: out of memory");
			free(v);
		}
		struct obj_binding b;
		memset(&b, 0, sizeof(b));
		snprintf(b.name, sizeof(b.name), "%s", name);
		snprintf(b.class_name, sizeof(b.class_name), "%s", cls);
		int ns = obj_runtime_add_namespace(&b, ver, cf, secret, rtp, clock_now_ms() + DEPLOY_PUBLISH_MS);
		if (ns < 0)
			log_error("deploy: binding %s (class %s): %s; left out", name, cls, strerror(-ns));
		else
			log_info("deploy: binding %s of class %s (added live with tag \"%s\") restored%s%s", name,
				 cls, tag ? tag : "", rtp ? ", route " : "", rtp ? rtp->prefix : "");
		json_decref(j);
	}
	store_iter_close(it);
}
