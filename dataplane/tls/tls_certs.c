/* Certificates and keys for the TLS layer: loaded and checked once at start, shared
 * read-only by every core, each of which builds its own mbedTLS config over them. */
#include "tls_int.h"
#include "tls_names.h"
#include "log.h"

#include <mbedtls/oid.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tls_config_add(struct tls_config *cfg, const char *cert, const char *key)
{
	for (unsigned i = 0; i < cfg->ncerts; i++)
		if (!strcmp(cfg->certs[i].cert, cert) && !strcmp(cfg->certs[i].key, key))
			return 0;
	if (cfg->ncerts == TLS_MAX_CERTS)
		return -ENOSPC;
	struct tls_cert_files *f = &cfg->certs[cfg->ncerts++];
	snprintf(f->cert, sizeof(f->cert), "%s", cert);
	snprintf(f->key, sizeof(f->key), "%s", key);
	return 0;
}

static int load_pair(const struct tls_cert_files *f, struct tls_cert *out, char *err, size_t errlen)
{
	char why[160];
	mbedtls_x509_crt_init(&out->chain);
	mbedtls_pk_init(&out->key);
	if (access(f->cert, R_OK) < 0) {
		snprintf(err, errlen, "tls cert %s: %s", f->cert, strerror(errno));
		return -EINVAL;
	}
	if (access(f->key, R_OK) < 0) {
		snprintf(err, errlen, "tls key %s: %s", f->key, strerror(errno));
		return -EINVAL;
	}
	int r = mbedtls_x509_crt_parse_file(&out->chain, f->cert);
	if (r != 0) {
		mbedtls_strerror(r, why, sizeof(why));
		snprintf(err, errlen, "tls cert %s: not a PEM certificate chain (%s)", f->cert, why);
		return -EINVAL;
	}
	r = mbedtls_pk_parse_keyfile(&out->key, f->key, NULL);
	if (r != 0) {
		mbedtls_strerror(r, why, sizeof(why));
		snprintf(err, errlen, "tls key %s: not a PEM private key without a passphrase (%s)",
			 f->key, why);
		return -EINVAL;
	}
	if (mbedtls_pk_check_pair(&out->chain.pk, &out->key) != 0) {
		snprintf(err, errlen, "tls key %s does not match the certificate in %s", f->key, f->cert);
		return -EINVAL;
	}
	return 0;
}

int tls_setup_load(const struct tls_config *cfg, struct tls_setup **out, char *err, size_t errlen)
{
	struct tls_setup *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (cfg->ncerts == 0 && !cfg->client) {
		snprintf(err, errlen, "tls: no certificate configured");
		free(s);
		return -EINVAL;
	}
	if (cfg->client) {
		const char *ca = cfg->client_ca_file[0] ? cfg->client_ca_file : TLS_SYSTEM_CA_FILE;
		mbedtls_x509_crt_init(&s->ca);
		s->have_ca = 1;
		int r = mbedtls_x509_crt_parse_file(&s->ca, ca);
		if (r < 0 || !s->ca.version) {
			char why[160] = "no certificate in it";
			if (r < 0)
				mbedtls_strerror(r, why, sizeof(why));
			snprintf(err, errlen, "outbound.ca_file: %s: %s", ca,
				 access(ca, R_OK) < 0 ? strerror(errno) : why);
			tls_setup_free(s);
			return -EINVAL;
		}
		if (r > 0)
			log_warn("outbound.ca_file: %s: %d certificates could not be read and are left out", ca, r);
	}
	for (unsigned i = 0; i < cfg->ncerts; i++) {
		s->ncerts++;
		if (load_pair(&cfg->certs[i], &s->certs[i], err, errlen) < 0) {
			tls_setup_free(s);
			return -EINVAL;
		}
	}
	*out = s;
	return 0;
}

void tls_setup_free(struct tls_setup *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->ncerts; i++) {
		mbedtls_x509_crt_free(&s->certs[i].chain);
		mbedtls_pk_free(&s->certs[i].key);
	}
	if (s->have_ca)
		mbedtls_x509_crt_free(&s->ca);
	free(s);
}

static int cert_has_name(const mbedtls_x509_crt *crt, const unsigned char *name, size_t len)
{
	for (const mbedtls_x509_sequence *san = &crt->subject_alt_names; san && san->buf.p; san = san->next)
		if (san->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME) &&
		    tls_name_matches(san->buf.p, san->buf.len, name, len))
			return 1;
	for (const mbedtls_x509_name *n = &crt->subject; n && n->oid.p; n = n->next)
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0 &&
		    tls_name_matches(n->val.p, n->val.len, name, len))
			return 1;
	return 0;
}

/* The client named a host: the first certificate that has the name serves it. */
static int pick_cert(void *arg, mbedtls_ssl_context *ssl, const unsigned char *name, size_t len)
{
	struct tls_confset *cs = arg;
	struct tls_core *t = cs->core;
	const struct tls_setup *s = cs->setup;
	for (unsigned i = 0; i < s->ncerts; i++)
		if (cert_has_name(&s->certs[i].chain, name, len))
			return mbedtls_ssl_set_hs_own_cert(ssl, (mbedtls_x509_crt *)&s->certs[i].chain,
							   (mbedtls_pk_context *)&s->certs[i].key);
	t->ctr.sni_misses++;
	return 0; /* the default (first) certificate */
}

/* Forward secrecy and AEAD only: ECDHE key exchange, AES-GCM or ChaCha20-Poly1305. */
static const int suites[] = {
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	0,
};

static const char *alpn[] = { "http/1.1", NULL };

/* X25519 first: its key exchange is the cheapest in mbedTLS; P-256 and P-384 for clients
 * without it. */
static const mbedtls_ecp_group_id curves[] = { MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
					       MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE };

int tls_core_crypto_init(struct tls_core *t, unsigned core, unsigned ticket_lifetime_s)
{
	mbedtls_entropy_init(&t->entropy);
	mbedtls_ctr_drbg_init(&t->drbg);
	char pers[32];
	snprintf(pers, sizeof(pers), "duro-tls-core-%u", core);
	if (mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
				  (const unsigned char *)pers, strlen(pers)) != 0)
		return -EIO;
	t->ticket_lifetime_s = ticket_lifetime_s;
	return ticket_lifetime_s ? tls_tickets_init(t) : 0;
}

void tls_core_crypto_free(struct tls_core *t)
{
	tls_tickets_free(t);
	mbedtls_ctr_drbg_free(&t->drbg);
	mbedtls_entropy_free(&t->entropy);
}

struct tls_confset *tls_confset_new(struct tls_core *t, const struct tls_setup *s)
{
	struct tls_confset *cs = calloc(1, sizeof(*cs));
	if (!cs)
		return NULL;
	cs->setup = s;
	cs->core = t;
	cs->refs = 1;
	mbedtls_ssl_config *conf = &cs->conf;
	mbedtls_ssl_config_init(conf);
	if (mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
					MBEDTLS_SSL_PRESET_DEFAULT) != 0)
		goto fail;
	mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &t->drbg);
	/* mbedTLS 2.28 would accept TLS 1.0 and 1.1; 1.2 is the floor, and it has no 1.3. */
	mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_ciphersuites(conf, suites);
	mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
	mbedtls_ssl_conf_curves(conf, curves);
	if (mbedtls_ssl_conf_alpn_protocols(conf, alpn) != 0)
		goto fail;
	/* Chains and keys are shared by every core and only read. (None: outbound TLS only,
	 * no listener uses this config.) */
	if (s->ncerts && mbedtls_ssl_conf_own_cert(conf, (mbedtls_x509_crt *)&s->certs[0].chain,
						   (mbedtls_pk_context *)&s->certs[0].key) != 0)
		goto fail;
	mbedtls_ssl_conf_sni(conf, pick_cert, cs);
	if (t->ticket_lifetime_s)
		mbedtls_ssl_conf_session_tickets_cb(conf, tls_ticket_write, tls_ticket_parse, t);
	return cs;
fail:
	mbedtls_ssl_config_free(conf);
	free(cs);
	return NULL;
}

int tls_client_conf_init(struct tls_core *t, const struct tls_setup *s)
{
	mbedtls_ssl_config *conf = &t->client_conf;
	mbedtls_ssl_config_init(conf);
	t->have_client = 1;
	if (mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
					MBEDTLS_SSL_PRESET_DEFAULT) != 0)
		return -ENOMEM;
	mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &t->drbg);
	mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_ciphersuites(conf, suites);
	mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
	mbedtls_ssl_conf_curves(conf, curves);
	/* The origin's chain must lead to one of the CAs, be valid now, and name the host
	 * dialed (mbedtls_ssl_set_hostname per connection): anything else ends the fetch. */
	mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(conf, (mbedtls_x509_crt *)&s->ca, NULL);
	if (mbedtls_ssl_conf_alpn_protocols(conf, alpn) != 0)
		return -ENOMEM;
	return 0;
}

void tls_confset_put(struct tls_confset *cs)
{
	if (--cs->refs)
		return;
	mbedtls_ssl_config_free(&cs->conf);
	free(cs);
}
