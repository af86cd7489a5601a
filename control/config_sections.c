/* The structured config keys (listeners, bindings, routes, migrations, certificates, the
 * dpdk addresses): how each is parsed, shown and defaulted, and the built-in classes'
 * bindings, routes and migration tags that a config without its own gets. */
#include "config_int.h"
#include "base_assert.h"
#include "obj.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The built-in classes: a binding each, its name route, and the migration tag that made
 * the class. A class added later gets a tag of its own (appended, never inserted), so data
 * directories made before keep working. */
static const struct builtin {
	const char *binding, *class_name, *prefix, *tag;
} builtins[] = {
	{ "COUNTER", "Counter", "/counter/", "builtin-v1" },
	{ "ECHO", "Echo", "/echo/", "builtin-v1" },
	{ "KV", "KV", "/kv/", "builtin-v1" },
	{ "LIMITER", "RateLimiter", "/limit/", "builtin-v1" },
	{ "MEMCOUNTER", "MemCounter", "/memcounter/", "builtin-v1" },
	{ "TICKER", "Ticker", "/ticker/", "builtin-v1" },
	{ "LOCK", "Lock", "/lock/", "builtin-v1" },
	{ "ROOM", "ChatRoom", "/room/", "builtin-v2" },
	{ "SQLCOUNTER", "SqlCounter", "/sqlcounter/", "builtin-v3" },
	{ "SQL", "Sql", "/sql/", "builtin-v3" },
	{ "FEED", "Feed", "/feed/", "builtin-v4" },
	{ "APPEND", "AppendList", "/append/", "builtin-v5" },
};
#define NBUILTINS (sizeof(builtins) / sizeof(builtins[0]))

static void join(char *out, size_t n, const char *path, const char *key)
{
	snprintf(out, n, "%s%s%s", path, *path ? "." : "", key);
}

void config_default_cores(struct duro_config *cfg)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->cores = ncpu > 0 ? (unsigned)(ncpu > DURO_MAX_CORES ? DURO_MAX_CORES : ncpu) : 1;
}

int config_check_hostport(struct config_ctx *x, const char *path, const char *value)
{
	struct net_listen nl;
	if (*value && net_parse_addr(value, &nl) < 0)
		return config_fail(x, path, "\"%s\": want host:port, e.g. 127.0.0.1:9464", value);
	return 0;
}

int config_check_allow(struct config_ctx *x, const char *path, const char *value)
{
	const char *why;
	if (obj_outbound_check(value, &why) < 0)
		return config_fail(x, path, "\"%s\": %s", value, why);
	return 0;
}

int config_check_group(struct config_ctx *x, const char *path, const char *value)
{
	if (*value && !getgrnam(value))
		return config_fail(x, path, "\"%s\": no such group", value);
	return 0;
}

int config_check_pow2(struct config_ctx *x, const char *path, uint64_t value)
{
	if (value & (value - 1))
		return config_fail(x, path, "%llu: want a power of two", (unsigned long long)value);
	return 0;
}

int config_check_page_multiple(struct config_ctx *x, const char *path, uint64_t value)
{
	if (value % 4096)
		return config_fail(x, path, "%llu: want a multiple of 4096", (unsigned long long)value);
	return 0;
}

/* Cluster and box names become etcd key components: no slashes, nothing odd. */
int config_check_cluster_name(struct config_ctx *x, const char *path, const char *value)
{
	for (const char *c = value; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '-' || *c == '_' || *c == '.' || *c == ':'))
			return config_fail(x, path, "\"%s\": only letters, digits and - _ . :", value);
	return 0;
}

/* etcd's JSON gateway over plain HTTP: http://host:port with nothing after. */
int config_check_etcd_url(struct config_ctx *x, const char *path, const char *value)
{
	struct net_listen nl;
	if (strncmp(value, "http://", 7) != 0 || strchr(value + 7, '/') ||
	    net_parse_addr(value + 7, &nl) < 0)
		return config_fail(x, path, "\"%s\": want http://host:port, e.g. "
				   "http://127.0.0.1:2379", value);
	return 0;
}

/* listeners: "host:port" or {"address": "host:port", "tls": true | {"cert", "key"}}. */
static int listeners_parse(struct config_ctx *x, const char *path, json_t *arr,
			   struct duro_config *cfg)
{
	if (!json_is_array(arr))
		return config_fail(x, path, "want an array, got %s", config_type_name(arr));
	if (json_array_size(arr) == 0 || json_array_size(arr) > DURO_MAX_LISTENERS)
		return config_fail(x, path, "want 1 to %d listeners", DURO_MAX_LISTENERS);
	cfg->net.nlisten = 0;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char p[64], addr[64];
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		static const char *const keys[] = { "address", "tls", NULL };
		static const char *const tkeys[] = { "cert", "key", NULL };
		json_t *tls = NULL;
		if (json_is_string(v)) {
			snprintf(addr, sizeof(addr), "%s", json_string_value(v));
		} else if (json_is_object(v)) {
			if (config_only_keys(x, p, v, keys) < 0 ||
			    config_get_str(x, p, v, "address", addr, sizeof(addr), 1) < 0)
				return -EINVAL;
			tls = json_object_get(v, "tls");
		} else {
			return config_fail(x, p, "want \"host:port\" or {\"address\": …}, got %s",
					   config_type_name(v));
		}
		struct net_listen *nl = &cfg->net.listen[cfg->net.nlisten];
		if (net_parse_addr(addr, nl) < 0)
			return config_fail(x, p, "bad address \"%s\": want host:port or [v6]:port", addr);
		char tp[80];
		snprintf(tp, sizeof(tp), "%s.tls", p);
		if (json_is_boolean(tls)) {
			/* true: TLS with the shared certificates (tls.certificates). */
			nl->tls = json_is_true(tls);
		} else if (tls) {
			char cert[512], key[512];
			if (!json_is_object(tls))
				return config_fail(x, tp, "want {\"cert\": FILE, \"key\": FILE} or a boolean, "
						   "got %s", config_type_name(tls));
			if (config_only_keys(x, tp, tls, tkeys) < 0 ||
			    config_get_str(x, tp, tls, "cert", cert, sizeof(cert), 1) < 0 ||
			    config_get_str(x, tp, tls, "key", key, sizeof(key), 1) < 0)
				return -EINVAL;
			/* Listeners share the certificate set; SNI picks among them. */
			if (tls_config_add(&cfg->tls, cert, key) < 0)
				return config_fail(x, tp, "more than %d certificates", TLS_MAX_CERTS);
			nl->tls = 1;
		}
		cfg->net.nlisten++;
	}
	return 0;
}

/* A TLS listener shows "tls": true; its certificate is among tls.certificates. */
static json_t *listeners_json(const struct duro_config *cfg)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < cfg->net.nlisten; i++) {
		const struct net_listen *nl = &cfg->net.listen[i];
		json_array_append_new(a, nl->tls ? json_pack("{s:s, s:b}", "address", nl->text, "tls", 1)
						 : json_string(nl->text));
	}
	return a;
}

static void listeners_defaults(struct duro_config *cfg)
{
	net_parse_addr("127.0.0.1:8787", &cfg->net.listen[0]);
	cfg->net.nlisten = 1;
}

const struct config_custom config_listeners = {
	.parse = listeners_parse, .to_json = listeners_json, .defaults = listeners_defaults,
	.text_is_json = 1, .type = "array of addresses", .def = "[\"127.0.0.1:8787\"]",
};

/* vars: {"name": "value" | number | boolean}, kept as text for the class to parse. */
static int parse_vars(struct config_ctx *x, const char *path, json_t *binding,
		      struct obj_binding *b)
{
	json_t *vars = json_object_get(binding, "vars");
	char p[160];
	join(p, sizeof(p), path, "vars");
	if (!vars)
		return 0;
	if (!json_is_object(vars))
		return config_fail(x, p, "want an object of name: value, got %s", config_type_name(vars));
	if (json_object_size(vars) > OBJ_MAX_VARS)
		return config_fail(x, p, "more than %d vars", OBJ_MAX_VARS);
	const char *k;
	json_t *v;
	json_object_foreach(vars, k, v) {
		char q[240];
		snprintf(q, sizeof(q), "%s.%s", p, k);
		struct obj_var *var = &b->vars[b->nvars];
		if (strlen(k) >= sizeof(var->name))
			return config_fail(x, q, "name longer than %zu bytes", sizeof(var->name) - 1);
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
			return config_fail(x, q, "want a string, number or boolean, got %s",
					   config_type_name(v));
		if (json_is_string(v) && strlen(json_string_value(v)) >= sizeof(var->value))
			return config_fail(x, q, "value longer than %zu bytes", sizeof(var->value) - 1);
		b->nvars++;
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

/* The built-in route of each built-in binding the config still has, then the generic
 * /obj/<binding>/<id>. */
static void routes_defaults(struct duro_config *cfg)
{
	cfg->obj.nroutes = 0;
	for (unsigned i = 0; i < NBUILTINS; i++) {
		int b = find_binding(cfg, builtins[i].binding);
		if (b < 0)
			continue;
		struct obj_route *r = &cfg->obj.routes[cfg->obj.nroutes++];
		*r = (struct obj_route){ .kind = ROUTE_NAME, .binding = b };
		snprintf(r->prefix, sizeof(r->prefix), "%s", builtins[i].prefix);
	}
	struct obj_route *g = &cfg->obj.routes[cfg->obj.nroutes++];
	*g = (struct obj_route){ .prefix = "/obj/", .kind = ROUTE_GENERIC, .binding = -1 };
}

/* Replaces the bindings, and the routes with those of routes_defaults (a "routes" key,
 * parsed after this one, replaces them in turn): routes name bindings by index. */
static int bindings_parse(struct config_ctx *x, const char *path, json_t *arr,
			  struct duro_config *cfg)
{
	if (!json_is_array(arr))
		return config_fail(x, path, "want an array, got %s", config_type_name(arr));
	if (json_array_size(arr) > DURO_MAX_BINDINGS)
		return config_fail(x, path, "more than %d bindings", DURO_MAX_BINDINGS);
	cfg->obj.nbindings = 0;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char p[64];
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		static const char *const keys[] = { "name", "class_name", "vars", NULL };
		if (!json_is_object(v))
			return config_fail(x, p, "want an object, got %s", config_type_name(v));
		struct obj_binding *b = &cfg->obj.bindings[i];
		memset(b, 0, sizeof(*b));
		if (config_only_keys(x, p, v, keys) < 0 ||
		    config_get_str(x, p, v, "name", b->name, sizeof(b->name), 1) < 0 ||
		    config_get_str(x, p, v, "class_name", b->class_name, sizeof(b->class_name), 1) < 0 ||
		    parse_vars(x, p, v, b) < 0)
			return -EINVAL;
		char sub[96];
		for (const char *c = b->name; *c; c++) {
			if (*c == '/' || *c <= ' ' || *c > '~') {
				snprintf(sub, sizeof(sub), "%s.name", p);
				return config_fail(x, sub, "\"%s\": no spaces, slashes or control bytes",
						   b->name);
			}
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(cfg->obj.bindings[j].name, b->name) == 0) {
				snprintf(sub, sizeof(sub), "%s.name", p);
				return config_fail(x, sub, "binding \"%s\" defined twice", b->name);
			}
		}
		/* Whether the class exists is config_validate's to say: modules are loaded
		 * after the whole config is read. */
		cfg->obj.nbindings++;
	}
	routes_defaults(cfg);
	return 0;
}

static json_t *bindings_json(const struct duro_config *cfg)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < cfg->obj.nbindings; i++) {
		const struct obj_binding *b = &cfg->obj.bindings[i];
		json_t *vars = json_object();
		for (unsigned k = 0; vars && k < b->nvars; k++)
			json_object_set_new(vars, b->vars[k].name, json_string(b->vars[k].value));
		json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "name", b->name,
						   "class_name", b->class_name, "vars", vars));
	}
	return a;
}

static void bindings_defaults(struct duro_config *cfg)
{
	cfg->obj.nbindings = NBUILTINS;
	for (unsigned i = 0; i < NBUILTINS; i++) {
		struct obj_binding *b = &cfg->obj.bindings[i];
		snprintf(b->name, sizeof(b->name), "%s", builtins[i].binding);
		snprintf(b->class_name, sizeof(b->class_name), "%s", builtins[i].class_name);
	}
}

const struct config_custom config_bindings = {
	.parse = bindings_parse, .to_json = bindings_json, .defaults = bindings_defaults,
	.text_is_json = 1, .type = "array of {name, class_name, vars}",
	.def = "one per built-in class: COUNTER, ECHO, KV, LIMITER, MEMCOUNTER, TICKER, LOCK, ROOM",
};

static int routes_parse(struct config_ctx *x, const char *path, json_t *arr,
			struct duro_config *cfg)
{
	if (!json_is_array(arr))
		return config_fail(x, path, "want an array, got %s", config_type_name(arr));
	if (json_array_size(arr) > DURO_MAX_ROUTES)
		return config_fail(x, path, "more than %d routes", DURO_MAX_ROUTES);
	cfg->obj.nroutes = 0;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char p[64], sub[96], id[16] = "name", binding[OBJ_NAME_MAX] = "";
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		static const char *const keys[] = { "prefix", "binding", "id", NULL };
		if (!json_is_object(v))
			return config_fail(x, p, "want an object, got %s", config_type_name(v));
		struct obj_route *r = &cfg->obj.routes[i];
		if (config_only_keys(x, p, v, keys) < 0 ||
		    config_get_str(x, p, v, "prefix", r->prefix, sizeof(r->prefix), 1) < 0 ||
		    config_get_str(x, p, v, "id", id, sizeof(id), 0) < 0 ||
		    config_get_str(x, p, v, "binding", binding, sizeof(binding), 0) < 0)
			return -EINVAL;
		size_t plen = strlen(r->prefix);
		if (r->prefix[0] != '/' || r->prefix[plen - 1] != '/') {
			snprintf(sub, sizeof(sub), "%s.prefix", p);
			return config_fail(x, sub, "\"%s\" must start and end with '/'", r->prefix);
		}
		snprintf(sub, sizeof(sub), "%s.id", p);
		if (strcmp(id, "name") == 0)
			r->kind = ROUTE_NAME;
		else if (strcmp(id, "string") == 0)
			r->kind = ROUTE_ID;
		else if (strcmp(id, "path") == 0)
			r->kind = ROUTE_GENERIC;
		else
			return config_fail(x, sub, "\"%s\": want \"name\", \"string\" or \"path\"", id);
		snprintf(sub, sizeof(sub), "%s.binding", p);
		if (r->kind == ROUTE_GENERIC) {
			if (*binding)
				return config_fail(x, sub, "not used with \"id\": \"path\" (the path names "
						   "the binding)");
			r->binding = -1;
		} else {
			if (!*binding)
				return config_fail(x, sub, "missing");
			r->binding = find_binding(cfg, binding);
			if (r->binding < 0)
				return config_fail(x, sub, "no binding named \"%s\" in "
						   "durable_objects.bindings", binding);
		}
		cfg->obj.nroutes++;
	}
	return 0;
}

static json_t *routes_json(const struct duro_config *cfg)
{
	static const char *const id_kinds[] = { "name", "string", "path" };
	json_t *a = json_array();
	for (unsigned i = 0; a && i < cfg->obj.nroutes; i++) {
		const struct obj_route *r = &cfg->obj.routes[i];
		json_t *o = json_pack("{s:s, s:s}", "prefix", r->prefix, "id", id_kinds[r->kind]);
		if (o && r->binding >= 0)
			json_object_set_new(o, "binding", json_string(cfg->obj.bindings[r->binding].name));
		json_array_append_new(a, o);
	}
	return a;
}

const struct config_custom config_routes = {
	.parse = routes_parse, .to_json = routes_json, .defaults = routes_defaults,
	.text_is_json = 1, .type = "array of {prefix, binding, id}",
	.def = "/counter/ ... /room/ for the built-in bindings the config has, then /obj/",
};

/* The optional array `key` of a migration, at most STORE_MIGRATION_MAX_CLASSES long.
 * Returns 1 with *arr set and its path in p, 0 when absent, or -EINVAL. */
static int migration_array(struct config_ctx *x, const char *path, json_t *m, const char *key,
			   const char *want, json_t **arr, char p[160])
{
	*arr = json_object_get(m, key);
	join(p, 160, path, key);
	if (!*arr)
		return 0;
	if (!json_is_array(*arr))
		return config_fail(x, p, "want an array of %s, got %s", want, config_type_name(*arr));
	if (json_array_size(*arr) > STORE_MIGRATION_MAX_CLASSES)
		return config_fail(x, p, "more than %d classes", STORE_MIGRATION_MAX_CLASSES);
	return 1;
}

/* Class names in a migration: an array of strings. */
static int get_names(struct config_ctx *x, const char *path, json_t *m, const char *key,
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
			return config_fail(x, q, "want a class name of 1 to %d bytes", STORE_NAME_MAX - 1);
		snprintf(out[(*n)++], STORE_NAME_MAX, "%s", json_string_value(v));
	}
	return 0;
}

static int get_renames(struct config_ctx *x, const char *path, json_t *m, const char *key,
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
			return config_fail(x, q, "want {\"from\": …, \"to\": …}, got %s", config_type_name(v));
		char script[STORE_NAME_MAX];
		if (config_only_keys(x, q, v, keys) < 0 ||
		    config_get_str(x, q, v, "from", out[*n].from, STORE_NAME_MAX, 1) < 0 ||
		    config_get_str(x, q, v, "to", out[*n].to, STORE_NAME_MAX, 1) < 0 ||
		    config_get_str(x, q, v, "from_script", script, sizeof(script), 0) < 0)
			return -EINVAL;
		(*n)++;
	}
	return 0;
}

static int migrations_parse(struct config_ctx *x, const char *path, json_t *arr,
			    struct duro_config *cfg)
{
	if (!json_is_array(arr))
		return config_fail(x, path, "want an array, got %s", config_type_name(arr));
	if (json_array_size(arr) > DURO_MAX_MIGRATIONS)
		return config_fail(x, path, "more than %d tags", DURO_MAX_MIGRATIONS);
	cfg->obj.nmigrations = 0;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char p[64];
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		static const char *const keys[] = { "tag", "new_classes", "new_sqlite_classes",
						    "renamed_classes", "deleted_classes",
						    "transferred_classes", NULL };
		if (!json_is_object(v))
			return config_fail(x, p, "want an object, got %s", config_type_name(v));
		struct store_migration *m = &cfg->obj.migrations[i];
		memset(m, 0, sizeof(*m));
		char sub[96];
		snprintf(sub, sizeof(sub), "%s.tag", p);
		if (config_only_keys(x, p, v, keys) < 0 ||
		    config_get_str(x, p, v, "tag", m->tag, sizeof(m->tag), 1) < 0)
			return -EINVAL;
		if (strchr(m->tag, '\n'))
			return config_fail(x, sub, "no newlines in a tag");
		for (size_t k = 0; k < i; k++)
			if (!strcmp(cfg->obj.migrations[k].tag, m->tag))
				return config_fail(x, sub, "tag \"%s\" appears twice", m->tag);
		unsigned nsql = 0;
		if (get_names(x, p, v, "new_classes", m->new_classes, &m->nnew) < 0)
			return -EINVAL;
		/* new_sqlite_classes (wrangler's name for the newer backend) are new classes here. */
		if (json_object_get(v, "new_sqlite_classes")) {
			char tmp[STORE_MIGRATION_MAX_CLASSES][STORE_NAME_MAX];
			if (get_names(x, p, v, "new_sqlite_classes", tmp, &nsql) < 0)
				return -EINVAL;
			if (m->nnew + nsql > STORE_MIGRATION_MAX_CLASSES)
				return config_fail(x, p, "more than %d new classes",
						   STORE_MIGRATION_MAX_CLASSES);
			memcpy(m->new_classes + m->nnew, tmp, nsql * sizeof(tmp[0]));
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

static json_t *names_array(const char (*names)[STORE_NAME_MAX], unsigned n)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(names[i]));
	return a;
}

static json_t *renames_array(const struct store_rename *r, unsigned n)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "from", r[i].from, "to", r[i].to));
	return a;
}

static json_t *migrations_json(const struct duro_config *cfg)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < cfg->obj.nmigrations; i++) {
		const struct store_migration *m = &cfg->obj.migrations[i];
		json_array_append_new(a, json_pack(
			"{s:s, s:o, s:o, s:o, s:o}", "tag", m->tag,
			"new_classes", names_array(m->new_classes, m->nnew),
			"renamed_classes", renames_array(m->renamed, m->nrenamed),
			"deleted_classes", names_array(m->deleted, m->ndeleted),
			"transferred_classes", renames_array(m->transferred, m->ntransferred)));
	}
	return a;
}

/* One tag per distinct builtins[].tag, in order, with the classes it made. */
static void migrations_defaults(struct duro_config *cfg)
{
	cfg->obj.nmigrations = 0;
	for (unsigned i = 0; i < NBUILTINS; i++) {
		unsigned n = cfg->obj.nmigrations;
		struct store_migration *m = n ? &cfg->obj.migrations[n - 1] : NULL;
		if (!m || strcmp(m->tag, builtins[i].tag)) {
			m = &cfg->obj.migrations[cfg->obj.nmigrations++];
			memset(m, 0, sizeof(*m));
			snprintf(m->tag, sizeof(m->tag), "%s", builtins[i].tag);
		}
		DURO_ASSERT(m->nnew < STORE_MIGRATION_MAX_CLASSES);
		snprintf(m->new_classes[m->nnew++], STORE_NAME_MAX, "%s", builtins[i].class_name);
	}
}

const struct config_custom config_migrations = {
	.parse = migrations_parse, .to_json = migrations_json, .defaults = migrations_defaults,
	.text_is_json = 1, .type = "array of {tag, new_classes, renamed_classes, ...}",
	.def = "builtin-v1 (Counter ... Lock), builtin-v2 (ChatRoom), builtin-v3 (SqlCounter, Sql), builtin-v4 (Feed), builtin-v5 (AppendList)",
};

/* Added to the listeners' own certificates (the set is shared; duplicates are one). */
static int certificates_parse(struct config_ctx *x, const char *path, json_t *certs,
			      struct duro_config *cfg)
{
	static const char *const ckeys[] = { "cert", "key", NULL };
	if (!json_is_array(certs))
		return config_fail(x, path, "want an array of {\"cert\", \"key\"}, got %s",
				   config_type_name(certs));
	size_t i;
	json_t *v;
	json_array_foreach(certs, i, v) {
		char p[64], cert[512], key[512];
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		if (!json_is_object(v))
			return config_fail(x, p, "want {\"cert\": FILE, \"key\": FILE}, got %s",
					   config_type_name(v));
		if (config_only_keys(x, p, v, ckeys) < 0 ||
		    config_get_str(x, p, v, "cert", cert, sizeof(cert), 1) < 0 ||
		    config_get_str(x, p, v, "key", key, sizeof(key), 1) < 0)
			return -EINVAL;
		if (tls_config_add(&cfg->tls, cert, key) < 0)
			return config_fail(x, p, "more than %d certificates", TLS_MAX_CERTS);
	}
	return 0;
}

static json_t *certificates_json(const struct duro_config *cfg)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < cfg->tls.ncerts; i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "cert", cfg->tls.certs[i].cert,
						   "key", cfg->tls.certs[i].key));
	return a;
}

static void certificates_defaults(struct duro_config *cfg)
{
	cfg->tls.ncerts = 0;
}

const struct config_custom config_certificates = {
	.parse = certificates_parse, .to_json = certificates_json, .defaults = certificates_defaults,
	.text_is_json = 1, .type = "array of {cert, key}", .def = "[]",
};

/* The dpdk addresses: strings, "" for unset, kept in binary. */
static int string_of(struct config_ctx *x, const char *path, json_t *v, char *out, size_t cap)
{
	if (!json_is_string(v))
		return config_fail(x, path, "want a string, got %s", config_type_name(v));
	if (strlen(json_string_value(v)) >= cap)
		return config_fail(x, path, "longer than %zu bytes", cap - 1);
	snprintf(out, cap, "%s", json_string_value(v));
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

static int mac_parse(struct config_ctx *x, const char *path, json_t *v, struct duro_config *cfg)
{
	char text[64];
	if (string_of(x, path, v, text, sizeof(text)) < 0)
		return -EINVAL;
	if (!*text) {
		cfg->dpdk.mac_set = 0;
		return 0;
	}
	if (config_parse_mac(text, cfg->dpdk.mac) < 0)
		return config_fail(x, path, "\"%s\": want a unicast aa:bb:cc:dd:ee:ff", text);
	cfg->dpdk.mac_set = 1;
	return 0;
}

static json_t *mac_json(const struct duro_config *cfg)
{
	const uint8_t *m = cfg->dpdk.mac;
	char mac[24] = "";
	if (cfg->dpdk.mac_set)
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
			 m[4], m[5]);
	return json_string(mac);
}

static void mac_defaults(struct duro_config *cfg)
{
	cfg->dpdk.mac_set = 0;
}

const struct config_custom config_dpdk_mac = {
	.parse = mac_parse, .to_json = mac_json, .defaults = mac_defaults,
	.type = "string", .def = "\"\"",
};

static int ipv4_parse(struct config_ctx *x, const char *path, json_t *v, struct duro_config *cfg)
{
	char text[64];
	if (string_of(x, path, v, text, sizeof(text)) < 0)
		return -EINVAL;
	if (!*text) {
		cfg->dpdk.ipv4 = 0;
		cfg->dpdk.prefix = 0;
		return 0;
	}
	if (dpdk_parse_cidr(text, &cfg->dpdk.ipv4, &cfg->dpdk.prefix) < 0)
		return config_fail(x, path, "\"%s\": want an address with its prefix, e.g. 10.77.0.1/24",
				   text);
	return 0;
}

static json_t *ipv4_json(const struct duro_config *cfg)
{
	char ip[INET_ADDRSTRLEN] = "", cidr[40] = "";
	if (cfg->dpdk.ipv4) {
		inet_ntop(AF_INET, &cfg->dpdk.ipv4, ip, sizeof(ip));
		snprintf(cidr, sizeof(cidr), "%s/%u", ip, cfg->dpdk.prefix);
	}
	return json_string(cidr);
}

static void ipv4_defaults(struct duro_config *cfg)
{
	cfg->dpdk.ipv4 = 0;
	cfg->dpdk.prefix = 0;
}

const struct config_custom config_dpdk_ipv4 = {
	.parse = ipv4_parse, .to_json = ipv4_json, .defaults = ipv4_defaults,
	.type = "string", .def = "\"\"",
};

static int gateway_parse(struct config_ctx *x, const char *path, json_t *v,
			 struct duro_config *cfg)
{
	char text[64];
	if (string_of(x, path, v, text, sizeof(text)) < 0)
		return -EINVAL;
	unsigned plen;
	cfg->dpdk.gateway = 0;
	if (*text && (dpdk_parse_cidr(text, &cfg->dpdk.gateway, &plen) < 0 || strchr(text, '/')))
		return config_fail(x, path, "\"%s\": want an IPv4 address", text);
	return 0;
}

static json_t *gateway_json(const struct duro_config *cfg)
{
	char gw[INET_ADDRSTRLEN] = "";
	if (cfg->dpdk.gateway)
		inet_ntop(AF_INET, &cfg->dpdk.gateway, gw, sizeof(gw));
	return json_string(gw);
}

static void gateway_defaults(struct duro_config *cfg)
{
	cfg->dpdk.gateway = 0;
}

const struct config_custom config_dpdk_gateway = {
	.parse = gateway_parse, .to_json = gateway_json, .defaults = gateway_defaults,
	.type = "string", .def = "\"\"",
};
