/* TLS connections: the layer sits between the backend and the layer above, as a backend
 * itself. Ciphertext in from the backend is decrypted and handed up; plaintext the layer
 * above offers is encrypted at the end of the loop turn (before the backend's own flush)
 * into one buffer of records the backend then sends.
 *
 *   backend --on_data--> [in] -> mbedtls_ssl_read -> up->on_data
 *   up->fill_output -> mbedtls_ssl_write -> [out] --fill_output--> backend */
#include "tls_int.h"
#include "base_assert.h"
#include "core.h"
#include "log.h"
#include "timer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define OUT_MAX (256 * 1024) /* ciphertext queued per connection before encrypting waits */
#define IN_MAX (64 * 1024)   /* ciphertext buffered ahead of decryption */

struct tls_conn {
	mbedtls_ssl_context ssl;
	struct net_conn *nc;
	const struct net_events *up;
	uint8_t started, handshaken, closing, notified, gone, dirty, up_wants;
	char *in;
	size_t in_len, in_off, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	/* Bytes from out_off on that fill_output lent to the backend: a send in flight may
	 * read them until on_sent, so the buffer holding them is neither moved nor freed.
	 * When it must grow meanwhile, the records move to a new buffer and the lent one is
	 * kept as `retired` until the loan ends. */
	size_t out_lent;
	char *retired;
	struct list_node dirty_node;
	struct timer timer; /* handshake deadline */
	struct tls_confset *cs; /* NULL for an outbound connection (the core's client config) */
	/* Outbound: the layer above hears of the connection (on_accept) only once the
	 * handshake is done, or of its failure (on_dial_failed) with fail_err. */
	uint8_t client;
	int fail_err;
	void *up_user;
	uint64_t lower_dial;
	struct list_node client_node; /* in the core's outbound connections */
};

/* One TLS backend per process: the functions below have no backend argument. The
 * current certificates are published by the control thread (reload) and picked up by
 * each core at its next turn; replaced ones stay until the end, as connections made with
 * them may still run. */
struct retired {
	struct retired *next;
	struct tls_setup *setup;
};
static struct {
	const struct net_backend *lower;
	struct tls_setup *_Atomic current;
	_Atomic unsigned gen;
	struct retired *retired; /* the control thread's only */
} rt;

static struct tls_conn *TC(struct net_conn *nc) { return nc->layer; }

/* ---- mbedTLS I/O callbacks over the connection's buffers ---- */

/* Makes room for len more bytes of records; 0, or -EAGAIN over OUT_MAX, or -ENOMEM. */
static int out_reserve(struct tls_conn *tc, size_t len)
{
	if (tc->out_len + len <= tc->out_cap)
		return 0;
	size_t keep = tc->out_len - tc->out_off;
	if (keep + len > OUT_MAX)
		return -EAGAIN;
	int lent = tc->out_lent && !tc->retired; /* the current buffer is being read */
	if (!lent && tc->out_off) { /* the sent front goes first */
		memmove(tc->out, tc->out + tc->out_off, keep);
		tc->out_len = keep;
		tc->out_off = 0;
		if (keep + len <= tc->out_cap)
			return 0;
	}
	size_t cap = tc->out_cap ? tc->out_cap * 2 : 8192;
	while (cap < keep + len)
		cap *= 2;
	char *n;
	if (lent) {
		n = malloc(cap);
		if (!n)
			return -ENOMEM;
		memcpy(n, tc->out + tc->out_off, keep);
		tc->retired = tc->out; /* freed when the loan ends (on_sent, on_closed) */
		tc->out_len = keep;
		tc->out_off = 0;
	} else if (!(n = realloc(tc->out, cap))) {
		return -ENOMEM;
	}
	tc->out = n;
	tc->out_cap = cap;
	return 0;
}

static int bio_send(void *arg, const unsigned char *buf, size_t len)
{
	struct tls_conn *tc = arg;
	int r = out_reserve(tc, len);
	if (r == -EAGAIN)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	if (r < 0)
		return MBEDTLS_ERR_SSL_ALLOC_FAILED;
	memcpy(tc->out + tc->out_len, buf, len);
	tc->out_len += len;
	return (int)len;
}

static int bio_recv(void *arg, unsigned char *buf, size_t len)
{
	struct tls_conn *tc = arg;
	size_t have = tc->in_len - tc->in_off;
	if (!have)
		return MBEDTLS_ERR_SSL_WANT_READ;
	if (len > have)
		len = have;
	memcpy(buf, tc->in + tc->in_off, len);
	tc->in_off += len;
	if (tc->in_off == tc->in_len)
		tc->in_off = tc->in_len = 0;
	return (int)len;
}

/* ---- output ---- */

static void mark_dirty(struct core *c, struct tls_conn *tc)
{
	if (tc->dirty || tc->gone)
		return;
	tc->dirty = 1;
	list_add_tail(&c->tls->dirty, &tc->dirty_node);
}

static void kick_lower(struct core *c, struct tls_conn *tc)
{
	if (tc->out_len > tc->out_off && !tc->gone)
		rt.lower->want_write(c, tc->nc);
}

/* Encrypts what the layer above has queued, as far as the output buffer allows. Each
 * record is written only when the buffer has room for all of it: a record mbedTLS could
 * not flush would stay inside mbedTLS holding bytes the layer above was never told were
 * taken, and the next write would be answered for them, whatever its data. */
static void encrypt_pending(struct core *c, struct tls_conn *tc)
{
	struct iovec iov[16];
	int max_payload = mbedtls_ssl_get_max_out_record_payload(&tc->ssl);
	int expansion = mbedtls_ssl_get_record_expansion(&tc->ssl);
	if (max_payload <= 0 || expansion < 0) {
		rt.lower->close(c, tc->nc, NET_CLOSE_ABORT);
		return;
	}
	while (tc->handshaken && !tc->gone && !tc->notified && tc->up_wants) {
		unsigned n = tc->up->fill_output(c, tc->nc, iov, 16);
		if (n == 0) {
			tc->up_wants = 0;
			break;
		}
		size_t consumed = 0;
		int full = 0;
		for (unsigned i = 0; i < n && !full; i++) {
			const unsigned char *p = iov[i].iov_base;
			size_t left = iov[i].iov_len;
			while (left) {
				size_t chunk = left < (size_t)max_payload ? left : (size_t)max_payload;
				if (out_reserve(tc, chunk + (size_t)expansion) < 0) {
					full = 1; /* the backend must drain first: resumed by on_sent */
					break;
				}
				int w = mbedtls_ssl_write(&tc->ssl, p, chunk);
				if (w <= 0) {
					log_debug("core %u conn %u: tls write: -0x%04x", c->index,
						  tc->nc->id, (unsigned)-w);
					rt.lower->close(c, tc->nc, NET_CLOSE_ABORT);
					return;
				}
				p += w;
				left -= (size_t)w;
				consumed += (size_t)w;
			}
		}
		/* Copied into records: for the layer above, these bytes are sent. */
		tc->up->on_sent(c, tc->nc, consumed);
		if (full || tc->gone)
			break;
	}
	kick_lower(c, tc);
}

/* New certificates were published: new connections get them from now on. */
static void pick_up_reload(struct core *c, struct tls_core *t)
{
	unsigned gen = atomic_load_explicit(&rt.gen, memory_order_acquire);
	if (gen == t->gen)
		return;
	struct tls_confset *cs = tls_confset_new(t, atomic_load_explicit(&rt.current, memory_order_acquire));
	if (!cs)
		return; /* out of memory: tried again next turn */
	tls_confset_put(t->cur);
	t->cur = cs;
	t->gen = gen;
	log_info("core %u: TLS certificates reloaded (generation %u)", c->index, gen);
}

static void tls_flush_hook(struct core *c)
{
	struct tls_core *t = c->tls;
	pick_up_reload(c, t);
	while (!list_empty(&t->dirty)) {
		struct tls_conn *tc = LIST_CONTAINER(t->dirty.next, struct tls_conn, dirty_node);
		list_del(&tc->dirty_node);
		tc->dirty = 0;
		encrypt_pending(c, tc);
	}
}

/* ---- backend events for TLS connections ---- */

static void fail(struct core *c, struct tls_conn *tc, int r, const char *what)
{
	char msg[120];
	mbedtls_strerror(r, msg, sizeof(msg));
	log_debug("core %u conn %u: tls %s: %s", c->index, tc->nc->id, what, msg);
	if (tc->client && !tc->handshaken) {
		struct tls_core *t = c->tls;
		t->ctr.client_failures++;
		tc->fail_err = -EPROTO;
		if (r == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
			/* Said once per refusal: which origin, and why (expired, name, issuer). */
			char info[256];
			uint32_t flags = mbedtls_ssl_get_verify_result(&tc->ssl);
			int n = mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
			while (n > 0 && (info[n - 1] == '\n' || info[n - 1] == ' '))
				info[--n] = 0;
			t->ctr.cert_rejected++;
			tc->fail_err = -EKEYREJECTED;
			log_warn("core %u: an outbound TLS connection refused the certificate of %s: %s",
				 c->index, tc->ssl.hostname ? tc->ssl.hostname : "?", n > 0 ? info : msg);
		}
	}
	/* The alert mbedTLS queued (protocol version, handshake failure) goes out first. */
	tc->closing = 1;
	kick_lower(c, tc);
	rt.lower->close(c, tc->nc, tc->out_len > tc->out_off ? NET_CLOSE_GRACEFUL : NET_CLOSE_ABORT);
}

static void handshake_expired(struct core *c, struct timer *t)
{
	struct tls_conn *tc = LIST_CONTAINER(t, struct tls_conn, timer);
	if (tc->handshaken || tc->gone)
		return;
	c->tls->ctr.handshake_timeouts++;
	tc->fail_err = -ETIMEDOUT;
	rt.lower->close(c, tc->nc, NET_CLOSE_ABORT);
}

static void on_data(struct core *c, struct net_conn *nc, const char *data, size_t len)
{
	struct tls_conn *tc = TC(nc);
	struct tls_core *t = c->tls;
	core_did_work(c);
	if (len == 0) {
		if (tc->handshaken)
			tc->up->on_data(c, nc, NULL, 0);
		else
			rt.lower->close(c, nc, NET_CLOSE_ABORT);
		return;
	}
	if (!tc->started && (unsigned char)data[0] != 0x16) {
		/* The first byte is not a TLS handshake record: plaintext HTTP or noise. */
		t->ctr.not_tls++;
		t->ctr.handshake_failures++;
		rt.lower->close(c, nc, NET_CLOSE_ABORT);
		return;
	}
	tc->started = 1;
	if (tc->closing) {
		/* Nothing more is read once closing: keeping the peer's bytes would fill the
		 * input buffer and cut the connection, output still unsent, with a reset. */
		return;
	}
	if (tc->in_len + len > tc->in_cap) {
		if (tc->in_len + len > IN_MAX + sizeof(t->plain)) {
			rt.lower->close(c, nc, NET_CLOSE_ABORT);
			return;
		}
		size_t cap = tc->in_cap ? tc->in_cap * 2 : 8192;
		while (cap < tc->in_len + len)
			cap *= 2;
		char *n = realloc(tc->in, cap);
		if (!n) {
			rt.lower->close(c, nc, NET_CLOSE_ABORT);
			return;
		}
		tc->in = n;
		tc->in_cap = cap;
	}
	memcpy(tc->in + tc->in_len, data, len);
	tc->in_len += len;
	if (!tc->handshaken) {
		int r = mbedtls_ssl_handshake(&tc->ssl);
		kick_lower(c, tc);
		if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
			return;
		if (r != 0) {
			t->ctr.handshake_failures++;
			fail(c, tc, r, "handshake");
			return;
		}
		tc->handshaken = 1;
		timer_cancel(&tc->timer);
		t->ctr.handshakes++;
		if (tc->client) {
			/* Made: the layer above has its connection now. */
			t->ctr.client_handshakes++;
			nc->user = tc->up_user;
			if (!tc->up->on_accept(c, nc)) {
				tc->client = 0; /* refused: nobody to tell */
				nc->user = NULL;
				rt.lower->close(c, nc, NET_CLOSE_ABORT);
				return;
			}
		}
		/* What the layer above queued before the handshake finished goes now. */
		if (tc->up_wants)
			mark_dirty(c, tc);
	}
	while (!tc->gone && !tc->closing) {
		int r = mbedtls_ssl_read(&tc->ssl, (unsigned char *)t->plain, sizeof(t->plain));
		if (r > 0) {
			tc->up->on_data(c, nc, t->plain, (size_t)r);
			continue;
		}
		if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
			break;
		if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == 0) {
			tc->up->on_data(c, nc, NULL, 0);
			break;
		}
		fail(c, tc, r, "read");
		break;
	}
	kick_lower(c, tc);
}

static unsigned fill_output(struct core *c, struct net_conn *nc, struct iovec *iov, unsigned max)
{
	(void)c;
	struct tls_conn *tc = TC(nc);
	DURO_ASSERT(!tc->retired); /* a new loan starts only after the last one ended */
	tc->out_lent = 0;
	if (!max || tc->out_len == tc->out_off)
		return 0;
	iov[0].iov_base = tc->out + tc->out_off;
	iov[0].iov_len = tc->out_len - tc->out_off;
	tc->out_lent = iov[0].iov_len;
	return 1;
}

static void on_sent(struct core *c, struct net_conn *nc, size_t n)
{
	struct tls_conn *tc = TC(nc);
	DURO_ASSERT(n <= tc->out_lent);
	tc->out_lent = 0;
	free(tc->retired);
	tc->retired = NULL;
	tc->out_off += n;
	DURO_ASSERT(tc->out_off <= tc->out_len);
	if (tc->out_off == tc->out_len)
		tc->out_off = tc->out_len = 0;
	/* Room again: encrypt what waited for it. (A loan that ended with nothing taken, a
	 * window short of a segment, made none: the next on_sent will.) */
	if (n && tc->up_wants)
		mark_dirty(c, tc);
}

static void on_closed(struct core *c, struct net_conn *nc, int err)
{
	struct tls_conn *tc = TC(nc);
	struct tls_core *t = c->tls;
	tc->gone = 1;
	if (tc->dirty) {
		list_del(&tc->dirty_node);
		tc->dirty = 0;
	}
	timer_cancel(&tc->timer);
	if (tc->client && !tc->handshaken) {
		nc->user = NULL;
		tc->up->on_dial_failed(c, tc->up_user, tc->fail_err ? tc->fail_err
							: err ? err : -ECONNRESET);
	} else if (nc->user) {
		tc->up->on_closed(c, nc, err);
	}
	if (list_linked(&tc->client_node))
		list_del(&tc->client_node);
	mbedtls_ssl_free(&tc->ssl);
	if (tc->cs)
		tls_confset_put(tc->cs);
	free(tc->in);
	free(tc->out);
	free(tc->retired);
	nc->layer = NULL;
	t->ctr.active--;
	pool_put(&t->conns, tc);
}

static void *on_accept(struct core *c, struct net_conn *nc)
{
	struct tls_core *t = c->tls;
	if (!t->ncfg->listen[nc->listener].tls) {
		/* A plain listener: the layer above gets this connection directly. */
		nc->ev = t->up;
		return t->up->on_accept(c, nc);
	}
	struct tls_conn *tc = pool_get(&t->conns);
	if (!tc)
		return NULL;
	memset(tc, 0, sizeof(*tc));
	mbedtls_ssl_init(&tc->ssl);
	tc->cs = t->cur;
	tc->cs->refs++;
	if (mbedtls_ssl_setup(&tc->ssl, &tc->cs->conf) != 0) {
		mbedtls_ssl_free(&tc->ssl);
		tls_confset_put(tc->cs);
		pool_put(&t->conns, tc);
		return NULL;
	}
	mbedtls_ssl_set_bio(&tc->ssl, tc, bio_send, bio_recv, NULL);
	tc->nc = nc;
	tc->up = t->up;
	nc->layer = tc;
	nc->secure = 1;
	nc->ev = &t->ev;
	void *user = t->up->on_accept(c, nc);
	if (!user) {
		mbedtls_ssl_free(&tc->ssl);
		tls_confset_put(tc->cs);
		nc->layer = NULL;
		pool_put(&t->conns, tc);
		return NULL;
	}
	t->ctr.active++;
	timer_arm(c, &tc->timer, c->now_ms + tc->cs->setup->cfg.handshake_timeout_ms, handshake_expired);
	return user;
}

/* ---- the backend interface, for the layer above ---- */

static void tls_want_write(struct core *c, struct net_conn *nc)
{
	struct tls_conn *tc = TC(nc);
	if (!tc) {
		rt.lower->want_write(c, nc);
		return;
	}
	tc->up_wants = 1;
	mark_dirty(c, tc);
}

static void tls_close(struct core *c, struct net_conn *nc, enum net_close_how how)
{
	struct tls_conn *tc = TC(nc);
	if (tc && how == NET_CLOSE_GRACEFUL && !tc->closing && tc->handshaken && !tc->gone) {
		/* Plaintext still queued is encrypted first, then close_notify. Closing is set
		 * first: the layer above may close again from the on_sent below. */
		tc->closing = 1;
		encrypt_pending(c, tc);
		if (!tc->gone) {
			tc->notified = 1; /* nothing is written after it */
			mbedtls_ssl_close_notify(&tc->ssl);
		}
		kick_lower(c, tc);
	}
	if (!tc || !tc->gone)
		rt.lower->close(c, nc, how);
}

static void tls_pause_read(struct core *c, struct net_conn *nc, int paused)
{
	rt.lower->pause_read(c, nc, paused);
}

static void tls_set_events(struct core *c, struct net_conn *nc, const struct net_events *ev)
{
	struct tls_conn *tc = TC(nc);
	if (tc)
		tc->up = ev;
	else
		rt.lower->set_events(c, nc, ev);
}

static void tls_stop_accepting(struct core *c) { rt.lower->stop_accepting(c); }
static const struct net_counters *tls_net_counters(struct core *c) { return rt.lower->counters(c); }

static void *client_connected(struct core *c, struct net_conn *nc);
static void client_dial_failed(struct core *c, void *user, int err);

static int tls_core_init(struct core *c, const struct net_config *cfg, const struct net_events *ev)
{
	struct tls_core *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	c->tls = t;
	t->up = ev;
	t->ncfg = cfg;
	list_init(&t->dirty);
	list_init(&t->clients);
	pool_init(&t->conns, "tls_conn", sizeof(struct tls_conn), 64, 0);
	t->ev = (struct net_events){ .on_accept = on_accept, .on_data = on_data,
				     .fill_output = fill_output, .on_sent = on_sent,
				     .on_closed = on_closed };
	t->cev = t->ev;
	t->cev.on_accept = client_connected;
	t->cev.on_dial_failed = client_dial_failed;
	struct tls_setup *setup = atomic_load(&rt.current);
	int r = tls_core_crypto_init(t, c->index, setup->cfg.ticket_lifetime_s);
	t->gen = atomic_load(&rt.gen);
	if (r < 0 || !(t->cur = tls_confset_new(t, setup))) {
		log_error("core %u: TLS set-up failed", c->index);
		return r < 0 ? r : -ENOMEM;
	}
	if (setup->have_ca && (r = tls_client_conf_init(t, setup)) < 0) {
		log_error("core %u: TLS client set-up failed", c->index);
		return r;
	}
	/* Before the backend's own hook: records made this turn are sent this turn. */
	core_add_hook(c, tls_flush_hook);
	/* Every connection's events start here; plain ones are handed up at accept. */
	return rt.lower->core_init(c, cfg, &t->ev);
}

static void tls_core_fini(struct core *c)
{
	struct tls_core *t = c->tls;
	rt.lower->core_fini(c);
	if (!t)
		return;
	if (t->cur)
		tls_confset_put(t->cur);
	/* Outbound connections still open (pooled ones): the loop is over, nobody closes
	 * them any more; their descriptors go with the ring. */
	while (!list_empty(&t->clients)) {
		struct tls_conn *tc = LIST_CONTAINER(t->clients.next, struct tls_conn, client_node);
		list_del(&tc->client_node);
		mbedtls_ssl_free(&tc->ssl);
		free(tc->in);
		free(tc->out);
		free(tc->retired);
	}
	if (t->have_client)
		mbedtls_ssl_config_free(&t->client_conf);
	tls_core_crypto_free(t);
	pool_destroy(&t->conns);
	free(t);
	c->tls = NULL;
}

const struct tls_counters *tls_counters(struct core *c) { return c->tls ? &c->tls->ctr : NULL; }

int tls_reload(const struct tls_config *cfg, char *err, size_t errlen)
{
	struct tls_setup *s;
	int r = tls_setup_load(cfg, &s, err, errlen);
	if (r < 0)
		return r;
	struct retired *old = malloc(sizeof(*old));
	if (!old) {
		tls_setup_free(s);
		return -ENOMEM;
	}
	old->setup = atomic_load(&rt.current);
	old->next = rt.retired;
	rt.retired = old;
	atomic_store_explicit(&rt.current, s, memory_order_release);
	atomic_fetch_add_explicit(&rt.gen, 1, memory_order_release);
	return 0;
}

void tls_shutdown(void)
{
	while (rt.retired) {
		struct retired *next = rt.retired->next;
		tls_setup_free(rt.retired->setup);
		free(rt.retired);
		rt.retired = next;
	}
	tls_setup_free(atomic_load(&rt.current));
	atomic_store(&rt.current, NULL);
}

/* ---- outbound connections ---- */

/* The lower backend made the connection: the handshake starts (ClientHello). */
static void *client_connected(struct core *c, struct net_conn *nc)
{
	struct tls_conn *tc = nc->user;
	struct tls_core *t = c->tls;
	tc->nc = nc;
	tc->lower_dial = 0;
	nc->layer = tc;
	nc->secure = 1;
	t->ctr.active++;
	timer_arm(c, &tc->timer, c->now_ms + atomic_load(&rt.current)->cfg.handshake_timeout_ms,
		  handshake_expired);
	int r = mbedtls_ssl_handshake(&tc->ssl);
	kick_lower(c, tc);
	if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE) {
		fail(c, tc, r, "handshake");
		return tc; /* closing: on_closed tells the layer above */
	}
	return tc;
}

static void client_free(struct core *c, struct tls_conn *tc)
{
	list_del(&tc->client_node);
	mbedtls_ssl_free(&tc->ssl);
	pool_put(&c->tls->conns, tc);
}

static void client_dial_failed(struct core *c, void *user, int err)
{
	struct tls_conn *tc = user;
	const struct net_events *up = tc->up;
	void *up_user = tc->up_user;
	c->tls->ctr.client_failures++;
	client_free(c, tc);
	up->on_dial_failed(c, up_user, err);
}

/* Handles: a plain dial's is the lower backend's (even); a TLS dial's is its connection's
 * address with the low bit set. */
static int tls_dial(struct core *c, const struct net_dial *d, const struct net_events *ev,
		    void *user, uint64_t *handle)
{
	struct tls_core *t = c->tls;
	if (!d->tls) {
		int r = rt.lower->dial(c, d, ev, user, handle);
		DURO_ASSERT(r < 0 || !(*handle & 1));
		return r;
	}
	if (!t->have_client)
		return -EOPNOTSUPP;
	struct tls_conn *tc = pool_get(&t->conns);
	if (!tc)
		return -ENOMEM;
	memset(tc, 0, sizeof(*tc));
	mbedtls_ssl_init(&tc->ssl);
	list_init(&tc->client_node);
	if (mbedtls_ssl_setup(&tc->ssl, &t->client_conf) != 0 ||
	    mbedtls_ssl_set_hostname(&tc->ssl, d->server_name) != 0) {
		client_free(c, tc);
		return -ENOMEM;
	}
	mbedtls_ssl_set_bio(&tc->ssl, tc, bio_send, bio_recv, NULL);
	tc->client = 1;
	tc->up = ev;
	tc->up_user = user;
	list_add_tail(&t->clients, &tc->client_node);
	struct net_dial plain = *d;
	plain.tls = 0;
	int r = rt.lower->dial(c, &plain, &t->cev, tc, &tc->lower_dial);
	if (r < 0) {
		client_free(c, tc);
		return r;
	}
	*handle = (uint64_t)(uintptr_t)tc | 1;
	return 0;
}

static void tls_dial_cancel(struct core *c, uint64_t handle)
{
	if (!(handle & 1)) {
		rt.lower->dial_cancel(c, handle);
		return;
	}
	struct tls_conn *tc = (struct tls_conn *)(uintptr_t)(handle & ~(uint64_t)1);
	if (tc->nc) { /* connected, handshaking: on_closed tells the layer above */
		tc->fail_err = -ECANCELED;
		rt.lower->close(c, tc->nc, NET_CLOSE_ABORT);
	} else {
		rt.lower->dial_cancel(c, tc->lower_dial);
	}
}

void tls_backend(struct net_backend *out, const struct net_backend *lower, struct tls_setup *setup)
{
	rt.lower = lower;
	atomic_store(&rt.current, setup);
	*out = (struct net_backend){
		.name = lower->name, .core_init = tls_core_init, .core_fini = tls_core_fini,
		.want_write = tls_want_write, .close = tls_close, .pause_read = tls_pause_read,
		.set_events = tls_set_events, .stop_accepting = tls_stop_accepting,
		.counters = tls_net_counters, .more_counters = lower->more_counters,
		/* Taking connections is the lower backend's alone. */
		.start_accepting = lower->start_accepting, .listening = lower->listening,
		/* Outbound connections: plaintext ones are the lower backend's. */
		.dial = lower->dial ? tls_dial : NULL, .dial_cancel = tls_dial_cancel,
	};
}
