/* Export and import of a class's objects: a consistent backup (a RocksDB snapshot taken
 * once every acknowledged write is in RocksDB), restorable on another box, where each
 * object is written back as one event on its owner core, through its commit log. The
 * format and every check of it are ctl_backup_parse.h's; this file does the I/O and the
 * posting to cores. Both run on a control worker thread, never on the control socket's. */
#include "ctl_int.h"
#include "ctl_backup_parse.h"
#include "ctl_mailbox.h"
#include "base_assert.h"
#include "clock.h"
#include "crc32c.h"
#include "log.h"
#include "keys.h"
#include "obj.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PIPELINE 32            /* imports in flight at once */
#define READ_BUF (64 * 1024)

_Static_assert(CTL_BACKUP_MAX_CLASS < STORE_NAME_MAX, "class names fit the store's");
_Static_assert(CTL_BACKUP_MAX_KEY >= DURO_MAX_KEY, "every user key fits");
_Static_assert(CTL_BACKUP_ID_BYTES == DURO_ID_BYTES, "IDs");
_Static_assert(READ_BUF >= CTL_BACKUP_MAX_RECORD, "the reader's buffer holds any record");

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

static int do_settled(struct core *c, struct ctl_cmd *cmd)
{
	cmd->result = obj_storage_settled(c);
	return 1;
}

static int settled_everywhere(struct ctl *ctl)
{
	/* Every core: all it acknowledged is in RocksDB. Retried briefly: an apply pending
	 * right now finishes within a loop turn. */
	for (int tries = 0; tries < 100; tries++) {
		unsigned ok = 0;
		for (unsigned i = 0; i < ctl->group->ncores; i++) {
			struct ctl_cmd *cmd = ctl_cmd_new(do_settled);
			if (!cmd)
				return -ENOMEM;
			int r = ctl_mailbox_call(&ctl->mb, i, cmd);
			if (r < 0)
				return r;
			ok += cmd->result == 1;
			ctl_cmd_free(cmd);
		}
		if (ok == ctl->group->ncores)
			return 0;
		usleep(10000);
	}
	return -EAGAIN;
}

static void put_key(struct out *o, const uint8_t *id, const char *k, size_t kl, const char *v,
		    size_t vl)
{
	uint32_t kk = (uint32_t)kl, vv = (uint32_t)vl;
	put(o, "K", 1);
	put(o, id, DURO_ID_BYTES);
	put(o, &kk, 4);
	put(o, &vv, 4);
	put(o, k, kk);
	put(o, v, vv);
}

/* The object's SQL pages from the sql family, each as a reserved key of the object
 * ("\xff\xff" "sqlpage" ‖ page number, keys.h) with the stored value: the file format
 * stays one of keys, and an import gives them back to the sql family. */
static int export_pages(struct out *o, struct store *st, const struct store_snapshot *snap,
			const uint8_t id[DURO_ID_BYTES], uint64_t *keys, uint64_t *bytes)
{
	uint8_t hi[KEYS_ID_BYTES];
	keys_id_successor(id, hi);
	struct store_iter *it = store_iter_open_at(st, snap, STORE_CF_SQL, id, KEYS_ID_BYTES, hi,
						   sizeof(hi), 0);
	if (!it)
		return -ENOMEM;
	const char *k, *v;
	size_t kl, vl;
	int r = 0;
	char pk[KEYS_SQL_EXPORT_PAGE_LEN + 4];
	memcpy(pk, KEYS_SQL_EXPORT_PAGE, KEYS_SQL_EXPORT_PAGE_LEN);
	while (!o->err && (r = store_iter_next(it, &k, &kl, &v, &vl)) == 1) {
		if (kl != KEYS_SQL_PAGE_KEY_LEN)
			continue;
		memcpy(pk + KEYS_SQL_EXPORT_PAGE_LEN, k + KEYS_ID_BYTES, 4);
		put_key(o, id, pk, sizeof(pk), v, vl);
		(*keys)++;
		*bytes += sizeof(pk) + vl;
	}
	store_iter_close(it);
	return r < 0 ? r : 0;
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
	uint32_t version = CTL_BACKUP_VERSION;
	uint16_t clen = (uint16_t)strlen(class_name);
	uint64_t now = clock_wall_ms(), objects = 0, keys = 0, bytes = 0;
	put(&o, CTL_BACKUP_MAGIC, 8);
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
		if (ctl_mailbox_stopping(&ctl->mb)) {
			o.err = -ECANCELED;
			break;
		}
		if (kl < DURO_ID_BYTES)
			continue;
		if (!have || memcmp(cur, k, DURO_ID_BYTES)) {
			memcpy(cur, k, DURO_ID_BYTES);
			have = 1;
			objects++;
			char nk[KEYS_META_ID_LEN];
			keys_tagged_id(nk, KEYS_META_NAME, cur);
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
		put_key(&o, cur, k + DURO_ID_BYTES, kl - DURO_ID_BYTES, v, vl);
		keys++;
		bytes += kl - DURO_ID_BYTES + vl;
		/* The SQL database's size record: its pages follow, as reserved keys. */
		if (kl == DURO_ID_BYTES + KEYS_SQL_SIZE_LEN &&
		    !memcmp(k + DURO_ID_BYTES, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN)) {
			int pr = export_pages(&o, st, snap, cur, &keys, &bytes);
			if (pr < 0 && !o.err)
				o.err = pr;
		}
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
	if (o.err == -ECANCELED)
		return ctl_error_reply("export: durod is stopping; %s not written", path);
	if (o.err)
		return ctl_error_reply("export: %s: %s", path, strerror(-o.err));
	log_info("control: exported %llu objects (%llu keys) of class %s to %s",
		 (unsigned long long)objects, (unsigned long long)keys, class_name, path);
	return json_pack("{s:b, s:s, s:s, s:I, s:I, s:I}", "ok", 1, "class", class_name, "path", path,
			 "objects", (json_int_t)objects, "keys", (json_int_t)keys, "bytes",
			 (json_int_t)bytes);
}

/* ---- reading: the file through the pure parser ---- */

struct reader {
	int fd, eof;
	char *buf;
	size_t start, end;
	struct ctl_backup_parser p;
};

static int reader_open(struct reader *r, const char *path)
{
	*r = (struct reader){ .fd = open(path, O_RDONLY | O_CLOEXEC) };
	if (r->fd < 0)
		return -errno;
	r->buf = malloc(READ_BUF);
	if (!r->buf) {
		close(r->fd);
		return -ENOMEM;
	}
	ctl_backup_parse_init(&r->p);
	return 0;
}

static int reader_rewind(struct reader *r)
{
	if (lseek(r->fd, 0, SEEK_SET) < 0)
		return -errno;
	r->eof = 0;
	r->start = r->end = 0;
	ctl_backup_parse_init(&r->p);
	return 0;
}

static void reader_close(struct reader *r)
{
	close(r->fd);
	free(r->buf);
}

/* The next record: 1 (*rec filled, valid until the next call), 0 after the end record at
 * the end of the file, -EBADMSG (r->p says what and where) or another negative errno. */
static int next_record(struct reader *r, struct ctl_backup_record *rec)
{
	for (;;) {
		long n = ctl_backup_parse(&r->p, r->buf + r->start, r->end - r->start, rec);
		if (n > 0) {
			r->start += (size_t)n;
			return 1;
		}
		if (n < 0)
			return (int)n;
		if (r->eof)
			return ctl_backup_parse_finish(&r->p);
		/* Part of a record: keep it and read more behind it. */
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
		DURO_ASSERT(r->end < READ_BUF);
		ssize_t got = read(r->fd, r->buf + r->end, READ_BUF - r->end);
		if (got < 0 && errno != EINTR)
			return -errno;
		if (got == 0)
			r->eof = 1;
		else if (got > 0)
			r->end += (size_t)got;
	}
}

/* ---- importing: one command per object, to its owner core ---- */

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

static struct ctl_cmd *import_cmd(unsigned ns, const uint8_t *id)
{
	struct ctl_cmd *cmd = ctl_cmd_new(do_import);
	struct import_obj *o = calloc(1, sizeof(*o));
	if (!cmd || !o) {
		free(cmd);
		free(o);
		return NULL;
	}
	cmd->ns = ns;
	memcpy(cmd->id.bytes, id, DURO_ID_BYTES);
	cmd->payload = o;
	cmd->payload_free = import_free;
	return cmd;
}

/* A key record: its key now, room for its value, whose pieces follow. */
static int import_key(struct ctl_cmd *cmd, const struct ctl_backup_record *rec)
{
	struct import_obj *o = cmd->payload;
	size_t need = o->len + rec->len + rec->value_len;
	if (need > o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 4096;
		while (cap < need)
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
	o->ents[o->n++] = (struct import_ent){ o->len, rec->len, o->len + rec->len, rec->value_len };
	memcpy(o->blob + o->len, rec->data, rec->len);
	o->len += rec->len;
	return 0;
}

static void import_value(struct ctl_cmd *cmd, const struct ctl_backup_record *rec)
{
	struct import_obj *o = cmd->payload;
	/* The key record reserved the room: the parser hands out exactly value_len bytes. */
	DURO_ASSERT(o->len + rec->len <= o->cap);
	memcpy(o->blob + o->len, rec->data, rec->len);
	o->len += rec->len;
}

struct import_run {
	struct ctl *ctl;
	struct ctl_cmd *inflight[PIPELINE];
	unsigned ninflight;
	uint64_t done, existing, failed;
};

/* Posts cmd (NULL: none) and, when the pipeline is full or at the end, waits for it. */
static void flush_object(struct import_run *run, struct ctl_cmd *cmd)
{
	if (cmd) {
		if (ctl_mailbox_post(&run->ctl->mb, obj_owner(&cmd->id), cmd) < 0) {
			run->failed++;
			ctl_cmd_free(cmd);
		} else {
			run->inflight[run->ninflight++] = cmd;
		}
	}
	if (run->ninflight < PIPELINE && cmd)
		return;
	for (unsigned i = 0; i < run->ninflight; i++) {
		struct ctl_cmd *c = run->inflight[i];
		if (ctl_mailbox_wait(&run->ctl->mb, c) < 0) {
			run->failed++;
			continue; /* abandoned: the core frees it */
		}
		if (c->result == 0)
			run->done++;
		else if (c->result == -EEXIST)
			run->existing++;
		else
			run->failed++;
		ctl_cmd_free(c);
	}
	run->ninflight = 0;
}

/* Adopts the exporting box's secret, so its IDs are valid here: only into a class that
 * holds nothing yet under another one. Returns NULL or the refusal. */
static json_t *adopt_secret(unsigned ns, const char *class_name, const uint8_t *their)
{
	struct store *st = obj_runtime_store();
	int cf;
	uint8_t secret[32];
	if (store_class(st, class_name, &cf, secret, NULL) < 0)
		return ctl_error_reply("import: class %s has no storage", class_name);
	if (memcmp(secret, their, 32) == 0)
		return NULL;
	struct store_iter *it = store_iter_open(st, cf, "", 0, NULL, 0, 0);
	const char *k, *v;
	size_t kl, vl;
	int nonempty = it && store_iter_next(it, &k, &kl, &v, &vl) == 1;
	if (it)
		store_iter_close(it);
	if (nonempty)
		return ctl_error_reply("import: class %s here already holds objects under its own IDs; import into a box where it is empty",
				       class_name);
	if (store_class_set_secret(st, class_name, their) < 0 || obj_namespace_adopt(ns, their) < 0)
		return ctl_error_reply("import: could not adopt the export's namespace secret");
	log_info("control: import: class %s adopts the exported namespace secret", class_name);
	return NULL;
}

json_t *ctl_import(struct ctl *ctl, const char *path)
{
	struct reader rd;
	int r = reader_open(&rd, path);
	if (r < 0)
		return ctl_error_reply("import: %s: %s", path, strerror(-r));
	/* First pass: the whole file must be intact before anything is written. */
	struct ctl_backup_record rec;
	char class_name[CTL_BACKUP_MAX_CLASS + 1] = "";
	uint8_t secret[32];
	uint64_t keys = 0;
	while ((r = next_record(&rd, &rec)) == 1 && !ctl_mailbox_stopping(&ctl->mb)) {
		if (rec.kind == CTL_BACKUP_HEADER) {
			memcpy(class_name, rec.data, rec.len);
			class_name[rec.len] = 0;
			memcpy(secret, rec.secret, 32);
		} else if (rec.kind == CTL_BACKUP_END) {
			keys = rec.keys;
		}
	}
	json_t *err = NULL;
	if (r == -EBADMSG)
		err = ctl_error_reply("import: %s is damaged or not a duro export: %s at byte %llu: nothing imported",
				      path, rd.p.error, (unsigned long long)rd.p.error_offset);
	else if (r < 0)
		err = ctl_error_reply("import: %s: %s", path, strerror(-r));
	else if (r == 1)
		err = ctl_error_reply("import: durod is stopping: nothing imported");
	int ns = err ? -1 : ctl_class_ns(class_name);
	if (!err && ns < 0)
		err = ctl_error_reply("import: class %s is not bound here: add it to durable_objects.bindings and a migration",
				      class_name);
	if (!err)
		err = adopt_secret((unsigned)ns, class_name, secret);
	if (!err && (r = reader_rewind(&rd)) < 0)
		err = ctl_error_reply("import: %s: %s", path, strerror(-r));
	if (err) {
		reader_close(&rd);
		return err;
	}
	/* Second pass: each object as one event on its owner core. */
	struct import_run run = { .ctl = ctl };
	struct ctl_cmd *cur = NULL;
	while ((r = next_record(&rd, &rec)) == 1 && rec.kind != CTL_BACKUP_END) {
		if (ctl_mailbox_stopping(&ctl->mb)) {
			r = -ECANCELED;
			break;
		}
		if ((rec.kind == CTL_BACKUP_NAME || rec.kind == CTL_BACKUP_KEY) && rec.new_object) {
			if (cur)
				flush_object(&run, cur);
			if (!(cur = import_cmd((unsigned)ns, rec.id))) {
				r = -ENOMEM;
				break;
			}
		}
		if (rec.kind == CTL_BACKUP_NAME) {
			struct import_obj *o = cur->payload;
			memcpy(o->name, rec.data, rec.len);
			o->name_len = (uint16_t)rec.len;
		} else if (rec.kind == CTL_BACKUP_KEY) {
			if ((r = import_key(cur, &rec)) < 0)
				break;
		} else if (rec.kind == CTL_BACKUP_VALUE) {
			import_value(cur, &rec);
		}
	}
	if (r == 1 && cur) {
		flush_object(&run, cur);
	} else if (cur) {
		/* The file changed since the first pass, memory ran out, or durod is stopping:
		 * this object is not imported. */
		run.failed++;
		ctl_cmd_free(cur);
	}
	flush_object(&run, NULL);
	reader_close(&rd);
	if (r < 0 && r != -ECANCELED)
		log_warn("control: import from %s stopped: %s", path,
			 r == -EBADMSG ? rd.p.error : strerror(-r));
	log_info("control: imported %llu objects of class %s from %s (%llu already present, %llu failed)",
		 (unsigned long long)run.done, class_name, path, (unsigned long long)run.existing,
		 (unsigned long long)run.failed);
	json_t *reply = json_pack("{s:b, s:s, s:I, s:I, s:I, s:I}", "ok", run.failed == 0 && r >= 0,
				  "class", class_name, "objects", (json_int_t)run.done, "keys",
				  (json_int_t)keys, "already_present", (json_int_t)run.existing, "failed",
				  (json_int_t)run.failed);
	if (r < 0 && reply)
		json_object_set_new(reply, "error",
				    json_string(r == -ECANCELED ? "durod is stopping: import cut short"
								: "the file changed while it was imported, or memory ran out"));
	return reply;
}
