/* JSON for the Sql class (sql_json.h): a recursive-descent reader of one request object,
 * bounded in depth, every error with its byte offset; and the writer of its answers. */
#include "sql_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rd {
	const char *p, *start, *end;
	char *scratch;
	size_t used;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct rd *r, const char *fmt, ...)
{
	int n = snprintf(r->err, r->errlen, "bad JSON at byte %zu: ", (size_t)(r->p - r->start));
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < r->errlen)
		vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static int lit(struct rd *r, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n))
		return 0;
	r->p += n;
	return 1;
}

static int hex4(struct rd *r, unsigned *out)
{
	if (r->end - r->p < 4)
		return fail(r, "a \\u escape needs four hex digits");
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char ch = r->p[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
		if (d < 0)
			return fail(r, "a \\u escape needs four hex digits");
		v = v * 16 + (unsigned)d;
	}
	r->p += 4;
	*out = v;
	return 0;
}

static void put_utf8(char *o, size_t *n, unsigned cp)
{
	if (cp < 0x80) {
		o[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		o[(*n)++] = (char)(0xc0 | cp >> 6);
		o[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		o[(*n)++] = (char)(0xe0 | cp >> 12);
		o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		o[(*n)++] = (char)(0xf0 | cp >> 18);
		o[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/* A string (r->p at its opening quote), decoded into scratch. No escape is shorter than
 * its UTF-8, so the scratch the size of the body always holds it. */
static int string(struct rd *r, const char **out, size_t *outlen)
{
	r->p++;
	char *o = r->scratch + r->used;
	size_t n = 0;
	while (r->p < r->end && *r->p != '"') {
		unsigned char ch = (unsigned char)*r->p;
		if (ch < 0x20)
			return fail(r, "a control character in a string");
		if (ch != '\\') {
			o[n++] = (char)ch;
			r->p++;
			continue;
		}
		if (++r->p >= r->end)
			break;
		char e = *r->p++;
		unsigned cp;
		switch (e) {
		case '"': o[n++] = '"'; break;
		case '\\': o[n++] = '\\'; break;
		case '/': o[n++] = '/'; break;
		case 'b': o[n++] = '\b'; break;
		case 'f': o[n++] = '\f'; break;
		case 'n': o[n++] = '\n'; break;
		case 'r': o[n++] = '\r'; break;
		case 't': o[n++] = '\t'; break;
		case 'u':
			if (hex4(r, &cp) < 0)
				return -EINVAL;
			if (cp >= 0xd800 && cp < 0xdc00) {
				unsigned lo;
				if (!lit(r, "\\u") || hex4(r, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
					return fail(r, "a lone surrogate in a \\u escape");
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				return fail(r, "a lone surrogate in a \\u escape");
			}
			put_utf8(o, &n, cp);
			break;
		default:
			r->p--;
			return fail(r, "an unknown escape \\%c", e);
		}
	}
	if (r->p >= r->end)
		return fail(r, "a string without its closing quote");
	r->p++;
	r->used += n;
	*out = o;
	*outlen = n;
	return 0;
}

static int number(struct rd *r, struct duro_sql_value *v)
{
	const char *s = r->p;
	int is_int = 1;
	if (r->p < r->end && *r->p == '-')
		r->p++;
	if (r->p >= r->end || *r->p < '0' || *r->p > '9')
		return fail(r, "a number without digits");
	if (*r->p == '0' && r->p + 1 < r->end && r->p[1] >= '0' && r->p[1] <= '9')
		return fail(r, "a number with a leading zero");
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
		r->p++;
	if (r->p < r->end && *r->p == '.') {
		is_int = 0;
		if (++r->p >= r->end || *r->p < '0' || *r->p > '9')
			return fail(r, "a fraction without digits");
		while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
			r->p++;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		is_int = 0;
		if (++r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (r->p >= r->end || *r->p < '0' || *r->p > '9')
			return fail(r, "an exponent without digits");
		while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
			r->p++;
	}
	char tmp[64];
	size_t n = (size_t)(r->p - s);
	if (n >= sizeof(tmp))
		return fail(r, "a number longer than %zu characters", sizeof(tmp) - 1);
	memcpy(tmp, s, n);
	tmp[n] = 0;
	errno = 0;
	if (is_int) {
		long long i = strtoll(tmp, NULL, 10);
		if (errno != ERANGE) {
			*v = DURO_SQL_INT(i);
			return 0;
		}
	}
	double d = strtod(tmp, NULL);
	if (!isfinite(d))
		return fail(r, "a number out of range");
	*v = DURO_SQL_REALV(d);
	return 0;
}

static int b64_digit(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
	       : ch >= '0' && ch <= '9' ? ch - '0' + 52 : ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* {"blob": "<base64>"}: decoded in place of its string in scratch. */
static int blob(struct rd *r, struct duro_sql_value *v)
{
	r->p++;
	ws(r);
	const char *k;
	size_t kl;
	if (r->p >= r->end || *r->p != '"')
		return fail(r, "a parameter object must be {\"blob\": \"<base64>\"}");
	if (string(r, &k, &kl) < 0)
		return -EINVAL;
	if (kl != 4 || memcmp(k, "blob", 4))
		return fail(r, "a parameter object must be {\"blob\": \"<base64>\"}");
	ws(r);
	if (r->p >= r->end || *r->p != ':')
		return fail(r, "expected ':'");
	r->p++;
	ws(r);
	if (r->p >= r->end || *r->p != '"')
		return fail(r, "a blob is a base64 string");
	const char *s;
	size_t sl;
	size_t at = r->used;
	if (string(r, &s, &sl) < 0)
		return -EINVAL;
	char *o = r->scratch + at;
	size_t n = 0, i = 0;
	unsigned acc = 0, bits = 0;
	for (; i < sl && s[i] != '='; i++) {
		int d = b64_digit(s[i]);
		if (d < 0)
			return fail(r, "a blob is not base64");
		acc = acc << 6 | (unsigned)d;
		if ((bits += 6) >= 8) {
			bits -= 8;
			o[n++] = (char)(acc >> bits);
		}
	}
	for (; i < sl; i++)
		if (s[i] != '=')
			return fail(r, "a blob is not base64");
	r->used = at + n;
	*v = DURO_SQL_BLOBN(o, n);
	ws(r);
	if (r->p >= r->end || *r->p != '}')
		return fail(r, "expected '}' after the blob");
	r->p++;
	return 0;
}

static int param(struct rd *r, struct duro_sql_value *v)
{
	ws(r);
	if (r->p >= r->end)
		return fail(r, "a value is missing");
	char ch = *r->p;
	if (ch == '"') {
		const char *s;
		size_t n;
		if (string(r, &s, &n) < 0)
			return -EINVAL;
		*v = DURO_SQL_TEXTN(s, n);
		return 0;
	}
	if (ch == '{')
		return blob(r, v);
	if (ch == '-' || (ch >= '0' && ch <= '9'))
		return number(r, v);
	if (lit(r, "null")) {
		*v = (struct duro_sql_value){ .type = DURO_SQL_NULL };
		return 0;
	}
	if (lit(r, "true")) {
		*v = DURO_SQL_INT(1);
		return 0;
	}
	if (lit(r, "false")) {
		*v = DURO_SQL_INT(0);
		return 0;
	}
	if (ch == '[')
		return fail(r, "a parameter may not be an array");
	return fail(r, "unexpected '%c'", ch);
}

static int params(struct rd *r, struct sqlj_request *out)
{
	r->p++; /* '[' */
	ws(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return 0;
	}
	for (;;) {
		if (out->nparams == SQLJ_MAX_PARAMS)
			return fail(r, "more than %d parameters", SQLJ_MAX_PARAMS);
		if (param(r, &out->params[out->nparams++]) < 0)
			return -EINVAL;
		ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			return 0;
		}
		return fail(r, "expected ',' or ']' in params");
	}
}

int sqlj_parse(const char *body, size_t len, char *scratch, struct sqlj_request *out, char *err,
	       size_t errlen)
{
	struct rd r = { body, body, body + len, scratch, 0, err, errlen };
	out->sql = NULL;
	out->sql_len = 0;
	out->nparams = 0;
	int have_params = 0;
	ws(&r);
	if (r.p >= r.end || *r.p != '{')
		return fail(&r, "the body must be an object {\"sql\": \"...\", \"params\": [...]}");
	r.p++;
	ws(&r);
	if (r.p < r.end && *r.p == '}') {
		r.p++;
	} else {
		for (;;) {
			ws(&r);
			if (r.p >= r.end || *r.p != '"')
				return fail(&r, "expected a key");
			const char *k;
			size_t kl;
			if (string(&r, &k, &kl) < 0)
				return -EINVAL;
			ws(&r);
			if (r.p >= r.end || *r.p != ':')
				return fail(&r, "expected ':'");
			r.p++;
			ws(&r);
			if (kl == 3 && !memcmp(k, "sql", 3)) {
				if (out->sql)
					return fail(&r, "\"sql\" given twice");
				if (r.p >= r.end || *r.p != '"')
					return fail(&r, "\"sql\" must be a string");
				if (string(&r, &out->sql, &out->sql_len) < 0)
					return -EINVAL;
			} else if (kl == 6 && !memcmp(k, "params", 6)) {
				if (have_params)
					return fail(&r, "\"params\" given twice");
				have_params = 1;
				if (r.p >= r.end || *r.p != '[')
					return fail(&r, "\"params\" must be an array");
				if (params(&r, out) < 0)
					return -EINVAL;
			} else {
				return fail(&r, "unknown key \"%.*s\" (want \"sql\" and \"params\")",
					    (int)(kl > 32 ? 32 : kl), k);
			}
			ws(&r);
			if (r.p < r.end && *r.p == ',') {
				r.p++;
				continue;
			}
			if (r.p < r.end && *r.p == '}') {
				r.p++;
				break;
			}
			return fail(&r, "expected ',' or '}'");
		}
	}
	ws(&r);
	if (r.p != r.end)
		return fail(&r, "something after the object");
	if (!out->sql) {
		snprintf(err, errlen, "bad request: \"sql\" is missing");
		return -EINVAL;
	}
	return 0;
}

/* ---- writing ---- */

void sqlj_raw(struct sqlj_out *o, const char *p, size_t n)
{
	if (o->err || !n)
		return;
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 1024;
		while (cap < o->len + n)
			cap *= 2;
		char *b = realloc(o->buf, cap);
		if (!b) {
			o->err = -ENOMEM;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned cp;
	size_t need;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		need = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		need = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		need = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	static const unsigned min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < min[need] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
		return 0;
	return need;
}

void sqlj_string(struct sqlj_out *o, const char *p, size_t n)
{
	sqlj_raw(o, "\"", 1);
	const unsigned char *s = (const unsigned char *)p;
	size_t run = 0; /* bytes copied as they are, waiting */
	for (size_t i = 0; i < n;) {
		unsigned char ch = s[i];
		size_t u = ch >= 0x80 ? utf8_len(s + i, n - i) : 1;
		if (ch >= 0x20 && ch != '"' && ch != '\\' && u) {
			run += u;
			i += u;
			continue;
		}
		sqlj_raw(o, p + i - run, run);
		run = 0;
		char esc[8];
		if (!u) {
			sqlj_raw(o, "\\ufffd", 6);
		} else if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			sqlj_raw(o, esc, 2);
		} else {
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			sqlj_raw(o, esc, 6);
		}
		i++;
	}
	sqlj_raw(o, p + n - run, run);
	sqlj_raw(o, "\"", 1);
}

void sqlj_uint(struct sqlj_out *o, unsigned long long v)
{
	char t[24];
	int n = snprintf(t, sizeof(t), "%llu", v);
	sqlj_raw(o, t, (size_t)n);
}

static void base64(struct sqlj_out *o, const unsigned char *p, size_t n)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		q[0] = tbl[v >> 18];
		q[1] = tbl[(v >> 12) & 63];
		q[2] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? tbl[v & 63] : '=';
		sqlj_raw(o, q, 4);
	}
}

void sqlj_value(struct sqlj_out *o, const struct duro_sql_value *v)
{
	char t[32];
	int n;
	switch (v->type) {
	case DURO_SQL_INTEGER:
		n = snprintf(t, sizeof(t), "%lld", (long long)v->u.i);
		sqlj_raw(o, t, (size_t)n);
		break;
	case DURO_SQL_REAL:
		if (!isfinite(v->u.d)) {
			sqlj_raw(o, "null", 4);
			break;
		}
		n = snprintf(t, sizeof(t), "%.17g", v->u.d);
		sqlj_raw(o, t, (size_t)n);
		if (!strpbrk(t, ".eE"))
			sqlj_raw(o, ".0", 2); /* still a real when read back */
		break;
	case DURO_SQL_TEXT:
		sqlj_string(o, v->u.s.ptr, v->u.s.len);
		break;
	case DURO_SQL_BLOB:
		sqlj_raw(o, "{\"blob\":\"", 9);
		base64(o, (const unsigned char *)v->u.s.ptr, v->u.s.len);
		sqlj_raw(o, "\"}", 2);
		break;
	default:
		sqlj_raw(o, "null", 4);
		break;
	}
}
