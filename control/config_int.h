/* The config schema's types, shared by the engine (config.c), the key table
 * (config_keys.c) and the handlers of structured sections (config_sections.c). */
#ifndef DURO_CONTROL_CONFIG_INT_H
#define DURO_CONTROL_CONFIG_INT_H

#include "config.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* One parse, with its first error: later failures keep the first message. */
struct config_ctx {
	char *err;
	size_t errlen;
	int failed;
	const char *origin; /* the flag being applied ("--dpdk-mtu"), NULL for the file */
};

/* Writes "config: PATH: message" (after "durod: FLAG: " for a flag) once; -EINVAL. */
int config_fail(struct config_ctx *x, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "an object", "a string", ... for messages. */
const char *config_type_name(const json_t *v);

/* Refuses keys of `obj` not in the NULL-terminated list, naming PATH.KEY. */
int config_only_keys(struct config_ctx *x, const char *path, json_t *obj,
		     const char *const *keys);

/* The string member `key` of obj into out[cap]: absent is fine unless required, and then
 * so is "" only when not required. 0 or -EINVAL. */
int config_get_str(struct config_ctx *x, const char *path, json_t *obj, const char *key,
		   char *out, size_t cap, int required);

/* Checks and applies a JSON object over cfg, as a file would be; origin names the flag it
 * came from in messages. Does not take root. 0 or -EINVAL. */
int config_apply_json(struct duro_config *cfg, json_t *root, const char *origin, char *err,
		      size_t errlen);

/* The row of a key path ("dpdk.mtu"), or NULL. */
const struct config_key *config_find_key(const char *path);

/* Sets root's member at a dotted table path to v (taken), making the sections on the way;
 * 0, or -1 when out of memory. */
int config_json_put(json_t *root, const char *path, json_t *v);

enum config_type {
	CONFIG_UINT,    /* a JSON integer in [min, max] into an unsigned field of 4 or 8 bytes */
	CONFIG_BOOL,    /* true or false into an int (CONFIG_NEGATE: stored negated) */
	CONFIG_STRING,  /* a string into char[size]; `check` may refuse a value */
	CONFIG_ENUM,    /* one of `names`: its index into an int, or the name into char[size] */
	CONFIG_STRINGS, /* an array of at most max strings into char[max][size], count apart */
	CONFIG_CUSTOM,  /* structured: the row's handlers parse, show and default it */
	CONFIG_IGNORED, /* accepted and dropped ("$schema", wrangler's "name") */
};

enum {
	CONFIG_NEGATE = 1 << 0,      /* BOOL: the field holds the opposite (no_buffer_ring) */
	CONFIG_NAME = 1 << 3,        /* ENUM: the field is char[size] and holds the name */
	CONFIG_FLAG_REPEAT = 1 << 1, /* the flag may repeat: each one is an item of the array */
	CONFIG_FLAG_SPLIT = 1 << 2,  /* the flag's text is the array's items, space-separated */
};

/* A structured key's handlers: parse over cfg (`path` names the key in messages), show,
 * and fill the default. */
struct config_custom {
	int (*parse)(struct config_ctx *x, const char *path, json_t *v, struct duro_config *cfg);
	json_t *(*to_json)(const struct duro_config *cfg);
	void (*defaults)(struct duro_config *cfg);
	int text_is_json; /* a --set value is JSON text (else the string itself) */
	const char *type; /* for the key reference, e.g. "array of bindings" */
	const char *def;  /* the default, for the key reference */
};

/* One key, as nginx's ngx_command_t: where it goes, what it takes, its default. */
struct config_key {
	const char *path; /* "limits.max_body_bytes": the sections are the dotted prefixes */
	enum config_type type;
	unsigned flags;
	size_t offset, size;   /* the field in struct duro_config (STRINGS: one item) */
	size_t count_offset;   /* STRINGS: the unsigned count of items */
	uint64_t min, max;     /* UINT: the range; STRINGS: max items */
	uint64_t def;          /* UINT, BOOL, ENUM (an index into names) */
	const char *def_text;  /* STRING */
	const char *const *names;                  /* ENUM: NULL-terminated */
	void (*def_fn)(struct duro_config *cfg);   /* a default computed at start (cores) */
	const char *def_doc;                       /* and how the reference shows it */
	int (*check)(struct config_ctx *x, const char *path, const char *value); /* STRING */
	/* UINT: refuses a value in range that is still wrong (not a power of two, ...) */
	int (*check_uint)(struct config_ctx *x, const char *path, uint64_t value);
	const struct config_custom *custom;        /* CUSTOM */
	const char *flag, *metavar;                /* "--dpdk-mtu", "N": the key's flag */
	const char *doc;                           /* one line for the reference and --help */
};

extern const struct config_key config_keys[];
extern const unsigned config_nkeys;

/* config_sections.c: the structured keys' handlers and the built-in set of classes. */
extern const struct config_custom config_listeners, config_bindings, config_routes,
	config_migrations, config_certificates, config_dpdk_mac, config_dpdk_ipv4,
	config_dpdk_gateway;
void config_default_cores(struct duro_config *cfg);
int config_check_hostport(struct config_ctx *x, const char *path, const char *value);
int config_check_group(struct config_ctx *x, const char *path, const char *value);
int config_check_allow(struct config_ctx *x, const char *path, const char *value);
int config_check_pow2(struct config_ctx *x, const char *path, uint64_t value);
int config_check_page_multiple(struct config_ctx *x, const char *path, uint64_t value);
int config_check_cluster_name(struct config_ctx *x, const char *path, const char *value);
int config_check_etcd_url(struct config_ctx *x, const char *path, const char *value);

#endif
