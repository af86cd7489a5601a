/* Migrations at start: a start killed between making a new class's column family and
 * recording the class (both come from one tag) must not leave a data directory that no
 * later start can open. The half-done start is made here with RocksDB directly. */
#include "check.h"
#include "store.h"

#include <errno.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static struct store *open_store(void)
{
	struct store_config cfg;
	store_config_defaults(&cfg, dir);
	cfg.log_rotate_bytes = 1 << 16;
	struct store *st = NULL;
	return store_open(&cfg, &st) < 0 ? NULL : st;
}

/* What the first start of a data directory did before its kill: the database and the
 * family of the first new class ("class-1"), and nothing in meta. */
static int half_migrated(void)
{
	struct store *st = open_store(); /* the database with its fixed families */
	if (!st)
		return -1;
	store_close(st);
	char path[128], *err = NULL;
	snprintf(path, sizeof(path), "%s/db", dir);
	rocksdb_options_t *o = rocksdb_options_create();
	const char *names[] = { "default", "meta", "alarms", "sql", "history" };
	const rocksdb_options_t *opts[] = { o, o, o, o, o };
	rocksdb_column_family_handle_t *h[5], *made;
	rocksdb_t *db = rocksdb_open_column_families(o, path, 5, names, opts, h, &err);
	if (!db) {
		fprintf(stderr, "  open: %s\n", err);
		free(err);
		rocksdb_options_destroy(o);
		return -1;
	}
	made = rocksdb_create_column_family(db, o, "class-1", &err);
	int r = err ? -1 : 0;
	free(err);
	if (made)
		rocksdb_column_family_handle_destroy(made);
	for (int i = 0; i < 5; i++)
		rocksdb_column_family_handle_destroy(h[i]);
	rocksdb_close(db);
	rocksdb_options_destroy(o);
	return r;
}

/* Seen by the crash harness (bench/crash.py) on its first cycle: every later start failed
 * with "create column family class-1: Column family already exists". */
static void test_family_of_interrupted_migration_is_taken(void)
{
	CHECK_EQ(half_migrated(), 0);
	struct store *st = open_store();
	CHECK(st != NULL);
	if (!st)
		return;
	struct store_migration m;
	memset(&m, 0, sizeof(m));
	snprintf(m.tag, sizeof(m.tag), "v1");
	snprintf(m.new_classes[0], sizeof(m.new_classes[0]), "Counter");
	snprintf(m.new_classes[1], sizeof(m.new_classes[1]), "KV");
	m.nnew = 2;
	char err[256] = "";
	int cf1 = -1, cf2 = -1;
	uint8_t secret[32];
	int r = store_migrate(st, &m, 1, err, sizeof(err));
	CHECK_EQ(r, 0);
	CHECK_EQ(store_class(st, "Counter", &cf1, secret, NULL), 0);
	CHECK_EQ(store_class(st, "KV", &cf2, secret, NULL), 0);
	CHECK(cf1 >= STORE_CF_FIRST_CLASS && cf2 >= STORE_CF_FIRST_CLASS && cf1 != cf2);
	if (r < 0 || cf1 < 0) {
		store_close(st);
		return;
	}
	/* The family works, and the next start finds the tag applied. */
	struct store_batch *b = store_batch_new();
	store_batch_put(st, b, cf1, "k", 1, "v", 1);
	CHECK_EQ(store_write_durable(st, b), 0);
	store_batch_free(b);
	store_close(st);
	st = open_store();
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK_EQ(store_migrate(st, &m, 1, err, sizeof(err)), 0);
	CHECK_EQ(store_class(st, "Counter", &cf1, secret, NULL), 0);
	struct store_value v;
	CHECK_EQ(store_get(st, cf1, "k", 1, &v), 1);
	store_value_release(&v);
	store_close(st);
}

static struct store_migration tag(const char *name, const char *cls)
{
	struct store_migration m;
	memset(&m, 0, sizeof(m));
	snprintf(m.tag, sizeof(m.tag), "%s", name);
	if (cls) {
		snprintf(m.new_classes[0], sizeof(m.new_classes[0]), "%s", cls);
		m.nnew = 1;
	}
	return m;
}

/* A live deploy's tag (store_migrate_live): a deploy killed after making its family (the
 * family is taken by the deploy that follows), recorded with its extra keys in one batch, then a
 * config may leave the tag out, restate it at its place, add tags after it, but not
 * restate it elsewhere nor leave out a tag that was not live. */
static void test_live_tags(void)
{
	CHECK_EQ(half_migrated(), 0); /* "class-1" made, nothing recorded: the kill */
	struct store *st = open_store();
	CHECK(st != NULL);
	if (!st)
		return;
	struct store_migration m[4] = { tag("v1", "Counter"), tag("live", "Fresh"),
					tag("v2", "Later"), tag("v3", NULL) };
	char err[512] = "";
	int cf = -1, cf2 = -1;
	uint8_t secret[32], secret2[32];
	struct store_meta_put extra = { .key = "binding/FRESH", .klen = 13, .val = "{}", .vlen = 2 };
	CHECK_EQ(store_migrate_live(st, "live", "Fresh", &extra, 1, &cf, secret, err, sizeof(err)), 0);
	CHECK_EQ(store_migrate_live(st, "live", "Other", &extra, 1, &cf2, secret2, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, "\"live\" was applied already") != NULL);
	CHECK_EQ(store_migrate_live(st, "again", "Fresh", &extra, 1, &cf2, secret2, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, "\"Fresh\" exists already") != NULL);
	CHECK_EQ(store_class(st, "Fresh", &cf2, secret2, NULL), 0);
	CHECK(cf == cf2 && !memcmp(secret, secret2, 32));
	struct store_value v;
	CHECK_EQ(store_get(st, STORE_CF_META, "binding/FRESH", 13, &v), 1);
	store_value_release(&v);
	struct store_batch *b = store_batch_new();
	store_batch_put(st, b, cf, "k", 1, "v", 1);
	CHECK_EQ(store_write_durable(st, b), 0);
	store_batch_free(b);
	store_close(st);

	st = open_store();
	CHECK(st != NULL);
	if (!st)
		return;
	/* Left out, with tags after it. */
	struct store_migration left_out[2] = { m[0], m[2] };
	CHECK_EQ(store_migrate(st, left_out, 2, err, sizeof(err)), 0);
	CHECK_EQ(store_class(st, "Later", &cf2, secret2, NULL), 0);
	CHECK_EQ(store_class(st, "Fresh", &cf2, secret2, NULL), 0);
	CHECK_EQ(store_get(st, cf2, "k", 1, &v), 1);
	store_value_release(&v);
	/* Restated at its place, with another after. */
	struct store_migration all[4] = { m[1], m[0], m[2], m[3] };
	CHECK_EQ(store_migrate(st, all, 4, err, sizeof(err)), 0);
	/* Restated elsewhere: refused, naming it. */
	struct store_migration moved[4] = { m[0], m[2], m[3], m[1] };  /* applied: live v1 v2 v3 */
	CHECK_EQ(store_migrate(st, moved, 4, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "tag \"live\" was applied already by a live deploy") != NULL);
	/* A tag that was not live may not be left out. */
	struct store_migration skip[3] = { m[1], m[0], m[3] };
	CHECK_EQ(store_migrate(st, skip, 3, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "this data_dir applied \"v2\" at that place") != NULL);
	store_close(st);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "duro-test-migrate-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	RUN(test_family_of_interrupted_migration_is_taken);
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf %s/*", dir);
	if (system(cmd) != 0)
		return 1;
	RUN(test_live_tags);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return CHECK_DONE();
}
