/* RateLimiter: a token bucket per object. POST /limit/<key> takes one token: 200 when
 * allowed, 429 with Retry-After (seconds) when not. Rate (tokens per second) and burst
 * (bucket size) come from ?rate=&burst=, else from the binding's vars "rate" and "burst",
 * else 10/s and 20. The bucket persists. */
#include "duro.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bucket {
	double tokens;
	uint64_t updated_ms; /* wall clock, so a restart keeps refilling from where it was */
};

static double param(const struct duro_object *obj, const struct duro_request *req, const char *name,
		    double dflt, double lo, double hi, int *bad)
{
	struct duro_str v;
	if (!duro_req_query_param(req, name, &v) && !duro_var(obj, name, &v))
		return dflt;
	char buf[32];
	if (v.len == 0 || v.len >= sizeof(buf)) {
		*bad = 1;
		return dflt;
	}
	memcpy(buf, v.ptr, v.len);
	buf[v.len] = 0;
	char *end;
	double d = strtod(buf, &end);
	if (*end || !(d >= lo && d <= hi)) {
		*bad = 1;
		return dflt;
	}
	return d;
}

static int limiter_request(struct duro_object *obj, const struct duro_request *req,
			   struct duro_response *res)
{
	int bad = 0;
	double rate = param(obj, req, "rate", 10, 0.001, 1e6, &bad);
	double burst = param(obj, req, "burst", 20, 1, 1e9, &bad);
	if (bad)
		return duro_res_text(res, 400, "rate must be in [0.001, 1e6] and burst in [1, 1e9]");
	int take = duro_req_is(req, "POST");
	if (!take && !duro_req_is(req, "GET"))
		return duro_res_header(res, "Allow", "GET, POST") ||
		       duro_res_text(res, 405, "POST takes a token, GET shows the bucket");
	struct bucket b = { burst, 0 };
	struct duro_str v;
	int r = duro_get(obj, "bucket", 6, &v);
	if (r < 0)
		return r;
	uint64_t now = (uint64_t)duro_now_ms();
	if (r == 1 && v.len == sizeof(b))
		memcpy(&b, v.ptr, sizeof(b));
	else
		b.updated_ms = now;
	if (now > b.updated_ms)
		b.tokens += (double)(now - b.updated_ms) / 1000.0 * rate;
	if (b.tokens > burst)
		b.tokens = burst;
	b.updated_ms = now;
	char text[96];
	if (take && b.tokens < 1.0) {
		double wait = (1.0 - b.tokens) / rate;
		char ra[24];
		snprintf(ra, sizeof(ra), "%.0f", ceil(wait));
		snprintf(text, sizeof(text), "rate limited: retry in %.3f s", wait);
		if ((r = duro_put(obj, "bucket", 6, &b, sizeof(b))) < 0)
			return r;
		return duro_res_header(res, "Retry-After", ra) || duro_res_text(res, 429, text);
	}
	if (take)
		b.tokens -= 1.0;
	if ((r = duro_put(obj, "bucket", 6, &b, sizeof(b))) < 0)
		return r;
	snprintf(text, sizeof(text), "%.0f", floor(b.tokens));
	duro_res_status(res, 200);
	return duro_res_header(res, "X-RateLimit-Remaining", text) ||
	       duro_res_text(res, 200, take ? "allowed" : text);
}

static const struct duro_class limiter_class = {
	.name = "RateLimiter",
	.state_size = 0,
	.on_request = limiter_request,
};
DURO_CLASS(limiter_class)
