/* The peer listener's wire (cluster_peer_wire.c): the request line a box taking a slot
 * sends, and the records of the slot stream it reads back. Both come off a socket anyone
 * on the network can reach: pure parsers over the caller's bytes, fuzzed by
 * fuzz_cluster_peer.
 *
 * Request: "GET /<kind>/<slot>/<epoch>/<mac> HTTP/1.x" (kind snap, tail, final or repl;
 * slot and epoch decimal; mac 16 lowercase hex digits). A repl request is followed by an
 * append frame and answered with a frame (cluster_repl_wire.h), not a stream. Stream: records of [tag u8, ...],
 * little-endian: 'F' family (index u8, name length u8, name), 'R' put / 'D' delete / 'X'
 * range deletion (family index u8, key length u32, value length u32, key, value or the
 * range's end), 'E' end (records u64). */
#ifndef DURO_CONTROL_CLUSTER_PEER_WIRE_H
#define DURO_CONTROL_CLUSTER_PEER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_PEER_KIND_MAX 8 /* with its NUL */
#define CLUSTER_PEER_MAC_HEX 16

/* Parses the request line at req[0..n) (the rest of the head is ignored). Returns 0 with
 * kind ("snap", "tail", "final" or "repl"), *slot (below slots), *epoch (at most 18 digits) and mac
 * (16 hex digits, NUL-terminated) filled, or -1. */
int cluster_peer_parse_request(const char *req, size_t n, unsigned slots,
			       char kind[CLUSTER_PEER_KIND_MAX], unsigned *slot, int64_t *epoch,
			       char mac[CLUSTER_PEER_MAC_HEX + 1]);

/* 1 when two MACs of CLUSTER_PEER_MAC_HEX characters are equal, in time that does not
 * depend on where they differ. */
int cluster_peer_mac_equal(const char *a, const char *b);

/* One record of the stream: views into the caller's bytes. */
struct cluster_peer_rec {
	char tag;          /* 'F', 'R', 'D', 'X' or 'E' */
	uint8_t family;    /* F, R, D, X: the sender's family index */
	const char *name;  /* F: the family's name (name_len bytes, not NUL-terminated) */
	uint8_t name_len;
	const char *key, *val; /* R, D, X (val: the value, or the range's end) */
	uint32_t key_len, val_len;
	uint64_t count;    /* E: the records the sender sent */
	size_t need;       /* when more bytes are needed: how many the record takes in all */
};

/* Reads the record at p[0..n): returns the bytes it takes (> 0) with rec filled; 0 when
 * p holds only part of it (rec->need says how many bytes it takes, once known, else
 * n + 1); -1 for a record that is not one (an unknown tag, a key or value longer than
 * max_len, a delete with a value). */
long cluster_peer_next_record(const char *p, size_t n, uint32_t max_len, struct cluster_peer_rec *rec);

#endif
