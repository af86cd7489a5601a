/* libFuzzer target: untrusted request bodies into the Sql class's JSON reader
 * (classes/sql_json.c), and what it decoded back out through the writer: the reader must
 * never read past the body or write past its scratch, and every string it accepts must
 * write as valid JSON text again. */
#include "sql_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exact-size copies, so that ASan sees any byte read or written past either. */
	char *body = malloc(size ? size : 1), *scratch = malloc(size ? size : 1);
	static struct sqlj_request q;
	char err[160];
	memcpy(body, data, size);
	if (sqlj_parse(body, size, scratch, &q, err, sizeof(err)) == 0) {
		struct sqlj_out o = { 0 };
		sqlj_string(&o, q.sql, q.sql_len);
		for (size_t i = 0; i < q.nparams; i++)
			sqlj_value(&o, &q.params[i]);
		if (!o.err && o.len && (o.buf[0] != '"'))
			abort();
		free(o.buf);
	} else if (!strstr(err, "JSON") && !strstr(err, "missing")) {
		abort(); /* every refusal says what */
	}
	free(body);
	free(scratch);
	return 0;
}
