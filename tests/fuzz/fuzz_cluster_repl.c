/* libFuzzer target: replication frames (dataplane/obj/cluster_repl_wire.h), which come off
 * a socket anyone reaching a box's peer port can write to. An accepted header writes back
 * to the same bytes; an append's records never reach past its body, and the follower's
 * verdict on it stays within its log. */
#include "cluster_repl_wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The follower's log in the verdict: epochs that only grow, one per lsn. */
static int64_t epoch_at(void *arg, uint64_t lsn)
{
	(void)arg;
	return (int64_t)(lsn / 4 + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t at = 0;
	while (at < size) {
		struct obj_repl_hdr h;
		long n = obj_repl_parse_hdr(data + at, size - at, 4096, 1u << 16, &h);
		if (n <= 0)
			break;
		unsigned char back[OBJ_REPL_HDR];
		obj_repl_put_hdr(back, &h);
		if (memcmp(back, data + at, OBJ_REPL_HDR) != 0 || (size_t)n < OBJ_REPL_HDR)
			abort();
		if ((size_t)n > size - at)
			break; /* the body is not all here */
		if (h.type == OBJ_REPL_APPEND) {
			int64_t epochs[64];
			size_t off = 0;
			uint32_t i = 0;
			for (; i < h.count; i++) {
				struct obj_repl_rec r;
				long next = obj_repl_next_rec(data + at + OBJ_REPL_HDR, h.body_len, off,
							      h.epoch, &r);
				if (next < 0)
					break;
				if ((size_t)next <= off || (size_t)next > h.body_len ||
				    r.data + r.len > data + at + OBJ_REPL_HDR + h.body_len)
					abort();
				if (i < 64)
					epochs[i] = r.epoch;
				off = (size_t)next;
			}
			if (i == h.count && h.count <= 64) {
				struct obj_repl_log lg = { .max_epoch = (int64_t)(size & 7),
							   .end = size & 31, .epoch_at = epoch_at };
				struct obj_repl_verdict v = obj_repl_judge(&lg, &h, epochs);
				if (v.status == OBJ_REPL_OK &&
				    (v.cut > lg.end || v.skip > h.count || v.cut < h.prev_lsn))
					abort();
				if (v.status == OBJ_REPL_MISMATCH && v.reply > lg.end)
					abort();
			}
		}
		at += (size_t)n;
	}
	uint64_t d[5];
	for (unsigned i = 0; i < 5; i++)
		d[i] = i < size ? data[i] : 0;
	uint64_t c = obj_repl_commit(d, 5, 3, size > 5 ? data[5] : 0, 0);
	unsigned ge = 0;
	for (unsigned i = 0; i < 5; i++)
		ge += d[i] >= c;
	if (c && ge < 3)
		abort(); /* a commit point fewer than a quorum hold */
	return 0;
}
