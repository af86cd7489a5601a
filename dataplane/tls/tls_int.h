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
#include <mbedtls/gcm.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

struct tls_cert {
	mbedtls_x509_crt chain;
	mbedtls_pk_context key;
};

struct tls_setup {
	struct tls_config cfg;
	struct tls_cert certs[TLS_MAX_CERTS];
	unsigned ncerts;
	mbedtls_x509_crt ca; /* cfg.client: what outbound certificates are checked against */
	int have_ca;
};

struct tls_core;

/* An mbedTLS config over one generation of certificates. A reload makes a new one for new
 * connections; the old one lives until the last connection that uses it is gone. */
struct tls_confset {
	mbedtls_ssl_config conf;
	const struct tls_setup *setup;
	struct tls_core *core;
	unsigned refs; /* connections using it, plus one while it is the core's current */
};

struct tls_core {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_gcm_context ticket_gcm; /* this core's cipher over the process's ticket key */
	struct tls_confset *cur;        /* what new connections get */
	unsigned gen;                   /* the certificate generation cur was made from */
	const struct net_events *up;  /* the layer above's events (HTTP) */
	const struct net_config *ncfg;
	struct net_events ev;         /* what the backend calls for TLS connections */
	struct list_node dirty;       /* connections with plaintext to encrypt this turn */
	struct pool conns;
	char plain[16384 + 256];      /* decrypted bytes, lent to the layer above per call */
	struct tls_counters ctr;
	unsigned ticket_lifetime_s;
	/* Outbound connections: a client config over the start's CAs (none: no outbound TLS),
	 * and the events the lower backend calls while one is being made. */
	mbedtls_ssl_config client_conf;
	int have_client;
	struct net_events cev;
	struct list_node clients; /* outbound connections open, freed at the end if still so */
};

/* Session tickets (tls_tickets.c): this core's ticket cipher, and the callbacks. */
int tls_tickets_init(struct tls_core *t);
void tls_tickets_free(struct tls_core *t);
int tls_ticket_write(void *p, const mbedtls_ssl_session *session, unsigned char *start,
		     const unsigned char *end, size_t *tlen, uint32_t *lifetime);
int tls_ticket_parse(void *p, mbedtls_ssl_session *session, unsigned char *buf, size_t len);

/* Per core: the random generator and ticket cipher. Returns 0 or a negative errno. */
int tls_core_crypto_init(struct tls_core *t, unsigned core, unsigned ticket_lifetime_s);
void tls_core_crypto_free(struct tls_core *t);
/* A config set over setup s (refs 1), or NULL. */
struct tls_confset *tls_confset_new(struct tls_core *t, const struct tls_setup *s);
/* The client config of t over setup s (its CAs): 0, or -ENOMEM / -EINVAL. */
int tls_client_conf_init(struct tls_core *t, const struct tls_setup *s);
/* Drops a reference; the last frees the set. */
void tls_confset_put(struct tls_confset *cs);

#endif
