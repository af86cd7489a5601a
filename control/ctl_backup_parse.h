/* The backup file's format and its reader: a pure, allocation-free parser over the
 * caller's bytes (no I/O), one record per call, each error with the offset it was found at.
 *
 * File: "DUROEXP1", u32 version, u16 class name length, class name, 32-byte namespace
 * secret, u64 creation time (ms); then records: 'N' ID u16 len name (an object's name),
 * 'K' ID u32 klen u32 vlen key value (one key); 'E' u64 objects u64 keys u32 crc32c of
 * every byte before the crc. Little-endian. Objects come in ascending ID order, each one's
 * records together, its name (if any) first. */
#ifndef DURO_CONTROL_CTL_BACKUP_PARSE_H
#define DURO_CONTROL_CTL_BACKUP_PARSE_H

#include "base_limits.h"

#include <stddef.h>
#include <stdint.h>

#define CTL_BACKUP_MAGIC "DUROEXP1"
#define CTL_BACKUP_VERSION 1u
#define CTL_BACKUP_ID_BYTES 32
#define CTL_BACKUP_MAX_CLASS 63                /* a class name (the store's limit) */
#define CTL_BACKUP_MAX_NAME DURO_MAX_NAME      /* an object's name */
#define CTL_BACKUP_MAX_KEY (2048 + 16)         /* a user key, or one of duro's alarm keys */
#define CTL_BACKUP_MAX_VALUE (256u << 20)
/* The most bytes one call ever needs at once (a key record's fixed part and key); value
 * bytes are handed out in pieces of whatever size the caller's buffer holds. */
#define CTL_BACKUP_MAX_RECORD (1 + CTL_BACKUP_ID_BYTES + 8 + CTL_BACKUP_MAX_KEY)

enum ctl_backup_kind {
	CTL_BACKUP_HEADER = 1, /* data/len: class name; secret; created_ms */
	CTL_BACKUP_NAME,       /* id; data/len: the object's name */
	CTL_BACKUP_KEY,        /* id; data/len: the key; value_len: its value's length */
	CTL_BACKUP_VALUE,      /* data/len: the next piece of the last key's value; last */
	CTL_BACKUP_END,        /* objects, keys: the totals, checked with the checksum */
};

/* Views into the caller's buffer: valid as long as it is. */
struct ctl_backup_record {
	enum ctl_backup_kind kind;
	const uint8_t *id;    /* CTL_BACKUP_ID_BYTES */
	const char *data;
	size_t len;
	uint32_t value_len;
	int new_object;       /* NAME, KEY: the first record of another object */
	int last;             /* VALUE: the value's last piece */
	const uint8_t *secret; /* 32 bytes */
	uint64_t created_ms;
	uint64_t objects, keys;
};

enum ctl_backup_state { BK_HEADER, BK_RECORDS, BK_VALUE, BK_DONE, BK_FAILED };

struct ctl_backup_parser {
	uint64_t offset;         /* of the next byte to parse, from the start of the input */
	uint32_t crc;            /* of every byte consumed */
	enum ctl_backup_state state;
	uint64_t objects, keys;  /* seen so far */
	uint8_t id[CTL_BACKUP_ID_BYTES]; /* the current object's */
	int have_id;
	uint32_t value_left;     /* BK_VALUE: bytes of the value still to come */
	uint64_t error_offset;   /* after a failure: where */
	char error[128];         /* and what */
};

void ctl_backup_parse_init(struct ctl_backup_parser *p);
/* Parses the next record from buf[0..len), the input's bytes from p->offset on. Returns the
 * bytes consumed (> 0) with *rec filled; 0 when buf holds only part of the next record
 * (call again with those bytes and more; never more than CTL_BACKUP_MAX_RECORD are needed);
 * or -EBADMSG for bad input, with p->error and p->error_offset filled. A failed parser stays
 * failed; after the END record any further byte is an error. */
long ctl_backup_parse(struct ctl_backup_parser *p, const void *buf, size_t len,
		      struct ctl_backup_record *rec);
/* The input ended: 0 if it ended right after the END record, else -EBADMSG (truncated). */
int ctl_backup_parse_finish(struct ctl_backup_parser *p);

#endif
