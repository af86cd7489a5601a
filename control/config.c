/* JSON config with jansson: every key has a type and a place; unknown keys, wrong types
 * and bad values are refused with the path of the key, so a typo never passes silently. */
#include "config.h"
#include "obj.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct ctx {
	char *err;
	size_t errlen;
	int failed;
};

__attribute__((format(printf, 3, 4))) static int fail(struct ctx *x, const char *path,
							const char *fmt, ...)
{
	if (x->failed)
		return -EINVAL;
	x->failed = 1;
	int n = snprintf(x->err, x->errlen, "config: %s: ", path);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < x->errlen)
		vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *type_name(const json_t *v)
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

/* Refuses keys of `obj` not in the NULL-terminated list. */
static int only_keys(struct ctx *x, const char *path, json_t *obj, const char *const *keys)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		int known = 0;
		for (const char *const *p = keys; *p; p++)
			if (strcmp(*p, k) == 0)
				known = 1;
		if (!known) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
			return fail(x, sub, "unknown key");
		}
	}
	return 0;
}

static void join(char *out, size_t n, const char *path, const char *key)
{
	snprintf(out, n, "%s%s%s", path, *path ? "." : "", key);
}

static int get_uint(struct ctx *x, const char *path, json_t *obj, const char *key,
		    unsigned long long lo, unsigned long long hi, unsigned long long *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return 0;
	char p[256];
	join(p, sizeof(p), path, key);
	if (!json_is_integer(v))
		return fail(x, p, "want an integer, got %s", type_name(v));
	json_int_t i = json_integer_value(v);
	if (i < 0 || (unsigned long long)i < lo || (unsigned long long)i > hi)
		return fail(x, p, "%lld is out of range [%llu, %llu]", (long long)i, lo, hi);
	*out = (unsigned long long)i;
	return 0;
}

#define GET_UINT(x, path, obj, key, lo, hi, field)                                         \
	do {                                                                               \
		unsigned long long tmp_ = (field);                                         \
		if (get_uint(x, path, obj, key, lo, hi, &tmp_) < 0)                        \
			return -EINVAL;                                                    \
		(field) = tmp_;                                                            \
	} while (0)

static int get_str(struct ctx *x, const char *path, json_t *obj, const char *key, char *out,
		   size_t cap, int required)
{
	json_t *v = json_object_get(obj, key);
	char p[256];
	join(p, sizeof(p), path, key);
	if (!v)
		return required ? fail(x, p, "missing") : 0;
	if (!json_is_string(v))
		return fail(x, p, "want a string, got %s", type_name(v));
	const char *s = json_string_value(v);
	if (strlen(s) >= cap)
		return fail(x, p, "longer than %zu bytes", cap - 1);
	if (required && !*s)
		return fail(x, p, "empty");
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int parse_listeners(struct ctx *x, struct duro_config *cfg, json_t *arr)
{
	if (!json_is_array(arr))
		return fail(x, "listeners", "want an array, got %s", type_name(arr));
	if (json_array_size(arr) == 0 || json_array_size(arr) > DURO_MAX_LISTENERS)
		return fail(x, "listeners", "want 1 to %d listeners", DURO_MAX_LISTENERS);
	cfg->net.nlisten = 0;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char p[64], addr[64];
		snprintf(p, sizeof(p), "listeners[%zu]", i);
		static const char *const keys[] = { "address", "tls", NULL };
		static const char *const tkeys[] = { "cert", "key", NULL };
		json_t *tls = NULL;
		if (json_is_string(v)) {
			snprintf(addr, sizeof(addr), "%s", json_string_value(v));
		} else if (json_is_object(v)) {
			if (only_keys(x, p, v, keys) < 0 || get_str(x, p, v, "address", addr, sizeof(addr), 1) < 0)
				return -EINVAL;
			tls = json_object_get(v, "tls");
		} else {
			return fail(x, p, "want \"host:port\" or {\"address\": …}, got %s", type_name(v));
		}
		if (net_parse_addr(addr, &cfg->net.listen[cfg->net.nlisten]) < 0)
			return fail(x, p, "bad address \"%s\": want host:port or [v6]:port", addr);
		if (tls) {
			char tp[80], cert[512], key[512];
			snprintf(tp, sizeof(tp), "%s.tls", p);
			if (!json_is_object(tls))
				return fail(x, tp, "want {\"cert\": FILE, \"key\": FILE}, got %s", type_name(tls));
			if (only_keys(x, tp, tls, tkeys) < 0 ||
			    get_str(x, tp, tls, "cert", cert, sizeof(cert), 1) < 0 ||
			    get_str(x, tp, tls, "key", key, sizeof(key), 1) < 0)
				return -EINVAL;
			/* Listeners share the certificate set; SNI picks among them. */
			if (tls_config_add(&cfg->tls, cert, key) < 0)
				return fail(x, tp, "more than %d certificates", TLS_MAX_CERTS);
			cfg->net.listen[cfg->net.nlisten].tls = 1;
		}
		cfg->net.nlisten++;
	}
	return 0;
}

/* vars: {"name": "value" | number | boolean}, kept as text for the class to parse. */
static int parse_vars(struct ctx *x, const char *path, json_t *binding, struct obj_binding *b)
{
	json_t *vars = json_object_get(binding, "vars");
	char p[160];
	join(p, sizeof(p), path, "vars");
	if (!vars)
		return 0;
	if (!json_is_object(vars))
		return fail(x, p, "want an object of name: value, got %s", type_name(vars));
	if (json_object_size(vars) > OBJ_MAX_VARS)
		return fail(x, p, "more than %d vars", OBJ_MAX_VARS);
	const char *k;
	json_t *v;
	json_object_foreach(vars, k, v) {
		char q[240];
		snprintf(q, sizeof(q), "%s.%s", p, k);
		struct obj_var *var = &b->vars[b->nvars];
		if (strlen(k) >= sizeof(var->name))
			return fail(x, q, "name longer than %zu bytes", sizeof(var->name) - 1);
		snprintf(var->name, sizeof(var->name), "%s", k);
		if (json_is_string(v))
			snprintf(var->value, sizeof(var->value), "%s", json_string_value(v));
		else if (json_is_integer(v))
			snprintf(var->value, sizeof(var->value), "%lld", (long long)json_integer_value(v));
		else if (json_is_real(v))
			snprintf(var->value, sizeof(var->value), "%.17g", json_real_value(v));
		else if (json_is_boolean(v))
			snprintf(var->value, sizeof(var->value), "%s", json_is_true(v) ? "true" : "false");
		else
			return fail(x, q, "want a string, number or boolean, got %s", type_name(v));
		if (json_is_string(v) && strlen(json_string_value(v)) >= sizeof(var->value))
			return fail(x, q, "value longer than %zu bytes", sizeof(var->value) - 1);
		b->nvars++;
	}
	return 0;
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

static int parse_bindings(struct ctx *x, struct duro_config *cfg, json_t *dobj)
{
	static const char *const dkeys[] = { "bindings", NULL };
	if (!json_is_object(dobj))
		return fail(x, "durable_objects", "want an object, got %s", type_name(dobj));
	if (only_keys(x, "durable_objects", dobj, dkeys) < 0)
		return -EINVAL;
	json_t *arr = json_object_get(dobj, "bindings");
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return fail(x, "durable_objects.bindings", "want an array, got %s", type_name(arr));
	if (json_array_size(arr) > DURO_MAX_BINDINGS)
		return fail(x, "durable_objects.bindings", "more than %d bindings", DURO_MAX_BINDINGS);
	cfg->obj.nbindings = 0;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char p[64];
		snprintf(p, sizeof(p), "durable_objects.bindings[%zu]", i);
		static const char *const keys[] = { "name", "class_name", "vars", NULL };
		if (!json_is_object(v))
			return fail(x, p, "want an object, got %s", type_name(v));
		struct obj_binding *b = &cfg->obj.bindings[i];
		memset(b, 0, sizeof(*b));
		if (only_keys(x, p, v, keys) < 0 ||
		    get_str(x, p, v, "name", b->name, sizeof(b->name), 1) < 0 ||
		    get_str(x, p, v, "class_name", b->class_name, sizeof(b->class_name), 1) < 0 ||
		    parse_vars(x, p, v, b) < 0)
			return -EINVAL;
		char sub[96];
		for (const char *c = b->name; *c; c++) {
			if (*c == '/' || *c <= ' ' || *c > '~') {
				snprintf(sub, sizeof(sub), "%s.name", p);
				return fail(x, sub, "\"%s\": no spaces, slashes or control bytes", b->name);
			}
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(cfg->obj.bindings[j].name, b->name) == 0) {
				snprintf(sub, sizeof(sub), "%s.name", p);
				return fail(x, sub, "binding \"%s\" defined twice", b->name);
			}
		}
		if (!obj_find_class(b->class_name)) {
			struct class_list cl = { "" };
			obj_each_class(add_class_name, &cl);
			snprintf(sub, sizeof(sub), "%s.class_name", p);
			return fail(x, sub, "unknown class \"%s\" (built-in classes: %s)", b->class_name, cl.buf);
		}
		cfg->obj.nbindings++;
	}
	return 0;
}


static int find_binding(const struct duro_config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->obj.nbindings; i++)
		if (strcmp(cfg->obj.bindings[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* /counter/, /echo/, /kv/, /limit/, /memcounter/, /ticker/ and /lock/<name> for the default
 * bindings that the config still has, and
 * the generic /obj/<binding>/<id>. */
static void default_routes(struct duro_config *cfg)
{
	static const struct { const char *prefix, *binding; } defs[] = {
		{ "/counter/", "COUNTER" }, { "/echo/", "ECHO" }, { "/kv/", "KV" },
		{ "/limit/", "LIMITER" }, { "/memcounter/", "MEMCOUNTER" },
		{ "/ticker/", "TICKER" }, { "/lock/", "LOCK" }, { "/room/", "ROOM" } };
	cfg->obj.nroutes = 0;
	for (unsigned i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		int b = find_binding(cfg, defs[i].binding);
		if (b < 0)
			continue;
		struct obj_route *r = &cfg->obj.routes[cfg->obj.nroutes++];
		*r = (struct obj_route){ .kind = ROUTE_NAME, .binding = b };
		snprintf(r->prefix, sizeof(r->prefix), "%s", defs[i].prefix);
	}
	struct obj_route *g = &cfg->obj.routes[cfg->obj.nroutes++];
	*g = (struct obj_route){ .prefix = "/obj/", .kind = ROUTE_GENERIC, .binding = -1 };
}

static int parse_routes(struct ctx *x, struct duro_config *cfg, json_t *arr)
{
	if (!json_is_array(arr))
		return fail(x, "routes", "want an array, got %s", type_name(arr));
	if (json_array_size(arr) > DURO_MAX_ROUTES)
		return fail(x, "routes", "more than %d routes", DURO_MAX_ROUTES);
	cfg->obj.nroutes = 0;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char p[64], sub[96], id[16] = "name", binding[OBJ_NAME_MAX] = "";
		snprintf(p, sizeof(p), "routes[%zu]", i);
		static const char *const keys[] = { "prefix", "binding", "id", NULL };
		if (!json_is_object(v))
			return fail(x, p, "want an object, got %s", type_name(v));
		struct obj_route *r = &cfg->obj.routes[i];
		if (only_keys(x, p, v, keys) < 0 ||
		    get_str(x, p, v, "prefix", r->prefix, sizeof(r->prefix), 1) < 0 ||
		    get_str(x, p, v, "id", id, sizeof(id), 0) < 0 ||
		    get_str(x, p, v, "binding", binding, sizeof(binding), 0) < 0)
			return -EINVAL;
		size_t plen = strlen(r->prefix);
		if (r->prefix[0] != '/' || r->prefix[plen - 1] != '/') {
			snprintf(sub, sizeof(sub), "%s.prefix", p);
			return fail(x, sub, "\"%s\" must start and end with '/'", r->prefix);
		}
		snprintf(sub, sizeof(sub), "%s.id", p);
		if (strcmp(id, "name") == 0)
			r->kind = ROUTE_NAME;
		else if (strcmp(id, "string") == 0)
			r->kind = ROUTE_ID;
		else if (strcmp(id, "path") == 0)
			r->kind = ROUTE_GENERIC;
		else
			return fail(x, sub, "\"%s\": want \"name\", \"string\" or \"path\"", id);
		snprintf(sub, sizeof(sub), "%s.binding", p);
		if (r->kind == ROUTE_GENERIC) {
			if (*binding)
				return fail(x, sub, "not used with \"id\": \"path\" (the path names the binding)");
			r->binding = -1;
		} else {
			if (!*binding)
				return fail(x, sub, "missing");
			r->binding = find_binding(cfg, binding);
			if (r->binding < 0)
				return fail(x, sub, "no binding named \"%s\" in durable_objects.bindings", binding);
		}
		cfg->obj.nroutes++;
	}
	return 0;
}

static int parse_limits(struct ctx *x, struct duro_config *cfg, json_t *o)
{
	static const char *const keys[] = { "max_head_bytes", "max_body_bytes", "header_timeout_ms",
					    "body_timeout_ms", "body_min_rate", "send_timeout_ms",
					    "idle_timeout_ms", "max_pipeline", "max_output_bytes",
					    "max_connections_per_core", NULL };
	if (!json_is_object(o))
		return fail(x, "limits", "want an object, got %s", type_name(o));
	if (only_keys(x, "limits", o, keys) < 0)
		return -EINVAL;
	GET_UINT(x, "limits", o, "max_head_bytes", 1024, 1 << 20, cfg->http.max_head_bytes);
	GET_UINT(x, "limits", o, "max_body_bytes", 0, 1ull << 30, cfg->http.max_body_bytes);
	GET_UINT(x, "limits", o, "header_timeout_ms", 100, 3600000, cfg->http.header_timeout_ms);
	GET_UINT(x, "limits", o, "body_timeout_ms", 100, 3600000, cfg->http.body_timeout_ms);
	GET_UINT(x, "limits", o, "body_min_rate", 0, 1u << 30, cfg->http.body_min_rate);
	GET_UINT(x, "limits", o, "send_timeout_ms", 100, 3600000, cfg->http.send_timeout_ms);
	GET_UINT(x, "limits", o, "idle_timeout_ms", 100, 86400000, cfg->http.idle_timeout_ms);
	GET_UINT(x, "limits", o, "max_pipeline", 1, 1024, cfg->http.max_pipeline);
	GET_UINT(x, "limits", o, "max_output_bytes", 4096, 1u << 30, cfg->http.max_output_bytes);
	GET_UINT(x, "limits", o, "max_connections_per_core", 16, 1 << 20, cfg->net.max_conns_per_core);
	return 0;
}

static int config_apply(struct duro_config *cfg, json_t *root, char *err, size_t errlen);

/* The optional array `key` of a migration, at most STORE_MIGRATION_MAX_CLASSES long.
 * Returns 1 with *arr set and its path in p, 0 when absent, or -EINVAL. */
static int migration_array(struct ctx *x, const char *path, json_t *m, const char *key,
			   const char *want, json_t **arr, char p[160])
{
	*arr = json_object_get(m, key);
	join(p, 160, path, key);
	if (!*arr)
		return 0;
	if (!json_is_array(*arr))
		return fail(x, p, "want an array of %s, got %s", want, type_name(*arr));
	if (json_array_size(*arr) > STORE_MIGRATION_MAX_CLASSES)
		return fail(x, p, "more than %d classes", STORE_MIGRATION_MAX_CLASSES);
	return 1;
}

/* Class names in a migration: an array of strings. */
static int get_names(struct ctx *x, const char *path, json_t *m, const char *key,
		     char (*out)[STORE_NAME_MAX], unsigned *n)
{
	json_t *arr;
	char p[160];
	*n = 0;
	int r = migration_array(x, path, m, key, "class names", &arr, p);
	if (r <= 0)
		return r;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char q[200];
		snprintf(q, sizeof(q), "%s[%zu]", p, i);
		if (!json_is_string(v) || !*json_string_value(v) ||
		    strlen(json_string_value(v)) >= STORE_NAME_MAX)
			return fail(x, q, "want a class name of 1 to %d bytes", STORE_NAME_MAX - 1);
		snprintf(out[(*n)++], STORE_NAME_MAX, "%s", json_string_value(v));
	}
	return 0;
}

static int get_renames(struct ctx *x, const char *path, json_t *m, const char *key,
		       struct store_rename *out, unsigned *n)
{
	json_t *arr;
	char p[160];
	*n = 0;
	int r = migration_array(x, path, m, key, "{\"from\", \"to\"}", &arr, p);
	if (r <= 0)
		return r;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char q[200];
		snprintf(q, sizeof(q), "%s[%zu]", p, i);
		static const char *const keys[] = { "from", "to", "from_script", NULL };
		if (!json_is_object(v))
			return fail(x, q, "want {\"from\": …, \"to\": …}, got %s", type_name(v));
		char script[STORE_NAME_MAX];
		if (only_keys(x, q, v, keys) < 0 ||
		    get_str(x, q, v, "from", out[*n].from, STORE_NAME_MAX, 1) < 0 ||
		    get_str(x, q, v, "to", out[*n].to, STORE_NAME_MAX, 1) < 0 ||
		    get_str(x, q, v, "from_script", script, sizeof(script), 0) < 0)
			return -EINVAL;
		(*n)++;
	}
	return 0;
}

static int parse_migrations(struct ctx *x, struct duro_config *cfg, json_t *arr)
{
	if (!json_is_array(arr))
		return fail(x, "migrations", "want an array, got %s", type_name(arr));
	if (json_array_size(arr) > DURO_MAX_MIGRATIONS)
		return fail(x, "migrations", "more than %d tags", DURO_MAX_MIGRATIONS);
	cfg->obj.nmigrations = 0;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char p[64];
		snprintf(p, sizeof(p), "migrations[%zu]", i);
		static const char *const keys[] = { "tag", "new_classes", "new_sqlite_classes",
						    "renamed_classes", "deleted_classes",
						    "transferred_classes", NULL };
		if (!json_is_object(v))
			return fail(x, p, "want an object, got %s", type_name(v));
		struct store_migration *m = &cfg->obj.migrations[i];
		memset(m, 0, sizeof(*m));
		char sub[96];
		snprintf(sub, sizeof(sub), "%s.tag", p);
		if (only_keys(x, p, v, keys) < 0 || get_str(x, p, v, "tag", m->tag, sizeof(m->tag), 1) < 0)
			return -EINVAL;
		if (strchr(m->tag, '\n'))
			return fail(x, sub, "no newlines in a tag");
		for (size_t k = 0; k < i; k++)
			if (!strcmp(cfg->obj.migrations[k].tag, m->tag))
				return fail(x, sub, "tag \"%s\" appears twice", m->tag);
		unsigned nsql = 0;
		char (*sql)[STORE_NAME_MAX] = m->new_classes;
		if (get_names(x, p, v, "new_classes", m->new_classes, &m->nnew) < 0)
			return -EINVAL;
		/* new_sqlite_classes (wrangler's name for the newer backend) are new classes here. */
		if (json_object_get(v, "new_sqlite_classes")) {
			char tmp[STORE_MIGRATION_MAX_CLASSES][STORE_NAME_MAX];
			if (get_names(x, p, v, "new_sqlite_classes", tmp, &nsql) < 0)
				return -EINVAL;
			if (m->nnew + nsql > STORE_MIGRATION_MAX_CLASSES)
				return fail(x, p, "more than %d new classes", STORE_MIGRATION_MAX_CLASSES);
			memcpy(sql + m->nnew, tmp, nsql * sizeof(tmp[0]));
			m->nnew += nsql;
		}
		if (get_names(x, p, v, "deleted_classes", m->deleted, &m->ndeleted) < 0 ||
		    get_renames(x, p, v, "renamed_classes", m->renamed, &m->nrenamed) < 0 ||
		    get_renames(x, p, v, "transferred_classes", m->transferred, &m->ntransferred) < 0)
			return -EINVAL;
		cfg->obj.nmigrations++;
	}
	return 0;
}

static int parse_websockets(struct ctx *x, struct duro_config *cfg, json_t *o)
{
	static const char *const keys[] = { "max_message_bytes", "max_outbound_bytes",
					    "close_timeout_ms", "max_per_object",
					    "hibernate_idle_ms", NULL };
	if (!json_is_object(o))
		return fail(x, "websockets", "want an object, got %s", type_name(o));
	if (only_keys(x, "websockets", o, keys) < 0)
		return -EINVAL;
	struct ws_config *w = &cfg->ws;
	struct obj_ws_config *ow = &cfg->obj.websockets;
	/* 32 MiB is Cloudflare's limit on a WebSocket message. */
	GET_UINT(x, "websockets", o, "max_message_bytes", 125, 32u << 20, w->max_message_bytes);
	GET_UINT(x, "websockets", o, "max_outbound_bytes", 4096, 1u << 30, w->max_outbound_bytes);
	GET_UINT(x, "websockets", o, "close_timeout_ms", 10, 600000, w->close_timeout_ms);
	GET_UINT(x, "websockets", o, "max_per_object", 1, 1u << 24, ow->max_per_object);
	GET_UINT(x, "websockets", o, "hibernate_idle_ms", 10, 86400000, ow->hibernate_idle_ms);
	return 0;
}

static int parse_control(struct ctx *x, struct duro_config *cfg, json_t *o)
{
	static const char *const keys[] = { "socket", "group", "metrics", NULL };
	if (!json_is_object(o))
		return fail(x, "control", "want an object, got %s", type_name(o));
	if (only_keys(x, "control", o, keys) < 0)
		return -EINVAL;
	if (get_str(x, "control", o, "socket", cfg->control.socket, sizeof(cfg->control.socket), 0) < 0 ||
	    get_str(x, "control", o, "group", cfg->control.group, sizeof(cfg->control.group), 0) < 0 ||
	    get_str(x, "control", o, "metrics", cfg->control.metrics, sizeof(cfg->control.metrics), 0) < 0)
		return -EINVAL;
	struct net_listen nl;
	if (cfg->control.metrics[0] && net_parse_addr(cfg->control.metrics, &nl) < 0)
		return fail(x, "control.metrics", "\"%s\": want host:port, e.g. 127.0.0.1:9464",
			    cfg->control.metrics);
	if (cfg->control.group[0] && !getgrnam(cfg->control.group))
		return fail(x, "control.group", "\"%s\": no such group", cfg->control.group);
	return 0;
}

static int parse_fault(struct ctx *x, const char *path, json_t *o, struct fault_config *f)
{
	static const char *const keys[] = { "seed", "drop_pct", "duplicate_pct", "reorder_pct",
					    "delay_pct", "delay_ms", NULL };
	if (!json_is_object(o))
		return fail(x, path, "want an object, got %s", type_name(o));
	if (only_keys(x, path, o, keys) < 0)
		return -EINVAL;
	GET_UINT(x, path, o, "seed", 0, UINT32_MAX, f->seed);
	GET_UINT(x, path, o, "drop_pct", 0, 100, f->drop_pct);
	GET_UINT(x, path, o, "duplicate_pct", 0, 100, f->duplicate_pct);
	GET_UINT(x, path, o, "reorder_pct", 0, 100, f->reorder_pct);
	GET_UINT(x, path, o, "delay_pct", 0, 100, f->delay_pct);
	GET_UINT(x, path, o, "delay_ms", 0, 10000, f->delay_ms);
	return 0;
}

int config_parse_mac(const char *text, uint8_t mac[6])
{
	unsigned b[6];
	char tail;
	if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return (mac[0] & 1) ? -EINVAL : 0; /* a multicast address cannot be ours */
}

static int get_str_array(struct ctx *x, const char *path, json_t *o, const char *key,
			 char *out, size_t each, unsigned max, unsigned *n)
{
	json_t *a = json_object_get(o, key);
	if (!a)
		return 0;
	char p[128];
	join(p, sizeof(p), path, key);
	if (!json_is_array(a) || json_array_size(a) > max)
		return fail(x, p, "want an array of at most %u strings", max);
	size_t i;
	json_t *v;
	*n = 0;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || strlen(json_string_value(v)) >= each)
			return fail(x, p, "item %zu: want a string shorter than %zu bytes", i, each);
		memcpy(out + (size_t)(*n)++ * each, json_string_value(v),
		       strlen(json_string_value(v)) + 1);
	}
	return 0;
}

static int parse_dpdk(struct ctx *x, struct duro_config *cfg, json_t *o)
{
	static const char *const keys[] = { "eal_args", "vdevs", "port", "mac", "ipv4", "gateway",
					    "mtu", "mbufs", "idle_sleep_us", "fault_rx", "fault_tx",
					    "rx_desc", "tx_desc", "tx_backlog", "steer_ring",
					    "af_packet_framecnt", "af_packet_blocksz",
					    "zero_copy_min_bytes", "tx_coalesce_us", NULL };
	struct dpdk_config *d = &cfg->dpdk;
	if (!json_is_object(o))
		return fail(x, "dpdk", "want an object, got %s", type_name(o));
	if (only_keys(x, "dpdk", o, keys) < 0)
		return -EINVAL;
	if (get_str_array(x, "dpdk", o, "eal_args", &d->eal_args[0][0], sizeof(d->eal_args[0]),
			  DPDK_MAX_EAL_ARGS, &d->neal_args) < 0 ||
	    get_str_array(x, "dpdk", o, "vdevs", &d->vdevs[0][0], sizeof(d->vdevs[0]), 4,
			  &d->nvdevs) < 0)
		return -EINVAL;
	GET_UINT(x, "dpdk", o, "port", 0, 1023, d->port);
	GET_UINT(x, "dpdk", o, "mtu", 576, 9000, d->mtu);
	GET_UINT(x, "dpdk", o, "mbufs", 0, 16u << 20, d->mbufs);
	GET_UINT(x, "dpdk", o, "idle_sleep_us", 0, 5000, d->idle_sleep_us);
	/* Ring sizes (issue 20): all in this one place. */
	GET_UINT(x, "dpdk", o, "rx_desc", 64, 65535, d->rx_desc);
	GET_UINT(x, "dpdk", o, "tx_desc", 64, 65535, d->tx_desc);
	GET_UINT(x, "dpdk", o, "tx_backlog", 256, 1u << 20, d->tx_backlog);
	GET_UINT(x, "dpdk", o, "steer_ring", 256, 1u << 20, d->steer_ring);
	if (d->steer_ring & (d->steer_ring - 1))
		return fail(x, "dpdk.steer_ring", "%u: want a power of two", d->steer_ring);
	GET_UINT(x, "dpdk", o, "af_packet_blocksz", 4096, 1u << 22, d->af_packet_blocksz);
	if (d->af_packet_blocksz % 4096)
		return fail(x, "dpdk.af_packet_blocksz", "%u: want a multiple of 4096",
			    d->af_packet_blocksz);
	GET_UINT(x, "dpdk", o, "af_packet_framecnt", 16, 1u << 20, d->af_packet_framecnt);
	if (d->af_packet_framecnt % (d->af_packet_blocksz / 2048))
		return fail(x, "dpdk.af_packet_framecnt", "%u: want a multiple of the %u frames "
			    "of 2048 bytes in a block of af_packet_blocksz", d->af_packet_framecnt,
			    d->af_packet_blocksz / 2048);
	GET_UINT(x, "dpdk", o, "zero_copy_min_bytes", 0, 65535, d->zero_copy_min_bytes);
	GET_UINT(x, "dpdk", o, "tx_coalesce_us", 0, 10000, d->tx_coalesce_us);
	char text[64] = "";
	if (get_str(x, "dpdk", o, "mac", text, sizeof(text), 0) < 0)
		return -EINVAL;
	if (*text) {
		if (config_parse_mac(text, d->mac) < 0)
			return fail(x, "dpdk.mac", "\"%s\": want a unicast aa:bb:cc:dd:ee:ff", text);
		d->mac_set = 1;
	}
	*text = 0;
	if (get_str(x, "dpdk", o, "ipv4", text, sizeof(text), 0) < 0)
		return -EINVAL;
	if (*text && dpdk_parse_cidr(text, &d->ipv4, &d->prefix) < 0)
		return fail(x, "dpdk.ipv4", "\"%s\": want an address with its prefix, e.g. 10.77.0.1/24",
			    text);
	*text = 0;
	if (get_str(x, "dpdk", o, "gateway", text, sizeof(text), 0) < 0)
		return -EINVAL;
	unsigned plen;
	if (*text && (dpdk_parse_cidr(text, &d->gateway, &plen) < 0 || strchr(text, '/')))
		return fail(x, "dpdk.gateway", "\"%s\": want an IPv4 address", text);
	json_t *v;
	if ((v = json_object_get(o, "fault_rx")) && parse_fault(x, "dpdk.fault_rx", v, &d->fault_rx) < 0)
		return -EINVAL;
	if ((v = json_object_get(o, "fault_tx")) && parse_fault(x, "dpdk.fault_tx", v, &d->fault_tx) < 0)
		return -EINVAL;
	return 0;
}

static int parse_tls(struct ctx *x, struct duro_config *cfg, json_t *o)
{
	static const char *const keys[] = { "handshake_timeout_ms", "ticket_lifetime_s",
					    "certificates", NULL };
	static const char *const ckeys[] = { "cert", "key", NULL };
	if (!json_is_object(o))
		return fail(x, "tls", "want an object, got %s", type_name(o));
	if (only_keys(x, "tls", o, keys) < 0)
		return -EINVAL;
	GET_UINT(x, "tls", o, "handshake_timeout_ms", 100, 600000, cfg->tls.handshake_timeout_ms);
	GET_UINT(x, "tls", o, "ticket_lifetime_s", 0, 604800, cfg->tls.ticket_lifetime_s);
	json_t *certs = json_object_get(o, "certificates");
	if (certs && !json_is_array(certs))
		return fail(x, "tls.certificates", "want an array of {\"cert\", \"key\"}, got %s",
			    type_name(certs));
	size_t i;
	json_t *v;
	json_array_foreach(certs, i, v) {
		char p[64], cert[512], key[512];
		snprintf(p, sizeof(p), "tls.certificates[%zu]", i);
		if (!json_is_object(v))
			return fail(x, p, "want {\"cert\": FILE, \"key\": FILE}, got %s", type_name(v));
		if (only_keys(x, p, v, ckeys) < 0 || get_str(x, p, v, "cert", cert, sizeof(cert), 1) < 0 ||
		    get_str(x, p, v, "key", key, sizeof(key), 1) < 0)
			return -EINVAL;
		if (tls_config_add(&cfg->tls, cert, key) < 0)
			return fail(x, p, "more than %d certificates", TLS_MAX_CERTS);
	}
	return 0;
}

static int parse_alarms(struct ctx *x, struct duro_config *cfg, json_t *o)
{
	static const char *const keys[] = { "retry_initial_ms", "max_retries", "min_interval_ms", NULL };
	if (!json_is_object(o))
		return fail(x, "alarms", "want an object, got %s", type_name(o));
	if (only_keys(x, "alarms", o, keys) < 0)
		return -EINVAL;
	struct obj_alarm_config *a = &cfg->obj.alarms;
	GET_UINT(x, "alarms", o, "retry_initial_ms", 10, 3600000, a->retry_initial_ms);
	GET_UINT(x, "alarms", o, "max_retries", 0, 20, a->max_retries);
	GET_UINT(x, "alarms", o, "min_interval_ms", 0, 3600000, a->min_interval_ms);
	return 0;
}

static int parse_storage(struct ctx *x, struct duro_config *cfg, json_t *o)
{
	static const char *const keys[] = { "max_key_bytes", "max_value_bytes", "max_object_bytes",
					    "cache_bytes_per_core", "block_cache_bytes",
					    "write_buffer_bytes", "blob_min_bytes", "log_rotate_bytes",
					    "min_free_bytes", "log_direct_io", NULL };
	if (!json_is_object(o))
		return fail(x, "storage", "want an object, got %s", type_name(o));
	if (only_keys(x, "storage", o, keys) < 0)
		return -EINVAL;
	struct obj_storage_limits *l = &cfg->obj.limits;
	struct store_config *s = &cfg->obj.store;
	GET_UINT(x, "storage", o, "max_key_bytes", 1, DURO_MAX_KEY, l->max_key);
	GET_UINT(x, "storage", o, "max_value_bytes", 1, 128u << 20, l->max_value);
	GET_UINT(x, "storage", o, "max_object_bytes", 1, 1ull << 50, l->max_object_bytes);
	GET_UINT(x, "storage", o, "cache_bytes_per_core", 0, 1ull << 40, l->cache_bytes_per_core);
	GET_UINT(x, "storage", o, "block_cache_bytes", 1 << 20, 1ull << 40, s->block_cache_bytes);
	GET_UINT(x, "storage", o, "write_buffer_bytes", 1 << 20, 1ull << 32, s->write_buffer_bytes);
	GET_UINT(x, "storage", o, "blob_min_bytes", 0, 1ull << 32, s->blob_min_bytes);
	GET_UINT(x, "storage", o, "log_rotate_bytes", 1 << 16, 1ull << 40, s->log_rotate_bytes);
	GET_UINT(x, "storage", o, "min_free_bytes", 0, 1ull << 50, s->min_free_bytes);
	json_t *direct = json_object_get(o, "log_direct_io");
	if (direct && !json_is_boolean(direct))
		return fail(x, "storage.log_direct_io", "want a boolean, got %s", type_name(direct));
	if (direct)
		s->log_buffered = !json_is_true(direct);
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
	return config_apply(cfg, root, err, errlen);
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
	return config_apply(cfg, root, err, errlen);
}

/* Takes ownership of root. */
static int config_apply(struct duro_config *cfg, json_t *root, char *err, size_t errlen)
{
	struct ctx x = { err, errlen, 0 };
	int r = -EINVAL;
	static const char *const keys[] = { "$schema", "name", "cores", "backend", "data_dir",
					    "listeners", "durable_objects", "routes", "limits",
					    "objects", "shutdown_timeout_ms", "log_level",
					    "idle_spin_us", "uring", "storage", "migrations", "alarms",
					    "websockets", "control", "tls", "dpdk", NULL };
	if (!json_is_object(root)) {
		fail(&x, "(top level)", "want an object, got %s", type_name(root));
		goto out;
	}
	if (only_keys(&x, "", root, keys) < 0)
		goto out;
	unsigned long long u = cfg->cores;
	if (get_uint(&x, "", root, "cores", 1, DURO_MAX_CORES, &u) < 0)
		goto out;
	cfg->cores = (unsigned)u;
	if (get_str(&x, "", root, "backend", cfg->backend, sizeof(cfg->backend), 0) < 0)
		goto out;
	if (strcmp(cfg->backend, "uring") != 0 && strcmp(cfg->backend, "dpdk") != 0) {
		fail(&x, "backend", "\"%s\": want \"uring\" (kernel sockets) or \"dpdk\"", cfg->backend);
		goto out;
	}
	if (get_str(&x, "", root, "data_dir", cfg->obj.data_dir, sizeof(cfg->obj.data_dir), 0) < 0)
		goto out;
	char level[16] = "";
	if (get_str(&x, "", root, "log_level", level, sizeof(level), 0) < 0)
		goto out;
	if (*level && log_parse_level(level, &cfg->log_level) < 0) {
		fail(&x, "log_level", "\"%s\": want error, warn, info or debug", level);
		goto out;
	}
	u = cfg->shutdown_timeout_ms;
	if (get_uint(&x, "", root, "shutdown_timeout_ms", 0, 3600000, &u) < 0)
		goto out;
	cfg->shutdown_timeout_ms = (unsigned)u;
	u = cfg->idle_spin_us;
	if (get_uint(&x, "", root, "idle_spin_us", 0, 10000000, &u) < 0)
		goto out;
	cfg->idle_spin_us = (unsigned)u;
	json_t *v;
	if ((v = json_object_get(root, "listeners")) && parse_listeners(&x, cfg, v) < 0)
		goto out;
	if ((v = json_object_get(root, "durable_objects")) && parse_bindings(&x, cfg, v) < 0)
		goto out;
	if ((v = json_object_get(root, "routes"))) {
		if (parse_routes(&x, cfg, v) < 0)
			goto out;
	} else if (json_object_get(root, "durable_objects")) {
		default_routes(cfg);
	}
	if ((v = json_object_get(root, "limits")) && parse_limits(&x, cfg, v) < 0)
		goto out;
	if ((v = json_object_get(root, "storage")) && parse_storage(&x, cfg, v) < 0)
		goto out;
	if ((v = json_object_get(root, "migrations")) && parse_migrations(&x, cfg, v) < 0)
		goto out;
	if ((v = json_object_get(root, "alarms")) && parse_alarms(&x, cfg, v) < 0)
		goto out;
	if ((v = json_object_get(root, "websockets")) && parse_websockets(&x, cfg, v) < 0)
		goto out;
	if ((v = json_object_get(root, "control")) && parse_control(&x, cfg, v) < 0)
		goto out;
	if ((v = json_object_get(root, "tls")) && parse_tls(&x, cfg, v) < 0)
		goto out;
	if ((v = json_object_get(root, "dpdk")) && parse_dpdk(&x, cfg, v) < 0)
		goto out;
	if ((v = json_object_get(root, "uring"))) {
		static const char *const ukeys[] = { "buffer_ring", NULL };
		if (!json_is_object(v)) {
			fail(&x, "uring", "want an object, got %s", type_name(v));
			goto out;
		}
		if (only_keys(&x, "uring", v, ukeys) < 0)
			goto out;
		json_t *br = json_object_get(v, "buffer_ring");
		if (br && !json_is_boolean(br)) {
			fail(&x, "uring.buffer_ring", "want a boolean, got %s", type_name(br));
			goto out;
		}
		if (br)
			cfg->net.no_buffer_ring = !json_is_true(br);
	}
	if ((v = json_object_get(root, "objects"))) {
		static const char *const okeys[] = { "evict_idle_ms", NULL };
		if (!json_is_object(v)) {
			fail(&x, "objects", "want an object, got %s", type_name(v));
			goto out;
		}
		if (only_keys(&x, "objects", v, okeys) < 0)
			goto out;
		u = cfg->obj.evict_idle_ms;
		if (get_uint(&x, "objects", v, "evict_idle_ms", 10, 86400000, &u) < 0)
			goto out;
		cfg->obj.evict_idle_ms = (unsigned)u;
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

void config_defaults(struct duro_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->cores = ncpu > 0 ? (unsigned)(ncpu > DURO_MAX_CORES ? DURO_MAX_CORES : ncpu) : 1;
	snprintf(cfg->backend, sizeof(cfg->backend), "uring");
	dpdk_config_defaults(&cfg->dpdk);
	cfg->log_level = LOG_INFO;
	cfg->idle_spin_us = 200;
	cfg->shutdown_timeout_ms = 5000;
	net_parse_addr("127.0.0.1:8787", &cfg->net.listen[0]);
	cfg->net.nlisten = 1;
	cfg->net.max_conns_per_core = 16384;
	cfg->net.backlog = 4096;
	cfg->net.linger_ms = 2000;
	cfg->http = (struct http_config){ .max_head_bytes = 16384, .max_body_bytes = 1 << 20,
					  .header_timeout_ms = 10000, .body_timeout_ms = 20000,
					  .body_min_rate = 500, .send_timeout_ms = 30000,
					  .idle_timeout_ms = 60000, .max_pipeline = 32,
					  .max_output_bytes = 1 << 20, .shutdown_timeout_ms = 5000 };
	snprintf(cfg->obj.data_dir, sizeof(cfg->obj.data_dir), "./duro-data");
	store_config_defaults(&cfg->obj.store, cfg->obj.data_dir);
	/* The built-in classes' migration: a config without "migrations" gets it. */
	cfg->obj.nmigrations = 1;
	struct store_migration *m = &cfg->obj.migrations[0];
	snprintf(m->tag, sizeof(m->tag), "builtin-v1");
	static const char *const builtin[] = { "Counter", "Echo", "KV", "RateLimiter", "MemCounter",
					       "Ticker", "Lock" };
	for (unsigned i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		snprintf(m->new_classes[m->nnew++], STORE_NAME_MAX, "%s", builtin[i]);
	/* Classes added later get tags of their own: data dirs made before keep working. */
	cfg->obj.nmigrations = 2;
	m = &cfg->obj.migrations[1];
	snprintf(m->tag, sizeof(m->tag), "builtin-v2");
	snprintf(m->new_classes[m->nnew++], STORE_NAME_MAX, "ChatRoom");
	cfg->obj.limits.max_key = 2048;
	cfg->obj.limits.max_value = 128u << 20;
	cfg->obj.limits.max_object_bytes = 50ull * 1000 * 1000 * 1000;
	cfg->obj.limits.cache_bytes_per_core = 64u << 20;
	cfg->obj.alarms = (struct obj_alarm_config){ .retry_initial_ms = 2000, .max_retries = 6,
						     .min_interval_ms = 100 };
	cfg->obj.evict_idle_ms = 30000;
	cfg->tls.handshake_timeout_ms = 10000;
	cfg->tls.ticket_lifetime_s = 7200;
	cfg->ws = (struct ws_config){ .max_message_bytes = 1u << 20, .max_outbound_bytes = 1u << 20,
				      .close_timeout_ms = 5000 };
	cfg->obj.websockets = (struct obj_ws_config){ .max_per_object = 32768,
						      .hibernate_idle_ms = 10000 };
	cfg->obj.nbindings = 8;
	snprintf(cfg->obj.bindings[0].name, OBJ_NAME_MAX, "COUNTER");
	snprintf(cfg->obj.bindings[0].class_name, OBJ_NAME_MAX, "Counter");
	snprintf(cfg->obj.bindings[1].name, OBJ_NAME_MAX, "ECHO");
	snprintf(cfg->obj.bindings[1].class_name, OBJ_NAME_MAX, "Echo");
	snprintf(cfg->obj.bindings[2].name, OBJ_NAME_MAX, "KV");
	snprintf(cfg->obj.bindings[2].class_name, OBJ_NAME_MAX, "KV");
	snprintf(cfg->obj.bindings[3].name, OBJ_NAME_MAX, "LIMITER");
	snprintf(cfg->obj.bindings[3].class_name, OBJ_NAME_MAX, "RateLimiter");
	snprintf(cfg->obj.bindings[4].name, OBJ_NAME_MAX, "MEMCOUNTER");
	snprintf(cfg->obj.bindings[4].class_name, OBJ_NAME_MAX, "MemCounter");
	snprintf(cfg->obj.bindings[5].name, OBJ_NAME_MAX, "TICKER");
	snprintf(cfg->obj.bindings[5].class_name, OBJ_NAME_MAX, "Ticker");
	snprintf(cfg->obj.bindings[6].name, OBJ_NAME_MAX, "LOCK");
	snprintf(cfg->obj.bindings[6].class_name, OBJ_NAME_MAX, "Lock");
	snprintf(cfg->obj.bindings[7].name, OBJ_NAME_MAX, "ROOM");
	snprintf(cfg->obj.bindings[7].class_name, OBJ_NAME_MAX, "ChatRoom");
	default_routes(cfg);
}

int config_validate(const struct duro_config *cfg, char *err, size_t errlen)
{
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

static json_t *fault_json(const struct fault_config *f)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "seed", (json_int_t)f->seed,
			 "drop_pct", (json_int_t)f->drop_pct, "duplicate_pct", (json_int_t)f->duplicate_pct,
			 "reorder_pct", (json_int_t)f->reorder_pct, "delay_pct", (json_int_t)f->delay_pct,
			 "delay_ms", (json_int_t)f->delay_ms);
}

static json_t *dpdk_json(const struct dpdk_config *d)
{
	json_t *eal = json_array(), *vdevs = json_array();
	for (unsigned i = 0; i < d->neal_args; i++)
		json_array_append_new(eal, json_string(d->eal_args[i]));
	for (unsigned i = 0; i < d->nvdevs; i++)
		json_array_append_new(vdevs, json_string(d->vdevs[i]));
	char ip[INET_ADDRSTRLEN] = "", cidr[40] = "", gw[INET_ADDRSTRLEN] = "", mac[24] = "";
	inet_ntop(AF_INET, &d->ipv4, ip, sizeof(ip));
	snprintf(cidr, sizeof(cidr), "%s/%u", ip, d->prefix);
	if (d->gateway)
		inet_ntop(AF_INET, &d->gateway, gw, sizeof(gw));
	if (d->mac_set)
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", d->mac[0], d->mac[1],
			 d->mac[2], d->mac[3], d->mac[4], d->mac[5]);
	json_t *o = json_pack("{s:o, s:o, s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "eal_args",
			      eal, "vdevs", vdevs, "port", (json_int_t)d->port, "mac", mac, "ipv4",
			      cidr, "gateway", gw, "mtu", (json_int_t)d->mtu, "mbufs",
			      (json_int_t)d->mbufs, "idle_sleep_us", (json_int_t)d->idle_sleep_us,
			      "fault_rx", fault_json(&d->fault_rx), "fault_tx", fault_json(&d->fault_tx));
	/* Ring sizes (issue 20). */
	json_t *rings = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rx_desc",
				  (json_int_t)d->rx_desc, "tx_desc", (json_int_t)d->tx_desc,
				  "tx_backlog", (json_int_t)d->tx_backlog, "steer_ring",
				  (json_int_t)d->steer_ring, "af_packet_framecnt",
				  (json_int_t)d->af_packet_framecnt, "af_packet_blocksz",
				  (json_int_t)d->af_packet_blocksz, "zero_copy_min_bytes",
				  (json_int_t)d->zero_copy_min_bytes, "tx_coalesce_us",
				  (json_int_t)d->tx_coalesce_us);
	if (o && rings)
		json_object_update(o, rings);
	json_decref(rings);
	return o;
}

static json_t *names_array(const char (*names)[STORE_NAME_MAX], unsigned n)
{
	json_t *a = json_array();
	for (unsigned i = 0; i < n; i++)
		json_array_append_new(a, json_string(names[i]));
	return a;
}

static json_t *renames_array(const struct store_rename *r, unsigned n)
{
	json_t *a = json_array();
	for (unsigned i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "from", r[i].from, "to", r[i].to));
	return a;
}

json_t *config_to_json(const struct duro_config *cfg)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	static const char *const id_kinds[] = { "name", "string", "path" };
	json_t *listeners = json_array(), *bindings = json_array(), *routes = json_array(),
	       *migrations = json_array();
	for (unsigned i = 0; i < cfg->net.nlisten; i++)
		json_array_append_new(listeners,
				      cfg->net.listen[i].tls
					      ? json_pack("{s:s, s:b}", "address", cfg->net.listen[i].text,
							  "tls", 1)
					      : json_string(cfg->net.listen[i].text));
	for (unsigned i = 0; i < cfg->obj.nbindings; i++) {
		const struct obj_binding *b = &cfg->obj.bindings[i];
		json_t *vars = json_object();
		for (unsigned k = 0; k < b->nvars; k++)
			json_object_set_new(vars, b->vars[k].name, json_string(b->vars[k].value));
		json_array_append_new(bindings, json_pack("{s:s, s:s, s:o}", "name", b->name,
							  "class_name", b->class_name, "vars", vars));
	}
	for (unsigned i = 0; i < cfg->obj.nroutes; i++) {
		const struct obj_route *r = &cfg->obj.routes[i];
		json_t *o = json_pack("{s:s, s:s}", "prefix", r->prefix, "id", id_kinds[r->kind]);
		if (r->binding >= 0)
			json_object_set_new(o, "binding", json_string(cfg->obj.bindings[r->binding].name));
		json_array_append_new(routes, o);
	}
	for (unsigned i = 0; i < cfg->obj.nmigrations; i++) {
		const struct store_migration *m = &cfg->obj.migrations[i];
		json_array_append_new(migrations, json_pack(
			"{s:s, s:o, s:o, s:o, s:o}", "tag", m->tag,
			"new_classes", names_array(m->new_classes, m->nnew),
			"renamed_classes", renames_array(m->renamed, m->nrenamed),
			"deleted_classes", names_array(m->deleted, m->ndeleted),
			"transferred_classes", renames_array(m->transferred, m->ntransferred)));
	}
	json_t *certs = json_array();
	for (unsigned i = 0; i < cfg->tls.ncerts; i++)
		json_array_append_new(certs, json_pack("{s:s, s:s}", "cert", cfg->tls.certs[i].cert,
						       "key", cfg->tls.certs[i].key));
	const struct obj_storage_limits *l = &cfg->obj.limits;
	const struct store_config *st = &cfg->obj.store;
	json_t *out = json_pack(
		"{s:i, s:s, s:s, s:o, s:{s:o}, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I},"
		" s:{s:I},"
		" s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o,"
		" s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:s, s:s, s:s},"
		" s:{s:I, s:I, s:o}, s:{s:b}, s:I, s:I, s:s}",
		"cores", (int)cfg->cores, "backend", cfg->backend, "data_dir", cfg->obj.data_dir,
		"listeners", listeners, "durable_objects", "bindings", bindings, "routes", routes,
		"limits", "max_head_bytes", (json_int_t)cfg->http.max_head_bytes,
		"max_body_bytes", (json_int_t)cfg->http.max_body_bytes,
		"header_timeout_ms", (json_int_t)cfg->http.header_timeout_ms,
		"body_timeout_ms", (json_int_t)cfg->http.body_timeout_ms,
		"body_min_rate", (json_int_t)cfg->http.body_min_rate,
		"send_timeout_ms", (json_int_t)cfg->http.send_timeout_ms,
		"idle_timeout_ms", (json_int_t)cfg->http.idle_timeout_ms,
		"max_pipeline", (json_int_t)cfg->http.max_pipeline,
		"max_output_bytes", (json_int_t)cfg->http.max_output_bytes,
		"max_connections_per_core", (json_int_t)cfg->net.max_conns_per_core,
		"objects", "evict_idle_ms", (json_int_t)cfg->obj.evict_idle_ms,
		"storage", "max_key_bytes", (json_int_t)l->max_key,
		"max_value_bytes", (json_int_t)l->max_value,
		"max_object_bytes", (json_int_t)l->max_object_bytes,
		"cache_bytes_per_core", (json_int_t)l->cache_bytes_per_core,
		"block_cache_bytes", (json_int_t)st->block_cache_bytes,
		"write_buffer_bytes", (json_int_t)st->write_buffer_bytes,
		"blob_min_bytes", (json_int_t)st->blob_min_bytes,
		"log_rotate_bytes", (json_int_t)st->log_rotate_bytes,
		"min_free_bytes", (json_int_t)st->min_free_bytes,
		"migrations", migrations,
		"alarms", "retry_initial_ms", (json_int_t)cfg->obj.alarms.retry_initial_ms,
		"max_retries", (json_int_t)cfg->obj.alarms.max_retries,
		"min_interval_ms", (json_int_t)cfg->obj.alarms.min_interval_ms,
		"websockets", "max_message_bytes", (json_int_t)cfg->ws.max_message_bytes,
		"max_outbound_bytes", (json_int_t)cfg->ws.max_outbound_bytes,
		"close_timeout_ms", (json_int_t)cfg->ws.close_timeout_ms,
		"max_per_object", (json_int_t)cfg->obj.websockets.max_per_object,
		"hibernate_idle_ms", (json_int_t)cfg->obj.websockets.hibernate_idle_ms,
		"control", "socket", cfg->control.socket, "group", cfg->control.group,
		"metrics", cfg->control.metrics,
		"tls", "handshake_timeout_ms", (json_int_t)cfg->tls.handshake_timeout_ms,
		"ticket_lifetime_s", (json_int_t)cfg->tls.ticket_lifetime_s, "certificates", certs,
		"uring", "buffer_ring", !cfg->net.no_buffer_ring,
		"shutdown_timeout_ms", (json_int_t)cfg->shutdown_timeout_ms,
		"idle_spin_us", (json_int_t)cfg->idle_spin_us, "log_level", levels[cfg->log_level]);
	if (out && strcmp(cfg->backend, "dpdk") == 0)
		json_object_set_new(out, "dpdk", dpdk_json(&cfg->dpdk));
	return out;
}
