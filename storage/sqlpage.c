/* Zero-gap encoding of SQL pages (sqlpage.h): what the sql family and the commit log hold. */
#include "sqlpage.h"

#include <errno.h>
#include <string.h>

size_t sqlpage_encode(const uint8_t page[KEYS_SQL_PAGE], uint8_t *out)
{
	/* The longest run of zeros, found in one pass. */
	size_t best = 0, best_at = 0, run = 0;
	for (size_t i = 0; i < KEYS_SQL_PAGE; i++) {
		if (page[i]) {
			run = 0;
			continue;
		}
		if (++run > best) {
			best = run;
			best_at = i + 1 - run;
		}
	}
	if (best <= 4) {
		memcpy(out, page, KEYS_SQL_PAGE);
		return KEYS_SQL_PAGE;
	}
	size_t head = best_at, tail = KEYS_SQL_PAGE - best_at - best;
	out[0] = (uint8_t)head;
	out[1] = (uint8_t)(head >> 8);
	out[2] = (uint8_t)tail;
	out[3] = (uint8_t)(tail >> 8);
	memcpy(out + 4, page, head);
	memcpy(out + 4 + head, page + KEYS_SQL_PAGE - tail, tail);
	return 4 + head + tail;
}

int sqlpage_decode(const void *value, size_t len, uint8_t page[KEYS_SQL_PAGE])
{
	const uint8_t *v = value;
	if (len == KEYS_SQL_PAGE) {
		memcpy(page, v, KEYS_SQL_PAGE);
		return 0;
	}
	if (len < 4)
		return -EBADMSG;
	size_t head = (size_t)v[0] | (size_t)v[1] << 8, tail = (size_t)v[2] | (size_t)v[3] << 8;
	if (head + tail >= KEYS_SQL_PAGE - 4 || len != 4 + head + tail)
		return -EBADMSG;
	memcpy(page, v + 4, head);
	memset(page + head, 0, KEYS_SQL_PAGE - head - tail);
	memcpy(page + KEYS_SQL_PAGE - tail, v + 4 + head, tail);
	return 0;
}
