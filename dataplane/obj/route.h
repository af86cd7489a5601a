/* The router (route.c): a request path to its binding, object ID and subpath, by a view's
 * routes. Pure: no I/O but getrandom for a new ID, no allocation, no core. */
#ifndef DURO_OBJ_ROUTE_H
#define DURO_OBJ_ROUTE_H

#include "runtime.h"

#include <stddef.h>
#include <stdint.h>

enum route_error {
	ROUTE_OK = 0,
	ROUTE_NO_ROUTE,   /* 404: no route's prefix matches */
	ROUTE_NO_BINDING, /* 404: a generic route names no binding of the view */
	ROUTE_BAD_NAME,   /* 400: the name is empty, malformed (%-escape) or over 256 bytes */
	ROUTE_BAD_ID,     /* 400: not 64 hex digits */
	ROUTE_FOREIGN_ID, /* 404: an ID another namespace minted */
	ROUTE_TOO_LONG,   /* 414: the object's part of the path ends past 65535 bytes */
	ROUTE_NO_RANDOM,  /* 503: no randomness for a new ID */
};

struct route_target {
	unsigned ns;          /* index into the view's namespaces */
	struct duro_id id;
	uint16_t subpath_off; /* the path after the name or ID */
	uint16_t name_off, name_len; /* the raw name segment (ROUTE_NAME routes), or 0 long */
	uint8_t minted;       /* a new ID (…/new): the response names it */
};

/* Routes path[0..len) (no query). Returns ROUTE_OK with *out filled, or the error. */
enum route_error route_match(const struct obj_view *v, const char *path, size_t len,
			     struct route_target *out);
/* The status and the text a client is told for an error. */
int route_error_status(enum route_error e);
const char *route_error_text(enum route_error e);

/* Percent-decodes a path segment into out (cap bytes); returns its length or -1. */
long route_decode_segment(const char *s, size_t n, char *out, size_t cap);

#endif
