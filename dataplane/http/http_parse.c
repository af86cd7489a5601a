/* HTTP/1.1 request head parser and chunked decoder. Strict where leniency enables request
 * smuggling (RFC 9112 sections 2.2, 5, 6.1, 6.3, 7.1): bare CR or LF, obs-fold, a space
 * before the colon, conflicting lengths, and unknown codings are refused, never guessed. */
#include "http_parse.h"
#include "hex.h"
#include "http_uri.h"

#include <string.h>
#include <strings.h>

/* tchar from RFC 9110 section 5.6.2 */
static const uint8_t tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
	['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
	['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
	['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
	['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
	['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

static int is_vchar_or_obs(uint8_t ch) { return (ch > 0x20 && ch != 0x7f); }

/* Bytes allowed in a request-target: visible ASCII only; others must be percent-encoded. */
static int is_target_char(uint8_t ch) { return ch > 0x20 && ch < 0x7f; }

static int token_eq(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

/* Methods are case-sensitive (RFC 9110 section 9.1). */
static int method_is(const struct http_request *req, const char *m)
{
	return strlen(m) == req->method_len && memcmp(req->method, m, req->method_len) == 0;
}

/* Walks a comma-separated list value, trimming OWS; returns 0 at the end. */
static int next_list_item(const char **p, const char *end, const char **item, size_t *ilen)
{
	const char *s = *p;
	while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
		s++;
	if (s >= end)
		return 0;
	const char *e = s;
	while (e < end && *e != ',')
		e++;
	*p = e;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*item = s;
	*ilen = (size_t)(e - s);
	return 1;
}

static int parse_content_length(const char *v, size_t n, int64_t *out)
{
	if (n == 0 || n > 18)
		return -1;
	int64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	*out = x;
	return 0;
}

/* Where the token (tchars) starting at i ends: its first other byte, or limit. */
static size_t token_end(const uint8_t *p, size_t i, size_t limit)
{
	while (i < limit && tchar[p[i]])
		i++;
	return i;
}

enum { FIELDS_MORE = 0, FIELDS_DONE = 1, FIELDS_BAD = -1, FIELDS_TOO_MANY = -2 };

/* The field lines of a request or response head and the empty line that ends them (RFC
 * 9112 section 5), from *pos up to limit: FIELDS_DONE with *pos past the empty line,
 * FIELDS_MORE when the bytes end first, FIELDS_BAD (obs-fold, a space before the colon,
 * bare CR or LF, a control byte) or FIELDS_TOO_MANY (more than DURO_MAX_HEADERS). The
 * fields point into buf; values without their leading and trailing whitespace. */
static int parse_fields(const char *buf, size_t limit, size_t *pos, struct http_header *headers,
			unsigned *nheaders)
{
	const uint8_t *p = (const uint8_t *)buf;
	size_t i = *pos;
	*nheaders = 0;
#define NEED(n)                                                                 \
	do {                                                                    \
		if (i + (n) > limit)                                            \
			return FIELDS_MORE;                                     \
	} while (0)
	for (;;) {
		NEED(1);
		if (p[i] == '\r') {
			NEED(2);
			if (p[i + 1] != '\n')
				return FIELDS_BAD;
			*pos = i + 2;
			return FIELDS_DONE;
		}
		if (p[i] == ' ' || p[i] == '\t')
			return FIELDS_BAD; /* obs-fold */
		if (*nheaders == DURO_MAX_HEADERS)
			return FIELDS_TOO_MANY;
		struct http_header *h = &headers[*nheaders];
		size_t start = i;
		i = token_end(p, i, limit);
		NEED(1);
		if (i == start || p[i] != ':')
			return FIELDS_BAD; /* empty name, space before the colon, or a bad byte */
		h->name = buf + start;
		h->name_len = (uint32_t)(i - start);
		i++;
		for (;;) {
			NEED(1);
			if (p[i] != ' ' && p[i] != '\t')
				break;
			i++;
		}
		start = i;
		size_t last_nonws = i;
		for (;;) {
			NEED(1);
			uint8_t ch = p[i];
			if (ch == '\r')
				break;
			if (ch == ' ' || ch == '\t') {
				i++;
				continue;
			}
			if (!is_vchar_or_obs(ch))
				return FIELDS_BAD; /* NUL, bare LF, other controls */
			i++;
			last_nonws = i;
		}
		NEED(2);
		if (p[i + 1] != '\n')
			return FIELDS_BAD; /* bare CR */
		h->value = buf + start;
		h->value_len = (uint32_t)(last_nonws - start);
		(*nheaders)++;
		i += 2;
	}
#undef NEED
}

/* The semantic pass over the fields once the head is known to be well-formed. */
static long apply_fields(struct http_request *req)
{
	int hosts = 0, te_seen = 0;
	req->content_length = -1;
	req->chunked = 0;
	req->expect_continue = 0;
	req->keep_alive = req->minor_version == 1;
	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		const char *v = h->value, *end = h->value + h->value_len;
		if (token_eq(h->name, h->name_len, "content-length")) {
			int64_t cl;
			if (parse_content_length(v, h->value_len, &cl) < 0)
				return -400;
			if (req->content_length >= 0 && req->content_length != cl)
				return -400;
			req->content_length = cl;
		} else if (token_eq(h->name, h->name_len, "transfer-encoding")) {
			const char *item;
			size_t ilen;
			te_seen = 1;
			while (next_list_item(&v, end, &item, &ilen)) {
				if (req->chunked)
					return -400; /* chunked must be the last coding, once */
				if (token_eq(item, ilen, "chunked"))
					req->chunked = 1;
				else
					return -501;
			}
		} else if (token_eq(h->name, h->name_len, "host")) {
			/* RFC 9112 section 3.2: an invalid Host is a 400, even in HTTP/1.0. */
			if (http_authority_check(v, h->value_len, 0) < 0)
				return -400;
			if (hosts++ == 0 && !req->absolute_form) {
				req->authority = v;
				req->authority_len = h->value_len;
			}
		} else if (token_eq(h->name, h->name_len, "connection")) {
			const char *item;
			size_t ilen;
			while (next_list_item(&v, end, &item, &ilen)) {
				if (token_eq(item, ilen, "close"))
					req->keep_alive = 0;
				else if (token_eq(item, ilen, "keep-alive") && req->minor_version == 0)
					req->keep_alive = 1;
			}
		} else if (token_eq(h->name, h->name_len, "expect")) {
			if (token_eq(v, h->value_len, "100-continue"))
				req->expect_continue = 1;
			else
				return -417;
		}
	}
	if (te_seen) {
		if (req->minor_version == 0 || req->content_length >= 0 || !req->chunked)
			return -400;
	}
	if (req->minor_version == 1 && hosts != 1)
		return -400;
	if (req->minor_version == 0 && hosts > 1)
		return -400;
	return 0;
}

/* Finds the path, query and (absolute-form) authority of the request-target, one of
 * RFC 9112 section 3.2's four forms:
 *   origin-form    /path?query                 the usual
 *   absolute-form  http://authority/path?query a server MUST accept it; its authority
 *                                              replaces Host, and an empty path is "/"
 *   asterisk-form  *                           OPTIONS only (the server as a whole)
 *   authority-form host:port                   CONNECT only: a proxy's job, so 501 */
static long split_target(struct http_request *req)
{
	const char *t = req->target, *end = t + req->target_len;
	const char *path = t;
	req->absolute_form = 0;
	req->authority = NULL;
	req->authority_len = 0;
	if (method_is(req, "CONNECT"))
		return -501;
	if (t[0] == '*' && req->target_len == 1) {
		if (!method_is(req, "OPTIONS"))
			return -400;
	} else if (t[0] != '/') {
		/* scheme "://" authority path-abempty [ "?" query ], http or https only; an
		 * "http" URI with userinfo or an empty host is invalid (RFC 9110 section 4.2). */
		const char *a;
		if (req->target_len > 7 && strncasecmp(t, "http://", 7) == 0)
			a = t + 7;
		else if (req->target_len > 8 && strncasecmp(t, "https://", 8) == 0)
			a = t + 8;
		else
			return -400;
		path = a;
		while (path < end && *path != '/' && *path != '?')
			path++;
		if (http_authority_check(a, (size_t)(path - a), 1) < 0)
			return -400;
		req->absolute_form = 1;
		req->authority = a;
		req->authority_len = (uint32_t)(path - a);
	}
	const char *q = memchr(path, '?', (size_t)(end - path));
	const char *path_end = q ? q : end;
	if (path == path_end) {
		req->path = "/"; /* RFC 9112 section 3.3: an empty path is "/" */
		req->path_len = 1;
	} else {
		req->path = path;
		req->path_len = (uint32_t)(path_end - path);
	}
	req->query = q ? q + 1 : NULL;
	req->query_len = q ? (uint32_t)(end - q - 1) : 0;
	return 0;
}

long http_parse_request(const char *buf, size_t len, size_t max_head, struct http_request *req)
{
	const uint8_t *p = (const uint8_t *)buf;
	size_t i = 0;
	size_t limit = len < max_head ? len : max_head;
#define NEED(n)                                                                 \
	do {                                                                    \
		if (i + (n) > limit)                                            \
			return len >= max_head ? -431 : 0;                      \
	} while (0)

	/* Leading empty lines (robustness, RFC 9112 section 2.2); a few at most. */
	for (int k = 0; k < 4; k++) {
		NEED(1);
		if (p[i] != '\r')
			break;
		NEED(2);
		if (p[i + 1] != '\n')
			return -400;
		i += 2;
	}

	/* method */
	size_t start = i;
	i = token_end(p, i, limit);
	NEED(1);
	if (i == start || p[i] != ' ')
		return -400;
	req->method = buf + start;
	req->method_len = (uint32_t)(i - start);
	i++;

	/* request-target */
	start = i;
	for (;;) {
		NEED(1);
		if (!is_target_char(p[i]))
			break;
		i++;
	}
	if (i == start || p[i] != ' ')
		return -400;
	req->target = buf + start;
	req->target_len = (uint32_t)(i - start);
	i++;

	/* HTTP-version CRLF */
	NEED(10);
	if (memcmp(p + i, "HTTP/", 5) != 0 || p[i + 5] < '0' || p[i + 5] > '9' || p[i + 6] != '.' ||
	    p[i + 7] < '0' || p[i + 7] > '9' || p[i + 8] != '\r' || p[i + 9] != '\n')
		return -400;
	if (p[i + 5] != '1' || p[i + 7] > '1')
		return -505;
	req->minor_version = (uint8_t)(p[i + 7] - '0');
	i += 10;

	/* header fields */
	int f = parse_fields(buf, limit, &i, req->headers, &req->nheaders);
	if (f == FIELDS_MORE)
		return len >= max_head ? -431 : 0;
	if (f != FIELDS_DONE)
		return f == FIELDS_TOO_MANY ? -431 : -400;
#undef NEED

	long r = split_target(req);
	if (r < 0)
		return r;
	req->body = NULL;
	req->body_len = 0;
	r = apply_fields(req);
	if (r < 0)
		return r;
	return (long)i;
}

long http_parse_response(const char *buf, size_t len, size_t max_head, struct http_response *res)
{
	const uint8_t *p = (const uint8_t *)buf;
	size_t i = 0;
	size_t limit = len < max_head ? len : max_head;
#define NEED(n)                                                                 \
	do {                                                                    \
		if (i + (n) > limit)                                            \
			return len >= max_head ? -2 : 0;                        \
	} while (0)
	/* HTTP/1.x SP 3DIGIT SP reason CRLF (the reason may be empty, its space kept) */
	NEED(12);
	if (memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		return -1;
	res->minor_version = (uint8_t)(p[7] - '0');
	res->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	i = 12;
	NEED(1);
	if (p[i] == ' ') {
		for (;;) {
			i++;
			NEED(1);
			if (p[i] == '\r')
				break;
			if (p[i] != ' ' && p[i] != '\t' && !is_vchar_or_obs(p[i]))
				return -1;
		}
	}
	NEED(2);
	if (p[i] != '\r' || p[i + 1] != '\n')
		return -1;
	i += 2;
	int f = parse_fields(buf, limit, &i, res->headers, &res->nheaders);
	if (f == FIELDS_MORE)
		return len >= max_head ? -2 : 0;
	if (f != FIELDS_DONE)
		return f == FIELDS_TOO_MANY ? -2 : -1;
#undef NEED
	/* The fields that frame the body and say whether the connection stays. */
	int te_seen = 0;
	res->content_length = -1;
	res->chunked = 0;
	res->keep_alive = res->minor_version == 1;
	for (unsigned k = 0; k < res->nheaders; k++) {
		const struct http_header *h = &res->headers[k];
		const char *v = h->value, *end = h->value + h->value_len;
		const char *item;
		size_t ilen;
		if (token_eq(h->name, h->name_len, "content-length")) {
			int64_t cl;
			if (parse_content_length(v, h->value_len, &cl) < 0 ||
			    (res->content_length >= 0 && res->content_length != cl))
				return -1;
			res->content_length = cl;
		} else if (token_eq(h->name, h->name_len, "transfer-encoding")) {
			te_seen = 1;
			while (next_list_item(&v, end, &item, &ilen)) {
				if (res->chunked || !token_eq(item, ilen, "chunked"))
					return -1; /* only a final chunked is understood */
				res->chunked = 1;
			}
		} else if (token_eq(h->name, h->name_len, "connection")) {
			while (next_list_item(&v, end, &item, &ilen)) {
				if (token_eq(item, ilen, "close"))
					res->keep_alive = 0;
				else if (token_eq(item, ilen, "keep-alive") && res->minor_version == 0)
					res->keep_alive = 1;
			}
		}
	}
	if (te_seen && (!res->chunked || res->content_length >= 0))
		return -1; /* both framings: a smuggling shape, never guessed at */
	return (long)i;
}

const char *http_find_header(const struct http_request *req, const char *name, size_t *len)
{
	size_t n = strlen(name);
	if (req->authority && n == 4 && strncasecmp(name, "host", 4) == 0) {
		*len = req->authority_len;
		return req->authority;
	}
	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		if (h->name_len == n && strncasecmp(h->name, name, n) == 0) {
			*len = h->value_len;
			return h->value;
		}
	}
	return NULL;
}

/* Chunk-line states follow RFC 9112 section 7.1.1:
 *   chunk-size *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] ) CRLF
 * Nothing else may follow the size ("5 garbage" is how smuggling starts: another parser
 * may read it differently), and trailer lines are field lines (name ":" value). */
enum {
	CH_SIZE = 0, CH_SIZE_WS, CH_EXT_NAME_START, CH_EXT_NAME, CH_EXT_NAME_WS, CH_EXT_VAL_START,
	CH_EXT_VAL_TOKEN, CH_EXT_VAL_QUOTED, CH_EXT_VAL_QESC, CH_EXT_VAL_END, CH_SIZE_LF,
	CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER_START, CH_TRAILER_NAME, CH_TRAILER_VALUE,
	CH_TRAILER_LF, CH_END_LF, CH_DONE
};

static int is_ws(char ch) { return ch == ' ' || ch == '\t'; }

/* qdtext and the byte after a backslash in a quoted-string (RFC 9110 section 5.6.4). */
static int is_qdtext(uint8_t ch)
{
	return ch == '\t' || ch == ' ' || ch == 0x21 || (ch >= 0x23 && ch <= 0x5b) ||
	       (ch >= 0x5d && ch <= 0x7e) || ch >= 0x80;
}
static int is_quoted_pair_char(uint8_t ch) { return ch == '\t' || ch == ' ' || is_vchar_or_obs(ch); }

/* One byte of a chunk extension: the next state, or -1 when the byte cannot be there. */
static int ext_step(uint8_t state, char ch)
{
	uint8_t u = (uint8_t)ch;
	switch (state) {
	case CH_SIZE_WS: /* BWS after the size or a value: only more of it, then ";" */
		return is_ws(ch) ? CH_SIZE_WS : ch == ';' ? CH_EXT_NAME_START : -1;
	case CH_EXT_NAME_START:
		return is_ws(ch) ? CH_EXT_NAME_START : tchar[u] ? CH_EXT_NAME : -1;
	case CH_EXT_NAME:
		if (tchar[u])
			return CH_EXT_NAME;
		if (ch == '\r')
			return CH_SIZE_LF;
		/* fall through */
	case CH_EXT_NAME_WS: /* BWS after a name: "=" or ";" next */
		return is_ws(ch) ? CH_EXT_NAME_WS : ch == '=' ? CH_EXT_VAL_START
			: ch == ';' ? CH_EXT_NAME_START : -1;
	case CH_EXT_VAL_START:
		return is_ws(ch) ? CH_EXT_VAL_START : ch == '"' ? CH_EXT_VAL_QUOTED
			: tchar[u] ? CH_EXT_VAL_TOKEN : -1;
	case CH_EXT_VAL_TOKEN:
		if (tchar[u])
			return CH_EXT_VAL_TOKEN;
		/* fall through */
	case CH_EXT_VAL_END:
		return is_ws(ch) ? CH_SIZE_WS : ch == ';' ? CH_EXT_NAME_START
			: ch == '\r' ? CH_SIZE_LF : -1;
	case CH_EXT_VAL_QUOTED:
		return ch == '"' ? CH_EXT_VAL_END : ch == '\\' ? CH_EXT_VAL_QESC
			: is_qdtext(u) ? CH_EXT_VAL_QUOTED : -1;
	case CH_EXT_VAL_QESC:
		return is_quoted_pair_char(u) ? CH_EXT_VAL_QUOTED : -1;
	}
	return -1;
}

int http_chunked_decode(struct http_chunked *d, char *buf, size_t len, size_t *src, size_t *dst,
			uint64_t max_body, size_t max_trailer)
{
	size_t s = *src, t = *dst;
	int ret = 0;
	while (s < len && d->state != CH_DONE) {
		char ch = buf[s];
		switch (d->state) {
		case CH_SIZE: {
			int v = hex_digit(ch);
			if (v >= 0) {
				if (d->size_digits == 15)
					return -400; /* a chunk over 2^60 bytes is an attack */
				d->remaining = d->remaining << 4 | (uint64_t)v;
				d->size_digits++;
				s++;
			} else if (d->size_digits == 0) {
				return -400;
			} else if (ch == ';' || is_ws(ch)) {
				d->state = ch == ';' ? CH_EXT_NAME_START : CH_SIZE_WS;
				s++;
			} else if (ch == '\r') {
				d->state = CH_SIZE_LF;
				s++;
			} else {
				return -400;
			}
			break;
		}
		case CH_SIZE_WS:
		case CH_EXT_NAME_START:
		case CH_EXT_NAME:
		case CH_EXT_NAME_WS:
		case CH_EXT_VAL_START:
		case CH_EXT_VAL_TOKEN:
		case CH_EXT_VAL_QUOTED:
		case CH_EXT_VAL_QESC:
		case CH_EXT_VAL_END: {
			/* Extensions are checked and ignored; their bytes count with the trailers. */
			int next = ext_step(d->state, ch);
			if (next < 0)
				return -400;
			if (++d->trailer_bytes > max_trailer)
				return -431;
			d->state = (uint8_t)next;
			s++;
			break;
		}
		case CH_SIZE_LF:
			if (ch != '\n')
				return -400;
			s++;
			if (d->total + d->remaining > max_body)
				return -413;
			d->state = d->remaining ? CH_DATA : CH_TRAILER_START;
			d->size_digits = 0;
			break;
		case CH_DATA: {
			size_t n = len - s;
			if (n > d->remaining)
				n = (size_t)d->remaining;
			if (t != s)
				memmove(buf + t, buf + s, n);
			t += n;
			s += n;
			d->remaining -= n;
			d->total += n;
			if (d->remaining == 0)
				d->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (ch != '\r')
				return -400;
			d->state = CH_DATA_LF;
			s++;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return -400;
			d->state = CH_SIZE;
			s++;
			break;
		case CH_TRAILER_START:
			if (ch == '\r') {
				d->state = CH_END_LF;
				s++;
				break;
			}
			/* A field line: a name of at least one byte (no obs-fold), then the colon. */
			if (!tchar[(uint8_t)ch])
				return -400;
			d->state = CH_TRAILER_NAME;
			if (++d->trailer_bytes > max_trailer)
				return -431;
			s++;
			break;
		case CH_TRAILER_NAME:
			if (ch == ':')
				d->state = CH_TRAILER_VALUE;
			else if (!tchar[(uint8_t)ch])
				return -400; /* a space before the colon included */
			if (++d->trailer_bytes > max_trailer)
				return -431;
			s++;
			break;
		case CH_TRAILER_VALUE:
			if (ch == '\r')
				d->state = CH_TRAILER_LF;
			else if (!is_ws(ch) && !is_vchar_or_obs((uint8_t)ch))
				return -400;
			if (++d->trailer_bytes > max_trailer)
				return -431;
			s++;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return -400;
			d->state = CH_TRAILER_START;
			s++;
			break;
		case CH_END_LF:
			if (ch != '\n')
				return -400;
			d->state = CH_DONE;
			s++;
			break;
		}
	}
	if (d->state == CH_DONE)
		ret = 1;
	*src = s;
	*dst = t;
	return ret;
}
