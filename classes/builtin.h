/* Built-in classes that other classes build on: the tests' classes (tests/classes) copy one
 * of these definitions, rename it and wrap its handlers to add their test hooks. */
#ifndef DURO_CLASSES_BUILTIN_H
#define DURO_CLASSES_BUILTIN_H

#include "duro.h"

#include <stddef.h>

extern const struct duro_class echo_class;
extern const struct duro_class kv_class;
extern const struct duro_class ticker_class;
extern const struct duro_class chatroom_class;
extern const struct duro_class sql_class;

/* A batch line KV does not know: op is its first word, arg its second (NULL when none);
 * both live as long as the call. Returns 0, or a negative errno that ends the batch as
 * KV's own errors do: -EINVAL for an unknown line (400); an errno that KV does not answer
 * with a status of its own (400, 413, 507) fails the whole event (500, writes rolled back). */
typedef int kv_line_fn(struct duro_object *obj, const char *op, const char *arg);

/* KV's handlers, with `more` (NULL for none) asked about every batch line KV does not
 * know. The same contract as on_request and on_ws_message in duro.h. */
int kv_on_request(struct duro_object *obj, const struct duro_request *req,
		  struct duro_response *res, kv_line_fn *more);
int kv_on_ws_message(struct duro_object *obj, duro_ws ws, int binary, const void *data,
		     size_t len, kv_line_fn *more);

#endif
