/* Replication's wire and its decisions (issue 19; tests/model/sim.py is the protocol):
 * frames an owner core and a follower exchange per (core, peer), and the pure rules over
 * them — a follower's verdict on an append, the owner's commit point, the up-to-date rule
 * of recovery. Frames come off a socket anyone on the network can reach: pure parsers over
 * the caller's bytes, fuzzed by fuzz_cluster_repl. Header-only: the fuzz target and the
 * unit test need nothing else.
 *
 * A frame is a 64-byte header, little-endian, then body_len bytes:
 *
 *     0  type u8    'A' append, 'K' its answer, 'S' seal, 'T' seal answer
 *     1  status u8  K and T: OBJ_REPL_OK, OBJ_REPL_STALE or OBJ_REPL_MISMATCH; else 0
 *     2  slot u16   below the slot count
 *     4  count u32  A: records in the body; else 0
 *     8  body_len u32
 *    12  zero u32
 *    16  epoch i64       the sender's epoch of the slot (K, T: the follower's max_epoch)
 *    24  prev_epoch i64  A: epoch of the record before the first one (0 before the log)
 *    32  prev_lsn u64    A: its lsn (0: the first record is lsn 1)
 *    40  lsn u64         A: lsn of the last record (prev_lsn + count); K: durable up to
 *                        it (OK) or the follower's log end to retry from (MISMATCH);
 *                        T: the follower's synced log end
 *    48  last_epoch i64  T: epoch of the record at lsn; else 0
 *    56  commit u64      A: the owner's commit point (the follower applies up to it)
 *
 * An append's body is count records, each [epoch i64][length u32][length bytes]: the
 * slot's records of one commit batch as the owner's commit log holds them (opaque here),
 * each with the epoch it was first written at (re-sent records keep it: point 1 of
 * tests/model/README.md). Other frames have no body. */
#ifndef DURO_OBJ_CLUSTER_REPL_WIRE_H
#define DURO_OBJ_CLUSTER_REPL_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define OBJ_REPL_HDR 64
#define OBJ_REPL_REC_HDR 12 /* a record's epoch and length */

enum obj_repl_type {
	OBJ_REPL_APPEND = 'A',
	OBJ_REPL_ACK = 'K',
	OBJ_REPL_SEAL = 'S',
	OBJ_REPL_SEALED = 'T',
};
enum obj_repl_status { OBJ_REPL_OK = 0, OBJ_REPL_STALE = 1, OBJ_REPL_MISMATCH = 2 };

struct obj_repl_hdr {
	uint8_t type, status;
	uint16_t slot;
	uint32_t count, body_len;
	int64_t epoch, prev_epoch, last_epoch;
	uint64_t prev_lsn, lsn, commit;
};

static inline uint64_t obj_repl_get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
static inline uint32_t obj_repl_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void obj_repl_put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (unsigned char)v;
}
static inline void obj_repl_put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

/* Writes h's header into out[OBJ_REPL_HDR] (the caller appends the body). */
static inline void obj_repl_put_hdr(unsigned char out[OBJ_REPL_HDR], const struct obj_repl_hdr *h)
{
	memset(out, 0, OBJ_REPL_HDR);
	out[0] = h->type;
	out[1] = h->status;
	out[2] = (unsigned char)h->slot;
	out[3] = (unsigned char)(h->slot >> 8);
	obj_repl_put32(out + 4, h->count);
	obj_repl_put32(out + 8, h->body_len);
	obj_repl_put64(out + 16, (uint64_t)h->epoch);
	obj_repl_put64(out + 24, (uint64_t)h->prev_epoch);
	obj_repl_put64(out + 32, h->prev_lsn);
	obj_repl_put64(out + 40, h->lsn);
	obj_repl_put64(out + 48, (uint64_t)h->last_epoch);
	obj_repl_put64(out + 56, h->commit);
}

/* Appends one record [epoch][len][rec] at out[0..cap): the bytes written, or 0 when it
 * does not fit. */
static inline size_t obj_repl_put_rec(unsigned char *out, size_t cap, int64_t epoch,
				      const void *rec, uint32_t len)
{
	if (cap < OBJ_REPL_REC_HDR || cap - OBJ_REPL_REC_HDR < len)
		return 0;
	obj_repl_put64(out, (uint64_t)epoch);
	obj_repl_put32(out + 8, len);
	memcpy(out + OBJ_REPL_REC_HDR, rec, len);
	return OBJ_REPL_REC_HDR + (size_t)len;
}

/* Reads the frame header at p[0..n) (untrusted). Returns the whole frame's length
 * (OBJ_REPL_HDR + body_len) with h filled; 0 when fewer than OBJ_REPL_HDR bytes are
 * there (nothing filled); -1 for a header that is not one: an unknown type or status, a
 * slot not below slots, a nonzero pad, an epoch not positive, a body longer than
 * max_body, an append whose lsn is not prev_lsn + count, whose previous record's epoch is
 * negative or above its epoch, with records and no body or a body and no records, or
 * another type with a body, a count or append fields. The body is not read: see
 * obj_repl_next_rec. */
static inline long obj_repl_parse_hdr(const void *buf, size_t n, unsigned slots,
				      uint32_t max_body, struct obj_repl_hdr *h)
{
	const unsigned char *p = buf;
	if (n < OBJ_REPL_HDR)
		return 0;
	struct obj_repl_hdr v = {
		.type = p[0], .status = p[1], .slot = (uint16_t)(p[2] | p[3] << 8),
		.count = obj_repl_get32(p + 4), .body_len = obj_repl_get32(p + 8),
		.epoch = (int64_t)obj_repl_get64(p + 16), .prev_epoch = (int64_t)obj_repl_get64(p + 24),
		.prev_lsn = obj_repl_get64(p + 32), .lsn = obj_repl_get64(p + 40),
		.last_epoch = (int64_t)obj_repl_get64(p + 48), .commit = obj_repl_get64(p + 56),
	};
	if (obj_repl_get32(p + 12) != 0 || v.slot >= slots || v.epoch <= 0 || v.body_len > max_body)
		return -1;
	switch (v.type) {
	case OBJ_REPL_APPEND:
		if (v.status != 0 || v.prev_epoch < 0 || v.prev_epoch > v.epoch || v.last_epoch != 0 ||
		    v.prev_lsn > UINT64_MAX - v.count || v.lsn != v.prev_lsn + v.count ||
		    (v.count == 0) != (v.body_len == 0) ||
		    (uint64_t)v.count * OBJ_REPL_REC_HDR > v.body_len)
			return -1;
		break;
	case OBJ_REPL_ACK:
	case OBJ_REPL_SEALED:
		if (v.status > OBJ_REPL_MISMATCH || v.count || v.body_len || v.prev_epoch ||
		    v.prev_lsn || v.commit || v.last_epoch < 0 || v.last_epoch > v.epoch ||
		    (v.type == OBJ_REPL_ACK && v.last_epoch))
			return -1;
		break;
	case OBJ_REPL_SEAL:
		if (v.status || v.count || v.body_len || v.prev_epoch || v.prev_lsn || v.lsn ||
		    v.last_epoch || v.commit)
			return -1;
		break;
	default:
		return -1;
	}
	*h = v;
	return (long)(OBJ_REPL_HDR + (size_t)v.body_len);
}

/* One record of an append's body: a view into the caller's bytes. */
struct obj_repl_rec {
	int64_t epoch;
	const unsigned char *data;
	uint32_t len;
};

/* Reads the record at body[at..body_len) of an append at epoch (untrusted): the offset
 * after it with rec filled, or -1 when it runs past the body or its epoch is not in
 * (0, epoch]. */
static inline long obj_repl_next_rec(const void *body, size_t body_len, size_t at, int64_t epoch,
				     struct obj_repl_rec *rec)
{
	const unsigned char *p = body;
	if (at > body_len || body_len - at < OBJ_REPL_REC_HDR)
		return -1;
	int64_t e = (int64_t)obj_repl_get64(p + at);
	uint32_t len = obj_repl_get32(p + at + 8);
	if (e <= 0 || e > epoch || body_len - at - OBJ_REPL_REC_HDR < len)
		return -1;
	rec->epoch = e;
	rec->data = p + at + OBJ_REPL_REC_HDR;
	rec->len = len;
	return (long)(at + OBJ_REPL_REC_HDR + len);
}

/* ---- the rules (sim.py's on_ae, release, adopt) ---- */

/* A follower's replica log of one slot, as the verdict needs it. epoch_at(arg, lsn) is the
 * epoch of its record at lsn, 1 <= lsn <= end. */
struct obj_repl_log {
	int64_t max_epoch; /* the greatest epoch it has seen in an append or a seal (durable
			    * before a seal is answered: point 4) */
	uint64_t end;      /* its last record's lsn, 0 for none */
	int64_t (*epoch_at)(void *arg, uint64_t lsn);
	void *arg;
};

/* What a follower does with an append. */
struct obj_repl_verdict {
	enum obj_repl_status status;
	uint64_t cut;   /* OK: keep records up to this lsn, drop the rest (a divergent suffix) */
	uint32_t skip;  /* OK: the first skip records are there already; write the others */
	uint64_t reply; /* STALE: its max_epoch; MISMATCH: the lsn to retry from */
};

/* The verdict on append h whose records' epochs are rec_epoch[0..h->count) (point 3 of
 * tests/model/README.md: logs match by prefix; a record of an older epoch than max_epoch
 * is refused whatever the clocks say). A record is the same when its lsn and epoch are:
 * the owner of an epoch writes each lsn once. On OK the follower raises max_epoch to
 * h->epoch, cuts, appends and acknowledges h->lsn after its sync. */
static inline struct obj_repl_verdict obj_repl_judge(const struct obj_repl_log *lg,
						     const struct obj_repl_hdr *h,
						     const int64_t *rec_epoch)
{
	struct obj_repl_verdict v = { .status = OBJ_REPL_OK };
	if (h->epoch < lg->max_epoch) {
		v.status = OBJ_REPL_STALE;
		v.reply = (uint64_t)lg->max_epoch;
		return v;
	}
	if (h->prev_lsn > lg->end ||
	    (h->prev_lsn > 0 && lg->epoch_at(lg->arg, h->prev_lsn) != h->prev_epoch)) {
		v.status = OBJ_REPL_MISMATCH;
		v.reply = h->prev_lsn == 0 ? 0 : (lg->end < h->prev_lsn - 1 ? lg->end : h->prev_lsn - 1);
		return v;
	}
	uint32_t i = 0;
	while (i < h->count && h->prev_lsn + i < lg->end &&
	       lg->epoch_at(lg->arg, h->prev_lsn + i + 1) == rec_epoch[i])
		i++;
	v.skip = i;
	/* Past what matched, what it holds diverges (or ends): drop it. Records that all
	 * matched leave a longer log alone (a late duplicate must not cut newer records). */
	v.cut = i < h->count ? h->prev_lsn + i : lg->end;
	return v;
}

/* The owner's commit point: the w-th greatest durable lsn among its voters' (its own
 * synced log included), durable[0..n). It counts only once it reaches the barrier, the
 * new owner's first record of its epoch (point 1): below that, the old commit stays.
 * Never goes back. */
static inline uint64_t obj_repl_commit(const uint64_t *durable, unsigned n, unsigned w,
				       uint64_t barrier, uint64_t old)
{
	if (w == 0 || w > n)
		return old;
	/* n is a voter count (at most five): pick the w-th greatest by counting. */
	uint64_t best = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned ge = 0;
		for (unsigned j = 0; j < n; j++)
			ge += durable[j] >= durable[i];
		if (ge >= w && durable[i] > best)
			best = durable[i];
	}
	if (best < barrier || best <= old)
		return old;
	return best;
}

/* Raft's up-to-date rule for recovery (point 3): 1 when the log ending at (epoch a, lsn
 * al) is longer than the one at (b, bl) — a greater last epoch, or the same and more
 * records. */
static inline int obj_repl_longer(int64_t a, uint64_t al, int64_t b, uint64_t bl)
{
	return a > b || (a == b && al > bl);
}

/* Copies needed for a quorum of nvoters: a majority. */
static inline unsigned obj_repl_quorum(unsigned nvoters)
{
	return nvoters / 2 + 1;
}

#endif
