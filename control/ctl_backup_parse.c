/* The backup reader: every check of an export's bytes (magic, version, lengths, record
 * order, counts, checksum) in one pure function, so the importer trusts what it is given. */
#include "ctl_backup_parse.h"
#include "crc32c.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HEADER_FIXED (8 + 4 + 2)
#define NAME_FIXED (1 + CTL_BACKUP_ID_BYTES + 2)
#define KEY_FIXED (1 + CTL_BACKUP_ID_BYTES + 4 + 4)
#define END_LEN (1 + 8 + 8 + 4)

_Static_assert(CTL_BACKUP_MAX_RECORD >= NAME_FIXED + CTL_BACKUP_MAX_NAME, "name records fit");
_Static_assert(CTL_BACKUP_MAX_RECORD >= HEADER_FIXED + CTL_BACKUP_MAX_CLASS + 32 + 8,
	       "the header fits");

void ctl_backup_parse_init(struct ctl_backup_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->state = BK_HEADER;
}

static long fail(struct ctl_backup_parser *p, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static long fail(struct ctl_backup_parser *p, size_t at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->error, sizeof(p->error), fmt, ap);
	va_end(ap);
	p->error_offset = p->offset + at;
	p->state = BK_FAILED;
	return -EBADMSG;
}

static uint16_t le16(const uint8_t *b) { return (uint16_t)(b[0] | b[1] << 8); }
static uint32_t le32(const uint8_t *b) { return (uint32_t)le16(b) | (uint32_t)le16(b + 2) << 16; }
static uint64_t le64(const uint8_t *b) { return (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32; }

/* n bytes consumed: they join the checksum. */
static long take(struct ctl_backup_parser *p, const uint8_t *b, size_t n)
{
	p->crc = crc32c(p->crc, b, n);
	p->offset += n;
	return (long)n;
}

static long header(struct ctl_backup_parser *p, const uint8_t *b, size_t len,
		   struct ctl_backup_record *rec)
{
	/* The magic is checked as far as it has come: a file that is not an export is told
	 * so even when it is shorter than a header. */
	if (memcmp(b, CTL_BACKUP_MAGIC, len < 8 ? len : 8))
		return fail(p, 0, "not a duro export (bad magic)");
	if (len < HEADER_FIXED)
		return 0;
	uint32_t version = le32(b + 8);
	if (version != CTL_BACKUP_VERSION)
		return fail(p, 8, "version %u, want %u", version, CTL_BACKUP_VERSION);
	size_t clen = le16(b + 12);
	if (clen == 0 || clen > CTL_BACKUP_MAX_CLASS)
		return fail(p, 12, "class name of %zu bytes (1 to %d)", clen, CTL_BACKUP_MAX_CLASS);
	size_t need = HEADER_FIXED + clen + 32 + 8;
	if (len < need)
		return 0;
	*rec = (struct ctl_backup_record){ .kind = CTL_BACKUP_HEADER, .data = (const char *)b + 14,
					   .len = clen, .secret = b + 14 + clen,
					   .created_ms = le64(b + 14 + clen + 32) };
	p->state = BK_RECORDS;
	return take(p, b, need);
}

/* An object's records are together and objects ascend by ID: 1 when id starts another
 * object, 0 when it continues the current one, -1 when it goes back. */
static int next_object(struct ctl_backup_parser *p, const uint8_t *id)
{
	if (!p->have_id)
		return 1;
	int c = memcmp(id, p->id, CTL_BACKUP_ID_BYTES);
	return c > 0 ? 1 : c == 0 ? 0 : -1;
}

static void enter_object(struct ctl_backup_parser *p, const uint8_t *id)
{
	memcpy(p->id, id, CTL_BACKUP_ID_BYTES);
	p->have_id = 1;
	p->objects++;
}

static long record(struct ctl_backup_parser *p, const uint8_t *b, size_t len,
		   struct ctl_backup_record *rec)
{
	const uint8_t *id = b + 1;
	switch (b[0]) {
	case 'N': {
		if (len < NAME_FIXED)
			return 0;
		size_t nl = le16(b + 1 + CTL_BACKUP_ID_BYTES);
		if (nl == 0 || nl > CTL_BACKUP_MAX_NAME)
			return fail(p, 1 + CTL_BACKUP_ID_BYTES, "object name of %zu bytes (1 to %d)", nl,
				    CTL_BACKUP_MAX_NAME);
		if (next_object(p, id) <= 0)
			return fail(p, 1, "a name that does not start the next object (IDs must ascend, the name first)");
		if (len < NAME_FIXED + nl)
			return 0;
		enter_object(p, id);
		*rec = (struct ctl_backup_record){ .kind = CTL_BACKUP_NAME, .id = id,
						   .data = (const char *)b + NAME_FIXED, .len = nl,
						   .new_object = 1 };
		return take(p, b, NAME_FIXED + nl);
	}
	case 'K': {
		if (len < KEY_FIXED)
			return 0;
		uint32_t kl = le32(b + 1 + CTL_BACKUP_ID_BYTES), vl = le32(b + 5 + CTL_BACKUP_ID_BYTES);
		if (kl > CTL_BACKUP_MAX_KEY)
			return fail(p, 1 + CTL_BACKUP_ID_BYTES, "key of %u bytes (at most %d)", kl,
				    CTL_BACKUP_MAX_KEY);
		if (vl > CTL_BACKUP_MAX_VALUE)
			return fail(p, 5 + CTL_BACKUP_ID_BYTES, "value of %u bytes (at most %u)", vl,
				    CTL_BACKUP_MAX_VALUE);
		int next = next_object(p, id);
		if (next < 0)
			return fail(p, 1, "objects out of order (IDs must ascend, each object's records together)");
		if (len < KEY_FIXED + kl)
			return 0;
		if (next)
			enter_object(p, id);
		p->keys++;
		*rec = (struct ctl_backup_record){ .kind = CTL_BACKUP_KEY, .id = id,
						   .data = (const char *)b + KEY_FIXED, .len = kl,
						   .value_len = vl, .new_object = next };
		if (vl) {
			p->value_left = vl;
			p->state = BK_VALUE;
		}
		return take(p, b, KEY_FIXED + kl);
	}
	case 'E': {
		if (len < END_LEN)
			return 0;
		uint64_t objects = le64(b + 1), keys = le64(b + 9);
		uint32_t want = crc32c(p->crc, b, 17), crc = le32(b + 17);
		if (crc != want)
			return fail(p, 17, "checksum mismatch (file says %08x, its bytes %08x)", crc, want);
		if (objects != p->objects || keys != p->keys)
			return fail(p, 1, "counts do not match (file says %llu objects and %llu keys, holds %llu and %llu)",
				    (unsigned long long)objects, (unsigned long long)keys,
				    (unsigned long long)p->objects, (unsigned long long)p->keys);
		*rec = (struct ctl_backup_record){ .kind = CTL_BACKUP_END, .objects = objects, .keys = keys };
		p->state = BK_DONE;
		return take(p, b, END_LEN);
	}
	default:
		return fail(p, 0, "unknown record type 0x%02x", b[0]);
	}
}

long ctl_backup_parse(struct ctl_backup_parser *p, const void *buf, size_t len,
		      struct ctl_backup_record *rec)
{
	const uint8_t *b = buf;
	switch (p->state) {
	case BK_FAILED:
		return -EBADMSG;
	case BK_DONE:
		return len ? fail(p, 0, "bytes after the end record") : 0;
	case BK_HEADER:
		return header(p, b, len, rec);
	case BK_VALUE: {
		if (len == 0)
			return 0;
		size_t n = len < p->value_left ? len : p->value_left;
		p->value_left -= (uint32_t)n;
		*rec = (struct ctl_backup_record){ .kind = CTL_BACKUP_VALUE, .data = (const char *)b,
						   .len = n, .last = p->value_left == 0 };
		if (!p->value_left)
			p->state = BK_RECORDS;
		return take(p, b, n);
	}
	case BK_RECORDS:
		return len ? record(p, b, len, rec) : 0;
	}
	return -EBADMSG;
}

int ctl_backup_parse_finish(struct ctl_backup_parser *p)
{
	if (p->state == BK_DONE)
		return 0;
	if (p->state != BK_FAILED)
		fail(p, 0, "truncated (the input ends before its end record)");
	return -EBADMSG;
}
