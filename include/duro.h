/* duro's class API: what a Durable Object class is written against, in C.
 * libc types only; a class never sees cores, sockets or storage engines. */
#ifndef DURO_H
#define DURO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IDs ----
 * 32 bytes, shown as 64 lowercase hex characters: a 16-byte body (random for new IDs, a
 * keyed hash of the name for named ones) and a 16-byte MAC under the namespace's secret,
 * so an ID minted for one namespace is refused by every other. */
#define DURO_ID_BYTES 32
#define DURO_ID_HEX 64

struct duro_id {
	uint8_t bytes[DURO_ID_BYTES];
};

/* A namespace: one class reached through a binding (Cloudflare's DurableObjectNamespace). */
struct duro_namespace;

/* The namespace bound to `binding` in the config, or NULL. Valid for the process's life. */
const struct duro_namespace *duro_namespace(const char *binding);

/* idFromName: the same name always gives the same ID in one namespace.
 * Returns 0, or -EINVAL for an empty name or one longer than 256 bytes. */
int duro_id_from_name(const struct duro_namespace *ns, const char *name, size_t len,
		      struct duro_id *out);
/* newUniqueId: a fresh random ID. Returns 0 or a negative errno from getrandom. */
int duro_id_new(const struct duro_namespace *ns, struct duro_id *out);
/* idFromString: returns 0; -EINVAL when `hex` is not 64 hex digits; -ENOENT when the ID
 * was not minted by this namespace. */
int duro_id_from_string(const struct duro_namespace *ns, const char *hex, size_t len,
			struct duro_id *out);
/* Writes 64 lowercase hex digits and a NUL. */
void duro_id_to_string(const struct duro_id *id, char out[DURO_ID_HEX + 1]);

/* ---- objects, requests, responses ---- */

struct duro_object;   /* one live instance; valid during a callback only */
struct duro_request;  /* the request being handled; valid during on_request only */
struct duro_response; /* the response being built; valid during on_request only */

/* A byte string that is not NUL-terminated. */
struct duro_str {
	const char *ptr;
	size_t len;
};

/* The class's per-object state: state_size bytes, zeroed before on_load. */
void *duro_state(struct duro_object *obj);
const struct duro_id *duro_object_id(const struct duro_object *obj);
const char *duro_object_class(const struct duro_object *obj);

struct duro_str duro_req_method(const struct duro_request *req);
/* The whole path, e.g. "/counter/hot/x". */
struct duro_str duro_req_path(const struct duro_request *req);
/* The path after the object's name or ID, e.g. "/x" (empty when none). */
struct duro_str duro_req_subpath(const struct duro_request *req);
/* The raw query string without '?', empty when none. */
struct duro_str duro_req_query(const struct duro_request *req);
/* The value of query parameter `name` (raw, not percent-decoded). Returns 1 when found. */
int duro_req_query_param(const struct duro_request *req, const char *name, struct duro_str *out);
/* The first header named `name` (case-insensitive). Returns 1 when found. */
int duro_req_header(const struct duro_request *req, const char *name, struct duro_str *out);
struct duro_str duro_req_body(const struct duro_request *req);
/* 1 when the method equals `method` exactly (e.g. "POST"). */
int duro_req_is(const struct duro_request *req, const char *method);

/* The status defaults to 200. Header names and values must not hold CR, LF (or ':' in the
 * name): -EINVAL. Every call returns 0 or a negative errno (-ENOMEM). Bodies are copied. */
void duro_res_status(struct duro_response *res, int status);
int duro_res_header(struct duro_response *res, const char *name, const char *value);
int duro_res_body(struct duro_response *res, const void *data, size_t len);
/* Sets status, Content-Type text/plain and the body to `text` plus a newline. */
int duro_res_text(struct duro_response *res, int status, const char *text);

/* ---- classes ---- */

struct duro_class {
	const char *name;  /* as bound in the config, e.g. "Counter" */
	size_t state_size; /* bytes of per-object state */
	/* Activation (the object was not in memory). Non-zero fails the event with a 500. */
	int (*on_load)(struct duro_object *obj);
	/* fetch(). Returns 0; any other value fails the request with a 500 and discards
	 * whatever response was built. */
	int (*on_request)(struct duro_object *obj, const struct duro_request *req,
			  struct duro_response *res);
	/* Eviction after the idle time, or shutdown. */
	void (*on_unload)(struct duro_object *obj);
};

/* Registers a class by its name; returns 0, -EEXIST for a name taken, -ENOSPC when full.
 * Call before durod starts serving, normally through DURO_CLASS. */
int duro_register_class(const struct duro_class *cls);

/* Registers `cls` when the program starts. */
#define DURO_CLASS(cls)                                                                 \
	static void __attribute__((constructor)) duro_register_##cls(void)              \
	{                                                                               \
		duro_register_class(&cls);                                              \
	}

#ifdef __cplusplus
}
#endif

#endif
