/* The on-disk key layout of every column family, in one place: the builders below are the
 * only code that spells a key, so a reader of the database needs this file and no other.
 *
 *   class family (one per class, "class-<n>")
 *     ID(32) ‖ user key                 -> user value
 *     ID(32) ‖ "\xff\xff" "alarm/" ‖ name -> alarm time, int64 ms (duro's own keys in an
 *                                          object's key space: transactional like any write)
 *
 *     ID(32) ‖ "\xff\xff" "sql"          -> the object's SQL database: its size in bytes, u64
 *                                          (a key of the object like any other, so it lists
 *                                          the object, names it and goes with delete_all)
 *
 *   alarms family (what start-up loads into each core's schedule)
 *     'o' ‖ ID(32) ‖ alarm name         -> time int64 ms ‖ class name
 *     'w' ‖ ID(32) ‖ intent ID(8)       -> an outbound WebSocket to dial again (below)
 *
 *   sql family (every class's SQL databases, page by page)
 *     ID(32) ‖ page number u32 BE       -> the page: KEYS_SQL_PAGE bytes, zero-gap encoded
 *                                          (sqlpage.h); page numbers start at 1, as SQLite's
 *
 *   history family (point-in-time recovery: where each commit of an object is)
 *     ID(32) ‖ object commit seq u64 BE -> struct keys_history
 *
 *   meta family
 *     's' ‖ ID(32)                      -> object size record {bytes u64, keys u64}
 *     'n' ‖ ID(32)                      -> the object's name (idFromName), if it has one
 *     "class/" ‖ class name             -> namespace secret(32) ‖ column family name
 *     "deleted/" ‖ class name           -> the migration tag that deleted it
 *     "migrations"                      -> applied migration tags, one per line, in order
 *     "cfseq"                           -> the last column family number handed out
 *     "deploy/" ‖ class name            -> the class's deployed versions (JSON, control/)
 *     'L' ‖ slot u16 BE ‖ lsn u64 BE    -> a follower's replica log record: epoch i64 LE ‖
 *                                          the owner's record (store_repl.h, issue 19)
 *     'M' ‖ slot u16 BE                 -> that log's state: max_epoch, end, end_epoch,
 *                                          trimmed, trimmed_epoch (u64 LE each)
 *
 * An object's keys in a class family are the range [ID, ID+1): keys_id_successor gives
 * the end. IDs are 32 uniform bytes (random or keyed-hash bodies and MACs).
 *
 * Slots: an object's slot (of 4,096) is its ID's top 12 bits (slotmap_slot), so every
 * family keyed by ID holds one slot's objects as one contiguous range, without a prefix
 * of its own: [slot's first 2 ID bytes, next slot's) in the class, sql and history
 * families, and the same behind the tag for meta 's'/'n' and alarms 'o'/'w'. A cluster
 * ships a slot as those ranges read from a snapshot and drops it with DeleteRange
 * (store_slot.h); a single box never looks at slots in storage at all. */
#ifndef DURO_STORAGE_KEYS_H
#define DURO_STORAGE_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define KEYS_ID_BYTES 32

/* Reserved prefix of an object's own key space: user keys may not start with it. */
#define KEYS_RESERVED "\xff\xff"
#define KEYS_RESERVED_LEN 2
#define KEYS_ALARM_PREFIX KEYS_RESERVED "alarm/"
#define KEYS_ALARM_PREFIX_LEN 8

/* The object's SQL database size, a reserved key of its own key space. */
#define KEYS_SQL_SIZE KEYS_RESERVED "sql"
#define KEYS_SQL_SIZE_LEN 5
/* An export file carries the database's pages as reserved keys of the object too (never
 * stored under these keys: an import loads them into the sql family):
 *     "\xff\xff" "sqlpage" ‖ page number u32 BE -> the page's stored value */
#define KEYS_SQL_EXPORT_PAGE KEYS_RESERVED "sqlpage"
#define KEYS_SQL_EXPORT_PAGE_LEN 9
/* SQL databases are stored in pages of this size (SQLite's page size is kept equal). */
#define KEYS_SQL_PAGE 4096
#define KEYS_SQL_PAGE_KEY_LEN (KEYS_ID_BYTES + 4)
#define KEYS_HISTORY_KEY_LEN (KEYS_ID_BYTES + 8)

#define KEYS_META_STATS 's'
#define KEYS_META_NAME 'n'
#define KEYS_ALARMS_OBJECT 'o'
#define KEYS_META_ID_LEN (1 + KEYS_ID_BYTES)

/* The value of a size record. */
struct keys_stats {
	uint64_t bytes, keys;
};

/* ID ‖ key into out (room for KEYS_ID_BYTES + klen); returns the length. */
static inline size_t keys_data(char *out, const uint8_t id[KEYS_ID_BYTES], const void *key,
			       size_t klen)
{
	memcpy(out, id, KEYS_ID_BYTES);
	if (klen)
		memcpy(out + KEYS_ID_BYTES, key, klen);
	return KEYS_ID_BYTES + klen;
}

/* The ID plus one (big-endian), the exclusive end of the object's range. */
static inline void keys_id_successor(const uint8_t id[KEYS_ID_BYTES], uint8_t out[KEYS_ID_BYTES])
{
	memcpy(out, id, KEYS_ID_BYTES);
	int i = KEYS_ID_BYTES - 1;
	while (i >= 0 && ++out[i] == 0)
		i--;
}

/* The 12-bit slot's bounds as ID prefixes: lo[0..2) is its first, hi[0..2) the next
 * slot's; returns 0 for the last slot, whose range has no upper bound within the IDs. */
static inline int keys_slot_bounds(unsigned slot, uint8_t lo[2], uint8_t hi[2])
{
	lo[0] = (uint8_t)(slot >> 4);
	lo[1] = (uint8_t)(slot << 4);
	if (slot + 1 >= 4096)
		return 0;
	hi[0] = (uint8_t)((slot + 1) >> 4);
	hi[1] = (uint8_t)((slot + 1) << 4);
	return 1;
}

/* tag ‖ ID, for the meta family's per-object records and the alarms family's range. */
static inline size_t keys_tagged_id(char *out, char tag, const uint8_t id[KEYS_ID_BYTES])
{
	out[0] = tag;
	memcpy(out + 1, id, KEYS_ID_BYTES);
	return KEYS_META_ID_LEN;
}

/* [tag ‖ ID, tag ‖ ID+1): everything of one object under a tag (its alarms, its outbound
 * sockets' intents), for a delete_range when the object is wiped. */
static inline void keys_tagged_id_range(char lo[KEYS_META_ID_LEN], char hi[KEYS_META_ID_LEN], char tag,
					const uint8_t id[KEYS_ID_BYTES])
{
	uint8_t next[KEYS_ID_BYTES];
	keys_tagged_id(lo, tag, id);
	keys_id_successor(id, next);
	keys_tagged_id(hi, tag, next);
}

/* 'o' ‖ ID ‖ name: an alarm in the alarms family (room for KEYS_META_ID_LEN + namelen). */
static inline size_t keys_alarm(char *out, const uint8_t id[KEYS_ID_BYTES], const char *name,
				size_t namelen)
{
	keys_tagged_id(out, KEYS_ALARMS_OBJECT, id);
	if (namelen)
		memcpy(out + KEYS_META_ID_LEN, name, namelen);
	return KEYS_META_ID_LEN + namelen;
}

/* The reserved user key of an alarm in the object's own key space. */
static inline size_t keys_alarm_user_key(char *out, const char *name, size_t namelen)
{
	memcpy(out, KEYS_ALARM_PREFIX, KEYS_ALARM_PREFIX_LEN);
	if (namelen)
		memcpy(out + KEYS_ALARM_PREFIX_LEN, name, namelen);
	return KEYS_ALARM_PREFIX_LEN + namelen;
}

/* Outbound WebSockets held durably (duro_ws_connect with DURO_WS_RECONNECT): the intent
 * under this prefix and an 8-byte intent ID in the object's own keys, mirrored as
 * 'w' ‖ ID ‖ intent ID in the alarms family, which start-up reads to dial them again. */
#define KEYS_WSOUT_PREFIX KEYS_RESERVED "wsout/"
#define KEYS_WSOUT_PREFIX_LEN 8
#define KEYS_WSOUT_INTENT 8
#define KEYS_WSOUT_OBJECT 'w'

static inline int keys_is_reserved(const void *key, size_t klen)
{
	return klen >= KEYS_RESERVED_LEN && memcmp(key, KEYS_RESERVED, KEYS_RESERVED_LEN) == 0;
}

static inline int keys_is_alarm(const void *key, size_t klen)
{
	return klen >= KEYS_ALARM_PREFIX_LEN && memcmp(key, KEYS_ALARM_PREFIX, KEYS_ALARM_PREFIX_LEN) == 0;
}

/* ID ‖ page number (big-endian, so an object's pages sort in order): a page of its SQL
 * database in the sql family. */
static inline size_t keys_sql_page(char *out, const uint8_t id[KEYS_ID_BYTES], uint32_t pgno)
{
	memcpy(out, id, KEYS_ID_BYTES);
	for (int i = 0; i < 4; i++)
		out[KEYS_ID_BYTES + i] = (char)(pgno >> (24 - 8 * i));
	return KEYS_SQL_PAGE_KEY_LEN;
}

static inline uint32_t keys_sql_page_number(const char *key)
{
	const unsigned char *p = (const unsigned char *)key + KEYS_ID_BYTES;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Where one commit of an object is: the commit-log record that holds its writes (the
 * record's log file by core and sequence number, and its offset there) and when it was
 * made (wall clock ms, never less than the object's commit before). */
struct keys_history {
	uint64_t time_ms;
	uint64_t file_seq;
	uint64_t offset;
	uint32_t core;
	uint32_t flags; /* KEYS_HISTORY_* */
};
/* The commit replaced the object's whole state (a restore): replay may start from it. */
#define KEYS_HISTORY_FULL 1u

/* ID ‖ object commit seq (big-endian): the object's history in order. */
static inline size_t keys_history(char *out, const uint8_t id[KEYS_ID_BYTES], uint64_t seq)
{
	memcpy(out, id, KEYS_ID_BYTES);
	for (int i = 0; i < 8; i++)
		out[KEYS_ID_BYTES + i] = (char)(seq >> (56 - 8 * i));
	return KEYS_HISTORY_KEY_LEN;
}

static inline uint64_t keys_history_seq(const char *key)
{
	const unsigned char *p = (const unsigned char *)key + KEYS_ID_BYTES;
	uint64_t s = 0;
	for (int i = 0; i < 8; i++)
		s = s << 8 | p[i];
	return s;
}

/* Meta family keys of the class table and migrations (migrate.c). */
#define KEYS_META_CLASS "class/"
#define KEYS_META_CLASS_LEN 6
#define KEYS_META_DELETED "deleted/"
#define KEYS_META_DELETED_LEN 8
#define KEYS_META_MIGRATIONS "migrations"
#define KEYS_META_CFSEQ "cfseq"
#define KEYS_META_DEPLOY "deploy/"
#define KEYS_META_DEPLOY_LEN 7
/* A tag applied by a live deploy ("live-tag/<tag>" -> its class): a config may leave it
 * out of its migrations. A binding a live deploy made ("binding/<NAME>" -> JSON: class,
 * tag, route), restored at start when the config does not bind that name. */
#define KEYS_META_LIVE_TAG "live-tag/"
#define KEYS_META_BINDING "binding/"
#define KEYS_META_BINDING_LEN 8

#endif
