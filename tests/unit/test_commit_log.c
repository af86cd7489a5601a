/* Commit logs and replay: after a crash, every durable record is applied, a record whose
 * sync failed never is, and a torn tail is ignored; with direct I/O (aligned, padded
 * records) and with buffered logs. The "crash" is a child process that exits without
 * closing the store. */
#include "check.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];
static int buffered; /* storage.log_direct_io false */

static struct store *open_store(void)
{
	struct store_config cfg;
	store_config_defaults(&cfg, dir);
	cfg.log_rotate_bytes = 1 << 20;
	cfg.log_buffered = buffered;
	struct store *st = NULL;
	if (store_open(&cfg, &st) < 0)
		return NULL;
	return st;
}

/* Writes one record the way a core does (a direct write with RWF_DSYNC, or a buffered
 * write and fdatasync) and reports it. */
static int commit(struct store_log *lg, struct store *st, const char *key, const char *val,
		  int fail_sync)
{
	struct store_batch *b = store_batch_new();
	store_batch_put(st, b, STORE_CF_META, key, strlen(key), val, strlen(val));
	struct store_log_record rec = { 0 };
	struct store_log_io io;
	CHECK_EQ(store_log_prepare(lg, b, &rec, &io), 0);
	unsigned align = store_log_direct_align(lg);
	CHECK_EQ(io.dsync, align != 0);
	if (align)
		CHECK(io.offset % align == 0 && io.iov[0].iov_len % align == 0);
	long w = pwritev2(io.fd, io.iov, (int)io.niov, (off_t)io.offset, io.dsync ? RWF_DSYNC : 0);
	if (w < 0)
		w = -errno;
	long s = fail_sync ? -EIO : io.dsync ? 0 : (fdatasync(io.fd) < 0 ? -errno : 0);
	int r = store_log_done(lg, &rec, w, s);
	if (r == 0)
		store_apply(st, b);
	store_log_record_release(&rec);
	store_batch_free(b);
	return r;
}

static int get(struct store *st, const char *key, char *out, size_t cap)
{
	struct store_value v;
	int r = store_get(st, STORE_CF_META, key, strlen(key), &v);
	if (r == 1) {
		snprintf(out, cap, "%.*s", (int)v.len, v.data);
		store_value_release(&v);
	}
	return r;
}

/* In the child that will "crash": the store and core 0's log, in the mode under test
 * (the test directory is on a disk file system, the build directory, so direct I/O
 * works). Exits on failure. */
static struct store_log *child_open(struct store **st)
{
	struct store_log *lg;
	*st = open_store();
	if (!*st || store_log_open(*st, 0, &lg) < 0)
		_exit(2);
	if (!buffered && store_log_direct_align(lg) == 0)
		_exit(4);
	return lg;
}

/* Waits for the child that wrote and "crashed" (exit 0 if all its steps went as expected)
 * and opens the store again, replaying its logs; NULL after a failed check. */
static struct store *reopen_after_crash(pid_t pid)
{
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	struct store *st = open_store();
	CHECK(st != NULL);
	return st;
}

static void test_replay_after_crash(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct store *st;
		struct store_log *lg = child_open(&st);
		int ok = commit(lg, st, "a", "1", 0) == 0 && commit(lg, st, "b", "2", 0) == 0 &&
			 commit(lg, st, "c", "lost", 1) == -EIO && /* cut off */
			 commit(lg, st, "d", "4", 0) == 0;          /* written where c was */
		/* A torn record after the last good one: its header and no more than the first
		 * aligned block of its body. */
		static char big[6000];
		memset(big, 'x', sizeof(big));
		struct store_batch *b = store_batch_new();
		store_batch_put(st, b, STORE_CF_META, "e", 1, big, sizeof(big));
		struct store_log_record rec = { 0 };
		struct store_log_io io;
		ok = ok && store_log_prepare(lg, b, &rec, &io) == 0;
		size_t part = io.dsync ? store_log_direct_align(lg) : io.iov[0].iov_len;
		ok = ok && pwrite(io.fd, io.iov[0].iov_base, part, (off_t)io.offset) == (ssize_t)part;
		_exit(ok ? 0 : 3); /* a crash: nothing flushed, nothing closed */
	}
	struct store *st = reopen_after_crash(pid);
	if (!st)
		return;
	char v[32];
	CHECK(get(st, "a", v, sizeof(v)) == 1 && !strcmp(v, "1"));
	CHECK(get(st, "b", v, sizeof(v)) == 1 && !strcmp(v, "2"));
	CHECK_EQ(get(st, "c", v, sizeof(v)), 0); /* its sync failed: never replayed */
	CHECK(get(st, "d", v, sizeof(v)) == 1 && !strcmp(v, "4"));
	CHECK_EQ(get(st, "e", v, sizeof(v)), 0); /* torn */
	store_close(st);
}

/* Writes a prepared record (as a core would, see commit()); returns the bytes written or
 * a negative errno. */
static long write_record(const struct store_log_io *io)
{
	long w = pwritev2(io->fd, io->iov, (int)io->niov, (off_t)io->offset, io->dsync ? RWF_DSYNC : 0);
	return w < 0 ? -errno : w;
}

/* A record written after one whose sync failed is void: it was answered as failed and
 * must never come back, even when the next record has the failed one's length and so
 * ends exactly where the void one begins. */
static void test_void_record_never_replayed(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct store *st;
		struct store_log *lg = child_open(&st);
		int ok = commit(lg, st, "va", "1", 0) == 0;
		struct store_batch *bb = store_batch_new(), *bc = store_batch_new();
		store_batch_put(st, bb, STORE_CF_META, "vb", 2, "x", 1);
		store_batch_put(st, bc, STORE_CF_META, "vc", 2, "void", 4);
		struct store_log_record rb = { 0 }, rc = { 0 };
		struct store_log_io ib, ic;
		ok = ok && store_log_prepare(lg, bb, &rb, &ib) == 0 && store_log_prepare(lg, bc, &rc, &ic) == 0;
		long wb = write_record(&ib), wc = write_record(&ic);
		if (!ic.dsync)
			fdatasync(ic.fd);
		ok = ok && store_log_done(lg, &rb, wb, -EIO) == -EIO;     /* b's sync failed */
		ok = ok && store_log_done(lg, &rc, wc, 0) == -ECANCELED;  /* so c is void */
		ok = ok && commit(lg, st, "vd", "y", 0) == 0;               /* b's length */
		store_log_record_release(&rb);
		store_log_record_release(&rc);
		_exit(ok ? 0 : 3); /* a crash */
	}
	struct store *st = reopen_after_crash(pid);
	if (!st)
		return;
	char v[32];
	CHECK(get(st, "va", v, sizeof(v)) == 1 && !strcmp(v, "1"));
	CHECK_EQ(get(st, "vb", v, sizeof(v)), 0);
	CHECK_EQ(get(st, "vc", v, sizeof(v)), 0); /* void: never replayed */
	CHECK(get(st, "vd", v, sizeof(v)) == 1 && !strcmp(v, "y"));
	store_close(st);
}

static void test_clean_close_leaves_no_logs(void)
{
	struct store *st = open_store();
	struct store_log *lg;
	CHECK(st && store_log_open(st, 1, &lg) == 0);
	if (!st)
		return;
	CHECK_EQ(commit(lg, st, "x", "9", 0), 0);
	store_log_close(lg);
	store_close(st);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls %s/commit-log)\"", dir);
	CHECK_EQ(system(cmd), 0);
	st = open_store();
	char v[8];
	CHECK(st && get(st, "x", v, sizeof(v)) == 1 && !strcmp(v, "9"));
	store_close(st);
}

int main(void)
{
	for (buffered = 0; buffered <= 1; buffered++) {
		printf("commit logs %s:\n", buffered ? "buffered" : "with direct I/O");
		/* Not /tmp, which may be a tmpfs: direct I/O is tested on the disk. */
		snprintf(dir, sizeof(dir), "duro-test-log-XXXXXX");
		if (!mkdtemp(dir))
			return 1;
		RUN(test_replay_after_crash);
		RUN(test_void_record_never_replayed);
		RUN(test_clean_close_leaves_no_logs);
		char cmd[96];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return CHECK_DONE();
}
