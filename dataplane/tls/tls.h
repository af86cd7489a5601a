/* TLS with mbedTLS as a stream layer between a network backend and the layers above: it
 * is itself a net_backend, so HTTP and WebSockets run over it unchanged, on any backend. */
#ifndef DURO_TLS_TLS_H
#define DURO_TLS_TLS_H

#include "net.h"

#include <stdint.h>

#define TLS_MAX_CERTS 16

struct tls_cert_files {
	char cert[512]; /* PEM: the certificate, then its chain */
	char key[512];  /* PEM: the private key */
};

struct tls_config {
	/* Chosen by the client's SNI name against each certificate's names; the first one
	 * for clients that send none or a name no certificate has. */
	struct tls_cert_files certs[TLS_MAX_CERTS];
	unsigned ncerts;
	unsigned handshake_timeout_ms; /* a handshake not done in time is cut off; 10 s */
	unsigned ticket_lifetime_s;    /* session tickets for resumption; 0 turns them off */
	/* Outbound TLS (net_dial.tls): certificates are checked against these CAs (PEM; ""
	 * is the system's bundle) and the name dialed. Set by durod when outbound.allow has
	 * an https pattern: then listeners' certificates are optional. */
	int client;
	char client_ca_file[512];
};

/* The system's CA bundle (Debian's ca-certificates). */
#define TLS_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* Adds a certificate pair unless it is there already; -ENOSPC when full. */
int tls_config_add(struct tls_config *cfg, const char *cert, const char *key);

struct tls_counters {
	uint64_t handshakes, handshake_failures, handshake_timeouts, not_tls, resumed, sni_misses;
	uint64_t active;
	uint64_t client_handshakes, client_failures, cert_rejected; /* outbound */
};

/* The certificates and keys, loaded once before the cores start (shared, read-only), and
 * the CAs outbound connections are checked against when cfg->client. Returns 0, or
 * -EINVAL with a message in err naming the file and what is wrong (missing, unreadable,
 * not PEM, the key does not match the certificate, no CA in outbound.ca_file). */
struct tls_setup;
int tls_setup_load(const struct tls_config *cfg, struct tls_setup **out, char *err, size_t errlen);
void tls_setup_free(struct tls_setup *setup);

/* Fills `out` with a backend that runs TLS on the listeners marked tls and passes the
 * others straight to `lower` (which must outlive it). Takes ownership of setup. */
void tls_backend(struct net_backend *out, const struct net_backend *lower, struct tls_setup *setup);
/* Loads the certificates of cfg again (SIGHUP, the control socket's tls-reload): new
 * connections get them from each core's next turn; open ones keep theirs. Returns 0, or
 * -EINVAL with err naming what is wrong (then nothing changes). One caller at a time. */
int tls_reload(const struct tls_config *cfg, char *err, size_t errlen);
/* After the cores stopped: frees every generation of certificates. */
void tls_shutdown(void);

const struct tls_counters *tls_counters(struct core *c);

#endif
