/* libFuzzer target: the peer listener's wire (control/cluster_peer_wire.h) — the request
 * line anyone reaching a box's peer port may send, and the slot stream a taker reads.
 * An accepted request prints back to itself; records never reach past the bytes given. */
#include "cluster_peer_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	char kind[CLUSTER_PEER_KIND_MAX], mac[CLUSTER_PEER_MAC_HEX + 1];
	unsigned slot;
	int64_t epoch;
	if (cluster_peer_parse_request(p, size, 4096, kind, &slot, &epoch, mac) == 0) {
		char back[128];
		int n = snprintf(back, sizeof(back), "GET /%s/%u/%" PRId64 "/%s HTTP/1.0", kind, slot,
				 epoch, mac);
		char k2[CLUSTER_PEER_KIND_MAX], m2[CLUSTER_PEER_MAC_HEX + 1];
		unsigned s2;
		int64_t e2;
		if (slot >= 4096 || epoch < 0 || n <= 0 ||
		    cluster_peer_parse_request(back, (size_t)n, 4096, k2, &s2, &e2, m2) < 0 ||
		    strcmp(k2, kind) || s2 != slot || e2 != epoch || strcmp(m2, mac) ||
		    !cluster_peer_mac_equal(m2, mac))
			abort();
	}
	/* The same bytes as a stream: record after record, each within what is left. */
	size_t at = 0;
	for (;;) {
		struct cluster_peer_rec rec;
		long used = cluster_peer_next_record(p + at, size - at, 1u << 20, &rec);
		if (used <= 0) {
			if (used == 0 && rec.need <= size - at)
				abort(); /* asked for bytes it had */
			break;
		}
		if ((size_t)used > size - at)
			abort();
		if (rec.tag == 'F' && rec.name + rec.name_len > p + at + (size_t)used)
			abort();
		if ((rec.tag == 'R' || rec.tag == 'D' || rec.tag == 'X') &&
		    rec.val + rec.val_len > p + at + (size_t)used)
			abort();
		at += (size_t)used;
	}
	return 0;
}
