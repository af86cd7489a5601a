/* Session tickets (RFC 5077) for resumption: the session, sealed with AES-256-GCM under a
 * key made once per process, so a ticket from any core opens on every core; each core has
 * its own cipher context over that key, and nothing is shared that is written. */
#include "tls_int.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define IV_LEN 12
#define TAG_LEN 16
#define MAX_SESSION 2048

static uint8_t ticket_key[32];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_ok;

static void make_key(void)
{
	key_ok = getrandom(ticket_key, sizeof(ticket_key), 0) == sizeof(ticket_key);
}

int tls_tickets_init(struct tls_core *t)
{
	pthread_once(&key_once, make_key);
	if (!key_ok)
		return -EIO;
	mbedtls_gcm_init(&t->ticket_gcm);
	return mbedtls_gcm_setkey(&t->ticket_gcm, MBEDTLS_CIPHER_ID_AES, ticket_key, 256) ? -EIO : 0;
}

void tls_tickets_free(struct tls_core *t)
{
	if (t->ticket_lifetime_s)
		mbedtls_gcm_free(&t->ticket_gcm);
}

/* Ticket: IV ‖ GCM(issued seconds (8) ‖ serialized session) ‖ tag. */
int tls_ticket_write(void *p, const mbedtls_ssl_session *session, unsigned char *start,
		     const unsigned char *end, size_t *tlen, uint32_t *lifetime)
{
	struct tls_core *t = p;
	unsigned char plain[8 + MAX_SESSION];
	size_t slen = 0;
	int r = mbedtls_ssl_session_save(session, plain + 8, MAX_SESSION, &slen);
	if (r != 0)
		return r;
	uint64_t now = (uint64_t)time(NULL);
	memcpy(plain, &now, 8);
	size_t n = 8 + slen;
	if ((size_t)(end - start) < IV_LEN + n + TAG_LEN)
		return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
	if ((r = mbedtls_ctr_drbg_random(&t->drbg, start, IV_LEN)) != 0)
		return r;
	r = mbedtls_gcm_crypt_and_tag(&t->ticket_gcm, MBEDTLS_GCM_ENCRYPT, n, start, IV_LEN, NULL, 0,
				      plain, start + IV_LEN, TAG_LEN, start + IV_LEN + n);
	if (r != 0)
		return r;
	*tlen = IV_LEN + n + TAG_LEN;
	*lifetime = t->ticket_lifetime_s;
	return 0;
}

int tls_ticket_parse(void *p, mbedtls_ssl_session *session, unsigned char *buf, size_t len)
{
	struct tls_core *t = p;
	if (len < IV_LEN + 8 + TAG_LEN || len > IV_LEN + 8 + MAX_SESSION + TAG_LEN)
		return MBEDTLS_ERR_SSL_INVALID_MAC;
	size_t n = len - IV_LEN - TAG_LEN;
	unsigned char plain[8 + MAX_SESSION];
	if (mbedtls_gcm_auth_decrypt(&t->ticket_gcm, n, buf, IV_LEN, NULL, 0, buf + IV_LEN + n,
				     TAG_LEN, buf + IV_LEN, plain) != 0)
		return MBEDTLS_ERR_SSL_INVALID_MAC;
	uint64_t issued;
	memcpy(&issued, plain, 8);
	if ((uint64_t)time(NULL) > issued + t->ticket_lifetime_s)
		return MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED;
	int r = mbedtls_ssl_session_load(session, plain + 8, n - 8);
	if (r == 0)
		t->ctr.resumed++;
	return r;
}
