/* duro's keys and values in etcd (cluster_wire.h): classifying keys under the cluster's
 * prefix, member and slot values as JSON, and the rendezvous weight. */
#include "cluster_wire.h"
#include "base_limits.h"
#include "siphash.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static int name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= CLUSTER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':'))
			return 0;
	}
	return 1;
}

enum cluster_key_kind cluster_key_parse(const char *prefix, const char *key, size_t len,
					char *box, unsigned *slot)
{
	size_t pl = strlen(prefix);
	if (len < pl || memcmp(key, prefix, pl) != 0)
		return CLUSTER_KEY_OTHER;
	key += pl;
	len -= pl;
	if (len > 8 && !memcmp(key, "members/", 8) && name_ok(key + 8, len - 8)) {
		memcpy(box, key + 8, len - 8);
		box[len - 8] = 0;
		return CLUSTER_KEY_MEMBER;
	}
	if (len > 6 && len <= 10 && !memcmp(key, "slots/", 6)) {
		unsigned n = 0;
		for (size_t i = 6; i < len; i++) {
			if (key[i] < '0' || key[i] > '9' || (i == 6 && key[i] == '0' && len > 7))
				return CLUSTER_KEY_OTHER;
			n = n * 10 + (unsigned)(key[i] - '0');
		}
		if (n >= DURO_SLOTS)
			return CLUSTER_KEY_OTHER;
		*slot = n;
		return CLUSTER_KEY_SLOT;
	}
	if (len == 10 && !memcmp(key, "rebalancer", 10))
		return CLUSTER_KEY_REBALANCER;
	if (len == 9 && !memcmp(key, "rebalance", 9))
		return CLUSTER_KEY_REBALANCE;
	if (len > 5 && !memcmp(key, "load/", 5) && name_ok(key + 5, len - 5)) {
		memcpy(box, key + 5, len - 5);
		box[len - 5] = 0;
		return CLUSTER_KEY_LOAD;
	}
	if (len > 6 && !memcmp(key, "drain/", 6) && name_ok(key + 6, len - 6)) {
		memcpy(box, key + 6, len - 6);
		box[len - 6] = 0;
		return CLUSTER_KEY_DRAIN;
	}
	return CLUSTER_KEY_OTHER;
}

/* A string member into out[cap]: 0, or -EINVAL when missing, not a string or too long. */
static int get_str(json_t *o, const char *name, char *out, size_t cap)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_string(v) || json_string_length(v) >= cap ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -EINVAL;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* An int64 written as a JSON integer or a decimal string; 0 or -EINVAL. */
static int get_i64(json_t *o, const char *name, int64_t *out)
{
	json_t *v = json_object_get(o, name);
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return *out >= 0 ? 0 : -EINVAL;
	}
	if (!json_is_string(v))
		return -EINVAL;
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0 || n > 18)
		return -EINVAL;
	int64_t acc = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		acc = acc * 10 + (s[i] - '0');
	}
	*out = acc;
	return 0;
}

static json_t *load(const char *v, size_t n)
{
	json_t *o = json_loadb(v, n, JSON_REJECT_DUPLICATES, NULL);
	if (o && !json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int cluster_member_parse(const char *v, size_t n, struct cluster_member_value *out)
{
	memset(out, 0, sizeof(*out));
	json_t *o = load(v, n);
	if (!o)
		return -EINVAL;
	json_t *cores = json_object_get(o, "cores");
	int r = get_str(o, "address", out->address, sizeof(out->address));
	if (r == 0 && json_object_get(o, "version"))
		r = get_str(o, "version", out->version, sizeof(out->version));
	if (r == 0 && json_object_get(o, "incarnation"))
		r = get_i64(o, "incarnation", &out->incarnation);
	if (r == 0 && json_object_get(o, "peer"))
		r = get_str(o, "peer", out->peer, sizeof(out->peer));
	if (r == 0 && cores) {
		if (!json_is_integer(cores) || json_integer_value(cores) < 0 ||
		    json_integer_value(cores) > DURO_MAX_CORES)
			r = -EINVAL;
		else
			out->cores = (unsigned)json_integer_value(cores);
	}
	json_decref(o);
	return r;
}

static long dump(json_t *o, char *out, size_t cap)
{
	if (!o)
		return -ENOMEM;
	size_t n = json_dumpb(o, out, cap, JSON_COMPACT);
	json_decref(o);
	if (n == 0 || n >= cap)
		return -ENOSPC;
	out[n] = 0;
	return (long)n;
}

long cluster_member_format(const struct cluster_member_value *m, char *out, size_t cap)
{
	char inc[24];
	snprintf(inc, sizeof(inc), "%lld", (long long)m->incarnation);
	return dump(json_pack("{s:s, s:i, s:s, s:s, s:s}", "address", m->address, "cores",
			      (int)m->cores, "version", m->version, "incarnation", inc, "peer",
			      m->peer), out, cap);
}

/* "voters": an array of up to CLUSTER_MAX_VOTERS distinct box names. */
static int voters_parse(json_t *a, struct cluster_slot_value *out)
{
	if (!json_is_array(a) || json_array_size(a) > CLUSTER_MAX_VOTERS)
		return -EINVAL;
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v))
			return -EINVAL;
		const char *name = json_string_value(v);
		size_t len = json_string_length(v);
		if (strlen(name) != len || !name_ok(name, len))
			return -EINVAL;
		for (unsigned k = 0; k < out->nvoters; k++)
			if (!strcmp(out->voters[k], name))
				return -EINVAL;
		memcpy(out->voters[out->nvoters++], name, len + 1);
	}
	return 0;
}

int cluster_slot_parse(const char *v, size_t n, struct cluster_slot_value *out)
{
	memset(out, 0, sizeof(*out));
	json_t *o = load(v, n);
	if (!o)
		return -EINVAL;
	char state[16] = "active";
	int r = get_str(o, "owner", out->owner, sizeof(out->owner));
	if (r == 0 && !name_ok(out->owner, strlen(out->owner)))
		r = -EINVAL;
	if (r == 0)
		r = get_i64(o, "incarnation", &out->incarnation);
	if (r == 0 && json_object_get(o, "state"))
		r = get_str(o, "state", state, sizeof(state));
	if (r == 0) {
		if (!strcmp(state, "active"))
			out->state = CLUSTER_SLOT_ACTIVE;
		else if (!strcmp(state, "moving"))
			out->state = CLUSTER_SLOT_MOVING;
		else
			r = -EINVAL;
	}
	if (r == 0 && out->state == CLUSTER_SLOT_MOVING) {
		r = get_str(o, "target", out->target, sizeof(out->target));
		if (r == 0 && !name_ok(out->target, strlen(out->target)))
			r = -EINVAL;
		if (r == 0)
			r = get_i64(o, "target_incarnation", &out->target_incarnation);
	}
	json_t *voters = json_object_get(o, "voters");
	if (r == 0 && voters)
		r = voters_parse(voters, out);
	json_decref(o);
	return r;
}

long cluster_slot_format(const struct cluster_slot_value *s, char *out, size_t cap)
{
	char inc[24];
	snprintf(inc, sizeof(inc), "%lld", (long long)s->incarnation);
	json_t *o;
	if (s->state == CLUSTER_SLOT_MOVING) {
		char tinc[24];
		snprintf(tinc, sizeof(tinc), "%lld", (long long)s->target_incarnation);
		o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "owner", s->owner, "incarnation", inc,
			      "state", "moving", "target", s->target, "target_incarnation", tinc);
	} else {
		o = json_pack("{s:s, s:s, s:s}", "owner", s->owner, "incarnation", inc, "state",
			      "active");
	}
	if (o && s->nvoters) {
		json_t *a = json_array();
		for (unsigned i = 0; a && i < s->nvoters && i < CLUSTER_MAX_VOTERS; i++)
			json_array_append_new(a, json_string(s->voters[i]));
		if (!a || json_object_set_new(o, "voters", a) < 0) {
			json_decref(o);
			return -ENOMEM;
		}
	}
	return dump(o, out, cap);
}

uint64_t cluster_weight(const char *box, unsigned slot)
{
	/* A fixed key: every box must compute the same weights. */
	static const uint8_t key[16] = { 'd', 'u', 'r', 'o', '-', 's', 'l', 'o',
					 't', '-', 'r', 'e', 'n', 'd', 'e', 'z' };
	char buf[CLUSTER_NAME_MAX + 8];
	size_t n = strlen(box);
	if (n > CLUSTER_NAME_MAX)
		n = CLUSTER_NAME_MAX;
	memcpy(buf, box, n);
	buf[n] = 0;
	memcpy(buf + n + 1, &(uint32_t){ slot }, 4);
	return siphash64(key, buf, n + 5);
}
