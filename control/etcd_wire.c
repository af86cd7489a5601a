/* etcd v3 gateway encodings (etcd_wire.h): base64, int64-as-string, key-values, headers,
 * errors, leases and watch messages. Pure: no I/O, nothing kept between calls. */
#include "etcd_wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

long etcd_b64_encode(const void *in, size_t n, char *out, size_t cap)
{
	const uint8_t *p = in;
	size_t need = (n + 2) / 3 * 4;
	if (need + 1 > cap)
		return -ENOSPC;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
	}
	out[o] = 0;
	return (long)o;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

long etcd_b64_decode(const char *in, size_t n, void *out, size_t cap)
{
	uint8_t *o = out;
	/* Padding only at the end: at most two '=' after a group of 2 or 3 characters. */
	size_t pad = 0;
	while (n > 0 && in[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if (n % 4 == 1 || (pad && (n + pad) % 4))
		return -EINVAL;
	size_t len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (len > cap)
		return -ENOSPC;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(in[i]);
		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[w++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero, as a canonical encoder leaves them. */
	if (acc)
		return -EINVAL;
	return (long)w;
}

int etcd_json_i64(const json_t *v, int64_t *out)
{
	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -EINVAL;
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	int neg = n > 0 && s[0] == '-';
	if (n == (size_t)neg || n - (size_t)neg > 19)
		return -EINVAL;
	uint64_t acc = 0;
	for (size_t i = (size_t)neg; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		acc = acc * 10 + (uint64_t)(s[i] - '0');
	}
	if (acc > (uint64_t)INT64_MAX + (uint64_t)neg)
		return -EINVAL;
	*out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return 0;
}

/* The member named in either of the gateway's spellings. */
static const json_t *field(const json_t *o, const char *snake, const char *camel)
{
	const json_t *v = json_object_get(o, snake);
	return v ? v : json_object_get(o, camel);
}

static int b64_field(const json_t *o, const char *name, char *out, size_t cap, size_t *len)
{
	const json_t *v = json_object_get(o, name);
	*len = 0;
	out[0] = 0;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	long n = etcd_b64_decode(json_string_value(v), json_string_length(v), out, cap - 1);
	if (n < 0)
		return n == -ENOSPC ? -E2BIG : -EINVAL;
	out[n] = 0;
	*len = (size_t)n;
	return 0;
}

int etcd_parse_kv(const json_t *kv, struct etcd_kv *out)
{
	if (!json_is_object(kv))
		return -EINVAL;
	int r = b64_field(kv, "key", out->key, sizeof(out->key), &out->key_len);
	if (r == 0)
		r = b64_field(kv, "value", out->value, sizeof(out->value), &out->value_len);
	if (r < 0)
		return r;
	if (etcd_json_i64(field(kv, "create_revision", "createRevision"), &out->create_rev) < 0 ||
	    etcd_json_i64(field(kv, "mod_revision", "modRevision"), &out->mod_rev) < 0 ||
	    etcd_json_i64(json_object_get(kv, "version"), &out->version) < 0 ||
	    etcd_json_i64(json_object_get(kv, "lease"), &out->lease) < 0)
		return -EINVAL;
	if (out->key_len == 0 || out->create_rev < 0 || out->mod_rev < 0)
		return -EINVAL;
	return 0;
}

int etcd_parse_revision(const json_t *reply, int64_t *rev)
{
	const json_t *h = json_object_get(reply, "header");
	*rev = 0;
	if (!json_is_object(h) || etcd_json_i64(json_object_get(h, "revision"), rev) < 0 || *rev <= 0)
		return -EINVAL;
	return 0;
}

int etcd_parse_error(const json_t *reply, char *msg, size_t cap)
{
	const json_t *e = json_object_get(reply, "error");
	if (!e)
		return 0;
	const json_t *m = json_object_get(reply, "message");
	const char *text = json_is_string(m) ? json_string_value(m)
			 : json_is_string(e) ? json_string_value(e) : "error";
	snprintf(msg, cap, "%s", text);
	return 1;
}

int etcd_parse_lease(const json_t *reply, int64_t *id, int64_t *ttl_s)
{
	if (!json_is_object(reply))
		return -EINVAL;
	const json_t *r = json_object_get(reply, "result");
	if (r && !json_is_object(r))
		return -EINVAL;
	if (!r)
		r = reply;
	if (etcd_json_i64(json_object_get(r, "ID"), id) < 0 ||
	    etcd_json_i64(json_object_get(r, "TTL"), ttl_s) < 0)
		return -EINVAL;
	if (*ttl_s <= 0)
		return -ENOENT;
	return 0;
}

int etcd_parse_watch(const json_t *msg, struct etcd_watch_msg *out,
		     void (*fn)(void *arg, const struct etcd_event *ev), void *arg)
{
	memset(out, 0, sizeof(*out));
	if (!json_is_object(msg))
		return -EINVAL;
	const json_t *r = json_object_get(msg, "result");
	if (!r) {
		if (!json_object_get(msg, "error"))
			return -EINVAL;
		out->error = 1;
		return 0;
	}
	if (!json_is_object(r))
		return -EINVAL;
	const json_t *h = json_object_get(r, "header");
	if (h && (!json_is_object(h) || etcd_json_i64(json_object_get(h, "revision"), &out->revision) < 0))
		return -EINVAL;
	if (etcd_json_i64(field(r, "watch_id", "watchId"), &out->watch_id) < 0 ||
	    etcd_json_i64(field(r, "compact_revision", "compactRevision"), &out->compact_revision) < 0)
		return -EINVAL;
	out->created = json_is_true(json_object_get(r, "created"));
	out->canceled = json_is_true(json_object_get(r, "canceled"));
	const json_t *evs = json_object_get(r, "events");
	if (!evs)
		return 0;
	if (!json_is_array(evs))
		return -EINVAL;
	out->nevents = json_array_size(evs);
	size_t i;
	const json_t *e;
	json_array_foreach(evs, i, e) {
		struct etcd_event ev;
		const json_t *type = json_object_get(e, "type");
		/* PUT is the enum's zero, which the gateway leaves out. */
		if (!type || (json_is_string(type) && !strcmp(json_string_value(type), "PUT")))
			ev.type = ETCD_PUT;
		else if (json_is_string(type) && !strcmp(json_string_value(type), "DELETE"))
			ev.type = ETCD_DELETE;
		else {
			out->bad_events++;
			continue;
		}
		if (etcd_parse_kv(json_object_get(e, "kv"), &ev.kv) < 0) {
			out->bad_events++;
			continue;
		}
		if (fn)
			fn(arg, &ev);
	}
	return 0;
}

long etcd_stream_line(const char *buf, size_t len, size_t max)
{
	const char *nl = memchr(buf, '\n', len);
	if (nl)
		return nl - buf + 1;
	return len > max ? -E2BIG : 0;
}

size_t etcd_prefix_end(const char *key, size_t len, char *end)
{
	memcpy(end, key, len);
	while (len > 0 && (uint8_t)end[len - 1] == 0xff)
		len--;
	if (len == 0) {
		end[0] = 0;
		return 1;
	}
	end[len - 1] = (char)((uint8_t)end[len - 1] + 1);
	return len;
}

int etcd_http_feed(struct etcd_http *h, char *buf, size_t len, int eof, uint64_t max_body)
{
	if (!h->head_len) {
		struct http_response res;
		long n = http_parse_response(buf, len, ETCD_MAX_HEAD, &res);
		if (n < 0)
			return -EPROTO;
		if (n == 0)
			return eof ? -EPROTO : 0;
		/* An interim 1xx answer is not this one: etcd sends none, so it is an error. */
		if (res.status < 200)
			return -EPROTO;
		h->head_len = (size_t)n;
		h->status = res.status;
		h->chunked = res.chunked;
		h->content_length = res.content_length;
		h->src = h->dst = h->head_len;
		if (!h->chunked && h->content_length >= 0 && (uint64_t)h->content_length > max_body)
			return -EFBIG;
	}
	if (h->chunked) {
		int r = http_chunked_decode(&h->ch, buf, len, &h->src, &h->dst, max_body, 4096);
		if (r == -413)
			return -EFBIG;
		if (r < 0)
			return -EPROTO;
		if (r == 1)
			return 1;
		return eof ? -EPROTO : 0;
	}
	/* Raw bytes are the body: decoded and raw meet. */
	if (h->src != h->dst)
		return -EPROTO; /* only chunked bodies leave a gap */
	h->src = h->dst = len;
	if (h->content_length >= 0) {
		if (len - h->head_len >= (uint64_t)h->content_length) {
			h->src = h->dst = h->head_len + (size_t)h->content_length;
			return 1;
		}
		return eof ? -EPROTO : 0;
	}
	if (len - h->head_len > max_body)
		return -EFBIG;
	return eof ? 1 : 0; /* the body runs to the close */
}

size_t etcd_http_consume(struct etcd_http *h, char *buf, size_t len, size_t n)
{
	size_t body = h->dst - h->head_len;
	if (n > body)
		n = body;
	size_t keep = body - n, raw = len - h->src;
	memmove(buf + h->head_len, buf + h->head_len + n, keep);
	memmove(buf + h->head_len + keep, buf + h->src, raw);
	h->dst = h->head_len + keep;
	h->src = h->dst;
	return h->src + raw;
}
