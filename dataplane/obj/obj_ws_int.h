/* What the two halves of the object side of WebSockets share (obj_ws_group.c, on the
 * object's core; obj_ws_site.c, on each socket's core): their tables, and the messages
 * that cross between them. */
#ifndef DURO_OBJ_OBJ_WS_INT_H
#define DURO_OBJ_OBJ_WS_INT_H

#include "obj_ws.h"
#include "pool.h"
#include "ws.h"

#include <stdlib.h>
#include <string.h>

struct ws_member {
	ws_handle h; /* 0: a free entry */
	uint32_t gen;
	uint32_t next_free;
	uint8_t kind, ntags;
	uint8_t outbound; /* opened by the object (duro_ws_connect) */
	struct ws_redial *rd; /* held durably (DURO_WS_RECONNECT): the runtime dials again */
	uint16_t attach_len;
	char *tags;   /* ntags x (u16 length, bytes), or NULL */
	char *attach; /* or NULL */
	int64_t last_auto_ms;
	/* Cluster mode, a relayed socket (cluster_wsstate.h): its state ID (0: none), whether
	 * its record is stored, and a record read at its reopen until the event ends. */
	uint64_t state_id;
	uint8_t state_saved;
	uint32_t state_pending_len;
	char *state_pending;
};

struct ws_group {
	struct ws_group *hnext;
	struct duro_id id;
	uint16_t ns;
	struct object *obj; /* the live instance, NULL while hibernated */
	struct ws_member *m;
	uint32_t nm, cap, free_head, count;
	uint32_t per_core[DURO_MAX_CORES]; /* members per socket core: who gets a batch */
	char *auto_pair; /* request then response, or NULL */
	uint16_t auto_req_len, auto_res_len;
	unsigned event_timeout_ms;
	uint8_t pinned; /* a close event runs: kept even with no socket and no live object */
};

struct ws_site {
	struct ws_site *hnext;
	struct duro_id id;
	uint16_t ns;
	uint32_t refs; /* sockets of this object on this core, reserved or open */
	/* A relayed socket's (cluster_wsrelay.c), not in the table: its events go there; or
	 * (OBJ_WS_RELAY_SSE) a forwarded event stream's (cluster_forward.c). */
	uint8_t relay;
	char *auto_pair;
	uint16_t auto_req_len, auto_res_len;
};

#define OBJ_WS_RELAY_SSE 2

enum ws_event_what { EV_MESSAGE, EV_CLOSE, EV_AUTO, EV_OPEN };

/* Made on the socket's core, handled on the object's core, then sent back to be freed. */
struct ws_event {
	struct core_msg msg;
	uint8_t what, binary, clean, error;
	uint16_t code, ns, reason_len;
	int16_t err;       /* EV_OPEN: 0 open, else why not */
	uint8_t reconnect; /* EV_OPEN: opened again by the runtime */
	struct duro_id id;
	uint64_t member;
	struct buf *data; /* the message (the socket core's buffer) */
	int64_t time_ms;
	char reason[WS_MAX_CONTROL];
};

/* An auto-response pair for the sites of one core; goes there and comes back. */
struct ws_site_msg {
	struct core_msg msg;
	uint8_t back;
	uint16_t ns;
	struct duro_id id;
	char *pair; /* owned by the message; the site swaps in its own copy */
	uint16_t req_len, res_len;
};

#define MEMBER_NONE UINT32_MAX

struct obj_ws_core {
	obj_ws_run_fn *run;
	const struct obj_ws_config *cfg;
	struct ws_group **groups;
	size_t ngroup_buckets, ngroups;
	struct ws_site **sites;
	size_t nsite_buckets, nsites;
	struct pool events;
	struct obj_ws_counters ctr;
	struct list_node redials; /* obj_ws_out.c: this core's durable outbound sockets */
	const struct obj_ws_out_hooks *out; /* obj_ws_out.c's, for members with a redial */
	uint64_t rng;             /* backoff jitter */
};

/* ---- hash tables keyed by object ID ---- */

static inline size_t obj_ws_bucket(const struct duro_id *id, size_t n)
{
	uint64_t h;
	memcpy(&h, id->bytes + 10, sizeof(h)); /* uniform bytes: a random or keyed-hash body */
	return (size_t)h & (n - 1);
}

static inline int obj_ws_same(const struct duro_id *a, unsigned ans, const struct duro_id *b, unsigned bns)
{
	return ans == bns && memcmp(a->bytes, b->bytes, DURO_ID_BYTES) == 0;
}

/* Doubles a chained table when it is as full as it is wide. */
#define TABLE_GROW(type, buckets, nb, count)                                            \
	do {                                                                            \
		if ((count) < (nb))                                                     \
			break;                                                          \
		size_t n2 = (nb) * 2;                                                   \
		type **t2 = calloc(n2, sizeof(*t2));                                    \
		if (!t2)                                                                \
			break; /* longer chains; still correct */                      \
		for (size_t i = 0; i < (nb); i++)                                       \
			for (type *e = (buckets)[i], *nx; e; e = nx) {                  \
				nx = e->hnext;                                          \
				size_t b2 = obj_ws_bucket(&e->id, n2);                      \
				e->hnext = t2[b2];                                      \
				t2[b2] = e;                                             \
			}                                                               \
		free(buckets);                                                          \
		(buckets) = t2;                                                         \
		(nb) = n2;                                                              \
	} while (0)


/* ---- obj_ws_group.c, for outbound sockets (obj_ws_out.c) ---- */

/* Makes socket h (of kind) a member of obj's group with tags (checked: up to 10 of 1 to
 * 256 bytes). Returns 0 with *out set, -EINVAL (a bad tag), -ENOSPC (the object has its
 * maximum of sockets), -ENOMEM. */
int obj_ws_member_join(struct core *c, struct object *obj, ws_handle h, enum ws_kind kind,
		       const struct duro_str *tags, size_t ntags, duro_ws *out);
/* The same into a group found by ID (obj_ws_group_of), for sockets the runtime opens
 * while the object sleeps. */
int obj_ws_group_join(struct core *c, struct ws_group *g, ws_handle h, enum ws_kind kind,
		      const struct duro_str *tags, size_t ntags, duro_ws *out);
/* The group of an object by ID; with `create`, a new one (no object attached) when none.
 * NULL when none (or out of memory). */
struct ws_group *obj_ws_group_of(struct core *c, const struct duro_id *id, unsigned ns,
				 int create);
/* The member ref names in obj's group, or in g; NULL when gone. */
struct ws_member *obj_ws_member(struct object *obj, duro_ws ref);
struct ws_member *obj_ws_group_member(struct ws_group *g, duro_ws ref);
/* Tells this core's site of g the auto-response pair, when g has one (a socket made anew
 * on this core whose site was gone). */
void obj_ws_group_site_pair(struct core *c, struct ws_group *g);

/* ---- obj_ws_out.c's reports to the group half ----
 * Through pointers obj_ws_out_init sets (obj_ws_out.c calls into the group, never the
 * other way): only members with a redial, which obj_ws_out.c made, use them. */
struct obj_ws_out_hooks {
	/* The durable socket of rd dropped, or failed to open: dialed again after a backoff. */
	void (*dropped)(struct core *c, struct ws_redial *rd);
	/* It opened: returns 1 when the runtime dialed it (on_ws_open's reconnect), resets
	 * the backoff. */
	int (*opened)(struct core *c, struct ws_redial *rd);
	/* The object closes a durable socket (duro_ws_close): its intent is deleted in the
	 * running event and the runtime stops dialing it. */
	void (*forget)(struct core *c, struct object *obj, struct ws_member *m);
};

/* Takes a member out of obj's group (a socket that never opened). */
void obj_ws_member_leave(struct object *obj, duro_ws ref);
/* Holds a batch until the running event ends, behind its writes (the output gate). */
void obj_ws_queue_out(struct object *obj, struct ws_batch *b);

/* ---- obj_ws_site.c, for outbound sockets ---- */

/* Reserves a socket on this core (the object's) for an outbound connection, with this
 * core's site of the object as its user. NULL at the core's socket limit or out of memory. */
struct ws_conn *obj_ws_site_reserve(struct core *c, const struct duro_id *id, unsigned ns);
/* Gives a reservation that was never dialed back. */
void obj_ws_site_unreserve(struct core *c, struct ws_conn *wc);

/* ---- obj_ws_site.c, for the group half ---- */

int obj_ws_site_init(struct core *c);
void obj_ws_site_fini(struct core *c);
/* MSG_OBJ_WS_SITE's handler: an auto-response pair for this core's site of an object. */
void obj_ws_site_msg(struct core *c, struct core_msg *m);
/* A socket event is back on its socket's core (or never left it): frees it. */
void obj_ws_event_free(struct core *c, struct ws_event *ev);

#endif
