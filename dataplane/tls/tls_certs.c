/* Certificates and keys for the TLS layer: loaded and checked once at start, shared
 * read-only by every core, each of which builds its own mbedTLS config over them. */
#include "tls_int.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tls_setup_load(const struct tls_config *cfg, struct tls_setup **out, char *err, size_t errlen)
{
	struct tls_setup *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	mbedtls_x509_crt_init(&s->chain);
	mbedtls_pk_init(&s->key);
	char why[160];
	if (access(cfg->cert, R_OK) < 0) {
		snprintf(err, errlen, "tls cert %s: %s", cfg->cert, strerror(errno));
		goto fail;
	}
	if (access(cfg->key, R_OK) < 0) {
		snprintf(err, errlen, "tls key %s: %s", cfg->key, strerror(errno));
		goto fail;
	}
	int r = mbedtls_x509_crt_parse_file(&s->chain, cfg->cert);
	if (r != 0) {
		mbedtls_strerror(r, why, sizeof(why));
		snprintf(err, errlen, "tls cert %s: not a PEM certificate chain (%s)", cfg->cert, why);
		goto fail;
	}
	r = mbedtls_pk_parse_keyfile(&s->key, cfg->key, NULL);
	if (r != 0) {
		mbedtls_strerror(r, why, sizeof(why));
		snprintf(err, errlen, "tls key %s: not a PEM private key without a passphrase (%s)",
			 cfg->key, why);
		goto fail;
	}
	if (mbedtls_pk_check_pair(&s->chain.pk, &s->key) != 0) {
		snprintf(err, errlen, "tls key %s does not match the certificate in %s", cfg->key, cfg->cert);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	tls_setup_free(s);
	return -EINVAL;
}

void tls_setup_free(struct tls_setup *s)
{
	if (!s)
		return;
	mbedtls_x509_crt_free(&s->chain);
	mbedtls_pk_free(&s->key);
	free(s);
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

int tls_conf_init(struct tls_core *t, const struct tls_setup *s, unsigned core)
{
	mbedtls_entropy_init(&t->entropy);
	mbedtls_ctr_drbg_init(&t->drbg);
	mbedtls_ssl_config_init(&t->conf);
	char pers[32];
	snprintf(pers, sizeof(pers), "duro-tls-core-%u", core);
	if (mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
				  (const unsigned char *)pers, strlen(pers)) != 0)
		return -EIO;
	if (mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
					MBEDTLS_SSL_PRESET_DEFAULT) != 0)
		return -EINVAL;
	mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
	/* mbedTLS 2.28 would accept TLS 1.0 and 1.1; 1.2 is the floor, and it has no 1.3. */
	mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_ciphersuites(&t->conf, suites);
	mbedtls_ssl_conf_renegotiation(&t->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
	if (mbedtls_ssl_conf_alpn_protocols(&t->conf, alpn) != 0)
		return -EINVAL;
	/* The chain and key are shared by every core and only read. */
	if (mbedtls_ssl_conf_own_cert(&t->conf, (mbedtls_x509_crt *)&s->chain, (mbedtls_pk_context *)&s->key) != 0)
		return -EINVAL;
	return 0;
}

void tls_conf_free(struct tls_core *t)
{
	mbedtls_ssl_config_free(&t->conf);
	mbedtls_ctr_drbg_free(&t->drbg);
	mbedtls_entropy_free(&t->entropy);
}
