/* Per-core group commit and the output gate. Every event's writes join the core's open
 * batch; at the end of a loop turn the open batch, if any, is framed as a commit-log
 * record and made durable on the core's io_uring: one O_DIRECT writev with RWF_DSYNC where
 * the file system allows (no io-wq thread in the way), else a buffered writev linked to an
 * fdatasync (both run in io-wq). Up to COMMIT_MAX_INFLIGHT records are on their way at
 * once: a second sync queued behind the first lets the device take them back to back.
 * Completions are taken in order; each applies its batch to RocksDB and releases the
 * responses held behind it and the notes (sync() callbacks, alarm changes) waiting for it.
 *
 *   events --> [open batch] --turn end--> [in flight: direct dsync write] x2 --> apply, release
 *
 * A failed commit fails its batch and every batch after it, in flight or open (their writes
 * may build on it): their responses become 500 (507 when the disk is full), their notes
 * hear the error, and the runtime resets their objects (commit_events.on_failed). With
 * cluster.replication a durable batch's messages are held further, in order, until the
 * replicator says its records are on a majority of their slots' copies (cluster_ship.h). (A buffered writev with RWF_DSYNC measured slower than the linked pair here,
 * 30,945 against about 47,000 durable increments/s: it also goes through io-wq, and holds
 * the worker for the whole sync. See bench/README.md for the direct I/O figures.) */
#include "commit.h"
#include "base_assert.h"
#include "cluster_capture.h"
#include "cluster_gate.h"
#include "cluster_ship.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "object-t.h"
#include "store.h"
#include "ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct commit_op {
	uint8_t which; /* 0 write, 1 sync (buffered logs only) */
} __attribute__((aligned(8)));

/* Records on their way to disk at once. */
#define COMMIT_MAX_INFLIGHT 2

struct commit_batch {
	struct commit_op op[2];
	struct store_log_record rec;
	struct store_batch *b;
	uint64_t seq;
	unsigned txns;
	struct core_msg *gated_head, *gated_tail; /* responses and socket sends, in order */
	struct commit_note *notes_head, *notes_tail; /* waiting for its outcome */
	long res[2];
	unsigned ncqe, nops; /* completions in, completions expected (1 or 2) */
	struct store_log_io io;
	struct commit_batch *next; /* durable, waiting to be applied */
};

/* A durable batch's messages waiting for its replication (cluster.replication), or for an
 * older batch's: the gate opens in batch order. */
struct commit_held {
	struct commit_held *next;
	uint64_t seq;
	int8_t state; /* 0 waiting for the replicator, 1 replicated, -1 not (answered late) */
	struct core_msg *head, *tail;
};

struct commit_core {
	const struct commit_events *ev;
	struct store *store;
	uint64_t min_free_bytes;
	struct store_log *log;
	struct commit_batch *open;
	struct commit_batch *spare; /* free batches, linked through next */
	unsigned nspare;
	struct commit_batch *inflight[COMMIT_MAX_INFLIGHT]; /* oldest first */
	unsigned ninflight;
	struct commit_batch *unapplied_head, *unapplied_tail;
	uint64_t next_seq, durable_seq, applied_seq;
	uint64_t gate_seq; /* newest batch whose messages went out: durable_seq unless held */
	struct commit_held *held_head, *held_tail; /* oldest first */
	uint64_t space_checked_ms;
	int space_low;
	struct commit_note *ready_head, *ready_tail; /* outcomes to deliver at the hook */
	struct obj_commit_counters ctr;
};

static struct commit_batch *batch_get(struct commit_core *cc)
{
	struct commit_batch *cb = cc->spare;
	if (cb) {
		cc->spare = cb->next;
		cc->nspare--;
	} else {
		cb = calloc(1, sizeof(*cb));
		if (!cb)
			return NULL;
		cb->b = store_batch_new();
		cb->op[1].which = 1;
	}
	cb->seq = ++cc->next_seq;
	cb->txns = 0;
	cb->gated_head = cb->gated_tail = NULL;
	cb->notes_head = cb->notes_tail = NULL;
	cb->ncqe = 0;
	cb->next = NULL;
	return cb;
}

static void batch_free(struct commit_batch *cb)
{
	store_log_record_release(&cb->rec);
	store_batch_free(cb->b);
	free(cb);
}

static void batch_put(struct commit_core *cc, struct commit_batch *cb)
{
	/* Kept for reuse: a core cycles through a handful (open, in flight, unapplied). */
	store_batch_clear(cb->b);
	if (cc->nspare < COMMIT_MAX_INFLIGHT + 2) {
		cb->next = cc->spare;
		cc->spare = cb;
		cc->nspare++;
		return;
	}
	batch_free(cb);
}

struct store_batch *commit_open_batch(struct core *c, uint64_t *seq)
{
	struct commit_core *cc = c->obj->commit;
	if (!cc->open && !(cc->open = batch_get(cc)))
		return NULL;
	cc->open->txns++;
	cc->ctr.commits++;
	*seq = cc->open->seq;
	return cc->open->b;
}

/* How often each core looks at the free space (statvfs) while writes come in. */
#define SPACE_CHECK_MS 50

int commit_space_ok(struct core *c)
{
	struct commit_core *cc = c->obj->commit;
	if (c->now_ms >= cc->space_checked_ms + SPACE_CHECK_MS) {
		cc->space_checked_ms = c->now_ms;
		int64_t free_bytes = store_free_bytes(cc->store);
		int low = free_bytes >= 0 && (uint64_t)free_bytes < cc->min_free_bytes;
		if (low != cc->space_low)
			log_warn(low ? "core %u: storage: %lld bytes free, under the %llu reserve: refusing writes (507)"
				     : "core %u: storage: %lld bytes free again: accepting writes",
				 c->index, (long long)free_bytes, (unsigned long long)cc->min_free_bytes);
		cc->space_low = low;
	}
	if (cc->space_low)
		cc->ctr.space_refusals++;
	return !cc->space_low;
}

uint64_t commit_applied_seq(struct core *c) { return c->obj->commit->applied_seq; }
uint64_t commit_durable_seq(struct core *c) { return c->obj->commit->durable_seq; }
uint64_t commit_gate_seq(struct core *c) { return c->obj->commit->gate_seq; }

static void msgs_append(struct core_msg **h, struct core_msg **t, struct core_msg *m)
{
	m->next = NULL;
	if (*t)
		(*t)->next = m;
	else
		*h = m;
	*t = m;
}

/* The open or in-flight batch numbered seq, or NULL. */
static struct commit_batch *batch_of_seq(struct commit_core *cc, uint64_t seq)
{
	if (cc->open && cc->open->seq == seq)
		return cc->open;
	for (unsigned i = 0; i < cc->ninflight; i++)
		if (cc->inflight[i]->seq == seq)
			return cc->inflight[i];
	return NULL;
}

void commit_gate_msg(struct core *c, struct core_msg *m, uint64_t seq)
{
	struct commit_core *cc = c->obj->commit;
	/* Completions come in order, so holding a message behind its batch holds it behind
	 * every older one too. */
	cc->ctr.gated++;
	if (seq <= cc->durable_seq) {
		/* Durable, its replication not yet through: behind the first batch held at or
		 * after it. */
		struct commit_held *h = cc->held_head;
		while (h && h->seq < seq)
			h = h->next;
		if (!h) /* a failed batch's (durable_seq skipped past it): in order, at the end */
			h = cc->held_tail;
		DURO_ASSERT(h);
		msgs_append(&h->head, &h->tail, m);
		return;
	}
	struct commit_batch *cb = batch_of_seq(cc, seq);
	DURO_ASSERT(cb);
	msgs_append(&cb->gated_head, &cb->gated_tail, m);
}

void commit_gate(struct core *c, struct http_exchange *ex, uint64_t seq)
{
	if (seq <= c->obj->commit->gate_seq) {
		/* The lease is checked as the answer leaves: its event may have begun (or its
		 * continuation been due) before a pause that outlived the lease. */
		if (obj_cluster_may_answer(c))
			http_respond(c, ex);
		else
			obj_cluster_answer_late(c, ex);
		return;
	}
	ex->msg.type = MSG_HTTP_RESPONSE;
	commit_gate_msg(c, &ex->msg, seq);
}

/* Appends the notes head..tail (linked) to a list. */
static void notes_append(struct commit_note **lh, struct commit_note **lt, struct commit_note *head,
			 struct commit_note *tail)
{
	if (!head)
		return;
	if (*lt)
		(*lt)->next = head;
	else
		*lh = head;
	*lt = tail;
}

void commit_note(struct core *c, uint64_t seq, struct commit_note *n)
{
	struct commit_core *cc = c->obj->commit;
	n->next = NULL;
	n->status = 0;
	struct commit_batch *cb = seq > cc->durable_seq ? batch_of_seq(cc, seq) : NULL;
	if (cb)
		notes_append(&cb->notes_head, &cb->notes_tail, n, n);
	else /* already durable (or void): the outcome is known */
		notes_append(&cc->ready_head, &cc->ready_tail, n, n);
}

/* Delivers the outcomes known at the start of this hook; notes that their callbacks make
 * wait for the next turn, so a sync() from a sync callback cannot recurse. */
static void run_ready_notes(struct core *c)
{
	struct commit_core *cc = c->obj->commit;
	struct commit_note *n = cc->ready_head;
	cc->ready_head = cc->ready_tail = NULL;
	while (n) {
		struct commit_note *next = n->next;
		n->next = NULL;
		n->fn(c, n, n->status);
		n = next;
	}
}

static void release_msgs(struct core *c, struct core_msg *m, int err, int unreplicated);

static void release(struct core *c, struct commit_batch *cb, int err)
{
	struct commit_core *cc = c->obj->commit;
	for (struct commit_note *n = cb->notes_head; n; n = n->next)
		n->status = err;
	notes_append(&cc->ready_head, &cc->ready_tail, cb->notes_head, cb->notes_tail);
	cb->notes_head = cb->notes_tail = NULL;
	struct core_msg *m = cb->gated_head;
	cb->gated_head = cb->gated_tail = NULL;
	release_msgs(c, m, err, 0);
}

/* Sends (err 0) or fails the messages m (linked). unreplicated: their batch's writes are
 * durable here but not known to be on a majority of copies (cluster.replication): answered
 * as of unknown outcome, as after the lease. */
static void release_msgs(struct core *c, struct core_msg *m, int err, int unreplicated)
{
	struct commit_core *cc = c->obj->commit;
	/* Cluster mode: durable here, but past the lease nothing may leave (point 14 of
	 * tests/model/README.md): answers become 503s of unknown outcome, messages to
	 * sockets are dropped. Calls and notes hear nothing new: they stay on this box. */
	int late = err == 0 && (unreplicated || !obj_cluster_may_answer(c));
	while (m) {
		struct core_msg *next = m->next;
		if (m->type == MSG_WS_BATCH) {
			/* Messages that followed writes now lost are not sent. */
			if (err == 0 && !late)
				ws_batch_send(c, (struct ws_batch *)m);
			else
				ws_batch_drop(c, (struct ws_batch *)m);
		} else if (m->type == MSG_OBJ_CALL) {
			cc->ev->release_msg(c, m, err);
		} else {
			struct http_exchange *ex = (struct http_exchange *)m;
			if (err == 0 && late)
				obj_cluster_answer_late(c, ex);
			else if (err == 0)
				http_respond(c, ex);
			else if (err == -ENOSPC)
				http_respond_error(c, ex, 507, "storage full: the write was not saved");
			else
				http_respond_error(c, ex, 500, "storage failure: the write was not saved");
		}
		m = next;
	}
}

static void commit_failed(struct core *c, struct commit_batch *cb, int r);

static void apply_pending(struct core *c)
{
	struct commit_core *cc = c->obj->commit;
	while (cc->unapplied_head) {
		struct commit_batch *cb = cc->unapplied_head;
		if (store_apply(cc->store, cb->b) < 0) {
			cc->ctr.apply_retries++;
			return; /* durable in the log; reads are served from the caches meanwhile */
		}
		cc->applied_seq = cb->seq;
		obj_cluster_capture_batch(c, cb->b); /* a slot move's live tail, if any */
		cc->unapplied_head = cb->next;
		if (!cc->unapplied_head)
			cc->unapplied_tail = NULL;
		batch_put(cc, cb);
	}
}

/* cluster.replication: ships cb's records of the slots this box owns to the replicator
 * and, when it must wait for them (or an older batch still waits), moves its messages to
 * the held list. Its notes are heard now: they are this box's own (sync(), alarms). */
static void hold_for_replication(struct core *c, struct commit_batch *cb)
{
	struct commit_core *cc = c->obj->commit;
	int n = c->obj->rt->cfg->replicate ? obj_cluster_ship_batch(c, cb->b, cb->seq) : 0;
	if (n == 0 && !cc->held_head) {
		cc->gate_seq = cb->seq;
		return;
	}
	struct commit_held *h = malloc(sizeof(*h));
	if (!h) {
		/* Nothing to hold them in: answered as of unknown outcome. The replicator's
		 * word on this seq, if any, finds no entry and is ignored. */
		struct core_msg *m = cb->gated_head;
		cb->gated_head = cb->gated_tail = NULL;
		release_msgs(c, m, 0, 1);
		if (!cc->held_head)
			cc->gate_seq = cb->seq;
		return;
	}
	h->next = NULL;
	h->seq = cb->seq;
	h->state = n > 0 ? 0 : n == 0 ? 1 : -1;
	h->head = cb->gated_head;
	h->tail = cb->gated_tail;
	cb->gated_head = cb->gated_tail = NULL;
	if (cc->held_tail)
		cc->held_tail->next = h;
	else
		cc->held_head = h;
	cc->held_tail = h;
}

/* The replicator's words on held batches, then the held batches whose turn it is. */
static void release_held(struct core *c)
{
	struct commit_core *cc = c->obj->commit;
	uint64_t seq[64];
	uint8_t ok[64];
	unsigned n;
	while ((n = obj_cluster_ship_poll(c, seq, ok, 64)) > 0) {
		struct commit_held *h = cc->held_head;
		for (unsigned i = 0; i < n; i++) {
			while (h && h->seq < seq[i])
				h = h->next;
			if (h && h->seq == seq[i] && h->state == 0)
				h->state = ok[i] ? 1 : -1;
		}
	}
	while (cc->held_head && cc->held_head->state != 0) {
		struct commit_held *h = cc->held_head;
		cc->held_head = h->next;
		if (!cc->held_head)
			cc->held_tail = NULL;
		if (h->state < 0)
			cc->ctr.unreplicated++;
		cc->gate_seq = h->seq;
		release_msgs(c, h->head, 0, h->state < 0);
		free(h);
	}
	if (!cc->held_head)
		cc->gate_seq = cc->durable_seq;
}

static void fail_batch(struct core *c, struct commit_batch *cb, int err)
{
	release(c, cb, err);
	cb->txns = 0;
}

static void inflight_pop(struct commit_core *cc)
{
	memmove(cc->inflight, cc->inflight + 1, (cc->ninflight - 1) * sizeof(cc->inflight[0]));
	cc->ninflight--;
}

/* Takes the oldest record in flight once both its completions are in. */
static void commit_done(struct core *c)
{
	struct commit_core *cc = c->obj->commit;
	while (cc->ninflight && cc->inflight[0]->ncqe == cc->inflight[0]->nops) {
		struct commit_batch *cb = cc->inflight[0];
		inflight_pop(cc);
		c->file_ops--;
		if (cb->nops == 2)
			c->offloaded--;
		int r = store_log_done(cc->log, &cb->rec, cb->res[0], cb->res[1]);
		if (r == 0) {
			cc->durable_seq = cb->seq;
			cc->ctr.syncs++;
			hold_for_replication(c, cb);
			release(c, cb, 0);
			if (cc->unapplied_tail)
				cc->unapplied_tail->next = cb;
			else
				cc->unapplied_head = cb;
			cc->unapplied_tail = cb;
			apply_pending(c);
			continue;
		}
		if (r == -ECANCELED) {
			/* Voided by an earlier failure, which already answered its waiters. */
			batch_put(cc, cb);
			continue;
		}
		commit_failed(c, cb, r);
	}
}

/* The record is cut off the log: neither it nor anything after it will ever be durable.
 * Everyone waiting hears so; their objects start over from storage. */
static void commit_failed(struct core *c, struct commit_batch *cb, int r)
{
	struct commit_core *cc = c->obj->commit;
	cc->ctr.failures++;
	log_error("core %u: commit of %u transactions failed (%s): answering %d, resetting their objects",
		  c->index, cb->txns, strerror(-r), r == -ENOSPC ? 507 : 500);
	uint64_t failed_from = cb->seq;
	fail_batch(c, cb, r);
	batch_put(cc, cb);
	/* Later records in flight are void even if their own sync succeeds: they wait for
	 * their completions (the kernel still holds their buffers) and fail then. */
	for (unsigned i = 0; i < cc->ninflight; i++)
		fail_batch(c, cc->inflight[i], r);
	if (cc->open) {
		fail_batch(c, cc->open, r);
		batch_put(cc, cc->open);
		cc->open = NULL;
	}
	/* Sequence numbers of failed batches never become durable: skip past them. */
	cc->durable_seq = cc->next_seq;
	if (!cc->held_head)
		cc->gate_seq = cc->durable_seq;
	/* Nothing of the failed batches is in RocksDB: treat them as applied (as nothing). */
	if (!cc->unapplied_head)
		cc->applied_seq = cc->next_seq;
	cc->ev->on_failed(c, failed_from);
}

static void commit_cqe(struct core *c, void *ptr, struct io_uring_cqe *cqe)
{
	struct commit_op *op = ptr;
	struct commit_batch *cb = LIST_CONTAINER(op - op->which, struct commit_batch, op);
	core_did_work(c);
	cb->res[op->which] = cqe->res;
	if (++cb->ncqe == cb->nops)
		commit_done(c);
}

/* End of a loop turn: send the open batch to disk unless one is already on its way. */
static void commit_hook(struct core *c)
{
	struct commit_core *cc = c->obj->commit;
	if (cc->held_head)
		release_held(c);
	if (cc->ready_head)
		run_ready_notes(c);
	if (cc->unapplied_head)
		apply_pending(c);
	if (!cc->unapplied_head)
		store_log_retire(cc->log); /* RocksDB holds all they made durable */
	if (cc->ninflight == COMMIT_MAX_INFLIGHT || !cc->open || cc->open->txns == 0)
		return;
	struct commit_batch *cb = cc->open;
	if (store_log_prepare(cc->log, cb->b, &cb->rec, &cb->io) < 0) {
		/* No memory for the aligned copy: the batch stays open (its responses held) and is
		 * tried again next turn. */
		if (cc->ctr.prepare_retries++ % 1000 == 0)
			log_warn("core %u: commit of %u transactions waits for memory", c->index, cb->txns);
		return;
	}
	cc->open = NULL;
	cc->inflight[cc->ninflight++] = cb;
	cb->nops = cb->io.dsync ? 1 : 2;
	cb->res[1] = 0;
	core_sqe_reserve(c, cb->nops);
	struct io_uring_sqe *w = core_sqe(c);
	io_uring_prep_writev(w, cb->io.fd, cb->io.iov, cb->io.niov, cb->io.offset);
	io_uring_sqe_set_data64(w, core_tag(&cb->op[0], CQE_STORE));
	if (cb->io.dsync) {
		w->rw_flags = RWF_DSYNC;
	} else {
		w->flags |= IOSQE_IO_LINK; /* the sync runs only after the write succeeded */
		struct io_uring_sqe *s = core_sqe(c);
		io_uring_prep_fsync(s, cb->io.fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(s, core_tag(&cb->op[1], CQE_STORE));
	}
	cc->ctr.batches++;
	cc->ctr.batched_txns += cb->txns;
	c->file_ops++;
	if (cb->nops == 2)
		c->offloaded++; /* buffered: io-wq */
}

int commit_core_init(struct core *c, const struct commit_events *ev)
{
	struct commit_core *cc = calloc(1, sizeof(*cc));
	if (!cc)
		return -ENOMEM;
	c->obj->commit = cc;
	cc->ev = ev;
	cc->store = c->obj->rt->store;
	cc->min_free_bytes = c->obj->rt->cfg->store.min_free_bytes;
	int r = store_log_open(cc->store, c->index, &cc->log);
	if (r < 0)
		return r;
	const char *every = getenv("DURO_FAULT_SYNC_EVERY");
	if (every && atoi(every) > 0) {
		log_warn("core %u: fault injection: every %d-th commit sync fails", c->index, atoi(every));
		store_log_inject_sync_failures(cc->log, (unsigned)atoi(every));
	}
	core_set_cqe_handler(c, CQE_STORE, commit_cqe);
	core_add_hook(c, commit_hook);
	return 0;
}

int commit_idle(struct core *c)
{
	struct commit_core *cc = c->obj->commit;
	return !cc || (!cc->ninflight && (!cc->open || cc->open->txns == 0) && !cc->unapplied_head &&
		       !cc->ready_head);
}

static void discard_notes(struct core *c, struct commit_note *n)
{
	while (n) {
		struct commit_note *next = n->next;
		n->fn(c, n, COMMIT_NOTE_DISCARD);
		n = next;
	}
}

void commit_core_fini(struct core *c)
{
	struct commit_core *cc = c->obj ? c->obj->commit : NULL;
	if (!cc)
		return;
	if (cc->unapplied_head)
		apply_pending(c);
	if (cc->unapplied_head) {
		/* Durable in the log alone: deleting the logs at the stop would lose them. */
		log_error("core %u: stopping with committed batches RocksDB refused: the commit logs stay for the next start",
			  c->index);
		store_log_keep_all(cc->log);
	}
	/* Outcomes nobody will hear any more: the process is stopping. */
	discard_notes(c, cc->ready_head);
	cc->ready_head = cc->ready_tail = NULL;
	if (cc->ctr.batches)
		log_info("core %u: %llu commits in %llu syncs (%.1f per sync), %llu failed", c->index,
			 (unsigned long long)cc->ctr.commits, (unsigned long long)cc->ctr.syncs,
			 (double)cc->ctr.batched_txns / (double)cc->ctr.batches,
			 (unsigned long long)cc->ctr.failures);
	store_log_close(cc->log);
	/* Held messages go unanswered, as those of batches in flight: the process stops. */
	for (struct commit_held *h = cc->held_head, *next; h; h = next) {
		next = h->next;
		free(h);
	}
	for (struct commit_batch *cb = cc->spare, *next; cb; cb = next) {
		next = cb->next;
		batch_free(cb);
	}
	struct commit_batch *bs[1 + COMMIT_MAX_INFLIGHT] = { cc->open };
	for (unsigned i = 0; i < cc->ninflight; i++)
		bs[1 + i] = cc->inflight[i];
	for (unsigned i = 0; i < 1 + cc->ninflight; i++)
		if (bs[i]) {
			discard_notes(c, bs[i]->notes_head);
			batch_free(bs[i]);
		}
	for (struct commit_batch *cb = cc->unapplied_head, *next; cb; cb = next) {
		next = cb->next;
		batch_free(cb);
	}
	free(cc);
	c->obj->commit = NULL;
}

const struct obj_commit_counters *commit_counters(struct core *c)
{
	return &c->obj->commit->ctr;
}
