/* URI pieces the request parser checks: the authority of an absolute-form target and the
 * Host field (RFC 3986 section 3.2.2, RFC 9110 section 7.2). Pure, over the caller's bytes. */
#ifndef DURO_HTTP_URI_H
#define DURO_HTTP_URI_H

#include <stddef.h>

/* Checks p[0..n) as uri-host [ ":" port ]: a reg-name (unreserved, sub-delims and
 * percent-encoded bytes; an IPv4 address is one), or an IP-literal in brackets (IPv6 or
 * IPvFuture), then an optional colon and decimal port. No userinfo, path, or spaces.
 * need_host 1 refuses an empty host ("http" URIs), 0 allows it (an empty Host field).
 * Returns 0, or -EINVAL. */
int http_authority_check(const char *p, size_t n, int need_host);

#endif
