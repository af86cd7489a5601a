/* libFuzzer target: untrusted bytes into the backup reader (control/ctl_backup_parse.c), in
 * pieces whose size the input's first byte chooses, checked against the same bytes parsed
 * whole: the same records, the same verdict, the same error offset. */
#include "ctl_backup_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	int verdict;
	uint64_t error_offset, records, value_bytes, offset;
};

static struct outcome parse(const uint8_t *buf, size_t size, size_t step)
{
	struct ctl_backup_parser p;
	struct outcome o = { 0 };
	ctl_backup_parse_init(&p);
	size_t start = 0, have = step < size ? step : size;
	uint64_t value_due = 0;
	for (;;) {
		struct ctl_backup_record rec;
		long n = ctl_backup_parse(&p, buf + start, have - start, &rec);
		if (n < 0) {
			o.verdict = (int)n;
			break;
		}
		if (n == 0) {
			if (have == size) {
				o.verdict = ctl_backup_parse_finish(&p);
				break;
			}
			/* never asks for more than a record's worth */
			if (have - start > CTL_BACKUP_MAX_RECORD)
				abort();
			have = have + step > size ? size : have + step;
			continue;
		}
		if ((size_t)n > have - start || p.offset != start + (size_t)n)
			abort();
		/* views stay inside what was consumed */
		if (rec.data && (rec.data < (const char *)buf + start ||
				 rec.data + rec.len > (const char *)buf + start + (size_t)n))
			abort();
		if (rec.kind == CTL_BACKUP_KEY) {
			if (value_due || rec.len > CTL_BACKUP_MAX_KEY)
				abort();
			value_due = rec.value_len;
		} else if (rec.kind == CTL_BACKUP_VALUE) {
			if (!rec.len || rec.len > value_due || rec.last != (rec.len == value_due))
				abort();
			value_due -= rec.len;
			o.value_bytes += rec.len;
		} else if (value_due) {
			abort(); /* another record inside a value */
		}
		start += (size_t)n;
		o.records++;
	}
	o.error_offset = o.verdict ? p.error_offset : 0;
	o.offset = p.offset;
	if (o.verdict && (p.error[0] == 0 || p.error_offset > size))
		abort();
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] % 64) + 1;
	data++;
	size--;
	uint8_t *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	struct outcome whole = parse(buf, size, size ? size : 1);
	struct outcome pieces = parse(buf, size, step);
	/* Records split differently (values come in other pieces), all else the same. */
	if (whole.verdict != pieces.verdict || whole.error_offset != pieces.error_offset ||
	    whole.value_bytes != pieces.value_bytes || whole.offset != pieces.offset)
		abort();
	free(buf);
	return 0;
}
