/* duro's own records in etcd (cluster_wire.c): the keys under /duro/<cluster>/ and the
 * JSON values of member and slot keys, parsed and written. Values come from other boxes
 * through etcd: untrusted, pure parsers, fuzzed by fuzz_etcd. */
#ifndef DURO_CONTROL_CLUSTER_WIRE_H
#define DURO_CONTROL_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_NAME_MAX 64  /* cluster and box names, with their NUL */
#define CLUSTER_ADDR_MAX 128 /* host:port */

/* What a key under the cluster's prefix is. */
enum cluster_key_kind {
	CLUSTER_KEY_OTHER,      /* not ours to read (another layout, a later version) */
	CLUSTER_KEY_MEMBER,     /* members/<box> */
	CLUSTER_KEY_SLOT,       /* slots/<n>, n in [0, DURO_SLOTS) without leading zeros */
	CLUSTER_KEY_REBALANCER, /* rebalancer */
	CLUSTER_KEY_LOAD,       /* load/<box> (cluster_load.c) */
	CLUSTER_KEY_DRAIN,      /* drain/<box>: the operator asked for the box's slots to go */
	CLUSTER_KEY_REBALANCE,  /* rebalance: the operator asked for a round now */
};

/* Classifies key[0..len) given the prefix "/duro/<cluster>/"; the box name goes to
 * box[CLUSTER_NAME_MAX], the slot number to *slot. */
enum cluster_key_kind cluster_key_parse(const char *prefix, const char *key, size_t len,
					char *box, unsigned *slot);

/* members/<box>: {"address", "cores", "version", "incarnation", "peer"} ("peer": where
 * the box serves its slots' data to a box taking one over, cluster_move.c). The authoritative
 * incarnation is the key's create_revision; the value repeats it for people reading etcd. */
struct cluster_member_value {
	char address[CLUSTER_ADDR_MAX];
	char version[32];
	char peer[CLUSTER_ADDR_MAX];
	unsigned cores;
	int64_t incarnation;
};
/* 0 or -EINVAL (not JSON, a field of the wrong type or too long). */
int cluster_member_parse(const char *v, size_t n, struct cluster_member_value *out);
/* The value's JSON text into out[cap]: its length, or -ENOSPC. */
long cluster_member_format(const struct cluster_member_value *m, char *out, size_t cap);

/* slots/<n>: {"owner": BOX, "incarnation": N, "state": "active", "voters": [BOX, ...]},
 * or while the slot's data moves to another box {"owner", "incarnation", "state":
 * "moving", "target": BOX, "target_incarnation": N, "voters"}. The key's mod_revision is
 * the slot's epoch. "voters" (issue 19) are the boxes that hold the slot's copies, the
 * owner first: the owner and cluster.replicas followers. A value without it (a box of an
 * older version wrote it) has the owner as its only voter. */
#define CLUSTER_MAX_VOTERS 5     /* the owner and up to four followers (cluster.replicas) */
#define CLUSTER_SLOT_VALUE_MAX 1024 /* a slot value's JSON text, with its NUL */
enum cluster_slot_state { CLUSTER_SLOT_ACTIVE, CLUSTER_SLOT_MOVING };
struct cluster_slot_value {
	char owner[CLUSTER_NAME_MAX];
	int64_t incarnation;
	enum cluster_slot_state state;
	char target[CLUSTER_NAME_MAX]; /* with CLUSTER_SLOT_MOVING */
	int64_t target_incarnation;
	unsigned nvoters;              /* 0: written without voters (the owner alone) */
	char voters[CLUSTER_MAX_VOTERS][CLUSTER_NAME_MAX]; /* distinct names */
};
/* 0 or -EINVAL (also for more than CLUSTER_MAX_VOTERS voters, a bad or repeated name). */
int cluster_slot_parse(const char *v, size_t n, struct cluster_slot_value *out);
/* The value's JSON text into out[cap]: its length, or -ENOSPC. */
long cluster_slot_format(const struct cluster_slot_value *s, char *out, size_t cap);

/* Rendezvous weight of box for slot: the rebalancer's target is the live box with the
 * highest weight, so adding a box moves only the slots it wins. */
uint64_t cluster_weight(const char *box, unsigned slot);

#endif
