/* WebSocket and event-stream connections on the core that accepted them: the upgrade
 * hand-off from HTTP, frames in, shared encoded frames out, close handshakes, backpressure. */
#ifndef DURO_WS_WS_H
#define DURO_WS_WS_H

#include "core-t.h"
#include "http-t.h"
#include "net.h"
#include "ws_frame.h"

#include <stddef.h>
#include <stdint.h>

struct ws_config {
	size_t max_message_bytes;  /* 1009 above it; default 1 MiB, at most 32 MiB */
	size_t max_outbound_bytes; /* queued output per connection; over it: 1013; default 1 MiB */
	unsigned close_timeout_ms; /* wait for the peer's close frame, or a stalled send; 5 s */
};

enum ws_kind {
	WS_KIND_SOCKET, /* RFC 6455 WebSocket */
	WS_KIND_STREAM, /* text/event-stream (server-sent events): output only */
};

/* Names a socket anywhere in the process: core (8 bits), generation (24), slot (32). A
 * handle outlives its socket harmlessly: the generation no longer matches. */
typedef uint64_t ws_handle;
static inline unsigned ws_handle_core(ws_handle h) { return (unsigned)(h >> 56); }

struct ws_conn;

/* Events raised on the socket's core for the layer above. */
struct ws_events {
	/* A complete message (text already validated as UTF-8): msg->data[0..msg->len). The
	 * callee takes the reference on msg. */
	void (*on_message)(struct core *c, struct ws_conn *wc, int binary, struct buf *msg);
	/* The socket is gone: raised exactly once for a socket that was taken over, with the
	 * close code received (1005 none), sent for a violation, or 1006 for a dropped
	 * connection; clean when both close frames were exchanged. wc is freed after it. */
	void (*on_closed)(struct core *c, struct ws_conn *wc, unsigned code, const char *reason,
			  size_t rlen, int clean);
	/* A client socket (ws_client_prepare) opened (err 0: the server's 101 checked; it is
	 * now like an accepted socket, on_closed to come) or never will (err: -ECONNREFUSED
	 * and other connect errors, -ETIMEDOUT, -EPROTO a bad answer, -EKEYREJECTED a
	 * certificate refused, -EOPNOTSUPP the backend cannot dial, -ECANCELED closed or shut
	 * down first, -EIO the writes it waited for failed; wc is freed after it, no on_closed). */
	void (*on_open)(struct core *c, struct ws_conn *wc, int err);
};

struct ws_counters {
	uint64_t reserved, opened, closed, active, refused;
	uint64_t msgs_in, bytes_in, frames_out, bytes_out, pings;
	uint64_t closes_clean, closes_protocol, closes_utf8, closes_too_big, closes_slow;
	uint64_t closes_dropped, dropped_sends;
	uint64_t dials, client_failures, client_bad_answers; /* client sockets */
};

/* Sets up this core's socket table; `nb` is the backend connections belong to. */
int ws_core_init(struct core *c, const struct ws_config *cfg, const struct net_backend *nb,
		 const struct ws_events *ev, unsigned max_sockets);
void ws_core_fini(struct core *c);
const struct ws_counters *ws_counters(struct core *c);

/* Reserves a socket for an upgrade (or stream) request being routed, before anybody has
 * accepted it, so the accepting side can name it at once. NULL when the core is at its
 * socket limit (counted). `user` is the caller's, untouched here. */
struct ws_conn *ws_reserve(struct core *c, enum ws_kind kind, void *user);
ws_handle ws_conn_handle(const struct ws_conn *wc);
void *ws_conn_user(const struct ws_conn *wc);
/* The layer above's reference for this socket (its member record elsewhere). */
void ws_conn_set_ref(struct ws_conn *wc, uint64_t ref);
uint64_t ws_conn_ref(const struct ws_conn *wc);
/* The reservation becomes a live socket over `nc` (the 101 or stream head has been sent);
 * `rest` is what the client sent after its request. */
void ws_takeover(struct core *c, struct ws_conn *wc, struct net_conn *nc, const char *rest,
		 size_t len);
/* The reservation ends without a socket (refused, or the client left first). When
 * `accepted`, the other side already counts it as a member: on_closed is raised (1006). */
void ws_release(struct core *c, struct ws_conn *wc, int accepted);

/* ---- sending ---- */

/* Encoded bytes shared by every socket they go to. Made and freed on one core (`core`);
 * other cores only read them while they hold the batch that points at them. */
struct ws_payload {
	uint32_t refs; /* batches pointing here, counted on the owning core only */
	uint16_t core;
	uint16_t pooled;
	uint32_t len;
	char data[];
};

enum ws_batch_op {
	WS_SEND,  /* queue the payload on each target */
	WS_CLOSE, /* the payload is a close frame: queue it, then close each target */
	WS_CONNECT, /* no payload: dial each target (client sockets of this core) */
};

/* Sends from one core to sockets of one core. Made on the sending core; goes to the
 * sockets' core, which queues references (never copies) and hands it back once the
 * last byte is written. */
struct ws_batch {
	struct core_msg msg;
	struct ws_payload *frame;  /* WebSocket encoding */
	struct ws_payload *stream; /* event-stream encoding, or NULL: streams are skipped */
	uint32_t holds;            /* on the sockets' core: queued references */
	/* The payloads as the backend sees them on the sockets' core: it may send from them
	 * without copying, holding the batch past the last on_sent. */
	struct net_share share;
	uint16_t home;             /* the core that made it, and frees it */
	uint16_t dst, op;
	uint16_t close_code;
	uint32_t n, cap;
	ws_handle targets[];
};

/* A payload of len bytes (contents to be written by the caller), or NULL. */
struct ws_payload *ws_payload_new(struct core *c, size_t len);
/* Encodes a whole frame (header and data) into a new payload. */
struct ws_payload *ws_payload_frame(struct core *c, enum ws_opcode op, const void *data, size_t len);
/* Encodes an event-stream event: every line of data as a `data:` field, then a blank line. */
struct ws_payload *ws_payload_event(struct core *c, const void *data, size_t len);
/* Drops the caller's reference (on the owning core). */
void ws_payload_unref(struct core *c, struct ws_payload *p);

/* A batch for sockets of core `dst` with room for `cap` targets; takes a reference on each
 * payload given (stream may be NULL). NULL when out of memory. */
struct ws_batch *ws_batch_new(struct core *c, unsigned dst, enum ws_batch_op op,
			      struct ws_payload *frame, struct ws_payload *stream, unsigned cap);
/* Sends the batch to its core (or queues it here at once when local). Ownership passes
 * to the messaging; the batch comes back and is freed by itself. */
void ws_batch_send(struct core *c, struct ws_batch *b);
/* Frees a batch that was never sent. */
void ws_batch_free(struct core *c, struct ws_batch *b);
/* The same for a batch whose writes failed: a WS_CONNECT fails its sockets with -EIO. */
void ws_batch_drop(struct core *c, struct ws_batch *b);

/* Sends a text frame to one local socket directly (auto-responses); 0 or -ENOMEM. */
int ws_send_local(struct core *c, struct ws_conn *wc, enum ws_opcode op, const void *data,
		  size_t len);

/* Stops the socket with a close frame (code, reason), from this core. */
void ws_close_local(struct core *c, struct ws_conn *wc, unsigned code, const char *reason);
/* Closes every socket of this core with 1001 (going away), for shutdown; a peer that has
 * not finished the close handshake within_ms later is cut off. */
void ws_drain(struct core *c, unsigned within_ms);
uint64_t ws_open_sockets(struct core *c);

/* ---- client sockets (duro's own outbound WebSockets) ---- */

/* From dial to the server's 101; past it, the connection is cut off. */
#define WS_CLIENT_TIMEOUT_MS 10000

/* Makes a reservation (WS_KIND_SOCKET) a client socket to d (TLS when d->tls, d and the
 * name it points to copied), with its opening request for `target` (path and query) and
 * Host `host` queued; frames sent to it meanwhile wait behind the handshake. Nothing is
 * dialed before ws_client_start or a WS_CONNECT batch naming it. Returns 0, -EINVAL (too
 * long), -ENOMEM, -EIO (no randomness); on failure the reservation is as it was. */
int ws_client_prepare(struct core *c, struct ws_conn *wc, const struct net_dial *d,
		      const char *host, const char *target);
/* The same with more request fields: fields[0..fields_len) is "Name: value\r\n" lines
 * (the caller's, checked by nobody here), sent instead of the User-Agent. The whole
 * request is at most WS_CLIENT_MAX_REQUEST bytes, else -EINVAL. */
#define WS_CLIENT_MAX_REQUEST 12288
int ws_client_prepare_fields(struct core *c, struct ws_conn *wc, const struct net_dial *d,
			     const char *host, const char *target, const char *fields,
			     size_t fields_len);
/* Only while on_open reports an error: the status of the server's answer when it answered
 * something other than a 101 (-ECONNREFUSED), else 0. */
unsigned ws_client_failed_status(struct core *c);
/* The socket of this core h names (in any state), or NULL when it is gone; and whether a
 * socket is open (taken over, no close sent or raised). */
struct ws_conn *ws_lookup(struct core *c, ws_handle h);
int ws_is_open(const struct ws_conn *wc);
/* Cuts a socket of this core off without a close frame, as if its connection dropped:
 * on_closed (1006, not clean) is raised now, or on_open with -ECANCELED for a client
 * socket not open yet. */
void ws_abort_local(struct core *c, struct ws_conn *wc);
/* Dials a prepared client socket of this core; on_open follows. */
void ws_client_start(struct core *c, struct ws_conn *wc);

/* ---- handshake ---- */

/* 1 when the request asks for a WebSocket (an Upgrade header naming websocket). */
int ws_is_upgrade(const struct http_request *req);
/* Checks an upgrade request (RFC 6455 section 4.2.1) and computes Sec-WebSocket-Accept.
 * Returns 0, -400 for a malformed request, -426 for a version other than 13. */
int ws_handshake_check(const struct http_request *req, char accept[29]);

/* Client side (RFC 6455 section 4.1). A fresh random Sec-WebSocket-Key (24 characters and
 * a NUL) and the Sec-WebSocket-Accept the server must answer it with. Returns 0 or -EIO. */
int ws_client_key(char key[25], char accept[29]);
/* Largest answer head a client socket reads. */
#define WS_MAX_RESPONSE_HEAD 8192
/* Checks the server's answer to the opening handshake at buf[0..len), pure and
 * allocation-free: returns the head's length when it is a valid 101 for `accept` (the
 * frames follow it), 0 when more bytes are needed, or a negative errno with *why saying
 * what is wrong: -ECONNREFUSED another status (in *status), -EPROTO not HTTP, a head over
 * WS_MAX_RESPONSE_HEAD, Upgrade or Connection missing, a wrong Sec-WebSocket-Accept, or
 * an extension or subprotocol that was not offered. */
long ws_client_check_response(const char *buf, size_t len, const char accept[28], int *status,
			      const char **why);

#endif
