/* Per-core commit logs: the write-ahead log of duro. A core appends one record per group
 * commit and makes it durable on its own io_uring (below: how); only then is the batch
 * applied to RocksDB (whose own WAL is off) and the held responses released.
 *
 * Why our own log rather than RocksDB's WAL with a sync thread: when an fdatasync fails,
 * the record's bytes may still sit in the file, and RocksDB would replay them on reopen,
 * bringing back a write that was answered with an error. Here the log is cut back to the
 * last durable record, so a failed commit can never come back; and the completion arrives
 * on the core's own ring with no thread hand-off.
 *
 * Where the file system offers direct I/O, a log is written with O_DIRECT and each record
 * with RWF_DSYNC: the write goes to the device from the reactor's own io_uring_enter, with
 * no io-wq thread to wake for a buffered write and again for its fdatasync, and the kernel
 * flushes the device's cache when the data is in. Records are then copied into an aligned
 * buffer and padded to the direct I/O alignment, so two records in flight never share a
 * block (the later write could otherwise land first and be overwritten by the earlier
 * one's stale copy of the block). Elsewhere (or with storage.log_direct_io false): buffered
 * writes, each followed by fdatasync.
 *
 *   record: | magic u32 | length u32 | crc32c u32 | padding u32 | RocksDB batch bytes | zeros |
 */
#include "store_int.h"
#include "base_assert.h"
#include "crc32c.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAGIC 0x4c4f5244u /* "DROL" */
#define LOG_HEADER 16
/* Larger direct I/O alignments (none seen) fall back to buffered logs: padding every
 * record to them would fill logs with zeros. */
#define LOG_DIRECT_MAX_ALIGN 4096u
/* A record's aligned copy above this size is freed once durable, not kept for reuse. */
#define LOG_DIRECT_KEEP_BYTES (1u << 20)

static _Alignas(LOG_DIRECT_MAX_ALIGN) const char zero_block[LOG_DIRECT_MAX_ALIGN];

/* The next log file, zero-filled ahead of need by a background thread. */
struct log_prep {
	pthread_t thread;
	int running;        /* a thread to join */
	_Atomic int ready;  /* fd, direct_align and path below are set */
	int fd;
	unsigned direct_align;
	int want_direct;
	uint64_t seq;
	char path[700];
	uint64_t bytes;
	const char *dir;
};

/* A log moved away from, to be dropped once RocksDB holds its records. */
struct retired_log {
	char path[700];
	struct retired_log *next;
};

struct store_log {
	struct store *st;
	unsigned core;
	uint64_t file_seq;
	char path[700];
	int fd;
	unsigned direct_align; /* of fd; 0: buffered writes + fdatasync */
	struct log_prep prep;
	struct retired_log *retired; /* newest first */
	uint64_t size; /* bytes known durable */
	uint64_t tail; /* end of the last record prepared */
	uint64_t gen;  /* bumped when a failure voids the records in flight */
	unsigned inject_every;
	uint64_t syncs_seen;
	struct store_counters ctr;
};

/* Zero-fills a new log file: an fdatasync after overwriting written blocks commits no
 * metadata (292 us a sync here), where appending (497 us) or writing into space that is
 * only allocated (367 us) also journals the size or the extent. 64 MiB of zeros take
 * about 90 ms, so this runs before serving or in a background thread. */
static int create_zeroed(const char *path, const char *dir, uint64_t bytes)
{
	static const char zeros[1 << 20];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("storage: create %s: %s", path, strerror(errno));
		return -errno;
	}
	for (uint64_t off = 0; off < bytes;) {
		size_t n = bytes - off < sizeof(zeros) ? (size_t)(bytes - off) : sizeof(zeros);
		ssize_t w = pwrite(fd, zeros, n, (off_t)off);
		if (w <= 0) {
			int e = w < 0 ? errno : ENOSPC;
			log_error("storage: zero-fill %s: %s", path, strerror(e));
			close(fd);
			unlink(path);
			return -e;
		}
		off += (uint64_t)w;
	}
	if (fdatasync(fd) < 0)
		log_warn("storage: sync %s: %s", path, strerror(errno));
	/* The new name must itself be durable before records in it are acknowledged. */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return fd;
}

/* Switches a zero-filled log to direct I/O: returns its alignment, or 0 (left buffered)
 * when the file system offers none or an aligned write of zeros over its start fails. */
static unsigned try_direct(int fd, const char *path)
{
	static _Atomic int told;
	const char *why = NULL;
	unsigned align = 0;
	struct statx sx;
	int fl = fcntl(fd, F_GETFL);
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) < 0)
		why = strerror(errno);
	else if (!(sx.stx_mask & STATX_DIOALIGN) || !sx.stx_dio_offset_align)
		why = "the file system offers no direct I/O";
	else if (sx.stx_dio_offset_align > LOG_DIRECT_MAX_ALIGN || sx.stx_dio_mem_align > LOG_DIRECT_MAX_ALIGN)
		why = "its alignment is over 4096 bytes";
	else if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) < 0)
		why = strerror(errno);
	else if (pwrite(fd, zero_block, sx.stx_dio_offset_align, 0) != (ssize_t)sx.stx_dio_offset_align) {
		why = strerror(errno);
		fcntl(fd, F_SETFL, fl);
	} else
		align = sx.stx_dio_offset_align;
	if (why && !atomic_exchange(&told, 1))
		log_warn("storage: commit log %s: no direct I/O (%s): buffered writes + fdatasync", path, why);
	return align;
}

static void log_path(const struct store_log *lg, uint64_t seq, char *out, size_t cap)
{
	snprintf(out, cap, "%s/core%u-%010llu.log", lg->st->log_dir, lg->core, (unsigned long long)seq);
}

static int open_log_file(struct store_log *lg)
{
	log_path(lg, lg->file_seq, lg->path, sizeof(lg->path));
	lg->fd = create_zeroed(lg->path, lg->st->log_dir, lg->st->cfg.log_rotate_bytes);
	if (lg->fd < 0)
		return lg->fd;
	lg->direct_align = lg->st->cfg.log_buffered ? 0 : try_direct(lg->fd, lg->path);
	lg->size = 0;
	lg->tail = 0;
	return 0;
}

static void *prep_main(void *arg)
{
	struct log_prep *p = arg;
	p->fd = create_zeroed(p->path, p->dir, p->bytes);
	p->direct_align = p->fd >= 0 && p->want_direct ? try_direct(p->fd, p->path) : 0;
	atomic_store(&p->ready, 1);
	return NULL;
}

/* Starts zero-filling the file after the current one. */
static void prep_next(struct store_log *lg)
{
	struct log_prep *p = &lg->prep;
	if (p->running)
		return;
	p->seq = lg->file_seq + 64; /* stays ahead of every core's files */
	log_path(lg, p->seq, p->path, sizeof(p->path));
	p->bytes = lg->st->cfg.log_rotate_bytes;
	p->dir = lg->st->log_dir;
	p->want_direct = !lg->st->cfg.log_buffered;
	atomic_store(&p->ready, 0);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	store_thread_attr_any_cpu(&attr); /* zero-filling is not the reactor's CPU time */
	p->running = pthread_create(&p->thread, &attr, prep_main, p) == 0;
	pthread_attr_destroy(&attr);
}

/* Takes the prepared file if it is ready: 1 when switched. */
static int take_prep(struct store_log *lg)
{
	struct log_prep *p = &lg->prep;
	if (!p->running || !atomic_load(&p->ready))
		return 0;
	pthread_join(p->thread, NULL);
	p->running = 0;
	if (p->fd < 0)
		return 0;
	lg->fd = p->fd;
	lg->direct_align = p->direct_align;
	lg->file_seq = p->seq;
	snprintf(lg->path, sizeof(lg->path), "%s", p->path);
	lg->size = 0;
	lg->tail = 0;
	return 1;
}

/* Parses "core<C>-<S>.log"; returns 0 and fills core and seq. */
static int parse_name(const char *name, unsigned *core, unsigned long long *seq)
{
	char tail[8];
	return sscanf(name, "core%u-%llu%7s", core, seq, tail) == 3 && !strcmp(tail, ".log") ? 0 : -1;
}

static unsigned long long max_seq(struct store *st)
{
	unsigned long long best = 0;
	DIR *d = opendir(st->log_dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		unsigned core;
		unsigned long long seq;
		if (parse_name(e->d_name, &core, &seq) == 0 && seq > best)
			best = seq;
	}
	closedir(d);
	return best;
}

static void *drop_main(void *arg);

/* Starts the thread that drops retired logs, once per store, with the first core's log
 * (after the migrations: the flushes read the family table). Without it retired logs stay
 * until the next start or a clean stop. */
static void dropper_start(struct store *st)
{
	pthread_mutex_lock(&st->drop_lock);
	if (!st->drop_started) {
		pthread_attr_t attr;
		int r = pthread_attr_init(&attr);
		if (r == 0) {
			store_thread_attr_any_cpu(&attr); /* flushes are not a reactor's CPU time */
			r = pthread_create(&st->drop_thread, &attr, drop_main, st);
			pthread_attr_destroy(&attr);
		}
		if (r == 0)
			st->drop_started = 1;
		else
			log_error("storage: no thread to drop retired commit logs (%s): they stay until the next start",
				  strerror(r));
	}
	pthread_mutex_unlock(&st->drop_lock);
}

int store_log_open(struct store *st, unsigned core, struct store_log **out)
{
	struct store_log *lg = calloc(1, sizeof(*lg));
	if (!lg)
		return -ENOMEM;
	lg->st = st;
	lg->core = core;
	dropper_start(st);
	/* Sequence numbers are global so that replay orders files across restarts. */
	lg->file_seq = max_seq(st) + 1 + core;
	int r = open_log_file(lg);
	if (r < 0) {
		free(lg);
		return r;
	}
	prep_next(lg);
	if (lg->direct_align)
		log_info("storage: core %u: commit log with O_DIRECT and RWF_DSYNC, records aligned to %u bytes",
			 core, lg->direct_align);
	else
		log_info("storage: core %u: commit log with buffered writes and fdatasync", core);
	*out = lg;
	return 0;
}

unsigned store_log_direct_align(const struct store_log *lg) { return lg->direct_align; }

void store_log_record_release(struct store_log_record *rec)
{
	free(rec->direct_buf);
	rec->direct_buf = NULL;
	rec->direct_cap = 0;
}

void store_log_close(struct store_log *lg)
{
	if (!lg)
		return;
	if (lg->prep.running) {
		pthread_join(lg->prep.thread, NULL);
		if (lg->prep.fd >= 0)
			close(lg->prep.fd); /* all zeros: store_close removes it with the other logs */
	}
	if (lg->fd >= 0)
		close(lg->fd);
	/* Retired logs stay on disk: store_close removes every log after its final flush. */
	for (struct retired_log *old = lg->retired, *next; old; old = next) {
		next = old->next;
		free(old);
	}
	free(lg);
}

int store_log_prepare(struct store_log *lg, struct store_batch *b, struct store_log_record *rec,
		      struct store_log_io *io)
{
	size_t n;
	const char *data = rocksdb_writebatch_data((rocksdb_writebatch_t *)b, &n);
	DURO_ASSERT(n < UINT32_MAX);
	size_t len = LOG_HEADER + n;
	unsigned align = lg->direct_align;
	if (align) {
		size_t padded = (len + align - 1) / align * align;
		if (rec->direct_cap < padded) {
			void *buf;
			size_t cap = padded < 65536 ? 65536 : padded;
			if (posix_memalign(&buf, LOG_DIRECT_MAX_ALIGN, cap) != 0)
				return -ENOMEM;
			free(rec->direct_buf);
			rec->direct_buf = buf;
			rec->direct_cap = cap;
		}
		rec->header[3] = (uint32_t)(padded - len);
		len = padded;
	} else {
		rec->header[3] = 0;
	}
	rec->header[0] = LOG_MAGIC;
	rec->header[1] = (uint32_t)n;
	rec->header[2] = crc32c(0, data, n);
	rec->offset = lg->tail;
	rec->len = len;
	rec->gen = lg->gen;
	io->fd = lg->fd;
	io->offset = rec->offset;
	io->dsync = align != 0;
	if (align) {
		/* The one copy of the payload, in place of the page cache's. */
		char *p = rec->direct_buf;
		memcpy(p, rec->header, LOG_HEADER);
		memcpy(p + LOG_HEADER, data, n);
		memset(p + LOG_HEADER + n, 0, rec->header[3]);
		io->iov[0].iov_base = p;
		io->iov[0].iov_len = len;
		io->niov = 1;
	} else {
		io->iov[0].iov_base = rec->header;
		io->iov[0].iov_len = LOG_HEADER;
		io->iov[1].iov_base = (void *)data;
		io->iov[1].iov_len = n;
		io->niov = 2;
	}
	lg->tail += len;
	return 0;
}

/* Moves to the prepared log (waiting for it, or making one here, when `must`): 0, or -EAGAIN
 * (not ready, not `must`) or a negative errno. The old log joins the retired ones:
 * store_log_retire drops them once RocksDB holds what they made durable. */
static int switch_log(struct store_log *lg, int must)
{
	struct retired_log *old = malloc(sizeof(*old));
	if (!old)
		return -ENOMEM;
	snprintf(old->path, sizeof(old->path), "%s", lg->path);
	int old_fd = lg->fd;
	if (must && lg->prep.running && !atomic_load(&lg->prep.ready)) {
		/* Rare (after a failed commit): wait for the zero-filling to end. */
		while (!atomic_load(&lg->prep.ready))
			usleep(1000);
	}
	if (!take_prep(lg)) {
		if (!must) {
			free(old); /* not zero-filled in time: keep appending a little longer */
			prep_next(lg); /* if the last preparation failed (disk full), try again */
			return -EAGAIN;
		}
		lg->file_seq += 64; /* as prep_next numbers them: ahead of every core's files */
		int r = open_log_file(lg);
		if (r < 0) {
			lg->fd = -1; /* every write fails (500) and tries again to get a log */
			lg->size = lg->tail = 0;
			lg->direct_align = 0;
		}
	}
	if (old_fd >= 0) {
		close(old_fd); /* records still in flight to it keep the file open in the kernel */
		old->next = lg->retired;
		lg->retired = old;
	} else {
		free(old); /* no log was open (a failed switch): nothing to retire */
	}
	prep_next(lg);
	lg->ctr.log_rotations++;
	return lg->fd >= 0 ? 0 : -EIO;
}

void store_log_retire(struct store_log *lg)
{
	if (!lg->retired)
		return;
	/* Hand them over oldest first (the list is newest first). */
	struct retired_log *oldest = NULL, *newest = lg->retired;
	for (struct retired_log *old = lg->retired, *next; old; old = next) {
		next = old->next;
		old->next = oldest;
		oldest = old;
	}
	lg->retired = NULL;
	struct store *st = lg->st;
	pthread_mutex_lock(&st->drop_lock);
	if (st->drop_started) {
		if (st->drop_tail)
			st->drop_tail->next = oldest;
		else
			st->drop_head = oldest;
		st->drop_tail = newest;
		pthread_cond_signal(&st->drop_cond);
		oldest = NULL;
	}
	pthread_mutex_unlock(&st->drop_lock);
	for (struct retired_log *old = oldest, *next; old; old = next) {
		next = old->next;
		free(old); /* no dropper: the logs stay, replayed at the next start */
	}
}

/* ---- dropping logs ----
 *
 * Replay applies the logs found at start over what RocksDB holds, and RocksDB may hold
 * newer values than a log: every flush takes all that was applied up to it. So the logs
 * left after a crash must be the newest of each core, never an older one behind a newer
 * one that is gone: replayed, the older log would bring back the values the newer one
 * had replaced (issue 14: acknowledged increments went back when the background flushes
 * of two retired logs ended in the other order and a kill came between the deletions).
 * Hence logs are deleted oldest first everywhere, one thread deletes retired ones, and
 * the directory is synced between deletions so that a power cut cannot bring back an
 * older name after a newer one went. */

/* Deletes one log, then syncs dfd (the log directory, or -1) so that the deletion is on
 * disk before any later one. */
static void drop_file(int dfd, const char *path)
{
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("storage: remove %s: %s", path, strerror(errno));
	else if (dfd >= 0 && fsync(dfd) < 0)
		log_warn("storage: sync the commit-log directory: %s", strerror(errno));
}

/* The dropper: for what the cores retired, one flush (RocksDB then holds everything they
 * made durable, all of it applied before it was retired), then the deletions in order. A
 * failed flush keeps them, and everything retired after them, for the next try: a newer
 * log must not go while an older one stays. */
static void *drop_main(void *arg)
{
	struct store *st = arg;
	struct retired_log *pending = NULL, *pending_tail = NULL; /* oldest first */
	pthread_mutex_lock(&st->drop_lock);
	while (!st->drop_stop) {
		if (!st->drop_head) {
			if (!pending) {
				pthread_cond_wait(&st->drop_cond, &st->drop_lock);
				continue;
			}
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += 1; /* after a failed flush: again in a second */
			if (pthread_cond_timedwait(&st->drop_cond, &st->drop_lock, &until) != ETIMEDOUT)
				continue;
		}
		if (st->drop_head) {
			if (pending_tail)
				pending_tail->next = st->drop_head;
			else
				pending = st->drop_head;
			pending_tail = st->drop_tail;
			st->drop_head = st->drop_tail = NULL;
		}
		pthread_mutex_unlock(&st->drop_lock);
		if (store_flush_all(st) == 0) {
			int dfd = open(st->log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			while (pending) {
				struct retired_log *old = pending;
				pending = old->next;
				drop_file(dfd, old->path);
				free(old);
			}
			pending_tail = NULL;
			if (dfd >= 0)
				close(dfd);
		}
		pthread_mutex_lock(&st->drop_lock);
	}
	/* Stopping: what is left stays on disk; store_close deletes every log, in order, after
	 * its final flush. */
	if (pending_tail)
		pending_tail->next = st->drop_head;
	else
		pending = st->drop_head;
	st->drop_head = st->drop_tail = NULL;
	pthread_mutex_unlock(&st->drop_lock);
	for (struct retired_log *old = pending, *next; old; old = next) {
		next = old->next;
		free(old);
	}
	return NULL;
}

void store_dropper_init(struct store *st)
{
	pthread_condattr_t ca;
	pthread_mutex_init(&st->drop_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st->drop_cond, &ca);
	pthread_condattr_destroy(&ca);
}

void store_dropper_fini(struct store *st)
{
	pthread_cond_destroy(&st->drop_cond);
	pthread_mutex_destroy(&st->drop_lock);
}

void store_dropper_stop(struct store *st)
{
	pthread_mutex_lock(&st->drop_lock);
	int started = st->drop_started;
	st->drop_stop = 1;
	st->drop_started = 0; /* retirements from now on leave their logs */
	pthread_cond_signal(&st->drop_cond);
	pthread_mutex_unlock(&st->drop_lock);
	if (started)
		pthread_join(st->drop_thread, NULL);
}

void store_log_keep_all(struct store_log *lg)
{
	lg->st->keep_logs = 1;
}

int store_log_done(struct store_log *lg, struct store_log_record *rec, long write_res, long sync_res)
{
	if (rec->direct_cap > LOG_DIRECT_KEEP_BYTES)
		store_log_record_release(rec); /* the kernel is done with it */
	if (rec->gen != lg->gen)
		return -ECANCELED; /* written after a record that failed: void */
	DURO_ASSERT(rec->offset == lg->size);
	lg->syncs_seen++;
	if (lg->inject_every && write_res == (long)rec->len && sync_res == 0 &&
	    lg->syncs_seen % lg->inject_every == 0)
		sync_res = -EIO;
	if (write_res == (long)rec->len && sync_res == 0) {
		lg->size += rec->len;
		lg->ctr.log_records++;
		lg->ctr.log_bytes += rec->len;
		if (lg->size >= lg->st->cfg.log_rotate_bytes && lg->tail == lg->size)
			switch_log(lg, 0);
		return 0;
	}
	int err = write_res < 0 ? (int)write_res : write_res != (long)rec->len ? -ENOSPC
			: sync_res < 0 && sync_res != -ECANCELED ? (int)sync_res : -EIO;
	lg->ctr.log_failures++;
	lg->gen++;
	lg->tail = lg->size;
	log_error("storage: core %u: commit log %s failed at offset %llu: %s; cutting the record off",
		  lg->core, lg->path, (unsigned long long)lg->size, strerror(-err));
	/* Cut back to the last durable record, so the failed one (and any written after it)
	 * is never replayed: zero its header (its first aligned block, with direct I/O). Then
	 * go on in a fresh log: records written after the failed one (void, answered as
	 * failed) lie behind it, and a new record of the failed one's length written in its
	 * place would end exactly where the first of them begins, for replay to find. */
	size_t zlen = lg->direct_align ? lg->direct_align : LOG_HEADER;
	if (lg->fd >= 0 &&
	    (pwrite(lg->fd, zero_block, zlen, (off_t)lg->size) != (ssize_t)zlen || fdatasync(lg->fd) < 0)) {
		log_error("storage: core %u: cannot cut %s back (%s): truncating it", lg->core, lg->path,
			  strerror(errno));
		if (ftruncate(lg->fd, (off_t)lg->size) == 0)
			fdatasync(lg->fd);
	}
	if (switch_log(lg, 1) < 0)
		log_error("storage: core %u: no new commit log: writes fail until one can be made", lg->core);
	return err;
}

void store_log_inject_sync_failures(struct store_log *lg, unsigned every) { lg->inject_every = every; }
const struct store_counters *store_log_counters(const struct store_log *lg) { return &lg->ctr; }

/* ---- replay ---- */

struct log_file {
	unsigned core;
	unsigned long long seq;
	char name[256];
};

static int cmp_log(const void *a, const void *b)
{
	const struct log_file *x = a, *y = b;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return (int)x->core - (int)y->core;
}

/* Applies the records of one log in order, reading record by record: a log is mostly
 * zero-filled space, and the first header that is not a whole record ends it. */
static int replay_file(struct store *st, const char *path, uint64_t *records)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("storage: replay: open %s: %s", path, strerror(errno));
		return -errno;
	}
	char *buf = NULL;
	size_t cap = 0;
	off_t off = 0;
	int r = 0;
	for (;;) {
		uint32_t h[4] = { 0 };
		if (pread(fd, h, sizeof(h), off) != (ssize_t)sizeof(h) || h[0] != LOG_MAGIC ||
		    h[3] >= LOG_DIRECT_MAX_ALIGN) {
			if (h[0] != 0)
				log_warn("storage: replay %s: stopped at a damaged header at %lld", path,
					 (long long)off);
			break; /* zero-filled space, the end of the file, or a record cut off */
		}
		if (h[1] > cap) {
			char *nb = realloc(buf, h[1]);
			if (!nb) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
			cap = h[1];
		}
		if (pread(fd, buf, h[1], off + LOG_HEADER) != (ssize_t)h[1] || crc32c(0, buf, h[1]) != h[2]) {
			/* A torn record: it was never acknowledged, and nothing after it was. */
			log_warn("storage: replay %s: ignored a torn record at %lld", path, (long long)off);
			break;
		}
		char *err = NULL;
		rocksdb_writebatch_t *b = rocksdb_writebatch_create_from(buf, h[1]);
		rocksdb_write(st->db, st->wopts_nowal, b, &err);
		rocksdb_writebatch_destroy(b);
		if (err) {
			log_error("storage: replay %s at %lld: %s", path, (long long)off, err);
			free(err);
			r = -EIO;
			break;
		}
		(*records)++;
		off += LOG_HEADER + h[1] + h[3]; /* h[3]: padding to the direct I/O alignment */
	}
	free(buf);
	close(fd);
	return r;
}

/* Every log in log_dir, in replay order (by sequence number, then core): 0 with *out
 * (the caller frees it) and *count filled, or a negative errno. */
static int list_logs(struct store *st, struct log_file **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	DIR *d = opendir(st->log_dir);
	if (!d)
		return -errno;
	struct log_file *files = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		struct log_file f;
		if (parse_name(e->d_name, &f.core, &f.seq) < 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct log_file *nf = realloc(files, cap * sizeof(*files));
			if (!nf) {
				closedir(d);
				free(files);
				return -ENOMEM;
			}
			files = nf;
		}
		snprintf(f.name, sizeof(f.name), "%s", e->d_name);
		files[n++] = f;
	}
	closedir(d);
	if (n)
		qsort(files, n, sizeof(*files), cmp_log);
	*out = files;
	*count = n;
	return 0;
}

/* Deletes the logs of files[0..n), oldest first (see "dropping logs"). */
static void drop_files(struct store *st, const struct log_file *files, size_t n)
{
	int dfd = open(st->log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < n; i++) {
		char path[1000];
		snprintf(path, sizeof(path), "%s/%s", st->log_dir, files[i].name);
		drop_file(dfd, path);
	}
	if (dfd >= 0)
		close(dfd);
}

int store_replay_logs(struct store *st)
{
	struct log_file *files;
	size_t n;
	int r = list_logs(st, &files, &n);
	if (r < 0 || n == 0)
		return r;
	uint64_t records = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		char path[1000];
		snprintf(path, sizeof(path), "%s/%s", st->log_dir, files[i].name);
		r = replay_file(st, path, &records);
	}
	if (r == 0) {
		log_info("storage: replayed %llu commit records from %zu logs", (unsigned long long)records, n);
		/* Make the replayed state RocksDB's own before the logs go. */
		r = store_flush_all(st);
	}
	if (r == 0)
		drop_files(st, files, n);
	free(files);
	return r;
}

void store_remove_all_logs(struct store *st)
{
	struct log_file *files;
	size_t n;
	if (list_logs(st, &files, &n) == 0)
		drop_files(st, files, n);
	free(files);
}
