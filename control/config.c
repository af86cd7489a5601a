/* The config engine: JSON (jansson) checked and applied key by key from the table in
 * config_keys.c, defaults and the effective config from the same rows. Unknown keys, wrong
 * types and bad values are refused with the path of the key, so a typo never passes.
 * JSON has no comments: a key starting with "//" is one, in any object of the config (a
 * binding's vars excepted, whose keys are the class's), with a string or an array of
 * strings as its value. */
#include "config_int.h"
#include "base_assert.h"
#include "obj.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int config_fail(struct config_ctx *x, const char *path, const char *fmt, ...)
{
	if (x->failed)
		return -EINVAL;
	x->failed = 1;
	int n = x->origin ? snprintf(x->err, x->errlen, "durod: %s: config: %s: ", x->origin, path)
			  : snprintf(x->err, x->errlen, "config: %s: ", path);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < x->errlen)
		vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *config_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static void join(char *out, size_t n, const char *path, const char *key)
{
	snprintf(out, n, "%s%s%s", path, *path ? "." : "", key);
}

/* Edits (insert, delete, replace) from a to b, at most 64 bytes each: typos are short. */
static unsigned distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return ~0u;
	unsigned row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* "unknown key", with the nearest known name when one is close (two edits at most). */
static int unknown_key(struct config_ctx *x, const char *path, const char *key,
		       const char *const *names, unsigned n)
{
	const char *best = NULL;
	unsigned bd = 3;
	for (unsigned i = 0; i < n; i++) {
		unsigned d = distance(key, names[i]);
		if (d < bd) {
			bd = d;
			best = names[i];
		}
	}
	if (best)
		return config_fail(x, path, "unknown key (did you mean \"%s\"?)", best);
	return config_fail(x, path, "unknown key");
}

/* 1 when key k (at path sub) is a comment, which is skipped; -EINVAL when it is one with
 * a value that is not text; 0 when it is not a comment. */
static int comment(struct config_ctx *x, const char *sub, const char *k, const json_t *v)
{
	if (strncmp(k, "//", 2) != 0)
		return 0;
	if (json_is_string(v))
		return 1;
	if (json_is_array(v)) {
		size_t i;
		json_t *line;
		int text = 1;
		json_array_foreach(v, i, line)
			text &= json_is_string(line);
		if (text)
			return 1;
	}
	return config_fail(x, sub, "a comment (a key starting with //) takes a string or an "
			   "array of strings, got %s", config_type_name(v));
}

int config_only_keys(struct config_ctx *x, const char *path, json_t *obj,
		     const char *const *keys)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		char csub[256];
		join(csub, sizeof(csub), path, k);
		int c = comment(x, csub, k, v);
		if (c < 0)
			return c;
		if (c)
			continue;
		unsigned n = 0;
		int known = 0;
		for (const char *const *p = keys; *p; p++, n++)
			known |= strcmp(*p, k) == 0;
		if (!known) {
			char sub[256];
			join(sub, sizeof(sub), path, k);
			return unknown_key(x, sub, k, keys, n);
		}
	}
	return 0;
}

int config_get_str(struct config_ctx *x, const char *path, json_t *obj, const char *key,
		   char *out, size_t cap, int required)
{
	json_t *v = json_object_get(obj, key);
	char p[256];
	join(p, sizeof(p), path, key);
	if (!v)
		return required ? config_fail(x, p, "missing") : 0;
	if (!json_is_string(v))
		return config_fail(x, p, "want a string, got %s", config_type_name(v));
	const char *s = json_string_value(v);
	if (strlen(s) >= cap)
		return config_fail(x, p, "longer than %zu bytes", cap - 1);
	if (required && !*s)
		return config_fail(x, p, "empty");
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

const struct config_key *config_find_key(const char *path)
{
	for (unsigned i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].path, path) == 0)
			return &config_keys[i];
	return NULL;
}

/* Whether path ("limits", "dpdk.fault_rx") is a section: an object holding keys. */
static int is_section(const char *path)
{
	size_t n = strlen(path);
	for (unsigned i = 0; i < config_nkeys; i++)
		if (!strncmp(config_keys[i].path, path, n) && config_keys[i].path[n] == '.')
			return 1;
	return 0;
}

/* The names one level below section `path` ("" for the top), for suggestions. */
static unsigned names_under(const char *path, const char **out, char (*buf)[64], unsigned cap)
{
	size_t n = strlen(path);
	unsigned count = 0;
	for (unsigned i = 0; i < config_nkeys && count < cap; i++) {
		const char *p = config_keys[i].path;
		if (n && (strncmp(p, path, n) || p[n] != '.'))
			continue;
		const char *name = n ? p + n + 1 : p;
		size_t len = strcspn(name, ".");
		if (len >= sizeof(buf[0]))
			continue;
		memcpy(buf[count], name, len);
		buf[count][len] = 0;
		int dup = 0;
		for (unsigned j = 0; j < count; j++)
			dup |= !strcmp(buf[j], buf[count]);
		if (!dup) {
			out[count] = buf[count];
			count++;
		}
	}
	return count;
}

/* Every member of obj (at path) must be a key of the table or a section holding some. */
static int check_keys(struct config_ctx *x, const char *path, json_t *obj)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		char sub[256];
		join(sub, sizeof(sub), path, k);
		int c = comment(x, sub, k, v);
		if (c < 0)
			return c;
		if (c)
			continue;
		/* A dotted name would match a path here yet be looked up nowhere. */
		int plain = strlen(k) < 128 && !strchr(k, '.');
		if (plain && config_find_key(sub))
			continue;
		if (plain && is_section(sub)) {
			if (!json_is_object(v))
				return config_fail(x, sub, "want an object, got %s", config_type_name(v));
			if (check_keys(x, sub, v) < 0)
				return -EINVAL;
			continue;
		}
		const char *names[96];
		char buf[96][64];
		unsigned n = names_under(path, names, buf, 96);
		return unknown_key(x, sub, k, names, n);
	}
	return 0;
}

/* The value at a dotted path of root, or NULL (sections were checked to be objects). */
static json_t *lookup(json_t *root, const char *path)
{
	json_t *v = root;
	while (v && *path) {
		size_t len = strcspn(path, ".");
		char name[64];
		if (len >= sizeof(name))
			return NULL;
		memcpy(name, path, len);
		name[len] = 0;
		v = json_object_get(v, name);
		path += len + (path[len] == '.');
	}
	return v;
}

static void *field(struct duro_config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->offset;
}

static const void *cfield(const struct duro_config *cfg, const struct config_key *k)
{
	return (const char *)cfg + k->offset;
}

static void set_uint(void *f, size_t size, uint64_t v)
{
	if (size == sizeof(uint32_t)) {
		uint32_t u = (uint32_t)v;
		memcpy(f, &u, sizeof(u));
	} else {
		DURO_ASSERT(size == sizeof(uint64_t));
		memcpy(f, &v, sizeof(v));
	}
}

static uint64_t get_uint(const void *f, size_t size)
{
	if (size == sizeof(uint32_t)) {
		uint32_t u;
		memcpy(&u, f, sizeof(u));
		return u;
	}
	uint64_t v;
	memcpy(&v, f, sizeof(v));
	return v;
}

static int enum_index(const struct config_key *k, const char *name)
{
	for (int i = 0; k->names[i]; i++)
		if (!strcmp(k->names[i], name))
			return i;
	return -1;
}

/* "error, warn, info or debug" */
static void enum_list(const struct config_key *k, char *out, size_t n)
{
	*out = 0;
	for (int i = 0; k->names[i]; i++) {
		size_t len = strlen(out);
		snprintf(out + len, n - len, "%s%s", i == 0 ? "" : k->names[i + 1] ? ", " : " or ",
			 k->names[i]);
	}
}

static int parse_strings(struct config_ctx *x, const struct config_key *k, json_t *v,
			 struct duro_config *cfg)
{
	if (!json_is_array(v) || json_array_size(v) > k->max)
		return config_fail(x, k->path, "want an array of at most %llu strings",
				   (unsigned long long)k->max);
	char *out = field(cfg, k);
	unsigned *count = (unsigned *)((char *)cfg + k->count_offset);
	size_t i;
	json_t *s;
	json_array_foreach(v, i, s) {
		if (!json_is_string(s) || strlen(json_string_value(s)) >= k->size) {
			char p[128];
			snprintf(p, sizeof(p), "%s[%zu]", k->path, i);
			return config_fail(x, p, "want a string shorter than %zu bytes", k->size);
		}
	}
	json_array_foreach(v, i, s) {
		char p[128];
		snprintf(p, sizeof(p), "%s[%zu]", k->path, i);
		if (k->check && k->check(x, p, json_string_value(s)) < 0)
			return -EINVAL;
	}
	json_array_foreach(v, i, s)
		memcpy(out + i * k->size, json_string_value(s), strlen(json_string_value(s)) + 1);
	*count = (unsigned)json_array_size(v);
	return 0;
}

static int parse_key(struct config_ctx *x, const struct config_key *k, json_t *v,
		     struct duro_config *cfg)
{
	void *f = field(cfg, k);
	switch (k->type) {
	case CONFIG_UINT: {
		if (!json_is_integer(v))
			return config_fail(x, k->path, "want an integer, got %s", config_type_name(v));
		json_int_t i = json_integer_value(v);
		if (i < 0 || (uint64_t)i < k->min || (uint64_t)i > k->max)
			return config_fail(x, k->path, "%lld is out of range [%llu, %llu]", (long long)i,
					   (unsigned long long)k->min, (unsigned long long)k->max);
		if (k->check_uint && k->check_uint(x, k->path, (uint64_t)i) < 0)
			return -EINVAL;
		set_uint(f, k->size, (uint64_t)i);
		return 0;
	}
	case CONFIG_BOOL: {
		if (!json_is_boolean(v))
			return config_fail(x, k->path, "want a boolean, got %s", config_type_name(v));
		int b = json_is_true(v) ^ !!(k->flags & CONFIG_NEGATE);
		memcpy(f, &b, sizeof(b));
		return 0;
	}
	case CONFIG_STRING: {
		if (!json_is_string(v))
			return config_fail(x, k->path, "want a string, got %s", config_type_name(v));
		const char *s = json_string_value(v);
		if (strlen(s) >= k->size)
			return config_fail(x, k->path, "longer than %zu bytes", k->size - 1);
		if (k->check && k->check(x, k->path, s) < 0)
			return -EINVAL;
		memcpy(f, s, strlen(s) + 1);
		return 0;
	}
	case CONFIG_ENUM: {
		if (!json_is_string(v))
			return config_fail(x, k->path, "want a string, got %s", config_type_name(v));
		int i = enum_index(k, json_string_value(v));
		if (i < 0) {
			char list[128];
			enum_list(k, list, sizeof(list));
			return config_fail(x, k->path, "\"%.64s\": want %s", json_string_value(v), list);
		}
		if (k->flags & CONFIG_NAME)
			snprintf(f, k->size, "%s", k->names[i]);
		else
			memcpy(f, &i, sizeof(i));
		return 0;
	}
	case CONFIG_STRINGS:
		return parse_strings(x, k, v, cfg);
	case CONFIG_CUSTOM:
		return k->custom->parse(x, k->path, v, cfg);
	case CONFIG_IGNORED:
		return 0;
	}
	DURO_ASSERT(0);
	return -EINVAL;
}

/* Checks every key of root, then applies them in the table's order. Does not take root. */
static int apply(struct duro_config *cfg, json_t *root, struct config_ctx *x)
{
	if (!json_is_object(root))
		return config_fail(x, "(top level)", "want an object, got %s", config_type_name(root));
	if (check_keys(x, "", root) < 0)
		return -EINVAL;
	for (unsigned i = 0; i < config_nkeys; i++) {
		json_t *v = lookup(root, config_keys[i].path);
		if (v && parse_key(x, &config_keys[i], v, cfg) < 0)
			return -EINVAL;
	}
	return 0;
}

int config_load(struct duro_config *cfg, const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "config: %s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	struct config_ctx x = { .err = err, .errlen = errlen };
	int r = apply(cfg, root, &x);
	json_decref(root);
	return r;
}

int config_load_buffer(struct duro_config *cfg, const char *data, size_t len, char *err,
		       size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "config: %d:%d: %s", jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	struct config_ctx x = { .err = err, .errlen = errlen };
	int r = apply(cfg, root, &x);
	json_decref(root);
	return r;
}

int config_apply_json(struct duro_config *cfg, json_t *root, const char *origin, char *err,
		      size_t errlen)
{
	struct config_ctx x = { .err = err, .errlen = errlen, .origin = origin };
	return apply(cfg, root, &x);
}

static void key_default(const struct config_key *k, struct duro_config *cfg)
{
	void *f = field(cfg, k);
	switch (k->type) {
	case CONFIG_UINT:
		set_uint(f, k->size, k->def);
		break;
	case CONFIG_BOOL: {
		int b = (k->def != 0) ^ !!(k->flags & CONFIG_NEGATE);
		memcpy(f, &b, sizeof(b));
		break;
	}
	case CONFIG_STRING:
		snprintf(f, k->size, "%s", k->def_text ? k->def_text : "");
		break;
	case CONFIG_ENUM: {
		int i = (int)k->def;
		if (k->flags & CONFIG_NAME)
			snprintf(f, k->size, "%s", k->names[i]);
		else
			memcpy(f, &i, sizeof(i));
		break;
	}
	case CONFIG_STRINGS:
		*(unsigned *)((char *)cfg + k->count_offset) = 0;
		break;
	case CONFIG_CUSTOM:
		k->custom->defaults(cfg);
		break;
	case CONFIG_IGNORED:
		break;
	}
	if (k->def_fn)
		k->def_fn(cfg);
}

void config_defaults(struct duro_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (unsigned i = 0; i < config_nkeys; i++)
		key_default(&config_keys[i], cfg);
	/* Not keys: set by durod from the keys, or fixed. */
	cfg->net.backlog = 4096;
	cfg->net.linger_ms = 2000;
	cfg->http.shutdown_timeout_ms = cfg->shutdown_timeout_ms;
	snprintf(cfg->obj.store.dir, sizeof(cfg->obj.store.dir), "%s", cfg->obj.data_dir);
}

struct class_list {
	char buf[512];
};

static void add_class_name(const char *name, void *arg)
{
	struct class_list *cl = arg;
	size_t n = strlen(cl->buf);
	snprintf(cl->buf + n, sizeof(cl->buf) - n, "%s%s", n ? ", " : "", name);
}

/* The cluster keys together: any of them without a name is a mistake worth naming, and a
 * cluster box needs etcd and an address its peers can reach. */
static int config_validate_cluster(const struct duro_config *cfg, char *err, size_t errlen)
{
	const __typeof__(cfg->cluster) *cl = &cfg->cluster;
	if (!cl->name[0]) {
		if (cl->netcd || cl->advertise[0] || cl->box[0]) {
			snprintf(err, errlen, "config: cluster.name: missing: cluster.%s is set, so "
				 "name the cluster (or drop the cluster section for a single box)",
				 cl->netcd ? "etcd" : cl->advertise[0] ? "advertise" : "box");
			return -EINVAL;
		}
		return 0;
	}
	if (!cl->netcd) {
		snprintf(err, errlen, "config: cluster.etcd: a cluster box needs at least one etcd "
			 "endpoint, e.g. [\"http://127.0.0.1:2379\"]");
		return -EINVAL;
	}
	if (!cl->advertise[0]) {
		if (!cfg->net.nlisten) {
			snprintf(err, errlen, "config: cluster.advertise: no listener to derive it from");
			return -EINVAL;
		}
		const struct net_listen *nl = &cfg->net.listen[0];
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&nl->addr;
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&nl->addr;
		if ((nl->addr.ss_family == AF_INET && sin->sin_addr.s_addr == 0) ||
		    (nl->addr.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))) {
			snprintf(err, errlen, "config: cluster.advertise: the first listener (%s) is a "
				 "wildcard address: give the address peers reach this box at", nl->text);
			return -EINVAL;
		}
	}
	if (cl->etcd_timeout_ms * 2 > cl->lease_ttl_ms) {
		snprintf(err, errlen, "config: cluster.etcd_timeout_ms: %u: want at most half "
			 "of cluster.lease_ttl_ms (%u), so a renewal can fail over in time",
			 cl->etcd_timeout_ms, cl->lease_ttl_ms);
		return -EINVAL;
	}
	return 0;
}

int config_validate(const struct duro_config *cfg, char *err, size_t errlen)
{
	for (unsigned i = 0; i < cfg->obj.nbindings; i++) {
		if (obj_find_class(cfg->obj.bindings[i].class_name))
			continue;
		struct class_list cl = { "" };
		obj_each_class(add_class_name, &cl);
		snprintf(err, errlen,
			 "config: durable_objects.bindings[%u].class_name: unknown class \"%s\" "
			 "(classes: %s%s)", i, cfg->obj.bindings[i].class_name, cl.buf,
			 cfg->nmodules ? "; modules add theirs" : "; \"modules\" may add more");
		return -EINVAL;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu > 0 && cfg->cores > (unsigned)ncpu) {
		snprintf(err, errlen, "config: cores: %u cores asked, this machine has %ld CPUs",
			 cfg->cores, ncpu);
		return -EINVAL;
	}
	if (!cfg->obj.data_dir[0]) {
		snprintf(err, errlen, "config: data_dir: empty");
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->net.nlisten; i++) {
		if (cfg->net.listen[i].tls && !cfg->tls.ncerts) {
			snprintf(err, errlen, "config: listeners[%u].tls: no certificate: give "
				 "{\"cert\": FILE, \"key\": FILE} or tls.certificates", i);
			return -EINVAL;
		}
	}
	/* Two keys together: af_packet's ring holds whole blocks of 2048-byte frames (checked
	 * here, after every flag, as either key may come last). */
	unsigned per_block = cfg->dpdk.af_packet_blocksz / 2048;
	if (per_block && cfg->dpdk.af_packet_framecnt % per_block) {
		snprintf(err, errlen, "config: dpdk.af_packet_framecnt: %u: want a multiple of the "
			 "%u frames of 2048 bytes in a block of af_packet_blocksz",
			 cfg->dpdk.af_packet_framecnt, per_block);
		return -EINVAL;
	}
	if (config_validate_cluster(cfg, err, errlen) < 0)
		return -EINVAL;
	if (strcmp(cfg->backend, "dpdk") == 0) {
		if (!cfg->dpdk.ipv4) {
			snprintf(err, errlen, "config: dpdk.ipv4: the dpdk backend needs its own "
				 "address (e.g. \"10.77.0.1/24\", or --dpdk-ipv4)");
			return -EINVAL;
		}
		for (unsigned i = 0; i < cfg->net.nlisten; i++) {
			const struct net_listen *nl = &cfg->net.listen[i];
			const struct sockaddr_in *sin = (const struct sockaddr_in *)&nl->addr;
			if (nl->addr.ss_family != AF_INET ||
			    (sin->sin_addr.s_addr && sin->sin_addr.s_addr != cfg->dpdk.ipv4)) {
				snprintf(err, errlen, "config: listeners[%u]: %s: the dpdk backend "
					 "serves its dpdk.ipv4 address (or 0.0.0.0) only", i, nl->text);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static json_t *key_json(const struct config_key *k, const struct duro_config *cfg)
{
	const void *f = cfield(cfg, k);
	switch (k->type) {
	case CONFIG_UINT:
		return json_integer((json_int_t)get_uint(f, k->size));
	case CONFIG_BOOL: {
		int b;
		memcpy(&b, f, sizeof(b));
		return json_boolean((b != 0) ^ !!(k->flags & CONFIG_NEGATE));
	}
	case CONFIG_STRING:
		return json_string(f);
	case CONFIG_ENUM: {
		if (k->flags & CONFIG_NAME)
			return json_string(f);
		int i;
		memcpy(&i, f, sizeof(i));
		return json_string(k->names[i]);
	}
	case CONFIG_STRINGS: {
		json_t *a = json_array();
		unsigned n = *(const unsigned *)((const char *)cfg + k->count_offset);
		for (unsigned i = 0; a && i < n; i++)
			json_array_append_new(a, json_string((const char *)f + i * k->size));
		return a;
	}
	case CONFIG_CUSTOM:
		return k->custom->to_json(cfg);
	case CONFIG_IGNORED:
		break;
	}
	return NULL;
}

int config_json_put(json_t *root, const char *path, json_t *v)
{
	json_t *o = root;
	for (;;) {
		size_t len = strcspn(path, ".");
		char name[64];
		DURO_ASSERT(len < sizeof(name));
		memcpy(name, path, len);
		name[len] = 0;
		if (!path[len])
			return json_object_set_new(o, name, v);
		json_t *next = json_object_get(o, name);
		if (!next) {
			next = json_object();
			if (json_object_set_new(o, name, next) < 0) {
				json_decref(v);
				return -1;
			}
		}
		o = next;
		path += len + 1;
	}
}

json_t *config_to_json(const struct duro_config *cfg)
{
	json_t *out = json_object();
	int ok = out != NULL;
	int dpdk = strcmp(cfg->backend, "dpdk") == 0;
	for (unsigned i = 0; ok && i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		/* The dpdk section means something only with its backend, the cluster section
		 * only in cluster mode: a single box shows what it showed before clusters. */
		if (k->type == CONFIG_IGNORED || (!dpdk && !strncmp(k->path, "dpdk.", 5)) ||
		    (!cfg->cluster.name[0] && !strncmp(k->path, "cluster.", 8)))
			continue;
		json_t *v = key_json(k, cfg);
		ok = v && config_json_put(out, k->path, v) == 0;
	}
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}
