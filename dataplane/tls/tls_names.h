/* Host names against certificate names (RFC 6125): which certificate serves a client's
 * SNI name. Pure functions over the caller's bytes, no mbedTLS. */
#ifndef DURO_TLS_TLS_NAMES_H
#define DURO_TLS_TLS_NAMES_H

#include <stddef.h>

/* 1 when `pattern` (a DNS name from a certificate, maybe "*.example.com") covers `name`
 * (the client's SNI name), else 0. ASCII case is ignored; a wildcard stands for exactly
 * one whole, non-empty leftmost label, and only as the pattern's entire first label. */
int tls_name_matches(const unsigned char *pattern, size_t plen, const unsigned char *name,
		     size_t nlen);

#endif
