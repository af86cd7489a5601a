/* HTTP/1.1 request parsing, pure and allocation-free over the caller's buffer
 * (picohttpparser's shape): the head in one call, a chunked body incrementally in place. */
#ifndef DURO_HTTP_PARSE_H
#define DURO_HTTP_PARSE_H

#include "base_limits.h"

#include <stddef.h>
#include <stdint.h>

struct http_header {
	const char *name;
	const char *value;
	uint32_t name_len;
	uint32_t value_len;
};

/* Views into the caller's buffer; valid as long as the buffer is. */
struct http_request {
	const char *method;
	const char *target; /* raw request-target */
	const char *path;   /* the target's path ("/" for an absolute-form target without one) */
	const char *query;  /* after '?', or NULL */
	/* Where the request is for: an absolute-form target's authority, else the Host
	 * field's value; NULL when there is neither (HTTP/1.0). */
	const char *authority;
	uint32_t method_len, target_len, path_len, query_len, authority_len;
	uint8_t absolute_form;   /* the target was http(s)://authority/... */
	uint8_t minor_version;   /* HTTP/1.x */
	uint8_t keep_alive;      /* after defaults and Connection: */
	uint8_t chunked;         /* Transfer-Encoding: chunked */
	uint8_t expect_continue; /* Expect: 100-continue */
	int64_t content_length;  /* -1 when absent */
	unsigned nheaders;
	struct http_header headers[DURO_MAX_HEADERS];
	const char *body; /* set by the connection once the body is complete */
	size_t body_len;
};

/* Parses a request head (request line, header fields, empty line) at buf[0..len).
 * Returns the head's length in bytes when complete; 0 when more bytes are needed and
 * nothing seen so far is wrong; or a negative HTTP status for bad input:
 *   -400 malformed line or field, bare CR or LF, obs-fold, space before a colon, missing
 *        or repeated Host in 1.1, a Host that is not uri-host [":" port], a target in
 *        none of the forms (origin, absolute http(s) with a valid authority, "*" with
 *        OPTIONS), differing or malformed Content-Length, Content-Length with
 *        Transfer-Encoding, Transfer-Encoding in 1.0 or chunked not last;
 *   -431 head longer than max_head or more than DURO_MAX_HEADERS fields;
 *   -501 a transfer coding other than chunked, or CONNECT (authority-form);
 *   -505 an HTTP version other than 1.0 or 1.1;
 *   -417 an expectation other than 100-continue.
 * Leading empty lines before the request line are skipped (RFC 9112 section 2.2) and
 * counted in the returned length. */
long http_parse_request(const char *buf, size_t len, size_t max_head, struct http_request *req);

/* Finds a header field by case-insensitive name; returns its value and sets *len, or NULL.
 * "Host" answers req->authority: an absolute-form target's authority replaces the field. */
const char *http_find_header(const struct http_request *req, const char *name, size_t *len);

/* A response head (duro's own outbound requests read these from other servers). */
struct http_response {
	int status;
	uint8_t minor_version;
	uint8_t keep_alive;    /* after defaults and Connection: */
	uint8_t chunked;       /* Transfer-Encoding: chunked */
	int64_t content_length; /* -1 when absent */
	unsigned nheaders;
	struct http_header headers[DURO_MAX_HEADERS];
};

/* Parses a response head (status line, header fields, empty line) at buf[0..len), the
 * same way http_parse_request does: returns its length when complete, 0 when more bytes
 * are needed, or -1 for a malformed head (a bad status line, field, bare CR or LF,
 * obs-fold, differing Content-Lengths, Transfer-Encoding other than a final chunked, or
 * with Content-Length), -2 for one over max_head or DURO_MAX_HEADERS fields. An interim
 * (1xx) response parses like any other: the caller skips it. */
long http_parse_response(const char *buf, size_t len, size_t max_head, struct http_response *res);

/* Incremental, in-place decoder of a chunked body. Zero-initialise before the first call. */
struct http_chunked {
	uint8_t state;
	uint8_t size_digits;
	uint64_t remaining; /* bytes left in the current chunk */
	uint64_t total;     /* decoded bytes so far */
	size_t trailer_bytes;
};

/* Decodes buf[*src..len), moving payload bytes down to buf[*dst..] (dst <= src always).
 * Returns 1 when the body and trailers are complete (*src then points past them), 0 when
 * more input is needed, or -400 malformed, -413 payload over max_body, -431 trailers over
 * max_trailer. */
int http_chunked_decode(struct http_chunked *d, char *buf, size_t len, size_t *src, size_t *dst,
			uint64_t max_body, size_t max_trailer);

#endif
