/* The router: the first route whose prefix starts the path picks the kind of lookup. A
 * name route hashes the (percent-decoded) name into an ID of its binding, an ID route
 * checks a 64-hex ID against its binding, a generic route takes the binding from the path
 * and then "new" or an ID.
 *
 *   /counter/hello/x      name route "/counter/"  -> COUNTER, idFromName("hello"), "/x"
 *   /obj/COUNTER/new      generic route "/obj/"   -> COUNTER, newUniqueId, ""
 *   /obj/COUNTER/<hex>/y  generic route "/obj/"   -> COUNTER, idFromString(hex), "/y" */
#include "route.h"
#include "hex.h"

#include <errno.h>
#include <string.h>

long route_decode_segment(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '%') {
			if (i + 2 >= n)
				return -1;
			int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o == cap)
			return -1;
		out[o++] = ch;
	}
	return (long)o;
}

static int binding_of(const struct obj_view *v, const char *name, size_t len)
{
	for (unsigned i = 0; i < v->nns; i++) {
		const char *b = v->ns[i].ns->binding->name;
		if (strlen(b) == len && memcmp(b, name, len) == 0)
			return (int)i;
	}
	return -1;
}

enum route_error route_match(const struct obj_view *v, const char *path, size_t plen,
			     struct route_target *out)
{
	const struct obj_route *route = NULL;
	for (unsigned i = 0; i < v->nroutes && !route; i++) {
		size_t n = strlen(v->routes[i].prefix);
		if (plen >= n && memcmp(path, v->routes[i].prefix, n) == 0)
			route = &v->routes[i];
	}
	if (!route)
		return ROUTE_NO_ROUTE;
	size_t pos = strlen(route->prefix);
	int ns;
	if (route->kind == ROUTE_GENERIC) {
		const char *slash = memchr(path + pos, '/', plen - pos);
		size_t blen = slash ? (size_t)(slash - (path + pos)) : plen - pos;
		if ((ns = binding_of(v, path + pos, blen)) < 0)
			return ROUTE_NO_BINDING;
		pos += blen + (slash ? 1 : 0);
	} else {
		ns = route->binding;
	}
	const struct duro_namespace *nsp = v->ns[ns].ns;
	const char *seg = path + pos;
	const char *end = memchr(seg, '/', plen - pos);
	size_t slen = end ? (size_t)(end - seg) : plen - pos;
	if (pos + slen > UINT16_MAX)
		return ROUTE_TOO_LONG;
	memset(out, 0, sizeof(*out));
	out->ns = (unsigned)ns;
	out->subpath_off = (uint16_t)(pos + slen);
	if (route->kind == ROUTE_NAME) {
		char name[DURO_MAX_NAME];
		long n = route_decode_segment(seg, slen, name, sizeof(name));
		if (n <= 0 || duro_id_from_name(nsp, name, (size_t)n, &out->id) < 0)
			return ROUTE_BAD_NAME;
		out->name_off = (uint16_t)pos;
		out->name_len = (uint16_t)slen;
		return ROUTE_OK;
	}
	if (route->kind == ROUTE_GENERIC && slen == 3 && memcmp(seg, "new", 3) == 0) {
		if (duro_id_new(nsp, &out->id) < 0)
			return ROUTE_NO_RANDOM;
		out->minted = 1;
		return ROUTE_OK;
	}
	int r = duro_id_from_string(nsp, seg, slen, &out->id);
	if (r == -EINVAL)
		return ROUTE_BAD_ID;
	return r < 0 ? ROUTE_FOREIGN_ID : ROUTE_OK;
}

int route_error_status(enum route_error e)
{
	switch (e) {
	case ROUTE_OK: return 200;
	case ROUTE_BAD_NAME:
	case ROUTE_BAD_ID: return 400;
	case ROUTE_TOO_LONG: return 414;
	case ROUTE_NO_RANDOM: return 503;
	case ROUTE_NO_ROUTE:
	case ROUTE_NO_BINDING:
	case ROUTE_FOREIGN_ID: return 404;
	}
	return 500;
}

const char *route_error_text(enum route_error e)
{
	switch (e) {
	case ROUTE_OK: return "";
	case ROUTE_NO_ROUTE: return "no route for this path";
	case ROUTE_NO_BINDING: return "no such binding";
	case ROUTE_BAD_NAME: return "object name missing, malformed or over 256 bytes";
	case ROUTE_BAD_ID: return "malformed object ID: want 64 hex digits";
	case ROUTE_FOREIGN_ID: return "no such object in this namespace";
	case ROUTE_TOO_LONG: return "path too long";
	case ROUTE_NO_RANDOM: return "no randomness for a new ID";
	}
	return "routing failed";
}
