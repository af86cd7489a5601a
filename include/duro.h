/* duro's class API: what a Durable Object class is written against, in C.
 * libc types only; a class never sees cores, sockets or storage engines. The header is
 * C89, C99 and C++ clean (tests/integration/test_modules.py compiles it each way). */
#ifndef DURO_H
#define DURO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the API's version ----
 * The major version changes when a class built against an older header could misbehave
 * in a newer durod (a struct or a callback changed); the minor one when something is
 * added. durod runs modules of its own major version and of a minor version up to its
 * own. Test features with #if DURO_API_VERSION >= 1001 and the like. */
#define DURO_API_VERSION_MAJOR 1
#define DURO_API_VERSION_MINOR 1 /* 1: outbound WebSockets, on_ws_open */
#define DURO_API_VERSION (DURO_API_VERSION_MAJOR * 1000 + DURO_API_VERSION_MINOR)

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

/* A variable of the object's binding (config durable_objects.bindings[].vars, as
 * wrangler's vars): returns 1 with *value set (valid for the process's life), or 0. */
int duro_var(const struct duro_object *obj, const char *name, struct duro_str *value);

struct duro_str duro_req_method(const struct duro_request *req);
/* The whole path, e.g. "/counter/hot/x". */
struct duro_str duro_req_path(const struct duro_request *req);
/* The path after the object's name or ID, e.g. "/x" (empty when none). */
struct duro_str duro_req_subpath(const struct duro_request *req);
/* The raw query string without '?', empty when none. */
struct duro_str duro_req_query(const struct duro_request *req);
/* The value of query parameter `name` (raw, not percent-decoded). Returns 1 when found. */
int duro_req_query_param(const struct duro_request *req, const char *name, struct duro_str *out);
/* Query parameter `name` as a decimal integer in [lo, hi]: returns 1 with *out set, 0 when
 * absent, -EINVAL when empty, malformed or out of range. */
int duro_req_query_int(const struct duro_request *req, const char *name, int64_t lo, int64_t hi,
		       int64_t *out);
/* Wall-clock milliseconds since the epoch (the clock alarms are set in). */
int64_t duro_now_ms(void);
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

/* Deferred responses: a handler may keep the response to answer it from a later event of
 * the same object (a lock granted when released, a long poll). The object stays in memory
 * while it holds any; should it be reset or stopped, they are answered 503. At most 4096
 * per object. */
struct duro_deferred;
/* In on_request: the response will be sent later. Returns the handle, or NULL (the limit;
 * then answer now). Whatever the handler put in res is discarded. */
struct duro_deferred *duro_res_defer(struct duro_response *res);
/* Answers a deferred response (from any later event of the same object): status, a
 * text/plain body. The handle is gone afterwards. Passes the output gate like any
 * response: it leaves when the event that answered it has ended and its writes are
 * durable; if that event fails, it is answered as the event's own response would be (500,
 * 507 when the disk is full). Returns 0 or -ENOMEM. */
int duro_deferred_respond(struct duro_object *obj, struct duro_deferred *d, int status,
			  const char *content_type, const void *body, size_t len);

/* ---- storage (Cloudflare's ctx.storage) ----
 * Keys are byte strings of up to 2 KiB (the empty key included; keys starting with the
 * bytes 0xFF 0xFF are duro's own, refused with -EINVAL), values byte strings of up
 * to 128 MiB; an object holds at most 50 GB (all configurable: storage.max_*). Everything
 * an event writes commits atomically when its callback returns 0 and is rolled back when
 * it fails. Reads see the event's own writes at once. Nothing the object sends (its
 * response) leaves before the writes before it are durable: the output gate. */
#define DURO_MAX_KEY 2048
#define DURO_MAX_BATCH 128

struct duro_kv {
	struct duro_str key;
	struct duro_str value;
};

/* Returns 1 with *value set (valid until the callback returns), 0 when absent; errors:
 * -EINVAL key too long, -EIO storage failure, -ENOMEM. */
int duro_get(struct duro_object *obj, const void *key, size_t klen, struct duro_str *value);
/* Up to 128 keys; values[i].ptr is NULL for an absent key. Returns how many were found,
 * or -E2BIG (over 128 keys) or an error of duro_get. */
int duro_get_many(struct duro_object *obj, const struct duro_str *keys, size_t n,
		  struct duro_str *values);
/* Returns 0; -EINVAL key too long, -EFBIG value too large, -ENOSPC the object would pass
 * its size limit, -EIO, -ENOMEM. Values are copied. */
int duro_put(struct duro_object *obj, const void *key, size_t klen, const void *value, size_t vlen);
/* Up to 128 entries, all or none. */
int duro_put_many(struct duro_object *obj, const struct duro_kv *entries, size_t n);
/* Returns 1 when the key existed, 0 when not, or an error. */
int duro_delete(struct duro_object *obj, const void *key, size_t klen);
/* Up to 128 keys; returns how many existed, or an error. */
int duro_delete_many(struct duro_object *obj, const struct duro_str *keys, size_t n);

/* list(): keys in byte order within [start, end), or after start_after, or with a prefix;
 * reverse, and at most limit entries (0: no limit). Unused bounds have ptr NULL. */
struct duro_list_options {
	struct duro_str start, start_after, end, prefix;
	int reverse;
	size_t limit;
};
/* Called per entry in order; views valid during the call; non-zero stops the listing. */
typedef int duro_list_fn(void *arg, struct duro_str key, struct duro_str value);
/* Returns how many entries were passed to fn, or -EINVAL, -EIO, -ENOMEM. */
int duro_list(struct duro_object *obj, const struct duro_list_options *opt, duro_list_fn *fn,
	      void *arg);
/* deleteAll(): every key of the object (its alarm too, once alarms exist). Returns 0. */
int duro_delete_all(struct duro_object *obj);

/* An explicit transaction inside an event: writes after begin are undone by rollback and
 * kept by commit; they still become durable with the event. Nesting is allowed.
 * begin returns 0 or -ENOSPC (over 16 deep); commit and rollback return 0 or -EINVAL
 * without a matching begin. */
int duro_txn_begin(struct duro_object *obj);
int duro_txn_commit(struct duro_object *obj);
int duro_txn_rollback(struct duro_object *obj);

/* sync(): calls done(obj, status, arg) once every write this object has made so far, this
 * event's included, is durable (status 0) or has failed to become durable (a negative
 * errno: -EIO, -ENOSPC; the object was reset from storage before the call). done runs as
 * an event of its own after the current one, on an instance activated again if the object
 * was evicted meanwhile (obj may differ from the caller's), and may use storage like any
 * event. Returns 0 or -ENOMEM. */
typedef void duro_sync_fn(struct duro_object *obj, int status, void *arg);
int duro_sync(struct duro_object *obj, duro_sync_fn *done, void *arg);

/* ---- SQL (Cloudflare's ctx.storage.sql) ----
 * Every object has an SQL database of its own (SQLite), beside its key-value pairs: both
 * are its storage, written in the same event transaction. Statements an event runs commit
 * with its key-value writes and alarms when its callback returns 0 and roll back when it
 * fails; duro_txn_begin/commit/rollback nest over SQL too; reads see the event's writes;
 * the output gate holds what the object sends until they are durable. Transaction
 * statements (BEGIN, COMMIT, ROLLBACK, SAVEPOINT), ATTACH, PRAGMAs outside a short list
 * (table_info, index_list, foreign_keys, ...), temporary objects and names starting with
 * "_cf_" or "_duro" are refused (-EPERM); limits (sql.* in the config: statement length,
 * bound parameters, row and blob size, columns, expression depth) are -E2BIG or -EINVAL
 * with SQLite's message. A statement still running past the event's time budget
 * (sql.time_budget_ms from the event's start) is interrupted (-ETIMEDOUT) and the whole
 * event fails. The database may grow to storage.max_object_bytes.
 *
 * A failed call changes nothing: one exec of several statements is undone as a whole.
 * Errors: -EINVAL the SQL is wrong (syntax, no such table, a constraint failed, wrong
 * number of parameters), -EPERM forbidden, -E2BIG over a limit, -ENOSPC the database or
 * the event's writes would pass their limit, -ETIMEDOUT interrupted, -EIO, -ENOMEM; for
 * -ENOSPC from SQLite itself, -ETIMEDOUT, -EIO and -ENOMEM the event fails as a whole.
 * duro_sql_error gives SQLite's message (or duro's, for its refusals). */
enum duro_sql_type { DURO_SQL_NULL, DURO_SQL_INTEGER, DURO_SQL_REAL, DURO_SQL_TEXT, DURO_SQL_BLOB };

struct duro_sql_value {
	enum duro_sql_type type;
	union {
		int64_t i;         /* INTEGER */
		double d;          /* REAL */
		struct duro_str s; /* TEXT (UTF-8, not NUL-terminated) or BLOB */
	} u; /* named: C89 and C99 have no anonymous unions */
};

#define DURO_SQL_INT(v) ((struct duro_sql_value){ .type = DURO_SQL_INTEGER, .u.i = (v) })
#define DURO_SQL_REALV(v) ((struct duro_sql_value){ .type = DURO_SQL_REAL, .u.d = (v) })
#define DURO_SQL_TEXTN(p, n) ((struct duro_sql_value){ .type = DURO_SQL_TEXT, .u.s = { (p), (n) } })
#define DURO_SQL_BLOBN(p, n) ((struct duro_sql_value){ .type = DURO_SQL_BLOB, .u.s = { (p), (n) } })

/* What one exec did: rows passed to the caller, rows read (those returned plus those a
 * full scan stepped over: Debian's SQLite counts no more), rows written (inserted,
 * updated, deleted, triggers included). */
struct duro_sql_result {
	uint64_t rows_returned, rows_read, rows_written;
};

/* Called per row of the last statement: its column names and values (views valid during
 * the call). Non-zero stops the rows (the statement itself still completes). */
typedef int duro_sql_row_fn(void *arg, unsigned ncols, const struct duro_str *names,
			    const struct duro_sql_value *values);

/* exec(): runs the `;`-separated statements of sql[0..len) in order, the parameters bound
 * to the last one (`?`, `?NNN`, `:name` in order of their index), its rows to fn (NULL:
 * dropped). res (NULL: not wanted) is filled. Returns 0 or an error above. */
int duro_sql_exec(struct duro_object *obj, const char *sql, size_t len,
		  const struct duro_sql_value *params, size_t nparams, duro_sql_row_fn *fn,
		  void *arg, struct duro_sql_result *res);

/* A cursor: the statements before the last run at open, the last one's rows are read
 * one at a time. Valid until closed, and at most until the event ends (then it is closed
 * for the class). */
struct duro_sql_cursor;
/* Returns 0 with *out set, or an error (nothing left open). */
int duro_sql_open(struct duro_object *obj, const char *sql, size_t len,
		  const struct duro_sql_value *params, size_t nparams, struct duro_sql_cursor **out);
/* The next row: 1 (read it with duro_sql_column), 0 no more, or an error. */
int duro_sql_next(struct duro_sql_cursor *cur);
unsigned duro_sql_column_count(const struct duro_sql_cursor *cur);
struct duro_str duro_sql_column_name(const struct duro_sql_cursor *cur, unsigned i);
/* Column i of the current row; views valid until the next call on the cursor. */
struct duro_sql_value duro_sql_column(const struct duro_sql_cursor *cur, unsigned i);
/* Runs the statement to its end (rows not read are dropped), fills res (NULL: not
 * wanted) and frees the cursor. Returns 0, or the statement's error (its writes undone). */
int duro_sql_close(struct duro_sql_cursor *cur, struct duro_sql_result *res);

/* The message of the object's last failed SQL call in this event ("" when none); valid
 * until its next SQL call. */
const char *duro_sql_error(struct duro_object *obj);
/* databaseSize: bytes of the database in use (pages less free pages), or an error. */
int64_t duro_sql_database_size(struct duro_object *obj);

/* ---- point-in-time recovery (Cloudflare's getCurrentBookmark, getBookmarkForTime) ----
 * Every commit of an object is kept for storage.pitr_retention (7 days by default): its
 * key-value pairs, alarms and SQL database can be restored to any commit in that window
 * (`duroctl restore`, which also prints a bookmark that undoes it). A bookmark is a string
 * of DURO_BOOKMARK_LEN characters whose order is time order; it names one commit of one
 * object. Both calls return 0 with out filled (NUL-terminated), or -ENOTSUP (history is
 * off), -ERANGE (a time before the window or before the object's history), -EIO. */
#define DURO_BOOKMARK_LEN 50
/* The object's newest commit (not counting the running event's writes). */
int duro_bookmark_current(struct duro_object *obj, char out[DURO_BOOKMARK_LEN + 1]);
/* The newest commit at or before time_ms (ms since the epoch). */
int duro_bookmark_for_time(struct duro_object *obj, int64_t time_ms, char out[DURO_BOOKMARK_LEN + 1]);
/* onNextSessionRestoreBookmark: once this event has ended and its writes are stored, the
 * runtime unloads the object, restores it to `bookmark` (one durable event, as `duroctl
 * restore`) and unloads it again, so its next event starts from the restored state (the
 * next session). undo gets the bookmark of the object's state before this event. Returns
 * 0, -EINVAL (not a bookmark of this object), -ERANGE (before the window or past its
 * history), -ENOTSUP (history off), -ENOMEM. A failed restore is logged. */
int duro_restore_on_next_session(struct duro_object *obj, const char *bookmark,
				 char undo[DURO_BOOKMARK_LEN + 1]);

/* ---- alarms (Cloudflare's setAlarm/getAlarm/deleteAlarm, plus named alarms) ----
 * Times are milliseconds since the epoch. An alarm is written in the event's transaction:
 * it exists exactly when the event's writes are durable, and a failed event leaves it as
 * it was. It fires whether or not the object is in memory (on_alarm activates it),
 * serialized with the object's other events; an alarm in the past fires at once. A
 * handler that returns 0 clears the alarm unless it set it again; one that fails is
 * retried with exponential backoff (2 s, 4 s, … by default, 6 retries), then dropped. */
#define DURO_MAX_ALARM_NAME 64
#define DURO_MAX_NAMED_ALARMS 16

struct duro_alarm_info {
	unsigned retry_count; /* 0 on the first attempt */
	int is_retry;
	const char *name;     /* NULL for the object's alarm, else the named alarm's name */
	size_t name_len;
};

/* One alarm per object: setting another replaces it. Return 0 or a storage error. */
int duro_set_alarm(struct duro_object *obj, int64_t time_ms);
/* Returns 1 with *time_ms set, 0 when none. */
int duro_get_alarm(struct duro_object *obj, int64_t *time_ms);
/* Returns 1 when there was one, 0 when not. */
int duro_delete_alarm(struct duro_object *obj);
/* Up to 16 named alarms (names of 1 to 64 bytes) besides the object's alarm; -ENOSPC
 * beyond that, -EINVAL for a bad name. */
int duro_set_alarm_named(struct duro_object *obj, const char *name, size_t len, int64_t time_ms);
int duro_get_alarm_named(struct duro_object *obj, const char *name, size_t len, int64_t *time_ms);
int duro_delete_alarm_named(struct duro_object *obj, const char *name, size_t len);
/* Calls fn for each named alarm in name order; returns how many, or an error. */
int duro_list_alarms(struct duro_object *obj,
		     int (*fn)(void *arg, struct duro_str name, int64_t time_ms), void *arg);

/* ---- WebSockets (Cloudflare's hibernatable WebSocket API) ----
 * A socket stays open while its object is evicted from memory (hibernation): the next
 * message activates the object again (on_load), then calls on_ws_message. Tags and
 * attachments live with the runtime, not the object, and survive. Everything an object
 * sends passes the output gate: it leaves only once the writes before it are durable. */
typedef uint64_t duro_ws; /* names one socket of this object; 0 is never a socket */

#define DURO_WS_MAX_TAGS 10
#define DURO_WS_MAX_TAG 256
#define DURO_WS_MAX_ATTACHMENT 16384
#define DURO_WS_MAX_AUTO 2048

/* 1 when the request asks for a WebSocket upgrade; for an event stream (Accept:
 * text/event-stream), duro_req_wants_events. */
int duro_req_wants_ws(const struct duro_request *req);
int duro_req_wants_events(const struct duro_request *req);

/* acceptWebSocket(): in on_request, answers the upgrade (101) and makes the socket this
 * object's, with up to 10 tags of 1 to 256 bytes. Returns 0 with *out set, or:
 * -EINVAL the request is not a valid upgrade (res is then 400 or 426) or a tag is bad
 * (res 500); -ENOSPC the object has its maximum of sockets (res 503). The handler then
 * returns 0 to send res. */
int duro_ws_accept(struct duro_object *obj, const struct duro_request *req,
		   struct duro_response *res, const struct duro_str *tags, size_t ntags,
		   duro_ws *out);
/* The same for a server-sent event stream: res becomes a 200 text/event-stream that stays
 * open; duro_ws_send (text only) and duro_ws_broadcast write events to it. */
int duro_sse_accept(struct duro_object *obj, const struct duro_request *req,
		    struct duro_response *res, const struct duro_str *tags, size_t ntags,
		    duro_ws *out);

/* getWebSockets(tag): calls fn for each open socket (all when tag is NULL); fn returning
 * non-zero stops. Returns how many were passed. */
int duro_ws_each(struct duro_object *obj, const char *tag, int (*fn)(void *arg, duro_ws ws),
		 void *arg);
/* Sockets of the object (all of them). */
size_t duro_ws_count(struct duro_object *obj);
/* getTags(): fills up to max tags (views valid during the event); returns how many the
 * socket has, or -ENOENT for a socket that is gone. */
int duro_ws_tags(struct duro_object *obj, duro_ws ws, struct duro_str *tags, size_t max);
/* 1 for an event stream, 0 for a WebSocket, -ENOENT when gone. */
int duro_ws_is_stream(struct duro_object *obj, duro_ws ws);

/* send(): a text (binary 0) or binary message. Returns 0; -ENOENT the socket is gone;
 * -EINVAL binary to an event stream; -EMSGSIZE over 32 MiB; -ENOMEM. */
int duro_ws_send(struct duro_object *obj, duro_ws ws, int binary, const void *data, size_t len);
/* Sends one message to every socket with `tag` (all when NULL) except `except` (0 for
 * none), encoded once. Event streams get text messages only. Returns how many sockets
 * it went to, or -EMSGSIZE, -ENOMEM. */
int duro_ws_broadcast(struct duro_object *obj, const char *tag, duro_ws except, int binary,
		      const void *data, size_t len);
/* close(code, reason): code 1000 or 3000-4999, reason up to 123 bytes. on_ws_close is
 * not called for a socket the object closed itself. Returns 0, -ENOENT, -EINVAL. */
int duro_ws_close(struct duro_object *obj, duro_ws ws, int code, const char *reason);

/* serializeAttachment(): up to 16 KiB kept with the socket through hibernation (len 0
 * removes it). In cluster mode it is also written, with the socket's tags, among the
 * event's writes (a reserved key of the object), so it follows the object to another box.
 * Returns 0, -ENOENT, -EFBIG, -ENOMEM (and in cluster mode -ENOSPC, -EIO as a write). */
int duro_ws_set_attachment(struct duro_object *obj, duro_ws ws, const void *data, size_t len);
/* deserializeAttachment(): returns 1 with *out set (valid during the event), 0 when none,
 * -ENOENT when gone. */
int duro_ws_attachment(struct duro_object *obj, duro_ws ws, struct duro_str *out);

/* setWebSocketAutoResponse(): a text message equal to `request` is answered with
 * `response` by the socket's core, without waking the object (each up to 2 KiB). NULL
 * request clears it. Returns 0, -EINVAL, -ENOMEM. */
int duro_ws_set_auto_response(struct duro_object *obj, const char *request, size_t reqlen,
			      const char *response, size_t reslen);
/* getWebSocketAutoResponseTimestamp(): ms since the epoch of the socket's last auto-
 * response, 0 when none, -ENOENT when gone. */
int64_t duro_ws_auto_response_time(struct duro_object *obj, duro_ws ws);
/* setHibernatableWebSocketEventTimeout(): a WebSocket event handler that runs longer
 * than ms fails (its writes roll back, it is logged and counted); 0 for none. */
void duro_ws_set_event_timeout(struct duro_object *obj, unsigned ms);

/* ---- calls between objects (Cloudflare's stub.fetch() from a Durable Object) ----
 * An object calls any object of any binding; the callee handles the call in its ordinary
 * on_request (duro_req_caller tells it is a call and who made it) and answers it as any
 * request, deferred answers included. The answer comes back as a later event of the
 * caller: done(obj, err, reply, arg), serialized with its other events, with storage, and
 * committed like any event; obj may be another instance of the caller than the one that
 * called, when it was reset meanwhile. While a call is pending, the caller's other events
 * run (A calling B while B calls A both finish) and the caller stays in memory.
 * Calls from one object to another arrive in the order they were made. A call leaves
 * only once the writes made before it are durable (the output gate), unless made with
 * DURO_CALL_UNCONFIRMED, which still never overtakes an earlier call of the same object;
 * the calls of an event that fails, or whose writes fail to become durable, never leave.
 *
 * done's err, and whether a retry is safe:
 *   0            the callee's answer: reply->status (even 500), headers, body
 *   -ECANCELED   not sent: the calling event failed (its writes rolled back); safe
 *   -EIO         not sent: the writes before it failed to become durable; safe
 *   -EBUSY       not delivered: the callee holds calls.max_queue calls unanswered, or
 *                this core has calls.max_per_core out; back off, then retry
 *   -ETIMEDOUT   no answer in time (the call may have run; a late answer is dropped);
 *                retry only if idempotent
 *   -ECONNRESET  the callee held the call and was reset before answering (it may have
 *                acted); retry only if idempotent */
#define DURO_CALL_MAX_BODY (32u << 20)
#define DURO_CALL_UNCONFIRMED 1u /* allowUnconfirmed: leave before earlier writes are durable */

struct duro_call_opts {
	uint32_t timeout_ms; /* 0: calls.timeout_ms (30 s by default) */
	uint32_t flags;      /* DURO_CALL_UNCONFIRMED */
};

/* The callee's answer, valid during done() only. */
struct duro_reply {
	int status;
	struct duro_str body;
	const void *priv; /* the runtime's */
};
/* A header of the answer (case-insensitive name): 1 with *out set, else 0. */
int duro_reply_header(const struct duro_reply *reply, const char *name, struct duro_str *out);

/* err as above; reply is NULL unless err is 0. */
typedef void duro_call_fn(struct duro_object *obj, int err, const struct duro_reply *reply,
			  void *arg);

/* From an event of obj: calls object `id` of namespace `ns` with method, path (from '/',
 * query included: the callee's subpath is the whole path), headers (key: name, value)
 * and a body of up to 32 MiB, all copied. done NULL: fire-and-forget (still gated and in
 * order). Returns 0 (done will run exactly once), or, with nothing sent and done never
 * run: -EINVAL (a bad method, path or header, or called from on_unload), -ENOENT (an ID
 * not of that namespace), -EMSGSIZE (body over 32 MiB), -ELOOP (a chain of calls over
 * calls.max_depth, 16), -ENOSPC (obj waits for calls.max_pending calls already), -EBUSY
 * (this core has calls.max_per_core out), -EREMOTE (cluster mode: another box owns the
 * callee's slot, or this box is fenced; calls between boxes are not forwarded yet),
 * -ENOMEM. */
int duro_call(struct duro_object *obj, const struct duro_namespace *ns, const struct duro_id *id,
	      const char *method, const char *path, const struct duro_kv *headers,
	      size_t nheaders, const void *body, size_t len, const struct duro_call_opts *opts,
	      duro_call_fn *done, void *arg);
/* The same to idFromName(name) in the namespace bound to `binding` (-ENOENT: no such
 * binding; -EINVAL: a bad name). */
int duro_call_name(struct duro_object *obj, const char *binding, const char *name,
		   size_t name_len, const char *method, const char *path,
		   const struct duro_kv *headers, size_t nheaders, const void *body, size_t len,
		   const struct duro_call_opts *opts, duro_call_fn *done, void *arg);
/* In on_request: 1 when the request is a call from another object, with the caller's
 * binding (valid for the process's life) and ID set (either may be NULL); 0 for HTTP. */
int duro_req_caller(const struct duro_request *req, const char **binding, struct duro_id *id);

/* ---- outbound HTTP (Cloudflare's fetch() from a Durable Object) ----
 * An HTTP/1.1 request from an object to an origin the config allows (outbound.allow:
 * scheme, host and port patterns); anything else is refused with -EACCES and nothing is
 * sent, not even a connection attempt. It is gated like a call (it leaves only once the
 * writes before it are durable, unless DURO_CALL_UNCONFIRMED; never if they fail) and its
 * answer runs done() as a later event of the caller, as for duro_call: reply->status,
 * duro_reply_header, reply->body (up to outbound.max_response_bytes). Redirects are not
 * followed (a 3xx is the answer). Connections are kept alive and reused per core.
 * done's err besides those of calls: -ECONNREFUSED and other connect errors, -ETIMEDOUT
 * (outbound.connect_timeout_ms for the connection, the call's timeout or
 * outbound.timeout_ms for the whole), -ECONNRESET (closed or reset before a whole
 * answer; a request that met a pooled connection the origin had just closed is first sent
 * again on a new one, unless some of it had left and its method is not idempotent),
 * -EFBIG (answer too large), -EPROTO (not an HTTP/1.x answer), -EKEYREJECTED (an https
 * origin's certificate refused), -EOPNOTSUPP (a core without outbound connections). */
/* url: http[s]://host[:port][/path][?query], host an IP address or a name outbound.allow
 * spells out (kept resolved off the cores; a name only a wildcard covers, or one that
 * never resolved: -EHOSTUNREACH).
 * method NULL: GET. Headers as for duro_call; Host, Content-Length,
 * Transfer-Encoding, Connection, Upgrade, TE and Keep-Alive are the runtime's (-EINVAL).
 * Returns 0 (done runs exactly once), or -EACCES (not allowed), -EINVAL, -EHOSTUNREACH
 * (a host name), -EBUSY (the object has outbound.max_per_object fetches already), or a
 * refusal of duro_call (-EMSGSIZE, -ENOSPC, -ENOMEM). */
int duro_fetch(struct duro_object *obj, const char *url, const char *method,
	       const struct duro_kv *headers, size_t nheaders, const void *body, size_t len,
	       const struct duro_call_opts *opts, duro_call_fn *done, void *arg);

/* ---- outbound WebSockets (a client socket the object opens; Cloudflare's
 * `new WebSocket(url)` from a Durable Object, but hibernatable) ----
 * duro_ws_connect opens a WebSocket to a ws:// or wss:// URL that outbound.allow names
 * (as for duro_fetch: anything else is refused with -EACCES and nothing is sent, not even
 * a connection attempt; an http pattern allows ws to the same place, https allows wss).
 * wss is checked as https fetches are (outbound.ca_file, SNI, the name). The socket is
 * returned at once and is the object's like an accepted one: tags, attachments, auto-
 * response, duro_ws_send (held until it is open), broadcast, close, and on_ws_message /
 * on_ws_close / on_ws_error. It lives on the object's core, owned by the runtime, so the
 * object hibernates with it open and its next message activates it again. The dial is
 * gated: it leaves once the writes made before it are durable (never if they fail).
 * The class's on_ws_open then runs as an event with err 0 once the server's 101 is
 * checked, or with the reason it never opened (the socket is then gone; no on_ws_close):
 * -ECONNREFUSED and other connect errors, -ETIMEDOUT, -EPROTO (not a valid 101: a wrong
 * Sec-WebSocket-Accept, an extension not offered), -EKEYREJECTED (certificate refused),
 * -EOPNOTSUPP (a network backend that cannot dial), -ECANCELED (closed or shut down
 * first), -EIO (the writes before it failed).
 *
 * DURO_WS_RECONNECT makes the intent durable: it is written with the event (committed or
 * rolled back with its other writes) and kept until duro_ws_close. When the connection
 * drops, or durod restarts or crashes, the runtime dials again (exponential backoff with
 * jitter) and, once open, runs on_ws_open with reconnect 1, where the object re-
 * subscribes; no on_ws_close is run for such a drop. The socket keeps its duro_ws, tags
 * and attachment across drops; after a restart it has a new duro_ws and its tags.
 * Without it, a drop is on_ws_close (1006) as for any socket. */
#define DURO_WS_RECONNECT 1u
#define DURO_WS_MAX_URL 2048

struct duro_ws_connect_opts {
	uint32_t flags; /* DURO_WS_RECONNECT */
	uint32_t reserved; /* 0 */
};

/* From an event of obj. tags as for duro_ws_accept; opts may be NULL. Returns 0 with
 * *out set (on_ws_open follows exactly once per open or failure), or, with nothing sent:
 * -EACCES (not allowed), -EINVAL (not ws:// or wss://, a bad tag, a URL over
 * DURO_WS_MAX_URL), -EHOSTUNREACH (a name that never resolved), -ENOSPC (the object has
 * its maximum of sockets, or the core), -ENOMEM. */
int duro_ws_connect(struct duro_object *obj, const char *url, const struct duro_str *tags,
		    size_t ntags, const struct duro_ws_connect_opts *opts, duro_ws *out);
/* 1 for a socket the object opened (duro_ws_connect), 0 for an accepted one, -ENOENT. */
int duro_ws_is_outbound(struct duro_object *obj, duro_ws ws);

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
	/* An alarm came due. Returns 0; any other value retries it later. */
	int (*on_alarm)(struct duro_object *obj, const struct duro_alarm_info *info);
	/* webSocketMessage(): data is valid during the call. Non-zero fails the event (its
	 * writes roll back). */
	int (*on_ws_message)(struct duro_object *obj, duro_ws ws, int binary, const void *data,
			     size_t len);
	/* webSocketClose(): the client closed (code as sent, 1005 when none), or the
	 * connection dropped (1006, clean 0). The socket is gone afterwards. */
	void (*on_ws_close)(struct duro_object *obj, duro_ws ws, int code, const char *reason,
			    size_t len, int clean);
	/* webSocketError(): the client broke the protocol; the socket was closed with `code`
	 * (1002, 1007, 1009, 1013); on_ws_close follows. */
	void (*on_ws_error)(struct duro_object *obj, duro_ws ws, int code);
	/* API 1.1: an outbound socket (duro_ws_connect) opened (err 0; reconnect 1 when the
	 * runtime opened it again after a drop or a restart: subscribe again) or failed to
	 * open (err < 0; the socket is gone). Writes commit like any event's. */
	void (*on_ws_open)(struct duro_object *obj, duro_ws ws, int err, int reconnect);
};

/* Registers a class compiled into durod by its name; returns 0, -EEXIST for a name
 * taken, -ENOSPC when full, -EINVAL for an empty name or one over 63 bytes, -EPERM from a
 * module being loaded (a module's classes come from its init entry, below). Call before
 * durod starts serving, normally through DURO_CLASS. */
int duro_register_class(const struct duro_class *cls);

/* ---- modules: classes built apart from durod and loaded into it ----
 * A module is a shared object built against this header with DURO_MODULE defined
 * (`pkg-config --cflags duro` defines it):
 *
 *     cc -shared -fPIC $(pkg-config --cflags duro) myclass.c -o myclass.so
 *
 * Its DURO_CLASS lines then list the classes in a table of the module instead of
 * registering them from constructors (which would run inside dlopen, before durod could
 * check anything), and this header gives the module its magic block and init entry.
 * durod loads a module with RTLD_NOW | RTLD_LOCAL and lends it only the duro_* calls:
 * a call to anything else that libc or the module's own libraries do not define fails
 * the load, naming the symbol. It refuses a module of another ABI major version, a newer
 * minor one, other struct sizes or pointer width, or one without the magic block. */
#define DURO_MODULE_MAGIC 0x4f525544u /* "DURO" in a little-endian word */

/* What durod checks before it calls anything in a module. */
struct duro_module_magic {
	uint32_t magic;        /* DURO_MODULE_MAGIC */
	uint32_t size;         /* sizeof(struct duro_module_magic) */
	uint16_t abi_major;    /* DURO_API_VERSION_MAJOR the module was built with */
	uint16_t abi_minor;    /* DURO_API_VERSION_MINOR */
	uint16_t pointer_size; /* sizeof(void *) */
	uint16_t class_size;   /* sizeof(struct duro_class) */
	uint16_t str_size;     /* sizeof(struct duro_str) */
	uint16_t kv_size;      /* sizeof(struct duro_kv) */
	uint16_t list_options_size; /* sizeof(struct duro_list_options) */
	uint16_t alarm_info_size;   /* sizeof(struct duro_alarm_info) */
	uint32_t id_bytes;     /* DURO_ID_BYTES */
	uint32_t max_key;      /* DURO_MAX_KEY */
};

/* The module's init entry, called once after its magic block passed: durod's own ABI
 * version in, the module's classes out (count of them in *count). The classes must stay
 * valid for the process's life: durod never unloads a module. */
typedef const struct duro_class *const *duro_module_init_fn(unsigned abi_major,
							     unsigned abi_minor, size_t *count);

#ifdef DURO_MODULE
/* The module's table of classes: one pointer per DURO_CLASS, gathered by the linker into
 * one section, whose bounds it names __start_ and __stop_ the section. */
#define DURO_CLASS(cls)                                                                 \
	static const struct duro_class *const duro_class_entry_##cls                     \
		__attribute__((section("duro_classes"), used)) = &cls;

extern const struct duro_class *const __start_duro_classes[]
	__attribute__((weak, visibility("hidden")));
extern const struct duro_class *const __stop_duro_classes[]
	__attribute__((weak, visibility("hidden")));

/* Weak, so that every file of a module may include this header: the linker keeps one.
 * (C++ gives a const object internal linkage unless it is declared extern.) */
#ifdef __cplusplus
#define DURO_MODULE_EXTERN_ extern
#else
#define DURO_MODULE_EXTERN_
#endif
extern const struct duro_module_magic duro_module_magic;
__attribute__((weak, visibility("default"))) DURO_MODULE_EXTERN_ const struct duro_module_magic
duro_module_magic = {
	DURO_MODULE_MAGIC, sizeof(struct duro_module_magic), DURO_API_VERSION_MAJOR,
	DURO_API_VERSION_MINOR, sizeof(void *), sizeof(struct duro_class),
	sizeof(struct duro_str), sizeof(struct duro_kv), sizeof(struct duro_list_options),
	sizeof(struct duro_alarm_info), DURO_ID_BYTES, DURO_MAX_KEY
};

duro_module_init_fn duro_module_init;
__attribute__((weak, visibility("default"))) const struct duro_class *const *
duro_module_init(unsigned abi_major, unsigned abi_minor, size_t *count)
{
	(void)abi_major;
	(void)abi_minor;
	*count = __start_duro_classes ? (size_t)(__stop_duro_classes - __start_duro_classes) : 0;
	return __start_duro_classes;
}
#else
/* Registers `cls` when the program starts. A class that cannot be registered (a name
 * taken) stops durod at start with a message naming it. */
#define DURO_CLASS(cls)                                                                 \
	static void __attribute__((constructor)) duro_register_##cls(void)              \
	{                                                                               \
		duro_register_class(&cls);                                              \
	}
#endif

#ifdef __cplusplus
}
#endif

#endif
