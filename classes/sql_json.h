/* The Sql class's JSON (sql_json.c): a pure reader of its request body
 * {"sql": "...", "params": [...]} (strings decoded into the caller's scratch, no
 * allocation), and a writer of its answers into a growing buffer. */
#ifndef DURO_CLASSES_SQL_JSON_H
#define DURO_CLASSES_SQL_JSON_H

#include "duro.h"

#include <stddef.h>

#define SQLJ_MAX_PARAMS 1000 /* above any sql.max_params allowed, so that limit answers */

struct sqlj_request {
	const char *sql; /* in scratch (or the body) */
	size_t sql_len;
	struct duro_sql_value params[SQLJ_MAX_PARAMS];
	size_t nparams;
};

/* Parses body[0..len): an object with "sql" (a string, required) and "params" (an array
 * of null, true, false, numbers and strings: integers without fraction or exponent that
 * fit 64 bits are INTEGER, other numbers REAL, strings TEXT; {"blob": "<base64>"} is a
 * BLOB). scratch must hold len bytes: decoded strings live there. Returns 0, or -EINVAL
 * with a message in err naming what and where. */
int sqlj_parse(const char *body, size_t len, char *scratch, struct sqlj_request *out, char *err,
	       size_t errlen);

/* A JSON text being written: out of memory sticks (err), checked once at the end. */
struct sqlj_out {
	char *buf;
	size_t len, cap;
	int err;
};
void sqlj_raw(struct sqlj_out *o, const char *p, size_t n);
/* A JSON string of p[0..n) (invalid UTF-8 becomes U+FFFD). */
void sqlj_string(struct sqlj_out *o, const char *p, size_t n);
/* A value as the answer shows it: null, a number, a string, or {"blob": "<base64>"}. */
void sqlj_value(struct sqlj_out *o, const struct duro_sql_value *v);
void sqlj_uint(struct sqlj_out *o, unsigned long long v);

#endif
