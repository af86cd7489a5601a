/* What etcd's v3 JSON gateway sends and takes, pure and without I/O: base64 for keys and
 * values, int64 fields that arrive as strings, key-values, response headers, errors, and
 * the newline-separated messages of a watch stream. Every input here is untrusted (etcd's
 * answers, other boxes' values): fuzz_etcd runs all of it. */
#ifndef DURO_CONTROL_ETCD_WIRE_H
#define DURO_CONTROL_ETCD_WIRE_H

#include "http_parse.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Longest key and value duro keeps from etcd (its own keys and values are far smaller);
 * longer ones are refused with -E2BIG and counted by the caller. */
#define ETCD_MAX_KEY 192
#define ETCD_MAX_VALUE 1024

/* Standard base64 (RFC 4648, padded). Returns the encoded length (out gets a NUL too), or
 * -ENOSPC when out[cap] is too small. */
long etcd_b64_encode(const void *in, size_t n, char *out, size_t cap);
/* Decodes standard or URL-safe base64, padded or not; whitespace is an error. Returns the
 * decoded length, -EINVAL for bad input, -ENOSPC when out[cap] is too small. */
long etcd_b64_decode(const char *in, size_t n, void *out, size_t cap);

/* An int64 field: a JSON integer or a string of decimal digits (the gateway's way); absent
 * is 0. 0, or -EINVAL for anything else (a real, an overflow, text). */
int etcd_json_i64(const json_t *v, int64_t *out);

/* One key-value as a range or a watch event carries it. */
struct etcd_kv {
	char key[ETCD_MAX_KEY + 1];
	char value[ETCD_MAX_VALUE + 1]; /* NUL-terminated for convenience; may hold NULs */
	size_t key_len, value_len;
	int64_t create_rev, mod_rev, version, lease;
};

/* Reads {"key", "value", "create_revision", "mod_revision", "version", "lease"} (either
 * spelling, snake or lowerCamel). 0, -EINVAL (malformed), or -E2BIG (key or value too
 * long for duro). */
int etcd_parse_kv(const json_t *kv, struct etcd_kv *out);

/* header.revision of a reply; 0 or -EINVAL when absent or malformed. */
int etcd_parse_revision(const json_t *reply, int64_t *rev);

/* A gateway error reply ({"error": ..., "code": N, "message": ...}): 1 with the message in
 * msg[cap], 0 when reply is not one. */
int etcd_parse_error(const json_t *reply, char *msg, size_t cap);

/* A lease grant or keepalive reply (keepalive wraps it in "result"): the lease ID and the
 * TTL in seconds. 0; -ENOENT when the TTL is missing or not positive (the lease is gone);
 * -EINVAL when malformed. */
int etcd_parse_lease(const json_t *reply, int64_t *id, int64_t *ttl_s);

/* One watch event. */
enum etcd_event_type { ETCD_PUT, ETCD_DELETE };
struct etcd_event {
	enum etcd_event_type type;
	struct etcd_kv kv;
};

/* One message of a watch stream ({"result": {...}} or {"error": ...}). */
struct etcd_watch_msg {
	int64_t revision;   /* its header's */
	int64_t watch_id;
	int64_t compact_revision; /* non-zero: cancelled, the revision asked for is compacted */
	uint8_t created, canceled, error;
	size_t nevents;     /* all of them, including any the callback was not given */
	size_t bad_events;  /* malformed or too large (skipped) */
};

/* Parses one message, calling fn for each well-formed event in order (fn may be NULL).
 * 0, or -EINVAL when the message is not a watch message at all. */
int etcd_parse_watch(const json_t *msg, struct etcd_watch_msg *out,
		     void (*fn)(void *arg, const struct etcd_event *ev), void *arg);

/* The watch stream's framing: the length of the first complete line of buf[0..len)
 * including its '\n', 0 when there is none yet, or -E2BIG when len already exceeds max
 * without one (the caller drops the stream). */
long etcd_stream_line(const char *buf, size_t len, size_t max);

/* An HTTP/1.1 reply read as it arrives, its body decoded in place (chunked or not): the
 * framing of both a call's reply and the watch's endless stream.
 *
 *   buf: [ head | decoded body [head_len, dst) | (gap) | raw bytes [src, len) ]
 */
struct etcd_http {
	size_t head_len;        /* 0 until the head is in */
	int status, chunked;
	int64_t content_length; /* -1 when absent */
	struct http_chunked ch;
	size_t src, dst;
};
#define ETCD_MAX_HEAD 16384

/* Feeds buf[0..len): the caller only appends bytes, or moves them with etcd_http_consume.
 * eof: the peer closed after these. Returns 1 when the whole body is in [head_len, dst),
 * 0 when more bytes are needed (what is decoded so far is there too), -EPROTO for a bad
 * head or framing (or a close in the middle), -EFBIG for a body over max_body. */
int etcd_http_feed(struct etcd_http *h, char *buf, size_t len, int eof, uint64_t max_body);
/* Drops the first n decoded body bytes (the watch's handled messages); returns the
 * buffer's new length. */
size_t etcd_http_consume(struct etcd_http *h, char *buf, size_t len, size_t n);

/* The range_end that makes [key, end) the prefix key: key with its last byte raised (bytes
 * of 0xff dropped first); "\0" (all keys) when key is all 0xff. Returns end's length. */
size_t etcd_prefix_end(const char *key, size_t len, char *end);

#endif
