/* Export and import of a class's objects: a consistent backup (a RocksDB snapshot taken
 * once every acknowledged write is in RocksDB), restorable on another box, where each
 * object is written back as one event on its owner core, through its commit log.
 *
 * File: "DUROEXP1", u32 version, u16 class name length, class name, 32-byte namespace
 * secret, u64 creation time (ms); then records: 'N' ID u16 len name (an object's name),
 * 'K' ID u32 klen u32 vlen key value (one key; an object's records are consecutive);
 * 'E' u64 objects u64 keys u32 crc32c of every byte before the crc. Little-endian. */
#include "ctl_int.h"
#include "clock.h"
#include "crc32c.h"
#include "log.h"
#include "obj.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC "DUROEXP1"
#define VERSION 1u
#define PIPELINE 32 /* imports in flight at once */

/* ---- writing ---- */

struct out {
	FILE *f;
	uint32_t crc;
	int err;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->err || !n)
		return;
	if (fwrite(p, 1, n, o->f) != n)
		o->err = -errno;
	o->crc = crc32c(o->crc, p, n);
}

static int settled_everywhere(struct ctl *ctl)
{
	/* Every core: all it acknowledged is in RocksDB. Retried briefly: an apply pending
	 * right now finishes within a loop turn. */
	for (int tries = 0; tries < 100; tries++) {
		unsigned ok = 0;
		for (unsigned i = 0; i < ctl->group->ncores; i++) {
			struct ctl_cmd *cmd = calloc(1, sizeof(*cmd));
			if (!cmd)
				return -ENOMEM;
			cmd->fn = ctl_do_settled;
			if (ctl_run_on_core(ctl, i, cmd) < 0)
				return -ETIMEDOUT;
			ok += cmd->result == 1;
			free(cmd);
		}
		if (ok == ctl->group->ncores)
			return 0;
		usleep(10000);
	}
	return -EAGAIN;
}

json_t *ctl_export(struct ctl *ctl, const char *cls, const char *path)
{
	int ns = ctl_class_ns(cls);
	if (ns < 0)
		return ctl_error_reply("\"class\": no class or binding \"%s\"", cls);
	const char *class_name = obj_namespace_class((unsigned)ns);
	struct store *st = obj_runtime_store();
	int cf;
	uint8_t secret[32];
	if (store_class(st, class_name, &cf, secret, NULL) < 0)
		return ctl_error_reply("class %s has no storage", class_name);
	int r = settled_everywhere(ctl);
	if (r < 0)
		return ctl_error_reply("export: storage did not settle (%s); try again", strerror(-r));
	struct store_snapshot *snap = store_snapshot_take(st);
	char tmp[700];
	snprintf(tmp, sizeof(tmp), "%s.partial", path);
	struct out o = { fopen(tmp, "wbx"), 0, 0 };
	if (!o.f) {
		store_snapshot_release(st, snap);
		return ctl_error_reply("export: %s: %s", tmp, strerror(errno));
	}
	uint32_t version = VERSION;
	uint16_t clen = (uint16_t)strlen(class_name);
	uint64_t now = clock_wall_ms(), objects = 0, keys = 0, bytes = 0;
	put(&o, MAGIC, 8);
	put(&o, &version, 4);
	put(&o, &clen, 2);
	put(&o, class_name, clen);
	put(&o, secret, 32);
	put(&o, &now, 8);
	struct store_iter *it = store_iter_open_at(st, snap, cf, "", 0, NULL, 0, 0);
	const char *k, *v;
	size_t kl, vl;
	uint8_t cur[DURO_ID_BYTES];
	int have = 0;
	while (it && !o.err && (r = store_iter_next(it, &k, &kl, &v, &vl)) == 1) {
		if (kl < DURO_ID_BYTES)
			continue;
		if (!have || memcmp(cur, k, DURO_ID_BYTES)) {
			memcpy(cur, k, DURO_ID_BYTES);
			have = 1;
			objects++;
			char nk[1 + DURO_ID_BYTES] = { 'n' };
			memcpy(nk + 1, cur, DURO_ID_BYTES);
			struct store_value name;
			if (store_get_at(st, snap, STORE_CF_META, nk, sizeof(nk), &name) == 1) {
				uint16_t nl = (uint16_t)name.len;
				put(&o, "N", 1);
				put(&o, cur, DURO_ID_BYTES);
				put(&o, &nl, 2);
				put(&o, name.data, nl);
				store_value_release(&name);
			}
		}
		uint32_t kk = (uint32_t)(kl - DURO_ID_BYTES), vv = (uint32_t)vl;
		put(&o, "K", 1);
		put(&o, cur, DURO_ID_BYTES);
		put(&o, &kk, 4);
		put(&o, &vv, 4);
		put(&o, k + DURO_ID_BYTES, kk);
		put(&o, v, vv);
		keys++;
		bytes += kk + vv;
	}
	if (it)
		store_iter_close(it);
	store_snapshot_release(st, snap);
	put(&o, "E", 1);
	put(&o, &objects, 8);
	put(&o, &keys, 8);
	uint32_t crc = o.crc;
	if (!o.err && fwrite(&crc, 1, 4, o.f) != 4)
		o.err = -errno;
	if (!o.err && (fflush(o.f) != 0 || fsync(fileno(o.f)) != 0))
		o.err = -errno;
	if (fclose(o.f) != 0 && !o.err)
		o.err = -errno;
	if (!o.err && r < 0)
		o.err = r;
	/* link, not rename: an existing file is never replaced (EEXIST). */
	if (!o.err && link(tmp, path) < 0)
		o.err = -errno;
	unlink(tmp);
	if (o.err) {
		return ctl_error_reply("export: %s: %s", path, strerror(-o.err));
	}
	log_info("control: exported %llu objects (%llu keys) of class %s to %s",
		 (unsigned long long)objects, (unsigned long long)keys, class_name, path);
	return json_pack("{s:b, s:s, s:s, s:I, s:I, s:I}", "ok", 1, "class", class_name, "path", path,
			 "objects", (json_int_t)objects, "keys", (json_int_t)keys, "bytes",
			 (json_int_t)bytes);
}

/* ---- reading ---- */

struct in {
	FILE *f;
	uint32_t crc;
	int bad;
};

static int get(struct in *i, void *p, size_t n)
{
	if (i->bad)
		return -1;
	if (n && fread(p, 1, n, i->f) != n) {
		i->bad = 1;
		return -1;
	}
	i->crc = crc32c(i->crc, p, n);
	return 0;
}

struct header {
	char class_name[STORE_NAME_MAX];
	uint8_t secret[32];
	uint64_t created_ms;
};

static int read_header(struct in *in, struct header *h)
{
	char magic[8];
	uint32_t version;
	uint16_t clen;
	if (get(in, magic, 8) || memcmp(magic, MAGIC, 8) || get(in, &version, 4) || version != VERSION ||
	    get(in, &clen, 2) || clen == 0 || clen >= sizeof(h->class_name) ||
	    get(in, h->class_name, clen))
		return -1;
	h->class_name[clen] = 0;
	return get(in, h->secret, 32) || get(in, &h->created_ms, 8) ? -1 : 0;
}

/* One object's records, collected for its owner core: offsets into one blob, so the blob
 * may grow while it is filled. */
struct import_obj {
	uint16_t name_len;
	char name[DURO_MAX_NAME];
	char *blob;
	size_t len, cap;
	struct import_ent {
		size_t koff, klen, voff, vlen;
	} *ents;
	size_t n, ncap;
};

static void import_free(void *p)
{
	struct import_obj *o = p;
	free(o->blob);
	free(o->ents);
	free(o);
}

static void import_done(void *arg, int status)
{
	struct ctl_cmd *cmd = arg;
	cmd->result = status;
	ctl_cmd_finish(cmd);
}

/* On the owner core. */
static int do_import(struct core *c, struct ctl_cmd *cmd)
{
	struct import_obj *o = cmd->payload;
	struct duro_kv *kv = malloc((o->n ? o->n : 1) * sizeof(*kv));
	if (!kv) {
		cmd->result = -ENOMEM;
		return 1;
	}
	for (size_t i = 0; i < o->n; i++)
		kv[i] = (struct duro_kv){ { o->blob + o->ents[i].koff, o->ents[i].klen },
					  { o->blob + o->ents[i].voff, o->ents[i].vlen } };
	int r = obj_import(c, cmd->ns, &cmd->id, o->name, o->name_len, kv, o->n, import_done, cmd);
	free(kv); /* the event copied every key and value */
	if (r < 0) {
		cmd->result = r;
		return 1;
	}
	return 0;
}

static struct ctl_cmd *import_cmd(unsigned ns, const struct duro_id *id)
{
	struct ctl_cmd *cmd = calloc(1, sizeof(*cmd));
	struct import_obj *o = calloc(1, sizeof(*o));
	if (!cmd || !o) {
		free(cmd);
		free(o);
		return NULL;
	}
	cmd->fn = do_import;
	cmd->ns = ns;
	cmd->id = *id;
	cmd->payload = o;
	cmd->payload_free = import_free;
	return cmd;
}

/* Reads a key and a value from the file into the object's blob. */
static int import_entry(struct ctl_cmd *cmd, struct in *in, uint32_t kl, uint32_t vl)
{
	struct import_obj *o = cmd->payload;
	if (o->len + kl + vl > o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 4096;
		while (cap < o->len + kl + vl)
			cap *= 2;
		char *b = realloc(o->blob, cap);
		if (!b)
			return -ENOMEM;
		o->blob = b;
		o->cap = cap;
	}
	if (o->n == o->ncap) {
		size_t n2 = o->ncap ? o->ncap * 2 : 16;
		struct import_ent *e = realloc(o->ents, n2 * sizeof(*e));
		if (!e)
			return -ENOMEM;
		o->ents = e;
		o->ncap = n2;
	}
	struct import_ent *e = &o->ents[o->n++];
	e->koff = o->len;
	e->klen = kl;
	e->voff = o->len + kl;
	e->vlen = vl;
	if (get(in, o->blob + o->len, (size_t)kl + vl))
		return -EIO;
	o->len += (size_t)kl + vl;
	return 0;
}

static void flush_object(struct ctl *ctl, struct ctl_cmd **inflight, unsigned *ninflight,
			 struct ctl_cmd *cmd, uint64_t *done, uint64_t *existing, uint64_t *failed)
{
	if (cmd) {
		if (ctl_post_to_core(ctl, obj_owner(&cmd->id), cmd) < 0) {
			(*failed)++;
			ctl_cmd_free(cmd);
		} else {
			inflight[(*ninflight)++] = cmd;
		}
	}
	if (*ninflight < PIPELINE && cmd)
		return;
	for (unsigned i = 0; i < *ninflight; i++) {
		struct ctl_cmd *c = inflight[i];
		if (ctl_wait(ctl, c) < 0) {
			(*failed)++;
			continue; /* abandoned: the core frees it */
		}
		if (c->result == 0)
			(*done)++;
		else if (c->result == -EEXIST)
			(*existing)++;
		else
			(*failed)++;
		ctl_cmd_free(c);
	}
	*ninflight = 0;
}

json_t *ctl_import(struct ctl *ctl, const char *path)
{
	struct in in = { fopen(path, "rb"), 0, 0 };
	if (!in.f)
		return ctl_error_reply("import: %s: %s", path, strerror(errno));
	struct header h;
	if (read_header(&in, &h) < 0) {
		fclose(in.f);
		return ctl_error_reply("import: %s is not a duro export (bad header)", path);
	}
	/* First pass: the whole file must be intact before anything is written. */
	uint64_t objects = 0, keys = 0;
	uint8_t last[DURO_ID_BYTES]; /* the ID of the previous key: objects are consecutive */
	for (;;) {
		char type;
		uint8_t id[DURO_ID_BYTES];
		if (get(&in, &type, 1))
			break;
		if (type == 'E') {
			uint64_t eo, ek;
			uint32_t want = in.crc, crc;
			if (get(&in, &eo, 8) || get(&in, &ek, 8))
				break;
			want = in.crc;
			if (fread(&crc, 1, 4, in.f) != 4 || crc != want || eo != objects || ek != keys)
				in.bad = 1;
			break;
		}
		if (type == 'N') {
			uint16_t nl;
			char name[DURO_MAX_NAME];
			if (get(&in, id, DURO_ID_BYTES) || get(&in, &nl, 2) || nl > sizeof(name) ||
			    get(&in, name, nl))
				break;
		} else if (type == 'K') {
			uint32_t kl, vl;
			if (get(&in, id, DURO_ID_BYTES) || get(&in, &kl, 4) || get(&in, &vl, 4) ||
			    kl > DURO_MAX_KEY + 16 || vl > (256u << 20))
				break;
			keys++;
			/* the values are only summed: skip them */
			char buf[65536];
			for (uint64_t left = (uint64_t)kl + vl; left && !in.bad;) {
				size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
				get(&in, buf, n);
				left -= n;
			}
			if (keys == 1 || memcmp(last, id, DURO_ID_BYTES))
				objects++;
			memcpy(last, id, DURO_ID_BYTES);
		} else {
			in.bad = 1;
			break;
		}
	}
	if (in.bad || ferror(in.f)) {
		fclose(in.f);
		return ctl_error_reply("import: %s is damaged or truncated (checksum or counts do not match): nothing imported",
				       path);
	}
	int ns = ctl_class_ns(h.class_name);
	if (ns < 0) {
		fclose(in.f);
		return ctl_error_reply("import: class %s is not bound here: add it to durable_objects.bindings and a migration",
				       h.class_name);
	}
	/* Adopt the exporting box's secret, so its IDs are valid here: only into a class that
	 * holds nothing yet under another one. */
	struct store *st = obj_runtime_store();
	int cf;
	uint8_t secret[32];
	if (store_class(st, h.class_name, &cf, secret, NULL) < 0) {
		fclose(in.f);
		return ctl_error_reply("import: class %s has no storage", h.class_name);
	}
	if (memcmp(secret, h.secret, 32) != 0) {
		struct store_iter *it = store_iter_open(st, cf, "", 0, NULL, 0, 0);
		const char *k, *v;
		size_t kl, vl;
		int nonempty = it && store_iter_next(it, &k, &kl, &v, &vl) == 1;
		if (it)
			store_iter_close(it);
		if (nonempty) {
			fclose(in.f);
			return ctl_error_reply("import: class %s here already holds objects under its own IDs; import into a box where it is empty",
					       h.class_name);
		}
		if (store_class_set_secret(st, h.class_name, h.secret) < 0 ||
		    obj_namespace_adopt((unsigned)ns, h.secret) < 0) {
			fclose(in.f);
			return ctl_error_reply("import: could not adopt the export's namespace secret");
		}
		log_info("control: import: class %s adopts the exported namespace secret", h.class_name);
	}
	/* Second pass: each object as one event on its owner core. */
	rewind(in.f);
	in = (struct in){ in.f, 0, 0 };
	read_header(&in, &h);
	struct ctl_cmd *inflight[PIPELINE], *cur = NULL;
	unsigned ninflight = 0;
	uint64_t done = 0, existing = 0, failed = 0;
	for (;;) {
		char type;
		struct duro_id id;
		if (get(&in, &type, 1) || type == 'E')
			break;
		if (get(&in, id.bytes, DURO_ID_BYTES))
			break;
		if (!cur || memcmp(cur->id.bytes, id.bytes, DURO_ID_BYTES)) {
			if (cur)
				flush_object(ctl, inflight, &ninflight, cur, &done, &existing, &failed);
			cur = import_cmd((unsigned)ns, &id);
			if (!cur) {
				failed++;
				break;
			}
		}
		struct import_obj *o = cur->payload;
		if (type == 'N') {
			get(&in, &o->name_len, 2);
			if (o->name_len > sizeof(o->name) || get(&in, o->name, o->name_len))
				break;
		} else {
			uint32_t kl, vl;
			get(&in, &kl, 4);
			get(&in, &vl, 4);
			if (import_entry(cur, &in, kl, vl) < 0) {
				failed++;
				break;
			}
		}
	}
	if (cur)
		flush_object(ctl, inflight, &ninflight, cur, &done, &existing, &failed);
	flush_object(ctl, inflight, &ninflight, NULL, &done, &existing, &failed);
	fclose(in.f);
	log_info("control: imported %llu objects of class %s from %s (%llu already present, %llu failed)",
		 (unsigned long long)done, h.class_name, path, (unsigned long long)existing,
		 (unsigned long long)failed);
	return json_pack("{s:b, s:s, s:I, s:I, s:I, s:I}", "ok", failed == 0, "class", h.class_name,
			 "objects", (json_int_t)done, "keys", (json_int_t)keys, "already_present",
			 (json_int_t)existing, "failed", (json_int_t)failed);
}
