/* Unit tests for the backup reader (control/ctl_backup_parse.c): a good export record by
 * record, the same fed in pieces of every size, and each damaged shape refused with its
 * offset. Exports are built here byte by byte, as durod's writer lays them out. */
#include "check.h"
#include "ctl_backup_parse.h"
#include "crc32c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	uint8_t b[1 << 16];
	size_t n;
};

static void put(struct buf *w, const void *p, size_t n)
{
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void put16(struct buf *w, uint16_t v) { uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) }; put(w, b, 2); }
static void put32(struct buf *w, uint32_t v) { put16(w, (uint16_t)v); put16(w, (uint16_t)(v >> 16)); }
static void put64(struct buf *w, uint64_t v) { put32(w, (uint32_t)v); put32(w, (uint32_t)(v >> 32)); }

static void header(struct buf *w, const char *cls)
{
	w->n = 0;
	put(w, "DUROEXP1", 8);
	put32(w, 1);
	put16(w, (uint16_t)strlen(cls));
	put(w, cls, strlen(cls));
	uint8_t secret[32];
	for (int i = 0; i < 32; i++)
		secret[i] = (uint8_t)(i * 3);
	put(w, secret, 32);
	put64(w, 1700000000000ull);
}

static void id_of(uint8_t id[32], uint8_t first)
{
	memset(id, 0x11, 32);
	id[0] = first;
}

static void name(struct buf *w, uint8_t first, const char *n)
{
	uint8_t id[32];
	id_of(id, first);
	put(w, "N", 1);
	put(w, id, 32);
	put16(w, (uint16_t)strlen(n));
	put(w, n, strlen(n));
}

static void key(struct buf *w, uint8_t first, const char *k, const char *v, size_t vl)
{
	uint8_t id[32];
	id_of(id, first);
	put(w, "K", 1);
	put(w, id, 32);
	put32(w, (uint32_t)strlen(k));
	put32(w, (uint32_t)vl);
	put(w, k, strlen(k));
	put(w, v, vl);
}

static void end(struct buf *w, uint64_t objects, uint64_t keys)
{
	put(w, "E", 1);
	put64(w, objects);
	put64(w, keys);
	put32(w, crc32c(0, w->b, w->n));
}

/* Two objects: one named with two keys (one value 300 bytes), one anonymous. */
static void good(struct buf *w)
{
	static char big[300];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	header(w, "KV");
	name(w, 0x01, "inventory");
	key(w, 0x01, "apples", "12", 2);
	key(w, 0x01, "big", big, sizeof(big));
	key(w, 0x02, "x", "", 0);
	end(w, 2, 3);
}

/* Parses all of w feeding at most `step` new bytes a call (as a reader with a small buffer
 * would); returns what parse_finish or a failure says, and tallies what came out. */
struct tally {
	unsigned headers, names, keys, ends, new_objects;
	size_t value_bytes;
	char value[512];
	size_t value_len;
};

static int run(const struct buf *w, size_t step, struct ctl_backup_parser *p, struct tally *t)
{
	ctl_backup_parse_init(p);
	memset(t, 0, sizeof(*t));
	size_t start = 0, have = 0;
	for (;;) {
		struct ctl_backup_record rec;
		long n = ctl_backup_parse(p, w->b + start, have - start, &rec);
		if (n < 0)
			return (int)n;
		if (n == 0) {
			if (have == w->n)
				return ctl_backup_parse_finish(p);
			have = have + step > w->n ? w->n : have + step;
			continue;
		}
		if ((size_t)n > have - start)
			return -1000; /* consumed what it was not given */
		start += (size_t)n;
		switch (rec.kind) {
		case CTL_BACKUP_HEADER: t->headers++; break;
		case CTL_BACKUP_NAME: t->names++; break;
		case CTL_BACKUP_KEY:
			t->keys++;
			if (rec.value_len)
				t->value_len = 0; /* the next value starts */
			break;
		case CTL_BACKUP_VALUE:
			t->value_bytes += rec.len;
			if (t->value_len + rec.len <= sizeof(t->value))
				memcpy(t->value + t->value_len, rec.data, rec.len);
			t->value_len += rec.len;
			break;
		case CTL_BACKUP_END: t->ends++; break;
		}
		t->new_objects += (rec.kind == CTL_BACKUP_NAME || rec.kind == CTL_BACKUP_KEY) && rec.new_object;
	}
}

static void test_good_export(void)
{
	struct buf *w = malloc(sizeof(*w));
	good(w);
	struct ctl_backup_parser p;
	struct tally t;
	CHECK_EQ(run(w, w->n, &p, &t), 0);
	CHECK_EQ(t.headers, 1);
	CHECK_EQ(t.names, 1);
	CHECK_EQ(t.keys, 3);
	CHECK_EQ(t.ends, 1);
	CHECK_EQ(t.new_objects, 2);
	CHECK_EQ(t.value_bytes, 2 + 300);
	CHECK_EQ(p.objects, 2);
	CHECK_EQ(p.keys, 3);
	CHECK_EQ(p.offset, w->n);
	free(w);
}

static void test_every_piece_size(void)
{
	struct buf *w = malloc(sizeof(*w));
	good(w);
	for (size_t step = 1; step <= 64; step++) {
		struct ctl_backup_parser p;
		struct tally t;
		CHECK_EQ(run(w, step, &p, &t), 0);
		CHECK_EQ(t.keys, 3);
		CHECK_EQ(t.value_bytes, 302);
		CHECK_EQ(t.value_len, 300); /* the last value, whole, in order */
		CHECK(t.value[0] == 'a' && t.value[299] == (char)('a' + 299 % 26));
	}
	free(w);
}

static void test_header_refusals(void)
{
	struct buf *w = malloc(sizeof(*w));
	struct ctl_backup_parser p;
	struct tally t;
	good(w);
	w->b[0] = 'X';
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	CHECK_EQ(p.error_offset, 0);
	CHECK(strstr(p.error, "not a duro export") != NULL);
	good(w);
	w->b[8] = 2; /* version */
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	CHECK_EQ(p.error_offset, 8);
	good(w);
	w->b[12] = 0; /* class name length 0 */
	w->b[13] = 0;
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	CHECK_EQ(p.error_offset, 12);
	good(w);
	w->b[12] = 64; /* longer than a class name may be */
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	/* a bad magic is seen from its first byte, not only once the header is whole */
	ctl_backup_parse_init(&p);
	struct ctl_backup_record rec;
	CHECK_EQ(ctl_backup_parse(&p, "DUROX", 5, &rec), -EBADMSG);
	ctl_backup_parse_init(&p);
	CHECK_EQ(ctl_backup_parse(&p, "DUROE", 5, &rec), 0);
	free(w);
}

static void test_damage_and_truncation(void)
{
	struct buf *w = malloc(sizeof(*w));
	struct ctl_backup_parser p;
	struct tally t;
	good(w);
	size_t n = w->n;
	/* every truncation is refused, at the start of the record cut short */
	for (size_t cut = 0; cut < n; cut++) {
		w->n = cut;
		CHECK_EQ(run(w, 7, &p, &t), -EBADMSG);
		CHECK(p.error_offset <= cut);
	}
	/* every single flipped byte is refused somewhere */
	for (size_t i = 0; i < n; i++) {
		good(w);
		w->b[i] ^= 0x40;
		CHECK_EQ(run(w, 13, &p, &t), -EBADMSG);
	}
	/* a byte after the end */
	good(w);
	w->b[w->n++] = 0;
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	CHECK_EQ(p.error_offset, w->n - 1);
	CHECK(strstr(p.error, "after the end") != NULL);
	free(w);
}

static void test_order_and_counts(void)
{
	struct buf *w = malloc(sizeof(*w));
	struct ctl_backup_parser p;
	struct tally t;
	/* objects must ascend */
	header(w, "KV");
	key(w, 0x02, "a", "1", 1);
	size_t at = w->n;
	key(w, 0x01, "b", "2", 1);
	end(w, 2, 2);
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	CHECK_EQ(p.error_offset, at + 1);
	CHECK(strstr(p.error, "out of order") != NULL);
	/* a name comes first, once */
	header(w, "KV");
	key(w, 0x01, "a", "1", 1);
	at = w->n;
	name(w, 0x01, "late");
	end(w, 1, 1);
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	CHECK_EQ(p.error_offset, at + 1);
	/* counts that do not match (with a right checksum) */
	header(w, "KV");
	key(w, 0x01, "a", "1", 1);
	end(w, 2, 1);
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	CHECK(strstr(p.error, "counts do not match") != NULL);
	/* an unknown record type */
	header(w, "KV");
	at = w->n;
	put(w, "Z", 1);
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	CHECK_EQ(p.error_offset, at);
	/* lengths over the limits */
	header(w, "KV");
	uint8_t id[32];
	id_of(id, 1);
	put(w, "K", 1);
	put(w, id, 32);
	put32(w, CTL_BACKUP_MAX_KEY + 1);
	put32(w, 1);
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	CHECK(strstr(p.error, "key of") != NULL);
	header(w, "KV");
	put(w, "K", 1);
	put(w, id, 32);
	put32(w, 1);
	put32(w, CTL_BACKUP_MAX_VALUE + 1);
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	CHECK(strstr(p.error, "value of") != NULL);
	header(w, "KV");
	put(w, "N", 1);
	put(w, id, 32);
	put16(w, CTL_BACKUP_MAX_NAME + 1);
	CHECK_EQ(run(w, w->n, &p, &t), -EBADMSG);
	/* an empty class export is fine */
	header(w, "KV");
	end(w, 0, 0);
	CHECK_EQ(run(w, 1, &p, &t), 0);
	/* a failed parser stays failed */
	struct ctl_backup_record rec;
	ctl_backup_parse_init(&p);
	CHECK_EQ(ctl_backup_parse(&p, "XXXXXXXXXXXXXXXXXXXX", 20, &rec), -EBADMSG);
	CHECK_EQ(ctl_backup_parse(&p, "DUROEXP1", 8, &rec), -EBADMSG);
	free(w);
}

int main(void)
{
	RUN(test_good_export);
	RUN(test_every_piece_size);
	RUN(test_header_refusals);
	RUN(test_damage_and_truncation);
	RUN(test_order_and_counts);
	return CHECK_DONE();
}
