/* WebSocket framing (RFC 6455), pure and allocation-free: frame headers in, frame headers
 * out, incremental UTF-8 validation and close-frame checks, shared by connections and fuzzing. */
#ifndef DURO_WS_FRAME_H
#define DURO_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Close codes this server sends (RFC 6455 section 7.4.1). */
enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_NO_STATUS = 1005, /* never on the wire: a close frame without a code */
	WS_CLOSE_ABNORMAL = 1006,  /* never on the wire: the connection dropped */
	WS_CLOSE_BAD_DATA = 1007,  /* invalid UTF-8 */
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011,
	WS_CLOSE_TRY_LATER = 1013, /* this server: the peer read too slowly */
};

struct ws_frame_hdr {
	uint8_t fin, opcode, masked;
	uint8_t mask[4];
	uint64_t len; /* payload bytes */
};

/* Largest header a server writes: 2 + 8 bytes (no mask). */
#define WS_MAX_SERVER_HDR 10
/* Control frames carry at most 125 bytes. */
#define WS_MAX_CONTROL 125

/* Parses a client frame header at p[0..avail). Returns the header length (2 to 14) when
 * complete, 0 when more bytes are needed, or a negative close code for a header that
 * breaks the protocol: -1002 for reserved bits (no extension is negotiated), an unknown
 * opcode, a control frame that is fragmented or over 125 bytes, an unmasked frame, or a
 * 64-bit length with its top bit set. */
int ws_parse_header(const uint8_t *p, size_t avail, struct ws_frame_hdr *h);

/* The same for a server's frame, read by duro's own client sockets: the frame must be
 * unmasked (a masked one is -1002); h->mask is then all zeros, so ws_unmask copies. */
int ws_parse_server_header(const uint8_t *p, size_t avail, struct ws_frame_hdr *h);

/* Copies n payload bytes from src to dst, unmasking; `offset` is how many payload bytes of
 * this frame came before (the mask's phase). dst may equal src. */
void ws_unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4], uint64_t offset);

/* Writes a server frame header (FIN set, unmasked) and returns its length. */
size_t ws_write_header(uint8_t out[WS_MAX_SERVER_HDR], enum ws_opcode op, uint64_t len);

/* Largest header a client writes: 2 + 8 bytes and the mask. */
#define WS_MAX_CLIENT_HDR 14
/* Writes a client frame header (FIN set, masked with `mask`) and returns its length; the
 * payload that follows must be masked with the same key (ws_unmask, offset 0). */
size_t ws_write_client_header(uint8_t out[WS_MAX_CLIENT_HDR], enum ws_opcode op, uint64_t len,
			      const uint8_t mask[4]);

/* Incremental UTF-8 validation across fragments. State 0 is "between characters". */
#define WS_UTF8_OK 0
#define WS_UTF8_BAD 0xffffffffu
/* Feeds n bytes; returns the new state: WS_UTF8_BAD at the first invalid byte, 0 when the
 * input so far ends on a character boundary, another value mid-character. */
uint32_t ws_utf8_feed(uint32_t state, const uint8_t *p, size_t n);

/* Checks a received close frame's payload. Returns 0 with *code (1005 when empty) when
 * well formed; -1002 for a one-byte payload or a code not allowed on the wire; -1007 when
 * the reason is not UTF-8. */
int ws_check_close(const uint8_t *payload, size_t len, uint16_t *code);

/* A close code a server may send or echo. */
int ws_close_code_valid(unsigned code);

#endif
