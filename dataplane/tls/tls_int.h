/* Internals of the TLS layer shared by its connection code and its certificate loading:
 * the shared setup and each core's mbedTLS config and random generator. */
#ifndef DURO_TLS_TLS_INT_H
#define DURO_TLS_TLS_INT_H

#include "tls.h"
#include "list.h"
#include "pool.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

struct tls_setup {
	struct tls_config cfg;
	mbedtls_x509_crt chain;
	mbedtls_pk_context key;
};

struct tls_core {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ssl_config conf;
	const struct net_events *up;  /* the layer above's events (HTTP) */
	const struct net_config *ncfg;
	struct net_events ev;         /* what the backend calls for TLS connections */
	struct list_node dirty;       /* connections with plaintext to encrypt this turn */
	struct pool conns;
	char plain[16384 + 256];      /* decrypted bytes, lent to the layer above per call */
	struct tls_counters ctr;
};

/* Per core: the mbedTLS config over the shared setup. Returns 0 or a negative errno. */
int tls_conf_init(struct tls_core *t, const struct tls_setup *s, unsigned core);
void tls_conf_free(struct tls_core *t);

#endif
