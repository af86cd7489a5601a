/* The `uring` backend's listening sockets: one SO_REUSEPORT listener per core and address,
 * bound at start, listening only once every core can serve, accepted in rounds when the
 * core's epoll descriptor reports them ready, closed at a drain only with nothing queued.
 *
 * Why not one multishot accept armed on each listener: an armed io_uring request holds a
 * reference to its socket, and after a crash or SIGKILL the ring is torn down by a kernel
 * worker after the process is gone, so the listener outlives the process by milliseconds,
 * takes connections into its queue and then resets them (measured here: 50 to 130
 * connections taken in the 5 ms after the dead process was reaped). An epoll descriptor
 * holds no reference to what it watches, so the ring polls that; each round is a multishot
 * accept with IORING_ACCEPT_DONTWAIT (Linux 6.10), which takes what is queued and ends, so
 * no request waits on a listener. Older kernels refuse the flag: there a round is accept4
 * calls, each socket moved into the direct table with IORING_OP_FILES_UPDATE. */
#include "uring_int.h"
#include "base_assert.h"
#include "core.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IORING_ACCEPT_DONTWAIT
#define IORING_ACCEPT_DONTWAIT (1U << 1)
#endif

/* After a refused round (direct table full, no memory), wait this long before the next. */
#define ACCEPT_RETRY_MS 10
/* accept4 calls in one round; the rest wait for the next turn. */
#define ACCEPT4_BATCH 64
/* A draining listener drops new SYNs but stays open this long, so that connections whose
 * handshake was under way (SYN answered, final ACK on its way) still arrive and are taken;
 * then it is closed as soon as its queue is seen empty. */
#define LISTEN_DRAIN_MS 200
#define LISTEN_CLOSE_RETRY_MS 1

/* accept4 fallback: a socket on its way into the ring's direct table. */
struct install {
	struct uring_op op;
	int slot;          /* in: the plain descriptor; out: the kernel's chosen table slot */
	int fd;            /* the plain descriptor, closed once the table holds the socket */
	unsigned listener;
};

static void start_round(struct core *c, struct uring_listener *l);

/* ---- set-up ---- */

static int bind_listener(struct core *c, const struct net_listen *nl)
{
	/* Non-blocking for the accept4 fallback; an io_uring round does not wait either way. */
	int fd = socket(nl->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		log_error("core %u: socket for %s: %s", c->index, nl->text, strerror(e));
		return -e;
	}
	int one = 1;
	/* Accepted sockets inherit TCP_NODELAY: responses leave at once, corked by batching. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		int e = errno;
		log_error("core %u: socket options for %s: %s", c->index, nl->text, strerror(e));
		close(fd);
		return -e;
	}
	if (nl->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&nl->addr, nl->addrlen) < 0) {
		int e = errno;
		log_error("core %u: bind %s: %s", c->index, nl->text, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

int uring_listen_init(struct core *c)
{
	struct net_core *nc = c->net;
	const struct net_config *cfg = nc->cfg;
	nc->epfd = -1;
	for (unsigned i = 0; i < DURO_MAX_LISTENERS; i++)
		nc->listeners[i].fd = -1;
	nc->poll_op.type = OP_POLL;
	nc->dontwait = !cfg->accept4;
	pool_init(&nc->installs, "accept4", sizeof(struct install), 16, 0);
	nc->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (nc->epfd < 0) {
		int e = errno;
		log_error("core %u: epoll_create1: %s", c->index, strerror(e));
		return -e;
	}
	/* Binding now (not listening) lets a taken address fail the start before any core
	 * has taken a connection it would then have to reset. */
	for (unsigned i = 0; i < cfg->nlisten; i++) {
		int fd = bind_listener(c, &cfg->listen[i]);
		if (fd < 0)
			return fd;
		struct uring_listener *l = &nc->listeners[nc->nlisteners++];
		l->op.type = OP_ACCEPT;
		l->fd = fd;
		l->index = i;
		l->state = LS_BOUND;
		nc->open_listeners++;
	}
	return 0;
}

static void arm_poll(struct core *c)
{
	struct net_core *nc = c->net;
	if (nc->poll_armed || nc->open_listeners == 0)
		return;
	struct io_uring_sqe *sqe = core_sqe(c);
	io_uring_prep_poll_multishot(sqe, nc->epfd, POLLIN);
	io_uring_sqe_set_data64(sqe, core_tag(&nc->poll_op, CQE_NET));
	nc->poll_armed = 1;
}

int uring_listen_start(struct core *c)
{
	struct net_core *nc = c->net;
	for (unsigned i = 0; i < nc->nlisteners; i++) {
		struct uring_listener *l = &nc->listeners[i];
		const struct net_listen *nl = &nc->cfg->listen[l->index];
		if (listen(l->fd, (int)nc->cfg->backlog) < 0) {
			int e = errno;
			log_error("core %u: listen on %s: %s", c->index, nl->text, strerror(e));
			return -e;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		if (epoll_ctl(nc->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
			int e = errno;
			log_error("core %u: epoll_ctl for %s: %s", c->index, nl->text, strerror(e));
			return -e;
		}
		l->state = LS_LISTENING;
	}
	arm_poll(c);
	return 0;
}

/* ---- accept rounds ---- */

static void accept_retry(struct core *c, struct timer *t)
{
	start_round(c, LIST_CONTAINER(t, struct uring_listener, retry));
}

/* A refused round leaves the connections queued; the next is tried after a pause. */
static void round_refused(struct core *c, struct uring_listener *l, int err)
{
	c->net->ctr.accept_errors++;
	if (err == -ENFILE || err == -EMFILE)
		uring_note_refused(c, "connection table full (limits.max_connections_per_core)");
	else if (err == -ENOMEM || err == -ENOBUFS)
		uring_note_refused(c, "out of memory");
	else
		log_warn("core %u: accept: %s", c->index, strerror(-err));
	timer_arm(c, &l->retry, c->now_ms + ACCEPT_RETRY_MS, accept_retry);
}

static void accept4_round(struct core *c, struct uring_listener *l)
{
	struct net_core *nc = c->net;
	for (unsigned n = 0; n < ACCEPT4_BATCH; n++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == ECONNABORTED || errno == EINTR)
				continue;
			round_refused(c, l, -errno);
			return;
		}
		struct install *in = pool_get(&nc->installs);
		if (!in) {
			close(fd);
			uring_note_refused(c, "out of memory");
			continue;
		}
		in->op.type = OP_INSTALL;
		in->slot = fd;
		in->fd = fd;
		in->listener = l->index;
		struct io_uring_sqe *sqe = core_sqe(c);
		io_uring_prep_files_update(sqe, &in->slot, 1, (int)IORING_FILE_INDEX_ALLOC);
		io_uring_sqe_set_data64(sqe, core_tag(&in->op, CQE_NET));
	}
	/* A full batch: more may be queued, and readiness is not reported again for them. */
	timer_arm(c, &l->retry, c->now_ms, accept_retry);
}

/* Takes every connection queued on l now. Never leaves a request waiting on the socket. */
static void start_round(struct core *c, struct uring_listener *l)
{
	struct net_core *nc = c->net;
	if (l->fd < 0 || l->state == LS_BOUND)
		return;
	if (l->round) {
		l->again = 1;
		return;
	}
	timer_cancel(&l->retry);
	l->again = 0;
	if (!nc->dontwait) {
		accept4_round(c, l);
		return;
	}
	struct io_uring_sqe *sqe = core_sqe(c);
	io_uring_prep_multishot_accept_direct(sqe, l->fd, NULL, NULL, 0);
	sqe->ioprio |= IORING_ACCEPT_DONTWAIT;
	io_uring_sqe_set_data64(sqe, core_tag(&l->op, CQE_NET));
	l->round = 1;
}

static void on_round(struct core *c, struct uring_listener *l, struct io_uring_cqe *cqe)
{
	struct net_core *nc = c->net;
	if (!(cqe->flags & IORING_CQE_F_MORE))
		l->round = 0;
	int res = cqe->res;
	if (res >= 0) {
		nc->dontwait_ok = 1;
		uring_conn_new(c, l->index, res);
	} else if (res == -EAGAIN) {
		nc->dontwait_ok = 1; /* the queue is empty: the round is over */
	} else if (res == -EINVAL && !nc->dontwait_ok) {
		/* Before 6.10 the kernel refuses IORING_ACCEPT_DONTWAIT when the request is
		 * prepared; the connections are still queued. */
		log_info("core %u: io_uring accepts without IORING_ACCEPT_DONTWAIT here (Linux "
			 "before 6.10): accepting with accept4", c->index);
		nc->dontwait = 0;
		l->again = 1;
	} else if (res != -ECANCELED) {
		round_refused(c, l, res);
	}
	if (!l->round && l->again)
		start_round(c, l);
}

static void on_install(struct core *c, struct install *in, struct io_uring_cqe *cqe)
{
	struct net_core *nc = c->net;
	close(in->fd); /* the table holds its own reference to the socket now, or none */
	if (cqe->res == 1) {
		uring_conn_new(c, in->listener, in->slot);
	} else {
		nc->ctr.accept_errors++;
		if (cqe->res == -ENFILE || cqe->res == -EMFILE)
			uring_note_refused(c, "connection table full (limits.max_connections_per_core)");
		else
			log_warn("core %u: accept: direct descriptor: %s", c->index,
				 strerror(cqe->res < 0 ? -cqe->res : EIO));
	}
	pool_put(&nc->installs, in);
}

static void on_poll(struct core *c, struct io_uring_cqe *cqe)
{
	struct net_core *nc = c->net;
	if (!(cqe->flags & IORING_CQE_F_MORE))
		nc->poll_armed = 0;
	if (cqe->res < 0 && cqe->res != -ECANCELED)
		log_warn("core %u: poll on the listeners: %s", c->index, strerror(-cqe->res));
	/* Which listener is ready does not matter: a round on an empty one ends at once. */
	for (unsigned i = 0; i < nc->nlisteners; i++)
		start_round(c, &nc->listeners[i]);
	arm_poll(c);
}

void uring_listen_cqe(struct core *c, struct uring_op *op, struct io_uring_cqe *cqe)
{
	switch (op->type) {
	case OP_ACCEPT:
		on_round(c, LIST_CONTAINER(op, struct uring_listener, op), cqe);
		break;
	case OP_POLL:
		on_poll(c, cqe);
		break;
	case OP_INSTALL:
		on_install(c, LIST_CONTAINER(op, struct install, op), cqe);
		break;
	default:
		DURO_UNREACHABLE();
	}
}

/* ---- drain ---- */

static void close_listener(struct core *c, struct uring_listener *l)
{
	struct net_core *nc = c->net;
	DURO_ASSERT(!l->round); /* an SQE naming the descriptor may not yet be submitted */
	timer_cancel(&l->retry);
	close(l->fd); /* leaves the epoll set with it */
	l->fd = -1;
	l->state = LS_CLOSED;
	nc->open_listeners--;
}

/* Closes each draining listener whose queue is empty; the others get one more round. */
static void close_when_empty(struct core *c, struct timer *t)
{
	struct net_core *nc = c->net;
	(void)t;
	for (unsigned i = 0; i < nc->nlisteners; i++) {
		struct uring_listener *l = &nc->listeners[i];
		if (l->state != LS_DRAINING || l->round)
			continue;
		/* For a listener, tcpi_unacked is the length of its accept queue. */
		struct tcp_info ti;
		socklen_t len = sizeof(ti);
		if (getsockopt(l->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_unacked) {
			start_round(c, l);
			continue;
		}
		close_listener(c, l);
	}
	if (nc->open_listeners)
		timer_arm(c, &nc->close_timer, c->now_ms + LISTEN_CLOSE_RETRY_MS, close_when_empty);
}

/* Closing a listener resets the connections in its queue, which the kernel has already
 * taken (the peers' connect returned). So a draining listener first refuses new ones with
 * a socket filter that drops bare SYNs (the peer retries the SYN in a second, and meets a
 * closed port or the next durod), takes what is queued and what is still completing its
 * handshake, and is closed once its queue is empty. */
void uring_listen_drain(struct core *c)
{
	static struct sock_filter drop_syn[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),        /* TCP flags */
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),      /* SYN | ACK */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1), /* a bare SYN: */
		BPF_STMT(BPF_RET | BPF_K, 0),                    /* dropped */
		BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),          /* everything else kept */
	};
	static const struct sock_fprog prog = { .len = 5, .filter = drop_syn };
	struct net_core *nc = c->net;
	if (!nc)
		return;
	for (unsigned i = 0; i < nc->nlisteners; i++) {
		struct uring_listener *l = &nc->listeners[i];
		if (l->state == LS_BOUND) {
			close_listener(c, l); /* never listened: nothing queued */
		} else if (l->state == LS_LISTENING) {
			if (setsockopt(l->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
				log_warn("core %u: drain: SYN filter on %s: %s (new connections are "
					 "taken until the listener closes)", c->index,
					 nc->cfg->listen[l->index].text, strerror(errno));
			l->state = LS_DRAINING;
			start_round(c, l);
		}
	}
	if (nc->open_listeners && !timer_armed(&nc->close_timer))
		timer_arm(c, &nc->close_timer, c->now_ms + LISTEN_DRAIN_MS, close_when_empty);
}

void uring_listen_fini(struct core *c)
{
	struct net_core *nc = c->net;
	timer_cancel(&nc->close_timer);
	for (unsigned i = 0; i < nc->nlisteners; i++) {
		struct uring_listener *l = &nc->listeners[i];
		timer_cancel(&l->retry);
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
	}
	if (nc->epfd >= 0)
		close(nc->epfd);
	nc->epfd = -1;
	pool_destroy(&nc->installs);
}
