/* The `uring` backend: kernel TCP through the core's io_uring. Connections live in direct
 * descriptors (accepted by uring_listen.c), receive by multishot receive into a provided
 * buffer ring (plain receive into a per-connection buffer where the kernel has no buffer
 * rings), and send with one batched sendmsg per connection per loop turn. */
#include "uring_int.h"
#include "base_assert.h"
#include "core.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Provided receive buffers: 2048 x 4 KiB per core. Idle connections hold none. */
#define RBUF_COUNT 2048u
#define RBUF_SIZE 4096u
#define RBUF_GROUP 0
#define SEND_IOV_MAX 32

enum conn_state { CS_OPEN, CS_DRAINING, CS_LINGER, CS_CLOSING };

/* What a sendmsg reads until it completes. Taken from a per-core pool for the send only:
 * an idle connection (tens of thousands of hibernated WebSockets) does not carry it. */
struct uring_send {
	struct msghdr msg;
	struct iovec iov[SEND_IOV_MAX];
};

struct uring_conn {
	struct net_conn pub; /* first: the handle the upper layer sees */
	struct uring_op recv_op, send_op, shut_op, close_op, cancel_op;
	int fd; /* direct descriptor index */
	unsigned ops; /* SQEs in flight that name this connection */
	enum conn_state state;
	int err;
	uint8_t recv_armed, dirty, closed_reported, peer_eof, paused, close_sent;
	struct list_node dirty_node;
	struct uring_send *send; /* while a send is in flight */
	struct buf *rbuf; /* fallback receive buffer (no buffer ring) */
	struct timer linger;
};

#define CONN_OF(opptr, member) LIST_CONTAINER(opptr, struct uring_conn, member)

static void conn_maybe_free(struct core *c, struct uring_conn *uc);
static void conn_abort(struct core *c, struct uring_conn *uc, int err);

static struct io_uring_sqe *op_sqe(struct core *c, struct uring_conn *uc, struct uring_op *op)
{
	struct io_uring_sqe *sqe = core_sqe(c);
	io_uring_sqe_set_data64(sqe, core_tag(op, CQE_NET));
	if (uc)
		uc->ops++;
	return sqe;
}

/* ---- receive ---- */

static void arm_recv(struct core *c, struct uring_conn *uc)
{
	struct net_core *nc = c->net;
	if (uc->recv_armed || uc->paused || uc->state == CS_CLOSING)
		return;
	struct io_uring_sqe *sqe;
	if (nc->have_br) {
		sqe = op_sqe(c, uc, &uc->recv_op);
		io_uring_prep_recv_multishot(sqe, uc->fd, NULL, 0, 0);
		sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
		sqe->buf_group = RBUF_GROUP;
	} else {
		if (!uc->rbuf) {
			uc->rbuf = buf_new(&c->bufs, BUF_SMALL_SIZE);
			if (!uc->rbuf) {
				conn_abort(c, uc, -ENOMEM);
				return;
			}
		}
		sqe = op_sqe(c, uc, &uc->recv_op);
		io_uring_prep_recv(sqe, uc->fd, uc->rbuf->data, uc->rbuf->cap, 0);
		sqe->flags |= IOSQE_FIXED_FILE;
	}
	uc->recv_armed = 1;
}

static void recycle_rbuf(struct net_core *nc, unsigned bid)
{
	io_uring_buf_ring_add(nc->br, nc->rbufs + (size_t)bid * RBUF_SIZE, RBUF_SIZE,
			      (unsigned short)bid, nc->br_mask, 0);
	io_uring_buf_ring_advance(nc->br, 1);
}

static void on_recv(struct core *c, struct uring_conn *uc, struct io_uring_cqe *cqe)
{
	struct net_core *nc = c->net;
	int res = cqe->res;
	if (!(cqe->flags & IORING_CQE_F_MORE))
		uc->recv_armed = 0;
	const char *data = NULL;
	int bid = -1;
	if (res > 0) {
		if (nc->have_br) {
			DURO_ASSERT(cqe->flags & IORING_CQE_F_BUFFER);
			bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
			data = nc->rbufs + (size_t)bid * RBUF_SIZE;
		} else {
			data = uc->rbuf->data;
		}
	} else if (cqe->flags & IORING_CQE_F_BUFFER) {
		recycle_rbuf(nc, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	}

	if (res > 0) {
		nc->ctr.recv_bytes += (uint64_t)res;
		/* The upper layer copies what it keeps: the buffer goes back to the kernel at
		 * once, so a slow request can never pin the ring's buffers. */
		/* Bytes that raced a pause are still delivered: the layer above buffers them. */
		if (uc->state == CS_OPEN || uc->state == CS_DRAINING)
			uc->pub.ev->on_data(c, &uc->pub, data, (size_t)res);
		if (bid >= 0)
			recycle_rbuf(nc, (unsigned)bid);
	} else if (res == 0) {
		/* Peer's FIN. */
		if (uc->state == CS_LINGER) {
			conn_abort(c, uc, 0);
		} else if (uc->state != CS_CLOSING && !uc->peer_eof) {
			/* No more reads; the upper layer closes once its replies are out. */
			uc->peer_eof = 1;
			uc->pub.ev->on_data(c, &uc->pub, NULL, 0);
		}
	} else if (res == -ENOBUFS) {
		nc->ctr.recv_nobufs++; /* all buffers in use: re-armed below, data waits in the kernel */
	} else if (res != -ECANCELED) {
		if (uc->state != CS_CLOSING) {
			nc->ctr.resets++;
			conn_abort(c, uc, res);
		}
	}
	if (!uc->recv_armed && !uc->peer_eof &&
	    (uc->state == CS_OPEN || uc->state == CS_DRAINING || uc->state == CS_LINGER))
		arm_recv(c, uc);
}

/* ---- send ---- */

static void conn_mark_dirty(struct core *c, struct uring_conn *uc)
{
	if (uc->dirty)
		return;
	uc->dirty = 1;
	list_add_tail(&c->net->dirty, &uc->dirty_node);
}

static void start_shutdown(struct core *c, struct uring_conn *uc)
{
	/* Half-close, then read until the peer closes too: a reset would destroy the replies
	 * still in flight if the peer has unread requests of its own. */
	struct io_uring_sqe *sqe = op_sqe(c, uc, &uc->shut_op);
	io_uring_prep_shutdown(sqe, uc->fd, SHUT_WR);
	sqe->flags |= IOSQE_FIXED_FILE;
	uc->state = CS_LINGER;
	uc->paused = 0; /* reading resumes only to see the peer's FIN */
	arm_recv(c, uc);
}

static void linger_expired(struct core *c, struct timer *t)
{
	struct uring_conn *uc = LIST_CONTAINER(t, struct uring_conn, linger);
	conn_abort(c, uc, 0);
}

static void flush_conn(struct core *c, struct uring_conn *uc)
{
	struct net_core *nc = c->net;
	if (uc->send || uc->state == CS_CLOSING || uc->state == CS_LINGER)
		return;
	struct uring_send *ss = pool_get(&nc->sends);
	if (!ss) {
		conn_abort(c, uc, -ENOMEM);
		return;
	}
	unsigned n = uc->pub.ev->fill_output(c, &uc->pub, ss->iov, SEND_IOV_MAX);
	if (n == 0) {
		pool_put(&nc->sends, ss);
		if (uc->state == CS_DRAINING && uc->peer_eof) {
			conn_abort(c, uc, 0); /* both sides done: a plain close sends FIN */
		} else if (uc->state == CS_DRAINING) {
			start_shutdown(c, uc);
			timer_arm(c, &uc->linger, c->now_ms + nc->cfg->linger_ms, linger_expired);
		}
		return;
	}
	memset(&ss->msg, 0, sizeof(ss->msg));
	ss->msg.msg_iov = ss->iov;
	ss->msg.msg_iovlen = n;
	uc->send = ss;
	struct io_uring_sqe *sqe = op_sqe(c, uc, &uc->send_op);
	io_uring_prep_sendmsg(sqe, uc->fd, &ss->msg, MSG_NOSIGNAL);
	sqe->flags |= IOSQE_FIXED_FILE;
	nc->ctr.sends++;
}

static void on_send(struct core *c, struct uring_conn *uc, struct io_uring_cqe *cqe)
{
	struct net_core *nc = c->net;
	pool_put(&nc->sends, uc->send);
	uc->send = NULL;
	if (cqe->res < 0) {
		if (uc->state != CS_CLOSING) {
			nc->ctr.resets++;
			conn_abort(c, uc, cqe->res);
		}
		return;
	}
	nc->ctr.sent_bytes += (uint64_t)cqe->res;
	if (uc->state == CS_CLOSING)
		return;
	uc->pub.ev->on_sent(c, &uc->pub, (size_t)cqe->res);
	conn_mark_dirty(c, uc); /* more may be queued, or a partial write left a tail */
}

static void uring_flush_hook(struct core *c)
{
	struct net_core *nc = c->net;
	while (!list_empty(&nc->dirty)) {
		struct uring_conn *uc = LIST_CONTAINER(nc->dirty.next, struct uring_conn, dirty_node);
		list_del(&uc->dirty_node);
		uc->dirty = 0;
		flush_conn(c, uc);
	}
}

/* ---- close ---- */

static void conn_abort(struct core *c, struct uring_conn *uc, int err)
{
	if (uc->state == CS_CLOSING)
		return;
	uc->state = CS_CLOSING;
	uc->err = err;
	timer_cancel(&uc->linger);
	if (uc->dirty) {
		list_del(&uc->dirty_node);
		uc->dirty = 0;
	}
	if (uc->ops) {
		/* Requests still name the slot: they are cancelled, and the slot is closed only
		 * when the last one has completed (conn_maybe_free). A request the kernel hands
		 * to a worker (a shutdown) looks the slot up when it runs: closed before that, the
		 * slot may hold the next connection accepted, which it would then act on. */
		struct io_uring_sqe *sqe = op_sqe(c, uc, &uc->cancel_op);
		io_uring_prep_cancel_fd(sqe, uc->fd, IORING_ASYNC_CANCEL_ALL |
						     IORING_ASYNC_CANCEL_FD_FIXED);
		return;
	}
	uc->close_sent = 1;
	struct io_uring_sqe *sqe = op_sqe(c, uc, &uc->close_op);
	io_uring_prep_close_direct(sqe, (unsigned)uc->fd);
}

static void conn_maybe_free(struct core *c, struct uring_conn *uc)
{
	struct net_core *nc = c->net;
	if (uc->state != CS_CLOSING || uc->ops)
		return;
	if (!uc->close_sent) {
		/* The last request naming the slot is done: now it can be closed. */
		uc->close_sent = 1;
		struct io_uring_sqe *sqe = op_sqe(c, uc, &uc->close_op);
		io_uring_prep_close_direct(sqe, (unsigned)uc->fd);
		return;
	}
	/* Every SQE naming this connection has completed: nobody reads its memory now. */
	if (!uc->closed_reported) {
		uc->closed_reported = 1;
		if (uc->pub.user)
			uc->pub.ev->on_closed(c, &uc->pub, uc->err);
	}
	if (uc->rbuf)
		buf_unref(&c->bufs, uc->rbuf);
	nc->ctr.closed++;
	nc->ctr.active--;
	pool_put(&nc->conns, uc);
}

static void uring_close(struct core *c, struct net_conn *conn, enum net_close_how how)
{
	struct uring_conn *uc = (struct uring_conn *)conn;
	if (how == NET_CLOSE_ABORT) {
		conn_abort(c, uc, 0);
		return;
	}
	if (uc->state != CS_OPEN)
		return;
	uc->state = CS_DRAINING;
	conn_mark_dirty(c, uc);
}

static void uring_pause_read(struct core *c, struct net_conn *conn, int paused)
{
	struct uring_conn *uc = (struct uring_conn *)conn;
	if (uc->paused == !!paused || uc->state == CS_CLOSING)
		return;
	uc->paused = !!paused;
	if (paused && uc->recv_armed) {
		struct io_uring_sqe *sqe = op_sqe(c, uc, &uc->cancel_op);
		io_uring_prep_cancel64(sqe, core_tag(&uc->recv_op, CQE_NET), 0);
	} else if (!paused && !uc->peer_eof) {
		arm_recv(c, uc);
	}
}

static void uring_want_write(struct core *c, struct net_conn *conn)
{
	struct uring_conn *uc = (struct uring_conn *)conn;
	if (uc->state == CS_OPEN || uc->state == CS_DRAINING)
		conn_mark_dirty(c, uc);
}

/* ---- new connections ---- */

static void close_fixed(struct core *c, int fd)
{
	struct io_uring_sqe *sqe = core_sqe(c);
	io_uring_prep_close_direct(sqe, (unsigned)fd);
	io_uring_sqe_set_data64(sqe, core_tag(NULL, CQE_CORE)); /* result not needed */
}

void uring_note_refused(struct core *c, const char *why)
{
	struct net_core *nc = c->net;
	nc->ctr.refused++;
	if (c->now_ms >= nc->refused_logged_ms + 1000) {
		nc->refused_logged_ms = c->now_ms;
		log_warn("core %u: refusing connections: %s (%llu refused so far)", c->index, why,
			 (unsigned long long)nc->ctr.refused);
	}
}

void uring_conn_new(struct core *c, unsigned listener, int fd)
{
	struct net_core *nc = c->net;
	struct uring_conn *uc = pool_get(&nc->conns);
	if (!uc) {
		uring_note_refused(c, "connection table full (limits.max_connections_per_core)");
		close_fixed(c, fd);
		return;
	}
	memset(uc, 0, sizeof(*uc));
	uc->recv_op.type = OP_RECV;
	uc->send_op.type = OP_SEND;
	uc->shut_op.type = OP_SHUTDOWN;
	uc->close_op.type = OP_CLOSE;
	uc->cancel_op.type = OP_CANCEL;
	uc->fd = fd;
	uc->pub.id = ++nc->next_id;
	uc->pub.core = (uint16_t)c->index;
	uc->pub.listener = (uint16_t)listener;
	uc->state = CS_OPEN;
	uc->pub.ev = nc->ev;
	nc->ctr.accepted++;
	nc->ctr.active++;
	uc->pub.user = nc->ev->on_accept(c, &uc->pub);
	if (!uc->pub.user) {
		uring_note_refused(c, "no memory for the connection's state");
		conn_abort(c, uc, 0);
	} else {
		arm_recv(c, uc);
	}
}

void uring_conn_dialed(struct core *c, int fd, const struct net_events *ev, void *user)
{
	struct net_core *nc = c->net;
	struct uring_conn *uc = pool_get(&nc->conns);
	if (!uc) {
		close_fixed(c, fd);
		nc->ctr.dial_failures++;
		ev->on_dial_failed(c, user, -EMFILE);
		return;
	}
	memset(uc, 0, sizeof(*uc));
	uc->recv_op.type = OP_RECV;
	uc->send_op.type = OP_SEND;
	uc->shut_op.type = OP_SHUTDOWN;
	uc->close_op.type = OP_CLOSE;
	uc->cancel_op.type = OP_CANCEL;
	uc->fd = fd;
	uc->pub.id = ++nc->next_id;
	uc->pub.core = (uint16_t)c->index;
	uc->pub.listener = UINT16_MAX; /* outbound */
	uc->state = CS_OPEN;
	uc->pub.ev = ev;
	uc->pub.user = user;
	nc->ctr.dialed++;
	nc->ctr.active++;
	if (!ev->on_accept(c, &uc->pub)) {
		uc->pub.user = NULL; /* refused: no on_closed for it */
		conn_abort(c, uc, 0);
	} else {
		arm_recv(c, uc);
	}
}

/* ---- completion dispatch ---- */

static void uring_cqe(struct core *c, void *ptr, struct io_uring_cqe *cqe)
{
	struct uring_op *op = ptr;
	struct uring_conn *uc = NULL;
	core_did_work(c);
	switch (op->type) {
	case OP_ACCEPT:
	case OP_POLL:
	case OP_INSTALL:
		uring_listen_cqe(c, op, cqe);
		return;
	case OP_CONNECT:
	case OP_DIAL_INSTALL:
		uring_dial_cqe(c, op, cqe);
		return;
	case OP_RECV:
		uc = CONN_OF(op, recv_op);
		if (!(cqe->flags & IORING_CQE_F_MORE))
			uc->ops--;
		on_recv(c, uc, cqe);
		break;
	case OP_SEND:
		uc = CONN_OF(op, send_op);
		uc->ops--;
		on_send(c, uc, cqe);
		break;
	case OP_SHUTDOWN:
		uc = CONN_OF(op, shut_op);
		uc->ops--;
		break;
	case OP_CLOSE:
		uc = CONN_OF(op, close_op);
		uc->ops--;
		break;
	case OP_CANCEL:
		uc = CONN_OF(op, cancel_op);
		uc->ops--;
		break;
	default:
		DURO_UNREACHABLE();
	}
	conn_maybe_free(c, uc);
}

/* ---- set-up ---- */

static int setup_buf_ring(struct core *c)
{
	struct net_core *nc = c->net;
	size_t ring_bytes = RBUF_COUNT * sizeof(struct io_uring_buf);
	void *ring_mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
			      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (ring_mem == MAP_FAILED)
		return -errno;
	struct io_uring_buf_reg reg = { .ring_addr = (unsigned long)ring_mem,
					.ring_entries = RBUF_COUNT,
					.bgid = RBUF_GROUP };
	int r = io_uring_register_buf_ring(&c->ring, &reg, 0);
	if (r < 0) {
		munmap(ring_mem, ring_bytes);
		return r;
	}
	nc->br = ring_mem;
	nc->rbufs = aligned_alloc(4096, (size_t)RBUF_COUNT * RBUF_SIZE);
	if (!nc->rbufs)
		return -ENOMEM;
	nc->br_mask = io_uring_buf_ring_mask(RBUF_COUNT);
	io_uring_buf_ring_init(nc->br);
	for (unsigned i = 0; i < RBUF_COUNT; i++)
		io_uring_buf_ring_add(nc->br, nc->rbufs + (size_t)i * RBUF_SIZE, RBUF_SIZE,
				      (unsigned short)i, nc->br_mask, (int)i);
	io_uring_buf_ring_advance(nc->br, RBUF_COUNT);
	nc->have_br = 1;
	return 0;
}

static int uring_core_init(struct core *c, const struct net_config *cfg,
			   const struct net_events *ev)
{
	struct net_core *nc = calloc(1, sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	c->net = nc;
	nc->cfg = cfg;
	nc->ev = ev;
	list_init(&nc->dirty);
	pool_init(&nc->conns, "conn", sizeof(struct uring_conn), 256, cfg->max_conns_per_core);
	pool_init(&nc->sends, "send", sizeof(struct uring_send), 64, 0);
	uring_dial_pool_init(nc);
	core_set_cqe_handler(c, CQE_NET, uring_cqe);
	core_add_hook(c, uring_flush_hook);
	/* First: it makes the listener descriptors valid to close, and fails early on a taken
	 * address. */
	int r = uring_listen_init(c);
	if (r < 0)
		return r;

	r = io_uring_register_files_sparse(&c->ring, cfg->max_conns_per_core);
	if (r < 0) {
		log_error("core %u: io_uring_register_files_sparse(%u): %s", c->index,
			  cfg->max_conns_per_core, strerror(-r));
		return r;
	}
	r = cfg->no_buffer_ring ? -EOPNOTSUPP : setup_buf_ring(c);
	if (r == -EOPNOTSUPP) {
		nc->have_br = 0; /* asked for by the config */
	} else if (r < 0) {
		log_warn("core %u: no provided buffer ring (%s): receiving into per-connection buffers",
			 c->index, strerror(-r));
		nc->have_br = 0;
	}
	return 0;
}

static int uring_start_accepting(struct core *c) { return uring_listen_start(c); }
static void uring_stop_accepting(struct core *c) { uring_listen_drain(c); }
static unsigned uring_listening(struct core *c) { return c->net ? c->net->open_listeners : 0; }

static void uring_core_fini(struct core *c)
{
	struct net_core *nc = c->net;
	if (!nc)
		return;
	uring_listen_fini(c);
	pool_destroy(&nc->conns);
	pool_destroy(&nc->sends);
	pool_destroy(&nc->dials);
	free(nc->rbufs);
	if (nc->br)
		munmap(nc->br, RBUF_COUNT * sizeof(struct io_uring_buf));
	free(nc);
	c->net = NULL;
}

static const struct net_counters *uring_counters(struct core *c) { return &c->net->ctr; }

static void uring_set_events(struct core *c, struct net_conn *conn, const struct net_events *ev)
{
	(void)c;
	conn->ev = ev;
}

const struct net_backend net_uring = {
	.name = "uring",
	.core_init = uring_core_init,
	.core_fini = uring_core_fini,
	.want_write = uring_want_write,
	.close = uring_close,
	.pause_read = uring_pause_read,
	.set_events = uring_set_events,
	.start_accepting = uring_start_accepting,
	.stop_accepting = uring_stop_accepting,
	.listening = uring_listening,
	.counters = uring_counters,
	.dial = uring_dial,
	.dial_cancel = uring_dial_cancel,
};
