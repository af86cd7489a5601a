/* libFuzzer target: stored SQL page values (storage/sqlpage.c), which also arrive in
 * import files: decoding must refuse or give a whole page, and a decoded page must encode
 * back to a value that decodes to the same page. */
#include "sqlpage.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t page[KEYS_SQL_PAGE], again[KEYS_SQL_PAGE], enc[SQLPAGE_MAX_VALUE];
	uint8_t *v = malloc(size ? size : 1);
	memcpy(v, data, size);
	if (sqlpage_decode(v, size, page) == 0) {
		size_t n = sqlpage_encode(page, enc);
		if (n > SQLPAGE_MAX_VALUE || sqlpage_decode(enc, n, again) != 0 ||
		    memcmp(page, again, KEYS_SQL_PAGE))
			abort();
	}
	free(v);
	return 0;
}
