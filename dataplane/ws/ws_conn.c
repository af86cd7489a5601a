/* WebSocket and event-stream connections: one struct ws_conn per socket on the core that
 * accepted it, found by handle through the core's slot table.
 *
 * Input is parsed as it arrives, without buffering whole frames: a header is gathered
 * (at most 14 bytes), then payload bytes are unmasked straight into the message being
 * assembled. Output is a queue of references to encoded payloads that other cores made
 * once for every socket they go to; each reference holds its batch, and a batch goes back
 * to the core that made it when its last reference is written. */
#include "ws.h"
#include "base_assert.h"
#include "core.h"
#include "log.h"
#include "pool.h"
#include "timer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

enum ws_state {
	WS_RESERVED, /* slot taken; the upgrade response is on its way */
	WS_OPEN,
	WS_CLOSING, /* a close frame is queued or sent; waiting for the peer's, or the timer */
	WS_CONNECTING, /* a client socket: dialing, or waiting for the server's 101 */
};

/* A client socket until its handshake is done: where to, and the answer so far. */
struct ws_client {
	struct net_dial dial;
	char server_name[256];
	uint64_t dial_handle;
	uint8_t dialing, started;
	size_t req_left; /* bytes of the request not yet written: nothing else goes before */
	char accept[29];
	size_t got;
	char resp[WS_MAX_RESPONSE_HEAD];
};

/* One queued reference to a payload. */
struct ws_out {
	struct ws_out *next;
	struct ws_batch *batch;
	const struct ws_payload *p;
};

struct ws_conn {
	struct net_conn *nc; /* NULL while reserved and once the backend reported it closed */
	void *user;
	uint64_t ref;
	uint32_t idx, gen;
	uint8_t state, kind, core;
	uint8_t frag_op;        /* opcode of the fragmented message being assembled, or 0 */
	uint8_t in_frame;       /* a header was read; its payload is coming */
	uint8_t ignore_input;   /* failed or closing: later bytes are read and dropped */
	uint8_t close_sent, raised, flush_then_close;
	uint8_t client;         /* dialed by duro: frames out masked, frames in unmasked */
	uint8_t hdr_len;
	uint8_t hdr[14];
	struct ws_frame_hdr cur;
	uint64_t frame_got;
	uint32_t utf8;
	struct buf *msg;   /* data message being assembled */
	uint8_t *ctrl;     /* control frame payload being read (pool of 128 bytes) */
	struct ws_out *out_head, *out_tail;
	size_t out_bytes;  /* queued and not yet written */
	size_t head_sent;  /* bytes of the front payload already written */
	/* Bytes after head_sent that fill_output lent to the backend: a send in flight may
	 * still read them, so their payloads stay queued until on_sent ends the loan. */
	size_t out_lent;
	struct timer timer;
	struct list_node node; /* in the core's list of sockets */
	struct ws_client *cl;  /* a client socket until it is open, else NULL */
};

struct ws_slot {
	struct ws_conn *wc;
	uint32_t gen;
	uint32_t next_free;
};

#define SLOT_NONE UINT32_MAX
#define SMALL_PAYLOAD 240 /* data bytes of a pooled payload */
#define BATCH_INLINE 8    /* targets of a pooled batch */

struct ws_core {
	const struct ws_config *cfg;
	const struct net_backend *nb;
	const struct ws_events *up;
	struct net_events net_ev;
	struct net_events client_ev; /* net_ev, for connections this layer dials */
	uint64_t rng;                /* xorshift64*: masking keys */
	struct ws_slot *slots;
	uint32_t nslots, cap, free_head, max_sockets, used;
	struct pool conns, outs, ctrls, payloads, batches;
	struct list_node all;
	struct ws_counters ctr;
	unsigned failed_status; /* during on_open with an error: the server's status, or 0 */
};

static void conn_fail(struct core *c, struct ws_conn *wc, unsigned code);
static void client_start(struct core *c, struct ws_conn *wc);
static void client_fail(struct core *c, struct ws_conn *wc, int err, const char *why);
static void conn_free(struct core *c, struct ws_conn *wc);
static void raise_closed(struct core *c, struct ws_conn *wc, unsigned code, const char *reason,
			 size_t rlen, int clean);

/* ---- payloads and batches ---- */

static void share_released(struct core *c, struct net_share *sh);

struct ws_payload *ws_payload_new(struct core *c, size_t len)
{
	struct ws_core *w = c->ws;
	struct ws_payload *p;
	int pooled = len <= SMALL_PAYLOAD;
	if (len > UINT32_MAX)
		return NULL;
	p = pooled ? pool_get(&w->payloads) : malloc(sizeof(*p) + len);
	if (!p)
		return NULL;
	p->refs = 1;
	p->core = (uint16_t)c->index;
	p->pooled = (uint16_t)pooled;
	p->len = (uint32_t)len;
	return p;
}

void ws_payload_unref(struct core *c, struct ws_payload *p)
{
	DURO_ASSERT(p->core == c->index && p->refs > 0);
	if (--p->refs)
		return;
	if (p->pooled)
		pool_put(&c->ws->payloads, p);
	else
		free(p);
}

struct ws_payload *ws_payload_frame(struct core *c, enum ws_opcode op, const void *data, size_t len)
{
	uint8_t hdr[WS_MAX_SERVER_HDR];
	size_t hl = ws_write_header(hdr, op, len);
	struct ws_payload *p = ws_payload_new(c, hl + len);
	if (!p)
		return NULL;
	memcpy(p->data, hdr, hl);
	if (len)
		memcpy(p->data + hl, data, len);
	return p;
}

struct ws_payload *ws_payload_event(struct core *c, const void *data, size_t len)
{
	const char *s = data, *end = s + len;
	size_t lines = 1;
	for (const char *q = s; q < end; q++)
		lines += *q == '\n';
	/* Each line gets "data: " and a newline (lines - 1 of them replace the newlines in
	 * data), and one more newline ends the event: len + 6 * lines + 2. */
	struct ws_payload *p = ws_payload_new(c, len + lines * 6 + 2);
	if (!p)
		return NULL;
	char *o = p->data;
	for (;;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;
		size_t n = (size_t)(e - s);
		if (n && s[n - 1] == '\r')
			n--; /* a CR would end the field early in the client's parser */
		memcpy(o, "data: ", 6);
		if (n)
			memcpy(o + 6, s, n);
		o += 6 + n;
		*o++ = '\n';
		if (!nl)
			break;
		s = nl + 1;
	}
	*o++ = '\n';
	p->len = (uint32_t)(o - p->data);
	return p;
}

struct ws_batch *ws_batch_new(struct core *c, unsigned dst, enum ws_batch_op op,
			      struct ws_payload *frame, struct ws_payload *stream, unsigned cap)
{
	struct ws_core *w = c->ws;
	struct ws_batch *b = cap <= BATCH_INLINE ? pool_get(&w->batches)
						 : malloc(sizeof(*b) + (size_t)cap * sizeof(ws_handle));
	if (!b)
		return NULL;
	b->msg.type = MSG_WS_BATCH;
	b->msg.src_core = (uint16_t)c->index;
	b->msg.next = NULL;
	b->home = (uint16_t)c->index;
	b->frame = frame;
	b->stream = stream;
	if (frame)
		frame->refs++;
	if (stream)
		stream->refs++;
	b->holds = 0;
	memset(&b->share, 0, sizeof(b->share));
	b->share.release = share_released;
	b->dst = (uint16_t)dst;
	b->op = (uint16_t)op;
	b->close_code = 0;
	b->n = 0;
	b->cap = cap <= BATCH_INLINE ? BATCH_INLINE : cap;
	return b;
}

void ws_batch_free(struct core *c, struct ws_batch *b)
{
	DURO_ASSERT(b->home == c->index);
	if (b->frame)
		ws_payload_unref(c, b->frame);
	if (b->stream)
		ws_payload_unref(c, b->stream);
	if (b->cap <= BATCH_INLINE)
		pool_put(&c->ws->batches, b);
	else
		free(b);
}

/* The sockets' core is done with the batch: back to its maker. */
static void batch_return(struct core *c, struct ws_batch *b)
{
	if (b->home == c->index) {
		ws_batch_free(c, b);
		return;
	}
	b->msg.type = MSG_WS_BATCH_DONE;
	core_send(c, b->home, &b->msg);
}

static void batch_unhold(struct core *c, struct ws_batch *b)
{
	DURO_ASSERT(b->holds > 0);
	if (--b->holds == 0 && b->share.holds == 0)
		batch_return(c, b);
}

/* The backend no longer reads the batch's payloads (sent from them without copying). */
static void share_released(struct core *c, struct net_share *sh)
{
	struct ws_batch *b = LIST_CONTAINER(sh, struct ws_batch, share);
	DURO_ASSERT(sh->holds == 0);
	if (b->holds == 0)
		batch_return(c, b);
}

static void on_batch_done(struct core *c, struct core_msg *m)
{
	ws_batch_free(c, (struct ws_batch *)m);
}

/* ---- slots ---- */

static struct ws_conn *slot_lookup(struct ws_core *w, ws_handle h)
{
	uint32_t idx = (uint32_t)h, gen = (uint32_t)(h >> 32) & 0xffffff;
	if (idx >= w->nslots)
		return NULL;
	struct ws_slot *s = &w->slots[idx];
	return s->wc && (s->gen & 0xffffff) == gen ? s->wc : NULL;
}

static int slot_take(struct ws_core *w, struct ws_conn *wc)
{
	if (w->free_head == SLOT_NONE) {
		if (w->nslots == w->cap) {
			uint32_t ncap = w->cap ? w->cap * 2 : 1024;
			struct ws_slot *ns = realloc(w->slots, (size_t)ncap * sizeof(*ns));
			if (!ns)
				return -ENOMEM;
			w->slots = ns;
			w->cap = ncap;
		}
		w->slots[w->nslots] = (struct ws_slot){ .wc = NULL, .gen = 0, .next_free = SLOT_NONE };
		w->free_head = w->nslots++;
	}
	uint32_t idx = w->free_head;
	struct ws_slot *s = &w->slots[idx];
	w->free_head = s->next_free;
	s->gen++;
	s->wc = wc;
	wc->idx = idx;
	wc->gen = s->gen & 0xffffff;
	w->used++;
	return 0;
}

static void slot_put(struct ws_core *w, struct ws_conn *wc)
{
	struct ws_slot *s = &w->slots[wc->idx];
	DURO_ASSERT(s->wc == wc);
	s->wc = NULL;
	s->next_free = w->free_head;
	w->free_head = wc->idx;
	w->used--;
}

ws_handle ws_conn_handle(const struct ws_conn *wc)
{
	return (ws_handle)wc->core << 56 | (ws_handle)wc->gen << 32 | wc->idx;
}
void *ws_conn_user(const struct ws_conn *wc) { return wc->user; }
void ws_conn_set_ref(struct ws_conn *wc, uint64_t ref) { wc->ref = ref; }
uint64_t ws_conn_ref(const struct ws_conn *wc) { return wc->ref; }

/* ---- output ---- */

static void want_write(struct core *c, struct ws_conn *wc)
{
	if (wc->nc && wc->out_head)
		c->ws->nb->want_write(c, wc->nc);
}

static void out_free(struct core *c, struct ws_out *o)
{
	batch_unhold(c, o->batch);
	pool_put(&c->ws->outs, o);
}

/* Drops queued output the stream can do without: what follows the payloads lent to the
 * backend (fill_output) and the front one once partly written. Those must go out whole,
 * or the peer's byte stream is garbage; and a lent payload's memory may be read by a send
 * still in flight, so freeing it would put whatever reuses the memory on the wire. */
static void out_drop_unsent(struct core *c, struct ws_conn *wc)
{
	struct ws_out **link = &wc->out_head, *o;
	size_t kept = 0; /* bytes of the kept payloads, from head_sent on */
	wc->out_tail = NULL;
	while ((o = *link) && (kept < wc->out_lent || (o == wc->out_head && wc->head_sent))) {
		kept += o->p->len - (o == wc->out_head ? wc->head_sent : 0);
		wc->out_tail = o;
		link = &o->next;
	}
	*link = NULL;
	while (o) {
		struct ws_out *next = o->next;
		out_free(c, o);
		o = next;
	}
	wc->out_bytes = kept;
	if (!wc->out_head)
		wc->head_sent = 0;
}

/* Drops everything queued: the backend has closed the connection, so nothing is lent. */
static void out_drop_all(struct core *c, struct ws_conn *wc)
{
	DURO_ASSERT(!wc->nc);
	wc->out_lent = 0;
	wc->head_sent = 0;
	out_drop_unsent(c, wc);
	DURO_ASSERT(!wc->out_head);
}

/* Queues a reference to p (held through b), as it is. Returns 0 or -ENOMEM. */
static int out_push_raw(struct core *c, struct ws_conn *wc, struct ws_batch *b,
			const struct ws_payload *p)
{
	struct ws_out *o = pool_get(&c->ws->outs);
	if (!o)
		return -ENOMEM;
	o->next = NULL;
	o->batch = b;
	o->p = p;
	b->holds++;
	if (wc->out_tail)
		wc->out_tail->next = o;
	else
		wc->out_head = o;
	wc->out_tail = o;
	wc->out_bytes += p->len;
	c->ws->ctr.frames_out++;
	return 0;
}

static uint32_t mask_key(struct ws_core *w)
{
	uint64_t x = w->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->rng = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* A client's copy of a server frame (payloads are encoded once, unmasked, for every
 * socket they go to): the same frame masked under a fresh key (RFC 6455 section 5.3). */
static struct ws_payload *masked_copy(struct core *c, const struct ws_payload *p)
{
	const uint8_t *d = (const uint8_t *)p->data;
	DURO_ASSERT(p->len >= 2);
	size_t hl = (d[1] & 0x7f) == 127 ? 10 : (d[1] & 0x7f) == 126 ? 4 : 2;
	DURO_ASSERT(p->len >= hl);
	size_t n = p->len - hl;
	uint32_t k = mask_key(c->ws);
	uint8_t mask[4];
	memcpy(mask, &k, 4);
	uint8_t hdr[WS_MAX_CLIENT_HDR];
	size_t nh = ws_write_client_header(hdr, (enum ws_opcode)(d[0] & 0x0f), n, mask);
	struct ws_payload *q = ws_payload_new(c, nh + n);
	if (!q)
		return NULL;
	memcpy(q->data, hdr, nh);
	ws_unmask((uint8_t *)q->data + nh, d + hl, n, mask, 0);
	return q;
}

/* Queues a frame: a reference for an accepted socket, a masked copy for a client one.
 * Returns 0 or -ENOMEM. */
static int out_push(struct core *c, struct ws_conn *wc, struct ws_batch *b,
		    const struct ws_payload *p)
{
	if (!wc->client)
		return out_push_raw(c, wc, b, p);
	struct ws_payload *q = masked_copy(c, p);
	if (!q)
		return -ENOMEM;
	struct ws_batch *own = ws_batch_new(c, c->index, WS_SEND, q, NULL, 1);
	ws_payload_unref(c, q);
	if (!own)
		return -ENOMEM;
	own->holds++;
	int r = out_push_raw(c, wc, own, q);
	batch_unhold(c, own);
	return r;
}

static void close_timer_fired(struct core *c, struct timer *t)
{
	struct ws_conn *wc = LIST_CONTAINER(t, struct ws_conn, timer);
	/* The peer never answered our close, or never read it: end it. */
	if (wc->nc)
		c->ws->nb->close(c, wc->nc, NET_CLOSE_ABORT);
}

/* Queues a close frame and stops sending anything after it. */
static void send_close(struct core *c, struct ws_conn *wc, unsigned code, const char *reason,
		       size_t rlen)
{
	if (wc->close_sent)
		return;
	wc->close_sent = 1;
	wc->state = WS_CLOSING;
	if (wc->kind == WS_KIND_SOCKET) {
		uint8_t body[WS_MAX_CONTROL];
		size_t n = 0;
		if (code != WS_CLOSE_NO_STATUS) {
			body[0] = (uint8_t)(code >> 8);
			body[1] = (uint8_t)code;
			n = 2;
			if (rlen > WS_MAX_CONTROL - 2)
				rlen = WS_MAX_CONTROL - 2;
			if (rlen)
				memcpy(body + 2, reason, rlen);
			n += rlen;
		}
		ws_send_local(c, wc, WS_OP_CLOSE, body, n);
	}
	timer_arm(c, &wc->timer, c->now_ms + c->ws->cfg->close_timeout_ms, close_timer_fired);
}

/* Ends the TCP connection once everything queued is written. */
static void close_after_flush(struct core *c, struct ws_conn *wc)
{
	wc->ignore_input = 1;
	if (!wc->nc) {
		wc->flush_then_close = 1; /* reserved: the takeover closes it once flushed */
		return;
	}
	if (!wc->out_head)
		c->ws->nb->close(c, wc->nc, NET_CLOSE_GRACEFUL);
	else
		wc->flush_then_close = 1;
}

/* Queues p on a socket; closes it with 1013 when its reader is too far behind. */
static void enqueue(struct core *c, struct ws_conn *wc, struct ws_batch *b,
		    const struct ws_payload *p)
{
	struct ws_core *w = c->ws;
	if (wc->close_sent || wc->raised) {
		w->ctr.dropped_sends++;
		return;
	}
	/* A message always fits an empty queue, however large: the cap is on the backlog. */
	if (wc->out_bytes && wc->out_bytes + p->len > w->cfg->max_outbound_bytes) {
		w->ctr.closes_slow++;
		w->ctr.dropped_sends++;
		log_debug("core %u ws %u: reader too slow (%zu bytes queued): closing with 1013",
			  c->index, wc->idx, wc->out_bytes);
		out_drop_unsent(c, wc);
		raise_closed(c, wc, WS_CLOSE_TRY_LATER, NULL, 0, 0);
		send_close(c, wc, WS_CLOSE_TRY_LATER, "reader too slow", 15);
		close_after_flush(c, wc);
		return;
	}
	if (out_push(c, wc, b, p) < 0) {
		w->ctr.dropped_sends++;
		raise_closed(c, wc, WS_CLOSE_INTERNAL, NULL, 0, 0);
		if (wc->nc)
			w->nb->close(c, wc->nc, NET_CLOSE_ABORT);
		return;
	}
	want_write(c, wc);
}

static void deliver_batch(struct core *c, struct ws_batch *b)
{
	struct ws_core *w = c->ws;
	b->holds++; /* the loop's own, so the batch cannot go back half delivered */
	for (uint32_t i = 0; i < b->n; i++) {
		struct ws_conn *wc = slot_lookup(w, b->targets[i]);
		if (!wc) {
			w->ctr.dropped_sends++;
			continue;
		}
		if (b->op == WS_CONNECT) {
			client_start(c, wc);
			continue;
		}
		if (b->op == WS_CLOSE && wc->cl) {
			client_fail(c, wc, -ECANCELED, NULL); /* closed before it was open */
			continue;
		}
		const struct ws_payload *p = wc->kind == WS_KIND_STREAM ? b->stream : b->frame;
		if (b->op == WS_CLOSE) {
			if (wc->close_sent || wc->raised)
				continue;
			raise_closed(c, wc, b->close_code, NULL, 0, 1);
			if (wc->kind == WS_KIND_SOCKET && p && out_push(c, wc, b, p) == 0) {
				wc->close_sent = 1;
				wc->state = WS_CLOSING;
				timer_arm(c, &wc->timer, c->now_ms + w->cfg->close_timeout_ms,
					  close_timer_fired);
				want_write(c, wc);
			} else {
				wc->close_sent = 1;
				close_after_flush(c, wc);
			}
			continue;
		}
		if (!p) {
			w->ctr.dropped_sends++; /* binary data has no event-stream form */
			continue;
		}
		enqueue(c, wc, b, p);
	}
	batch_unhold(c, b);
}

static void on_batch(struct core *c, struct core_msg *m)
{
	deliver_batch(c, (struct ws_batch *)m);
}

void ws_batch_drop(struct core *c, struct ws_batch *b)
{
	if (b->op == WS_CONNECT) {
		DURO_ASSERT(b->dst == c->index);
		for (uint32_t i = 0; i < b->n; i++) {
			struct ws_conn *wc = slot_lookup(c->ws, b->targets[i]);
			if (wc && wc->cl)
				client_fail(c, wc, -EIO, NULL);
		}
	}
	ws_batch_free(c, b);
}

void ws_batch_send(struct core *c, struct ws_batch *b)
{
	if (b->dst == c->index) {
		deliver_batch(c, b);
		return;
	}
	core_send(c, b->dst, &b->msg);
}

int ws_send_local(struct core *c, struct ws_conn *wc, enum ws_opcode op, const void *data,
		  size_t len)
{
	struct ws_payload *p = wc->kind == WS_KIND_STREAM ? ws_payload_event(c, data, len)
							   : ws_payload_frame(c, op, data, len);
	if (!p)
		return -ENOMEM;
	struct ws_batch *b = ws_batch_new(c, c->index, WS_SEND, p, wc->kind == WS_KIND_STREAM ? p : NULL, 1);
	ws_payload_unref(c, p);
	if (!b)
		return -ENOMEM;
	b->holds++;
	if (op == WS_OP_CLOSE) {
		/* Goes out even though close_sent is already set. */
		if (out_push(c, wc, b, p) == 0)
			want_write(c, wc);
	} else {
		enqueue(c, wc, b, p);
	}
	batch_unhold(c, b);
	return 0;
}

void ws_close_local(struct core *c, struct ws_conn *wc, unsigned code, const char *reason)
{
	if (wc->close_sent)
		return;
	raise_closed(c, wc, code, reason, reason ? strlen(reason) : 0, 1);
	send_close(c, wc, code, reason, reason ? strlen(reason) : 0);
	if (wc->kind == WS_KIND_STREAM)
		close_after_flush(c, wc);
}

/* ---- input ---- */

static void raise_closed(struct core *c, struct ws_conn *wc, unsigned code, const char *reason,
			 size_t rlen, int clean)
{
	if (wc->raised)
		return;
	wc->raised = 1;
	c->ws->up->on_closed(c, wc, code, reason, rlen, clean);
}

static void conn_fail(struct core *c, struct ws_conn *wc, unsigned code)
{
	struct ws_core *w = c->ws;
	if (code == WS_CLOSE_BAD_DATA)
		w->ctr.closes_utf8++;
	else if (code == WS_CLOSE_TOO_BIG)
		w->ctr.closes_too_big++;
	else
		w->ctr.closes_protocol++;
	log_debug("core %u ws %u: closing with %u", c->index, wc->idx, code);
	wc->ignore_input = 1;
	raise_closed(c, wc, code, NULL, 0, 0);
	const char *why = code == WS_CLOSE_BAD_DATA ? "invalid UTF-8"
			  : code == WS_CLOSE_TOO_BIG ? "message too big"
						      : "protocol error";
	send_close(c, wc, code, why, strlen(why));
	close_after_flush(c, wc);
}

/* A header was read: checks it against the message in progress and makes room. */
static int frame_begin(struct core *c, struct ws_conn *wc)
{
	struct ws_frame_hdr *h = &wc->cur;
	if (h->opcode >= WS_OP_CLOSE) {
		if (!wc->ctrl && h->len && !(wc->ctrl = pool_get(&c->ws->ctrls)))
			return -WS_CLOSE_INTERNAL;
		return 0;
	}
	if (h->opcode == WS_OP_CONT ? !wc->frag_op : wc->frag_op != 0)
		return -WS_CLOSE_PROTOCOL; /* continuation of nothing, or a new message inside one */
	size_t have = wc->msg ? wc->msg->len : 0;
	if (h->len > c->ws->cfg->max_message_bytes - have)
		return -WS_CLOSE_TOO_BIG;
	size_t need = have + (size_t)h->len;
	if (!wc->msg || wc->msg->cap < need) {
		size_t cap = wc->msg ? (size_t)wc->msg->cap * 2 : 0;
		if (cap < need)
			cap = need;
		if (cap > c->ws->cfg->max_message_bytes)
			cap = c->ws->cfg->max_message_bytes;
		struct buf *nb = buf_new(&c->bufs, cap ? cap : 1);
		if (!nb)
			return -WS_CLOSE_INTERNAL;
		if (wc->msg) {
			memcpy(nb->data, wc->msg->data, have);
			nb->len = (uint32_t)have;
			buf_unref(&c->bufs, wc->msg);
		}
		wc->msg = nb;
	}
	if (h->opcode != WS_OP_CONT) {
		wc->frag_op = h->opcode;
		wc->utf8 = 0;
	}
	return 0;
}

/* The whole payload of the current frame is in. Returns 0 or a negative close code. */
static int frame_end(struct core *c, struct ws_conn *wc)
{
	struct ws_core *w = c->ws;
	struct ws_frame_hdr *h = &wc->cur;
	wc->in_frame = 0;
	switch (h->opcode) {
	case WS_OP_PING:
		w->ctr.pings++;
		if (!wc->close_sent)
			ws_send_local(c, wc, WS_OP_PONG, wc->ctrl, (size_t)h->len);
		return 0;
	case WS_OP_PONG:
		return 0;
	case WS_OP_CLOSE: {
		uint16_t code;
		int r = ws_check_close(wc->ctrl, (size_t)h->len, &code);
		if (r < 0)
			return r;
		const char *reason = h->len > 2 ? (const char *)wc->ctrl + 2 : NULL;
		size_t rlen = h->len > 2 ? (size_t)h->len - 2 : 0;
		w->ctr.closes_clean++;
		raise_closed(c, wc, code, reason, rlen, 1);
		if (!wc->close_sent)
			send_close(c, wc, code, NULL, 0); /* echo the code (none for none) */
		close_after_flush(c, wc);
		return 0;
	}
	default:
		break;
	}
	if (!h->fin)
		return 0;
	int binary = wc->frag_op == WS_OP_BINARY;
	if (!binary && wc->utf8 != 0)
		return -WS_CLOSE_BAD_DATA; /* ends mid-character */
	struct buf *m = wc->msg;
	wc->msg = NULL;
	wc->frag_op = 0;
	wc->utf8 = 0;
	w->ctr.msgs_in++;
	w->ctr.bytes_in += m->len;
	if (wc->close_sent || wc->raised) {
		buf_unref(&c->bufs, m);
		return 0;
	}
	w->up->on_message(c, wc, binary, m);
	return 0;
}

static void parse(struct core *c, struct ws_conn *wc, const uint8_t *p, size_t n)
{
	while (n > 0 && !wc->ignore_input) {
		int r;
		if (!wc->in_frame) {
			size_t old = wc->hdr_len;
			size_t take = n < sizeof(wc->hdr) - old ? n : sizeof(wc->hdr) - old;
			memcpy(wc->hdr + old, p, take);
			r = wc->client ? ws_parse_server_header(wc->hdr, old + take, &wc->cur)
				       : ws_parse_header(wc->hdr, old + take, &wc->cur);
			if (r == 0) {
				wc->hdr_len = (uint8_t)(old + take);
				return;
			}
			if (r < 0) {
				conn_fail(c, wc, (unsigned)-r);
				return;
			}
			size_t used = (size_t)r - old;
			p += used;
			n -= used;
			wc->hdr_len = 0;
			wc->in_frame = 1;
			wc->frame_got = 0;
			r = frame_begin(c, wc);
			if (r == 0 && wc->cur.len == 0)
				r = frame_end(c, wc);
			if (r < 0) {
				conn_fail(c, wc, (unsigned)-r);
				return;
			}
			continue;
		}
		struct ws_frame_hdr *h = &wc->cur;
		uint64_t left = h->len - wc->frame_got;
		size_t take = n < left ? n : (size_t)left;
		if (h->opcode >= WS_OP_CLOSE) {
			ws_unmask(wc->ctrl + wc->frame_got, p, take, h->mask, wc->frame_got);
		} else {
			uint8_t *dst = (uint8_t *)wc->msg->data + wc->msg->len;
			ws_unmask(dst, p, take, h->mask, wc->frame_got);
			wc->msg->len += (uint32_t)take;
			if (wc->frag_op == WS_OP_TEXT) {
				wc->utf8 = ws_utf8_feed(wc->utf8, dst, take);
				if (wc->utf8 == WS_UTF8_BAD) {
					conn_fail(c, wc, WS_CLOSE_BAD_DATA); /* fail fast */
					return;
				}
			}
		}
		wc->frame_got += take;
		p += take;
		n -= take;
		if (wc->frame_got == h->len && (r = frame_end(c, wc)) < 0) {
			conn_fail(c, wc, (unsigned)-r);
			return;
		}
	}
}

/* ---- backend events for taken-over connections ---- */

static void client_answer(struct core *c, struct ws_conn *wc, const char *data, size_t len);

static void on_data(struct core *c, struct net_conn *nc, const char *data, size_t len)
{
	struct ws_conn *wc = nc->user;
	core_did_work(c);
	if (wc->cl) {
		if (len == 0)
			client_fail(c, wc, -ECONNRESET, "the server closed before answering");
		else
			client_answer(c, wc, data, len);
		return;
	}
	if (len == 0) {
		/* The peer is done sending: a WebSocket without a close frame dropped. */
		c->ws->ctr.closes_dropped += !wc->raised;
		raise_closed(c, wc, WS_CLOSE_ABNORMAL, NULL, 0, 0);
		close_after_flush(c, wc);
		return;
	}
	if (wc->kind == WS_KIND_STREAM)
		return; /* an event stream only sends */
	parse(c, wc, (const uint8_t *)data, len);
}

static unsigned fill_output(struct core *c, struct net_conn *nc, struct iovec *iov, unsigned max)
{
	struct ws_conn *wc = nc->user;
	unsigned n = 0;
	size_t skip = wc->head_sent;
	wc->out_lent = 0;
	if (wc->cl) {
		/* The request alone until the server has answered it. */
		if (!wc->cl->req_left)
			return 0;
		max = 1;
	}
	for (struct ws_out *o = wc->out_head; o && n < max; o = o->next) {
		iov[n].iov_base = (char *)o->p->data + skip;
		iov[n++].iov_len = o->p->len - skip;
		wc->out_lent += o->p->len - skip;
		skip = 0;
	}
	return n;
}

/* fill_output naming each payload's batch as shared memory the backend may hold. */
static unsigned fill_output_shared(struct core *c, struct net_conn *nc, struct iovec *iov,
				   struct net_share **share, unsigned max)
{
	struct ws_conn *wc = nc->user;
	unsigned n = fill_output(c, nc, iov, max);
	struct ws_out *o = wc->out_head;
	for (unsigned i = 0; i < n; i++, o = o->next)
		share[i] = &o->batch->share;
	return n;
}

static void on_sent(struct core *c, struct net_conn *nc, size_t n)
{
	struct ws_conn *wc = nc->user;
	struct ws_core *w = c->ws;
	DURO_ASSERT(n <= wc->out_lent);
	wc->out_lent = 0; /* the backend is done with what it was lent: sent or not */
	w->ctr.bytes_out += n;
	if (wc->cl)
		wc->cl->req_left -= n; /* only the request was lent */
	while (n && wc->out_head) {
		struct ws_out *o = wc->out_head;
		size_t left = o->p->len - wc->head_sent;
		if (n < left) {
			wc->head_sent += n;
			wc->out_bytes -= n;
			return;
		}
		n -= left;
		wc->out_bytes -= left;
		wc->head_sent = 0;
		wc->out_head = o->next;
		if (!wc->out_head)
			wc->out_tail = NULL;
		out_free(c, o);
	}
	/* out_bytes counts whole payloads minus what was written of the front one. */
	if (!wc->out_head) {
		wc->out_bytes = 0;
		if (wc->flush_then_close) {
			wc->flush_then_close = 0;
			w->nb->close(c, nc, NET_CLOSE_GRACEFUL);
		}
	}
}

static void conn_free(struct core *c, struct ws_conn *wc)
{
	struct ws_core *w = c->ws;
	out_drop_all(c, wc);
	if (wc->msg)
		buf_unref(&c->bufs, wc->msg);
	if (wc->ctrl)
		pool_put(&w->ctrls, wc->ctrl);
	free(wc->cl);
	timer_cancel(&wc->timer);
	list_del(&wc->node);
	slot_put(w, wc);
	w->ctr.active--;
	w->ctr.closed++;
	pool_put(&w->conns, wc);
}

static void on_closed(struct core *c, struct net_conn *nc, int err)
{
	struct ws_conn *wc = nc->user;
	wc->nc = NULL;
	if (wc->cl) {
		client_fail(c, wc, err ? err : -ECONNRESET, "the connection closed before the handshake");
		return; /* freed there */
	}
	if (!wc->raised)
		c->ws->ctr.closes_dropped++;
	raise_closed(c, wc, WS_CLOSE_ABNORMAL, NULL, 0, 0);
	conn_free(c, wc);
}

static void *on_accept_never(struct core *c, struct net_conn *nc)
{
	(void)c;
	(void)nc;
	DURO_ASSERT(0); /* connections reach this layer only by takeover */
	return NULL;
}

/* ---- reservation and takeover ---- */

struct ws_conn *ws_reserve(struct core *c, enum ws_kind kind, void *user)
{
	struct ws_core *w = c->ws;
	if (w->used >= w->max_sockets) {
		w->ctr.refused++;
		return NULL;
	}
	struct ws_conn *wc = pool_get(&w->conns);
	if (!wc) {
		w->ctr.refused++;
		return NULL;
	}
	memset(wc, 0, sizeof(*wc));
	if (slot_take(w, wc) < 0) {
		pool_put(&w->conns, wc);
		w->ctr.refused++;
		return NULL;
	}
	wc->user = user;
	wc->kind = (uint8_t)kind;
	wc->core = (uint8_t)c->index;
	wc->state = WS_RESERVED;
	list_add_tail(&w->all, &wc->node);
	w->ctr.reserved++;
	w->ctr.active++;
	return wc;
}

void ws_takeover(struct core *c, struct ws_conn *wc, struct net_conn *nc, const char *rest,
		 size_t len)
{
	struct ws_core *w = c->ws;
	DURO_ASSERT(wc->state == WS_RESERVED || wc->state == WS_CLOSING);
	wc->nc = nc;
	nc->user = wc;
	w->nb->set_events(c, nc, &w->net_ev);
	w->ctr.opened++;
	if (wc->state == WS_RESERVED)
		wc->state = WS_OPEN;
	w->nb->pause_read(c, nc, 0);
	if (len && wc->kind == WS_KIND_SOCKET)
		parse(c, wc, (const uint8_t *)rest, len);
	if (wc->nc && wc->flush_then_close && !wc->out_head) {
		wc->flush_then_close = 0;
		w->nb->close(c, nc, NET_CLOSE_GRACEFUL);
		return;
	}
	want_write(c, wc);
}

void ws_release(struct core *c, struct ws_conn *wc, int accepted)
{
	DURO_ASSERT(!wc->nc);
	if (accepted)
		raise_closed(c, wc, WS_CLOSE_ABNORMAL, NULL, 0, 0);
	wc->raised = 1;
	conn_free(c, wc);
}

/* ---- client sockets ---- */

int ws_client_prepare(struct core *c, struct ws_conn *wc, const struct net_dial *d,
		      const char *host, const char *target)
{
	return ws_client_prepare_fields(c, wc, d, host, target, NULL, 0);
}

int ws_client_prepare_fields(struct core *c, struct ws_conn *wc, const struct net_dial *d,
			     const char *host, const char *target, const char *fields,
			     size_t fields_len)
{
	struct ws_core *w = c->ws;
	DURO_ASSERT(wc->state == WS_RESERVED && wc->kind == WS_KIND_SOCKET && !wc->cl);
	struct ws_client *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	char key[25];
	int r = ws_client_key(key, cl->accept);
	if (r < 0) {
		free(cl);
		return r;
	}
	cl->dial = *d;
	if (d->server_name) {
		if (strlen(d->server_name) >= sizeof(cl->server_name)) {
			free(cl);
			return -EINVAL;
		}
		memcpy(cl->server_name, d->server_name, strlen(d->server_name) + 1);
		cl->dial.server_name = cl->server_name;
	}
	char req[WS_CLIENT_MAX_REQUEST];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%.*s\r\n",
			 target, host, key, fields ? "" : "User-Agent: durod\r\n",
			 (int)(fields ? fields_len : 0), fields ? fields : "");
	if (n < 0 || (size_t)n >= sizeof(req)) {
		free(cl);
		return -EINVAL;
	}
	struct ws_payload *p = ws_payload_new(c, (size_t)n);
	struct ws_batch *b = p ? ws_batch_new(c, c->index, WS_SEND, p, NULL, 1) : NULL;
	if (p)
		ws_payload_unref(c, p);
	if (!b) {
		free(cl);
		return -ENOMEM;
	}
	memcpy(p->data, req, (size_t)n);
	b->holds++;
	r = out_push_raw(c, wc, b, p);
	batch_unhold(c, b);
	if (r < 0) {
		free(cl);
		return r;
	}
	w->ctr.frames_out--; /* a request, not a frame */
	cl->req_left = (size_t)n;
	wc->cl = cl;
	wc->client = 1;
	wc->state = WS_CONNECTING;
	return 0;
}

/* Ends a client socket that never opened: the layer above hears of it once (on_open with
 * err), then it goes, through the backend's own report when it holds a connection. */
static void client_fail(struct core *c, struct ws_conn *wc, int err, const char *why)
{
	struct ws_core *w = c->ws;
	struct ws_client *cl = wc->cl;
	if (!cl)
		return;
	if (!wc->raised) {
		wc->raised = 1;
		w->ctr.client_failures++;
		if (why)
			log_info("core %u ws %u: outbound WebSocket to %s failed: %s (%s)", c->index,
				 wc->idx, cl->server_name[0] ? cl->server_name : "an address", why,
				 strerror(-err));
		w->up->on_open(c, wc, err);
	}
	timer_cancel(&wc->timer);
	if (cl->dialing) {
		w->nb->dial_cancel(c, cl->dial_handle); /* on_dial_failed comes back here */
		return;
	}
	if (wc->nc) {
		wc->ignore_input = 1;
		w->nb->close(c, wc->nc, NET_CLOSE_ABORT); /* on_closed comes back here */
		return;
	}
	conn_free(c, wc);
}

static void client_timer_fired(struct core *c, struct timer *t)
{
	struct ws_conn *wc = LIST_CONTAINER(t, struct ws_conn, timer);
	client_fail(c, wc, -ETIMEDOUT, "no connection and handshake in time");
}

static void client_start(struct core *c, struct ws_conn *wc)
{
	struct ws_core *w = c->ws;
	struct ws_client *cl = wc->cl;
	if (!cl || cl->started)
		return;
	cl->started = 1;
	w->ctr.dials++;
	int r = w->nb->dial ? w->nb->dial(c, &cl->dial, &w->client_ev, wc, &cl->dial_handle)
			    : -EOPNOTSUPP;
	if (r < 0) {
		client_fail(c, wc, r, r == -EOPNOTSUPP ? "this network backend cannot dial (or has no TLS)"
						       : "could not dial");
		return;
	}
	cl->dialing = 1;
	timer_arm(c, &wc->timer, c->now_ms + WS_CLIENT_TIMEOUT_MS, client_timer_fired);
}

void ws_client_start(struct core *c, struct ws_conn *wc)
{
	client_start(c, wc);
}

unsigned ws_client_failed_status(struct core *c) { return c->ws->failed_status; }

struct ws_conn *ws_lookup(struct core *c, ws_handle h)
{
	return ws_handle_core(h) == c->index ? slot_lookup(c->ws, h) : NULL;
}

int ws_is_open(const struct ws_conn *wc)
{
	return wc->state == WS_OPEN && wc->nc && !wc->close_sent && !wc->raised;
}

void ws_abort_local(struct core *c, struct ws_conn *wc)
{
	struct ws_core *w = c->ws;
	if (wc->cl) {
		client_fail(c, wc, -ECANCELED, NULL);
		return;
	}
	wc->ignore_input = 1;
	raise_closed(c, wc, WS_CLOSE_ABNORMAL, NULL, 0, 0);
	if (wc->nc)
		w->nb->close(c, wc->nc, NET_CLOSE_ABORT); /* on_closed frees it */
}

static void *client_on_accept(struct core *c, struct net_conn *nc)
{
	struct ws_conn *wc = nc->user;
	DURO_ASSERT(wc->cl && wc->cl->dialing);
	wc->cl->dialing = 0;
	wc->nc = nc;
	want_write(c, wc); /* the request */
	return wc;
}

static void client_dial_failed(struct core *c, void *user, int err)
{
	struct ws_conn *wc = user;
	DURO_ASSERT(wc->cl && wc->cl->dialing);
	wc->cl->dialing = 0;
	client_fail(c, wc, err, "could not connect");
}

/* Bytes of the server's answer: its head, then perhaps the first frames. */
static void client_answer(struct core *c, struct ws_conn *wc, const char *data, size_t len)
{
	struct ws_core *w = c->ws;
	struct ws_client *cl = wc->cl;
	if (wc->raised)
		return; /* failed, closing */
	size_t room = sizeof(cl->resp) - cl->got;
	size_t take = len < room ? len : room;
	memcpy(cl->resp + cl->got, data, take);
	cl->got += take;
	int status;
	const char *why;
	long r = ws_client_check_response(cl->resp, cl->got, cl->accept, &status, &why);
	if (r == 0 && cl->got == sizeof(cl->resp)) {
		r = -EPROTO;
		why = "the answer's head is too large";
	}
	if (r == 0)
		return;
	if (r < 0) {
		char buf[128];
		if (status && r == -ECONNREFUSED)
			snprintf(buf, sizeof(buf), "%s: %d", why, status);
		w->ctr.client_bad_answers++;
		w->failed_status = r == -ECONNREFUSED ? (unsigned)status : 0;
		client_fail(c, wc, (int)r, status && r == -ECONNREFUSED ? buf : why);
		w->failed_status = 0;
		return;
	}
	/* Open: from here on a socket like an accepted one, frames both ways. */
	wc->cl = NULL;
	wc->state = WS_OPEN;
	timer_cancel(&wc->timer);
	w->ctr.opened++;
	w->up->on_open(c, wc, 0);
	want_write(c, wc); /* what the object sent while it was connecting */
	parse(c, wc, (const uint8_t *)cl->resp + r, cl->got - (size_t)r);
	if (take < len && !wc->ignore_input)
		parse(c, wc, (const uint8_t *)data + take, len - take);
	free(cl);
}

void ws_drain(struct core *c, unsigned within_ms)
{
	struct ws_core *w = c->ws;
	for (struct list_node *p = w->all.next, *next; p != &w->all; p = next) {
		next = p->next;
		struct ws_conn *wc = LIST_CONTAINER(p, struct ws_conn, node);
		if (wc->cl && wc->cl->started) {
			client_fail(c, wc, -ECANCELED, NULL);
			continue;
		}
		if (wc->state == WS_OPEN)
			ws_close_local(c, wc, WS_CLOSE_GOING_AWAY, "server shutting down");
		/* Closing ones too: a peer that does not answer or read is cut off in time for
		 * the process to end cleanly. */
		if (wc->close_sent && (!timer_armed(&wc->timer) || wc->timer.expires_ms > c->now_ms + within_ms))
			timer_arm(c, &wc->timer, c->now_ms + within_ms, close_timer_fired);
	}
}

uint64_t ws_open_sockets(struct core *c) { return c->ws ? c->ws->ctr.active : 0; }
const struct ws_counters *ws_counters(struct core *c) { return &c->ws->ctr; }

/* ---- per core ---- */

int ws_core_init(struct core *c, const struct ws_config *cfg, const struct net_backend *nb,
		 const struct ws_events *ev, unsigned max_sockets)
{
	struct ws_core *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	c->ws = w;
	w->cfg = cfg;
	w->nb = nb;
	w->up = ev;
	w->max_sockets = max_sockets;
	w->free_head = SLOT_NONE;
	list_init(&w->all);
	w->net_ev = (struct net_events){ .on_accept = on_accept_never, .on_data = on_data,
					 .fill_output = fill_output,
					 .fill_output_shared = fill_output_shared, .on_sent = on_sent,
					 .on_closed = on_closed };
	w->client_ev = w->net_ev;
	w->client_ev.on_accept = client_on_accept;
	w->client_ev.on_dial_failed = client_dial_failed;
	if (getrandom(&w->rng, sizeof(w->rng), 0) != (ssize_t)sizeof(w->rng) || !w->rng)
		w->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)w; /* never zero */
	pool_init(&w->conns, "ws_conn", sizeof(struct ws_conn), 1024, max_sockets);
	pool_init(&w->outs, "ws_out", sizeof(struct ws_out), 4096, 0);
	pool_init(&w->ctrls, "ws_ctrl", 128, 256, 0);
	pool_init(&w->payloads, "ws_payload", sizeof(struct ws_payload) + SMALL_PAYLOAD, 1024, 0);
	pool_init(&w->batches, "ws_batch",
		  sizeof(struct ws_batch) + BATCH_INLINE * sizeof(ws_handle), 1024, 0);
	core_set_msg_handler(c, MSG_WS_BATCH, on_batch);
	core_set_msg_handler(c, MSG_WS_BATCH_DONE, on_batch_done);
	return 0;
}

void ws_core_fini(struct core *c)
{
	struct ws_core *w = c->ws;
	if (!w)
		return;
	pool_destroy(&w->conns);
	pool_destroy(&w->outs);
	pool_destroy(&w->ctrls);
	pool_destroy(&w->payloads);
	pool_destroy(&w->batches);
	free(w->slots);
	free(w);
	c->ws = NULL;
}
