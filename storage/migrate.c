/* Migrations and the class table, kept in the meta column family:
 *   "class/<name>"   -> 32-byte namespace secret ‖ column family name
 *   "deleted/<name>" -> the tag that deleted the class (for messages)
 *   "migrations"     -> the applied tags, one per line, in order
 *   "cfseq"          -> the last column family number handed out
 * A class's data lives in a family named "class-<n>", so a rename moves a table entry
 * (data and IDs stay) and a delete drops the family. Every tag is checked against a copy
 * of the table before any is applied, so a bad list changes nothing. */
#include "keys.h"
#include "store_int.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MAX_CLASSES 128
#define MAX_TAGS 256

struct class_rec {
	char name[STORE_NAME_MAX];
	char cf[80];
	uint8_t secret[32];
	int is_new; /* created by this run: the family is made when applying */
};

struct table {
	struct class_rec c[MAX_CLASSES];
	unsigned n;
	char deleted[MAX_CLASSES][STORE_NAME_MAX];
	char deleted_by[MAX_CLASSES][STORE_NAME_MAX];
	unsigned ndeleted;
};

static int meta_get(struct store *st, const char *key, char *out, size_t cap, size_t *len)
{
	struct store_value v;
	int r = store_get(st, STORE_CF_META, key, strlen(key), &v);
	if (r <= 0)
		return r;
	*len = v.len < cap ? v.len : cap;
	memcpy(out, v.data, *len);
	store_value_release(&v);
	return 1;
}

static int load_table(struct store *st, struct table *t)
{
	memset(t, 0, sizeof(*t));
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(st->db, st->ropts, st->cf[STORE_CF_META]);
	for (rocksdb_iter_seek(it, KEYS_META_CLASS, KEYS_META_CLASS_LEN); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);
		if (kl < KEYS_META_CLASS_LEN || memcmp(k, KEYS_META_CLASS, KEYS_META_CLASS_LEN) || t->n == MAX_CLASSES)
			break;
		struct class_rec *c = &t->c[t->n++];
		snprintf(c->name, sizeof(c->name), "%.*s", (int)(kl - 6), k + 6);
		if (vl > 32) {
			memcpy(c->secret, v, 32);
			snprintf(c->cf, sizeof(c->cf), "%.*s", (int)(vl - 32), v + 32);
		}
	}
	for (rocksdb_iter_seek(it, KEYS_META_DELETED, KEYS_META_DELETED_LEN); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);
		if (kl < KEYS_META_DELETED_LEN || memcmp(k, KEYS_META_DELETED, KEYS_META_DELETED_LEN) || t->ndeleted == MAX_CLASSES)
			break;
		snprintf(t->deleted[t->ndeleted], STORE_NAME_MAX, "%.*s", (int)(kl - 8), k + 8);
		snprintf(t->deleted_by[t->ndeleted++], STORE_NAME_MAX, "%.*s", (int)vl, v);
	}
	rocksdb_iter_destroy(it);
	return 0;
}

static struct class_rec *find(struct table *t, const char *name)
{
	for (unsigned i = 0; i < t->n; i++)
		if (!strcmp(t->c[i].name, name))
			return &t->c[i];
	return NULL;
}

static void forget_deleted(struct table *t, const char *name)
{
	for (unsigned i = 0; i < t->ndeleted; i++)
		if (!strcmp(t->deleted[i], name))
			t->deleted[i][0] = 0;
}

__attribute__((format(printf, 5, 6))) static int refuse(char *err, size_t errlen, unsigned idx,
							  const char *tag, const char *fmt, ...)
{
	int n = snprintf(err, errlen, "config: migrations[%u] (tag \"%s\"): ", idx, tag);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Runs one tag against the table (in memory); the caller writes the result. */
static int step(struct table *t, const struct store_migration *m, unsigned idx, uint64_t *cfseq,
		char *err, size_t errlen)
{
	for (unsigned i = 0; i < m->nnew; i++) {
		const char *name = m->new_classes[i];
		if (find(t, name))
			return refuse(err, errlen, idx, m->tag, "new_classes: class \"%s\" exists already", name);
		if (t->n == MAX_CLASSES)
			return refuse(err, errlen, idx, m->tag, "more than %d classes", MAX_CLASSES);
		struct class_rec *c = &t->c[t->n++];
		snprintf(c->name, sizeof(c->name), "%s", name);
		snprintf(c->cf, sizeof(c->cf), "class-%llu", (unsigned long long)++*cfseq);
		if (getrandom(c->secret, 32, 0) != 32)
			return -EIO;
		c->is_new = 1;
		forget_deleted(t, name);
	}
	for (unsigned pass = 0; pass < 2; pass++) {
		const struct store_rename *rs = pass ? m->transferred : m->renamed;
		unsigned n = pass ? m->ntransferred : m->nrenamed;
		const char *what = pass ? "transferred_classes" : "renamed_classes";
		for (unsigned i = 0; i < n; i++) {
			struct class_rec *c = find(t, rs[i].from);
			if (!c)
				return refuse(err, errlen, idx, m->tag, "%s: no class \"%s\" to rename", what, rs[i].from);
			if (find(t, rs[i].to))
				return refuse(err, errlen, idx, m->tag, "%s: class \"%s\" exists already", what, rs[i].to);
			snprintf(c->name, sizeof(c->name), "%s", rs[i].to);
			forget_deleted(t, rs[i].to);
		}
	}
	for (unsigned i = 0; i < m->ndeleted; i++) {
		struct class_rec *c = find(t, m->deleted[i]);
		if (!c)
			return refuse(err, errlen, idx, m->tag, "deleted_classes: no class \"%s\"", m->deleted[i]);
		if (t->ndeleted < MAX_CLASSES) {
			snprintf(t->deleted[t->ndeleted], STORE_NAME_MAX, "%s", c->name);
			snprintf(t->deleted_by[t->ndeleted++], STORE_NAME_MAX, "%s", m->tag);
		}
		c->name[0] = 0; /* the family goes when applied */
	}
	return 0;
}

/* Before a deleted class's family goes: the SQL databases and histories of its objects
 * (the sql and history families, keyed by object ID alone). An object has a database when its size record,
 * a reserved key of the object, is there: seek to it in each object's range. Synced,
 * so that the family is dropped only once nothing of it is left elsewhere. */
static int drop_sql_of(struct store *st, rocksdb_column_family_handle_t *cf)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(st->db, st->ropts, cf);
	rocksdb_writebatch_t *b = rocksdb_writebatch_create();
	unsigned dropped = 0;
	int any = 0;
	rocksdb_iter_seek_to_first(it);
	while (rocksdb_iter_valid(it)) {
		size_t kl;
		const char *k = rocksdb_iter_key(it, &kl);
		if (kl < KEYS_ID_BYTES) {
			rocksdb_iter_next(it);
			continue;
		}
		uint8_t id[KEYS_ID_BYTES], hi[KEYS_ID_BYTES];
		memcpy(id, k, KEYS_ID_BYTES);
		keys_id_successor(id, hi);
		char sk[KEYS_ID_BYTES + KEYS_SQL_SIZE_LEN];
		size_t sl = keys_data(sk, id, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN);
		/* Its point-in-time history goes with it, SQL or not. */
		rocksdb_writebatch_delete_range_cf(b, st->cf[STORE_CF_HISTORY], (const char *)id,
						   KEYS_ID_BYTES, (const char *)hi, KEYS_ID_BYTES);
		rocksdb_iter_seek(it, sk, sl);
		if (rocksdb_iter_valid(it)) {
			k = rocksdb_iter_key(it, &kl);
			if (kl == sl && !memcmp(k, sk, sl)) {
				rocksdb_writebatch_delete_range_cf(b, st->cf[STORE_CF_SQL], (const char *)id,
								   KEYS_ID_BYTES, (const char *)hi, KEYS_ID_BYTES);
				dropped++;
			}
		}
		any = 1;
		/* On to the next object (the all-0xff ID has no successor: the last one). */
		int last = 1;
		for (int i = 0; i < KEYS_ID_BYTES; i++)
			last &= id[i] == 0xff;
		if (last)
			break;
		rocksdb_iter_seek(it, (const char *)hi, KEYS_ID_BYTES);
	}
	char *e = NULL;
	rocksdb_iter_get_error(it, &e);
	rocksdb_iter_destroy(it);
	if (!e && any)
		rocksdb_write(st->db, st->wopts_sync, b, &e);
	rocksdb_writebatch_destroy(b);
	if (e) {
		log_warn("storage: dropping the SQL databases of a deleted class: %s", e);
		free(e);
		return -EIO;
	}
	if (dropped)
		log_info("storage: dropped %u SQL databases of a deleted class", dropped);
	return 0;
}

/* The tags this data directory applied, in order, split in place in text; *live[i] is 1
 * for one a live deploy applied. Returns how many, or a negative errno. */
static int applied_tags(struct store *st, char *text, size_t cap, char **tags, int *live)
{
	size_t alen = 0;
	int r = meta_get(st, KEYS_META_MIGRATIONS, text, cap - 1, &alen);
	if (r < 0)
		return r;
	text[r ? alen : 0] = 0;
	int n = 0;
	for (char *save = NULL, *tok = strtok_r(text, "\n", &save); tok && n < MAX_TAGS;
	     tok = strtok_r(NULL, "\n", &save)) {
		char key[STORE_NAME_MAX + 16], cls[STORE_NAME_MAX];
		size_t cl;
		snprintf(key, sizeof(key), KEYS_META_LIVE_TAG "%s", tok);
		live[n] = meta_get(st, key, cls, sizeof(cls), &cl) == 1;
		tags[n++] = tok;
	}
	return n;
}

int store_migrate(struct store *st, const struct store_migration *migs, unsigned n, char *err,
		  size_t errlen)
{
	static char applied_text[MAX_TAGS * STORE_NAME_MAX]; /* start-up only, single-threaded */
	char *applied[MAX_TAGS];
	int live[MAX_TAGS];
	int r = applied_tags(st, applied_text, sizeof(applied_text), applied, live);
	if (r < 0)
		return r;
	unsigned napplied = (unsigned)r;
	/* A config that lists migrations replaces the built-in tags: name every applied tag,
	 * so the fix (restate them first, in order) is in the message. */
	char list[1024] = "";
	for (unsigned i = 0; i < napplied; i++) {
		size_t len = strlen(list);
		snprintf(list + len, sizeof(list) - len, "%s\"%s\"%s", i ? ", " : "", applied[i],
			 live[i] ? " (live deploy: may be left out)" : "");
	}
	/* The config's tags must be the applied ones, in order, except that a tag a live deploy
	 * applied may be left out (its class and binding are in meta) or restated at its place. */
	unsigned j = 0;
	for (unsigned i = 0; i < napplied; i++) {
		if (j < n && !strcmp(applied[i], migs[j].tag)) {
			j++;
			continue;
		}
		if (live[i])
			continue;
		if (j >= n) {
			snprintf(err, errlen, "config: migrations: this data_dir has applied tag \"%s\" "
				 "(#%u), which the config no longer lists; tags may only be added at the end "
				 "(this data_dir applied %s: list them first, in that order)",
				 applied[i], i + 1, list);
			return -EINVAL;
		}
		snprintf(err, errlen, "config: migrations[%u]: tag \"%s\", but this data_dir applied "
			 "\"%s\" at that place; tags cannot be skipped, reordered or renamed "
			 "(this data_dir applied %s: list them first, in that order)",
			 j, migs[j].tag, applied[i], list);
		return -EINVAL;
	}
	for (unsigned k = j; k < n; k++)
		for (unsigned i = 0; i < napplied; i++)
			if (!strcmp(migs[k].tag, applied[i])) {
				snprintf(err, errlen, "config: migrations[%u]: tag \"%s\" was applied already%s, "
					 "at another place: restate it where it was applied (this data_dir applied "
					 "%s, in that order)", k, migs[k].tag,
					 live[i] ? " by a live deploy" : "", list);
				return -EINVAL;
			}
	if (j == n)
		return 0;

	static struct table t; /* start-up only, single-threaded */
	load_table(st, &t);
	char cfseq_text[24] = "";
	size_t cl = 0;
	if (meta_get(st, KEYS_META_CFSEQ, cfseq_text, sizeof(cfseq_text) - 1, &cl) == 1)
		cfseq_text[cl] = 0;
	uint64_t cfseq = strtoull(cfseq_text, NULL, 10);
	for (unsigned i = j; i < n; i++) {
		r = step(&t, &migs[i], i, &cfseq, err, errlen);
		if (r < 0)
			return r;
	}

	/* Checked: now make it so. Families first, then one synced meta batch. */
	char *e = NULL;
	for (unsigned i = 0; i < t.n; i++) {
		struct class_rec *c = &t.c[i];
		if (!c->is_new || !c->name[0])
			continue;
		if (store_cf_by_name(st, c->cf) >= 0) {
			/* Made by a start that was killed before its meta batch below: no class
			 * names it (its number is past cfseq), so nothing was ever written to it. */
			log_info("storage: column family %s left by an interrupted migration: used as is", c->cf);
			continue;
		}
		if (st->ncf == STORE_MAX_CF)
			return -E2BIG;
		rocksdb_column_family_handle_t *h = rocksdb_create_column_family(st->db, st->db_opts, c->cf, &e);
		if (e) {
			log_error("storage: create column family %s: %s", c->cf, e);
			free(e);
			if (h)
				rocksdb_column_family_handle_destroy(h); /* made even on failure */
			return -EIO;
		}
		snprintf(st->cf_names[st->ncf], sizeof(st->cf_names[0]), "%s", c->cf);
		st->cf[st->ncf] = h;
		st->ncf++;
	}
	rocksdb_writebatch_t *b = rocksdb_writebatch_create();
	rocksdb_writebatch_delete_range_cf(b, st->cf[STORE_CF_META], KEYS_META_CLASS, KEYS_META_CLASS_LEN, "class0", 6);
	rocksdb_writebatch_delete_range_cf(b, st->cf[STORE_CF_META], KEYS_META_DELETED, KEYS_META_DELETED_LEN, "deleted0", 8);
	for (unsigned i = 0; i < t.n; i++) {
		struct class_rec *c = &t.c[i];
		if (!c->name[0])
			continue;
		char key[80], val[32 + 80];
		int kl = snprintf(key, sizeof(key), KEYS_META_CLASS "%s", c->name);
		memcpy(val, c->secret, 32);
		size_t vl = 32 + strlen(c->cf);
		memcpy(val + 32, c->cf, strlen(c->cf));
		rocksdb_writebatch_put_cf(b, st->cf[STORE_CF_META], key, (size_t)kl, val, vl);
	}
	for (unsigned i = 0; i < t.ndeleted; i++) {
		if (!t.deleted[i][0])
			continue;
		char key[80];
		int kl = snprintf(key, sizeof(key), KEYS_META_DELETED "%s", t.deleted[i]);
		rocksdb_writebatch_put_cf(b, st->cf[STORE_CF_META], key, (size_t)kl, t.deleted_by[i],
					  strlen(t.deleted_by[i]));
	}
	/* Every tag applied before (live ones the config left out included), then the new. */
	static char out[MAX_TAGS * STORE_NAME_MAX];
	size_t tl = 0;
	for (unsigned i = 0; i < napplied; i++)
		tl += (size_t)snprintf(out + tl, sizeof(out) - tl, "%s\n", applied[i]);
	for (unsigned i = j; i < n; i++)
		tl += (size_t)snprintf(out + tl, sizeof(out) - tl, "%s\n", migs[i].tag);
	rocksdb_writebatch_put_cf(b, st->cf[STORE_CF_META], KEYS_META_MIGRATIONS, strlen(KEYS_META_MIGRATIONS), out, tl);
	int sl = snprintf(cfseq_text, sizeof(cfseq_text), "%llu", (unsigned long long)cfseq);
	rocksdb_writebatch_put_cf(b, st->cf[STORE_CF_META], KEYS_META_CFSEQ, strlen(KEYS_META_CFSEQ), cfseq_text, (size_t)sl);
	rocksdb_write(st->db, st->wopts_sync, b, &e);
	rocksdb_writebatch_destroy(b);
	if (e) {
		log_error("storage: record migrations: %s", e);
		free(e);
		return -EIO;
	}
	/* Drop the families of deleted classes only once the table no longer names them. */
	struct table after;
	load_table(st, &after);
	for (unsigned i = STORE_CF_FIRST_CLASS; i < st->ncf; i++) {
		if (!st->cf[i])
			continue;
		int used = 0;
		for (unsigned k = 0; k < after.n && !used; k++)
			used = !strcmp(after.c[k].cf, st->cf_names[i]);
		if (used)
			continue;
		if (drop_sql_of(st, st->cf[i]) < 0)
			continue; /* tried again at the next start that migrates */
		rocksdb_drop_column_family(st->db, st->cf[i], &e);
		if (e) {
			log_warn("storage: drop column family %s: %s", st->cf_names[i], e);
			free(e);
			e = NULL;
			continue;
		}
		rocksdb_column_family_handle_destroy(st->cf[i]);
		st->cf[i] = NULL;
		log_info("storage: dropped the data of a deleted class (%s)", st->cf_names[i]);
	}
	for (unsigned i = j; i < n; i++)
		log_info("storage: applied migration tag \"%s\"", migs[i].tag);
	return 0;
}

int store_class(struct store *st, const char *class_name, int *cf, uint8_t secret[32],
		char deleted_by[STORE_NAME_MAX])
{
	char key[80], val[32 + 80];
	size_t vl = 0;
	if (deleted_by)
		deleted_by[0] = 0;
	snprintf(key, sizeof(key), KEYS_META_CLASS "%s", class_name);
	int r = meta_get(st, key, val, sizeof(val) - 1, &vl);
	if (r < 0)
		return r;
	if (r == 1 && vl > 32) {
		val[vl] = 0;
		int idx = store_cf_by_name(st, val + 32);
		if (idx < 0)
			return -EIO; /* the table names a family that is not there */
		*cf = idx;
		memcpy(secret, val, 32);
		return 0;
	}
	snprintf(key, sizeof(key), KEYS_META_DELETED "%s", class_name);
	if (deleted_by && meta_get(st, key, deleted_by, STORE_NAME_MAX - 1, &vl) == 1)
		deleted_by[vl] = 0;
	return -ENOENT;
}

int store_class_set_secret(struct store *st, const char *class_name, const uint8_t secret[32])
{
	char key[STORE_NAME_MAX + 8];
	int kl = snprintf(key, sizeof(key), KEYS_META_CLASS "%s", class_name);
	char *err = NULL;
	size_t vlen;
	char *val = rocksdb_get_cf(st->db, st->ropts, st->cf[STORE_CF_META], key, (size_t)kl, &vlen, &err);
	if (err) {
		free(err);
		return -EIO;
	}
	if (!val || vlen < 32) {
		free(val);
		return -ENOENT;
	}
	memcpy(val, secret, 32); /* the column family name after it stays */
	rocksdb_put_cf(st->db, st->wopts_sync, st->cf[STORE_CF_META], key, (size_t)kl, val, vlen, &err);
	free(val);
	if (err) {
		log_error("storage: class %s: new secret: %s", class_name, err);
		free(err);
		return -EIO;
	}
	return 0;
}

/* Makes the family `name` (or takes it as is: left by a migration a crash cut short, so no
 * class names it and nothing was written to it). Returns its index or a negative errno. */
static int cf_make(struct store *st, const char *name)
{
	int idx = store_cf_by_name(st, name);
	if (idx >= 0) {
		log_info("storage: column family %s left by an interrupted migration: used as is", name);
		return idx;
	}
	unsigned n = st->ncf;
	if (n == STORE_MAX_CF)
		return -E2BIG;
	char *e = NULL;
	rocksdb_column_family_handle_t *h = rocksdb_create_column_family(st->db, st->db_opts, name, &e);
	if (e) {
		log_error("storage: create column family %s: %s", name, e);
		free(e);
		if (h)
			rocksdb_column_family_handle_destroy(h);
		return -EIO;
	}
	snprintf(st->cf_names[n], sizeof(st->cf_names[0]), "%s", name);
	st->cf[n] = h;
	st->ncf = n + 1; /* published after the entry: readers never see it half made */
	return (int)n;
}

int store_migrate_live(struct store *st, const char *tag, const char *class_name,
		       const struct store_meta_put *extra, unsigned nextra, int *cf,
		       uint8_t secret[32], char *err, size_t errlen)
{
	static char text[MAX_TAGS * STORE_NAME_MAX]; /* the caller runs one at a time */
	static char out[MAX_TAGS * STORE_NAME_MAX + STORE_NAME_MAX + 2];
	char *applied[MAX_TAGS];
	int live[MAX_TAGS];
	int r = applied_tags(st, text, sizeof(text), applied, live);
	if (r < 0)
		return r;
	unsigned napplied = (unsigned)r;
	if (napplied == MAX_TAGS) {
		snprintf(err, errlen, "this data_dir applied %d migration tags, the most it keeps", MAX_TAGS);
		return -E2BIG;
	}
	for (unsigned i = 0; i < napplied; i++)
		if (!strcmp(applied[i], tag)) {
			snprintf(err, errlen, "migration tag \"%s\" was applied already (#%u%s): a new class needs a tag of its own",
				 tag, i + 1, live[i] ? ", by a live deploy" : "");
			return -EEXIST;
		}
	char key[STORE_NAME_MAX + 16], val[32 + 80], deleted_by[STORE_NAME_MAX];
	int old_cf;
	r = store_class(st, class_name, &old_cf, secret, deleted_by);
	if (r == 0) {
		snprintf(err, errlen, "class \"%s\" exists already in this data_dir (made by a migration): bind it in the config",
			 class_name);
		return -EEXIST;
	}
	if (r != -ENOENT)
		return r;
	char seq[24] = "";
	size_t sl = 0;
	if (meta_get(st, KEYS_META_CFSEQ, seq, sizeof(seq) - 1, &sl) == 1)
		seq[sl] = 0;
	unsigned long long cfseq = strtoull(seq, NULL, 10) + 1;
	char cfname[80];
	snprintf(cfname, sizeof(cfname), "class-%llu", cfseq);
	if (getrandom(secret, 32, 0) != 32)
		return -EIO;
	int idx = cf_make(st, cfname);
	if (idx < 0) {
		snprintf(err, errlen, "creating column family %s: %s", cfname, strerror(-idx));
		return idx;
	}
	rocksdb_writebatch_t *b = rocksdb_writebatch_create();
	rocksdb_column_family_handle_t *meta = st->cf[STORE_CF_META];
	int kl = snprintf(key, sizeof(key), KEYS_META_CLASS "%s", class_name);
	memcpy(val, secret, 32);
	memcpy(val + 32, cfname, strlen(cfname));
	rocksdb_writebatch_put_cf(b, meta, key, (size_t)kl, val, 32 + strlen(cfname));
	kl = snprintf(key, sizeof(key), KEYS_META_DELETED "%s", class_name);
	rocksdb_writebatch_delete_cf(b, meta, key, (size_t)kl);
	size_t tl = 0;
	for (unsigned i = 0; i < napplied; i++)
		tl += (size_t)snprintf(out + tl, sizeof(out) - tl, "%s\n", applied[i]);
	tl += (size_t)snprintf(out + tl, sizeof(out) - tl, "%s\n", tag);
	rocksdb_writebatch_put_cf(b, meta, KEYS_META_MIGRATIONS, strlen(KEYS_META_MIGRATIONS), out, tl);
	kl = snprintf(key, sizeof(key), KEYS_META_LIVE_TAG "%s", tag);
	rocksdb_writebatch_put_cf(b, meta, key, (size_t)kl, class_name, strlen(class_name));
	int n = snprintf(seq, sizeof(seq), "%llu", cfseq);
	rocksdb_writebatch_put_cf(b, meta, KEYS_META_CFSEQ, strlen(KEYS_META_CFSEQ), seq, (size_t)n);
	for (unsigned i = 0; i < nextra; i++)
		rocksdb_writebatch_put_cf(b, meta, extra[i].key, extra[i].klen, extra[i].val, extra[i].vlen);
	char *e = NULL;
	rocksdb_write(st->db, st->wopts_sync, b, &e);
	rocksdb_writebatch_destroy(b);
	if (e) {
		snprintf(err, errlen, "recording migration tag \"%s\": %s", tag, e);
		log_error("storage: %s", err);
		free(e);
		return -EIO; /* the family stays, unnamed: the next migration takes it */
	}
	*cf = idx;
	log_info("storage: applied migration tag \"%s\" (live deploy): class %s in %s", tag, class_name,
		 cfname);
	return 0;
}
