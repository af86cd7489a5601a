/* durod's flags over the config: each flag of the key table, and --set PATH=VALUE, becomes
 * the JSON the file would hold for that key and goes through the same parser; and the
 * flags' help and the key reference, written from the table. */
#include "config_int.h"
#include "base_assert.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned config_flag_options(struct option *out, unsigned cap)
{
	unsigned n = 0;
	for (unsigned i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		if (!k->flag)
			continue;
		DURO_ASSERT(n < cap && !strncmp(k->flag, "--", 2));
		out[n++] = (struct option){ k->flag + 2, required_argument, NULL,
					    CONFIG_FLAG_BASE + (int)i };
	}
	return n;
}

static int add(struct config_flags *fl, int key, const char *text, char *err, size_t errlen)
{
	if (fl->n == CONFIG_MAX_FLAGS) {
		snprintf(err, errlen, "durod: more than %d flags that set config keys",
			 CONFIG_MAX_FLAGS);
		return -E2BIG;
	}
	fl->given[fl->n].key = key;
	fl->given[fl->n].text = text;
	fl->n++;
	return 0;
}

int config_flags_add(struct config_flags *fl, int val, const char *text, char *err,
		     size_t errlen)
{
	int key = val - CONFIG_FLAG_BASE;
	DURO_ASSERT(key >= 0 && (unsigned)key < config_nkeys && config_keys[key].flag);
	return add(fl, key, text, err, errlen);
}

int config_flags_add_set(struct config_flags *fl, const char *path_value, char *err,
			 size_t errlen)
{
	return add(fl, -1, path_value, err, errlen);
}

static int string_value(struct config_ctx *x, const char *path, const char *text, json_t **out)
{
	*out = json_string(text);
	return *out ? 0 : config_fail(x, path, "not valid UTF-8");
}

static int json_value(struct config_ctx *x, const char *path, const char *text, json_t **out)
{
	json_error_t jerr;
	*out = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	return *out ? 0 : config_fail(x, path, "not JSON: %s", jerr.text);
}

/* Space-separated items ("--no-huge -m 512") as an array of strings. */
static int split_value(struct config_ctx *x, const struct config_key *k, const char *text,
		       json_t **out)
{
	char buf[1024];
	if (strlen(text) >= sizeof(buf))
		return config_fail(x, k->path, "longer than %zu bytes", sizeof(buf) - 1);
	snprintf(buf, sizeof(buf), "%s", text);
	json_t *a = json_array();
	for (char *save = NULL, *tok = strtok_r(buf, " ", &save); a && tok;
	     tok = strtok_r(NULL, " ", &save)) {
		json_t *s;
		if (string_value(x, k->path, tok, &s) < 0) {
			json_decref(a);
			return -EINVAL;
		}
		json_array_append_new(a, s);
	}
	*out = a;
	return a ? 0 : config_fail(x, k->path, "out of memory");
}

/* A flag's text as the JSON the file would hold for key k: an integer for UINT, true or
 * false for BOOL, the items of a CONFIG_FLAG_SPLIT flag, JSON text for structured keys
 * (--set), else the string itself. */
static int text_value(struct config_ctx *x, const struct config_key *k, const char *text,
		      int named_flag, json_t **out)
{
	*out = NULL;
	switch (k->type) {
	case CONFIG_UINT: {
		char *end;
		errno = 0;
		long long v = strtoll(text, &end, 10);
		if (!(isdigit((unsigned char)text[0]) || (text[0] == '-' && isdigit((unsigned char)text[1]))) ||
		    *end || errno)
			return config_fail(x, k->path, "want an integer, got \"%.64s\"", text);
		*out = json_integer(v);
		break;
	}
	case CONFIG_BOOL:
		if (strcmp(text, "true") && strcmp(text, "false"))
			return config_fail(x, k->path, "want true or false, got \"%.64s\"", text);
		*out = json_boolean(!strcmp(text, "true"));
		break;
	case CONFIG_STRINGS:
		if (named_flag && (k->flags & CONFIG_FLAG_SPLIT))
			return split_value(x, k, text, out);
		return json_value(x, k->path, text, out);
	case CONFIG_CUSTOM:
		if (k->custom->text_is_json)
			return json_value(x, k->path, text, out);
		return string_value(x, k->path, text, out);
	case CONFIG_STRING:
	case CONFIG_ENUM:
	case CONFIG_IGNORED:
		return string_value(x, k->path, text, out);
	}
	return *out ? 0 : config_fail(x, k->path, "out of memory");
}

/* {"a": {"b": v}} for path "a.b", applied as a file holding just that. Takes v. */
static int apply_value(struct duro_config *cfg, const char *path, json_t *v,
		       const char *origin, char *err, size_t errlen)
{
	json_t *root = json_object();
	if (!root || config_json_put(root, path, v) < 0) {
		json_decref(root);
		snprintf(err, errlen, "durod: %s: out of memory", origin);
		return -ENOMEM;
	}
	int r = config_apply_json(cfg, root, origin, err, errlen);
	json_decref(root);
	return r;
}

/* A --set path: names of 1 to 63 bytes joined by dots. */
static int path_ok(const char *path)
{
	for (;;) {
		size_t len = strcspn(path, ".");
		if (len == 0 || len > 63)
			return 0;
		if (!path[len])
			return 1;
		path += len + 1;
	}
}

static int apply_set(struct duro_config *cfg, const char *pv, char *err, size_t errlen)
{
	const char *eq = strchr(pv, '=');
	char path[128];
	if (!eq || (size_t)(eq - pv) >= sizeof(path)) {
		snprintf(err, errlen, "durod: --set: \"%.64s\": want KEY=VALUE, e.g. "
			 "limits.max_body_bytes=4194304", pv);
		return -EINVAL;
	}
	memcpy(path, pv, (size_t)(eq - pv));
	path[eq - pv] = 0;
	if (!path_ok(path)) {
		snprintf(err, errlen, "durod: --set: \"%s\": want a key path such as dpdk.mtu", path);
		return -EINVAL;
	}
	struct config_ctx x = { .err = err, .errlen = errlen, .origin = "--set" };
	const struct config_key *k = config_find_key(path);
	json_t *v;
	if (k) {
		if (text_value(&x, k, eq + 1, 0, &v) < 0)
			return -EINVAL;
	} else {
		/* A section or an unknown key: the parser says which is wrong. */
		v = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
		if (!v && string_value(&x, path, eq + 1, &v) < 0)
			return -EINVAL;
	}
	return apply_value(cfg, path, v, "--set", err, errlen);
}

int config_flags_apply(struct duro_config *cfg, const struct config_flags *fl, char *err,
		       size_t errlen)
{
	for (unsigned i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		struct config_ctx x = { .err = err, .errlen = errlen, .origin = k->flag };
		json_t *v = NULL;
		if (!k->flag)
			continue;
		if (k->flags & CONFIG_FLAG_REPEAT) {
			for (unsigned j = 0; j < fl->n; j++) {
				if (fl->given[j].key != (int)i)
					continue;
				json_t *s;
				if (!v)
					v = json_array();
				if (!v || string_value(&x, k->path, fl->given[j].text, &s) < 0 ||
				    json_array_append_new(v, s) < 0) {
					json_decref(v);
					return x.failed ? -EINVAL : config_fail(&x, k->path, "out of memory");
				}
			}
		} else {
			const char *last = NULL;
			for (unsigned j = 0; j < fl->n; j++)
				if (fl->given[j].key == (int)i)
					last = fl->given[j].text;
			if (last && text_value(&x, k, last, 1, &v) < 0)
				return -EINVAL;
		}
		if (v && apply_value(cfg, k->path, v, k->flag, err, errlen) < 0)
			return -EINVAL;
	}
	for (unsigned j = 0; j < fl->n; j++)
		if (fl->given[j].key < 0 && apply_set(cfg, fl->given[j].text, err, errlen) < 0)
			return -EINVAL;
	return 0;
}

/* "576 to 9000, default 1500" */
static void describe(const struct config_key *k, char *out, size_t n)
{
	char def[160] = "", list[128];
	switch (k->type) {
	case CONFIG_UINT:
		snprintf(def, sizeof(def), "%llu", (unsigned long long)k->def);
		snprintf(out, n, "%llu to %llu, default %s", (unsigned long long)k->min,
			 (unsigned long long)k->max, k->def_doc ? k->def_doc : def);
		break;
	case CONFIG_BOOL:
		snprintf(out, n, "true or false, default %s", k->def ? "true" : "false");
		break;
	case CONFIG_STRING:
		snprintf(out, n, "string, default \"%s\"", k->def_text ? k->def_text : "");
		break;
	case CONFIG_ENUM:
		for (unsigned i = 0; k->names[i]; i++) {
			size_t len = strlen(def);
			snprintf(def + len, sizeof(def) - len, "%s%s", i == 0 ? "" : k->names[i + 1] ? ", " : " or ",
				 k->names[i]);
		}
		snprintf(list, sizeof(list), "%s", def);
		snprintf(out, n, "%s, default %s", list, k->names[k->def]);
		break;
	case CONFIG_STRINGS:
		snprintf(out, n, "array of at most %llu strings, default %s",
			 (unsigned long long)k->max, k->def_doc ? k->def_doc : "[]");
		break;
	case CONFIG_CUSTOM:
		snprintf(out, n, "%s, default %s", k->custom->type,
			 k->def_doc ? k->def_doc : k->custom->def);
		break;
	case CONFIG_IGNORED:
		snprintf(out, n, "anything");
		break;
	}
}

void config_flags_usage(FILE *f)
{
	for (unsigned i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		if (!k->flag)
			continue;
		char name[64], what[256];
		snprintf(name, sizeof(name), "%s %s", k->flag, k->metavar);
		describe(k, what, sizeof(what));
		fprintf(f, "  %-22s %s: %s%s\n  %-22s (%s)\n", name, k->path, k->doc,
			(k->flags & CONFIG_FLAG_REPEAT) ? "; repeat for several" : "", "", what);
	}
}

void config_keys_usage(FILE *f)
{
	fprintf(f, "Config keys, by JSON path (\"limits.max_body_bytes\" is "
		   "{\"limits\": {\"max_body_bytes\": N}}):\n");
	for (unsigned i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		char what[256];
		describe(k, what, sizeof(what));
		fprintf(f, "  %s  (%s%s%s)\n      %s\n", k->path, what, k->flag ? "; flag " : "",
			k->flag ? k->flag : "", k->doc);
	}
}
