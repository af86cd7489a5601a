/* Pieces of the control socket's JSON replies that several commands share: an error
 * reply, and bytes (names, keys) shown safely as a JSON string. */
#include "ctl_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

json_t *ctl_error_reply(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

json_t *ctl_bytes_json(const char *p, size_t n)
{
	char *out = malloc(n * 4 + 1), *o = out;
	if (!out)
		return json_null();
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			*o++ = (char)ch;
		} else {
			static const char hx[] = "0123456789abcdef";
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hx[ch >> 4];
			*o++ = hx[ch & 15];
		}
	}
	json_t *j = json_stringn(out, (size_t)(o - out));
	free(out);
	return j;
}
