/* Outbound connections of the `uring` backend: a non-blocking kernel socket connected
 * through the core's io_uring, then moved into the direct-descriptor table like an
 * accepted one (so many outbound connections do not count against the open-files limit),
 * and from there a connection like any other (uring.c).
 *
 *   socket() --OP_CONNECT--> connected --OP_DIAL_INSTALL--> direct slot --> on_accept */
#include "uring_int.h"
#include "base_assert.h"
#include "core.h"
#include "log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct uring_dial {
	struct uring_op op; /* first: its connect, then its install */
	int kfd;            /* the kernel socket until it is in the table */
	int slot;           /* in: kfd; out: the direct slot */
	uint8_t cancelled;
	struct sockaddr_storage sa; /* read by the kernel until the connect completes */
	socklen_t salen;
	const struct net_events *ev;
	void *user;
};

void uring_dial_pool_init(struct net_core *nc)
{
	pool_init(&nc->dials, "dial", sizeof(struct uring_dial), 64, 0);
}

int uring_dial(struct core *c, const struct net_dial *d, const struct net_events *ev, void *user,
	       uint64_t *handle)
{
	struct net_core *nc = c->net;
	if (d->tls)
		return -EOPNOTSUPP; /* a TLS layer's to do */
	if (d->addrlen > sizeof(d->addr))
		return -EINVAL;
	struct uring_dial *dl = pool_get(&nc->dials);
	if (!dl)
		return -ENOMEM;
	int fd = socket(d->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = -errno;
		pool_put(&nc->dials, dl);
		return e;
	}
	int one = 1;
	/* Requests go out whole at once: no Nagle delay for the small ones. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(dl, 0, sizeof(*dl));
	dl->op.type = OP_CONNECT;
	dl->kfd = fd;
	memcpy(&dl->sa, &d->addr, d->addrlen);
	dl->salen = d->addrlen;
	dl->ev = ev;
	dl->user = user;
	struct io_uring_sqe *sqe = core_sqe(c);
	io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&dl->sa, dl->salen);
	io_uring_sqe_set_data64(sqe, core_tag(&dl->op, CQE_NET));
	*handle = (uint64_t)(uintptr_t)dl;
	return 0;
}

void uring_dial_cancel(struct core *c, uint64_t handle)
{
	struct uring_dial *dl = (struct uring_dial *)(uintptr_t)handle;
	if (dl->cancelled)
		return;
	dl->cancelled = 1;
	if (dl->op.type == OP_CONNECT) {
		struct io_uring_sqe *sqe = core_sqe(c);
		io_uring_prep_cancel64(sqe, core_tag(&dl->op, CQE_NET), 0);
		io_uring_sqe_set_data64(sqe, core_tag(NULL, CQE_CORE)); /* result not needed */
	}
}

static void dial_failed(struct core *c, struct uring_dial *dl, int err)
{
	struct net_core *nc = c->net;
	nc->ctr.dial_failures++;
	const struct net_events *ev = dl->ev;
	void *user = dl->user;
	pool_put(&nc->dials, dl);
	ev->on_dial_failed(c, user, err);
}

void uring_dial_cqe(struct core *c, struct uring_op *op, struct io_uring_cqe *cqe)
{
	struct net_core *nc = c->net;
	struct uring_dial *dl = LIST_CONTAINER(op, struct uring_dial, op);
	int res = cqe->res;
	if (op->type == OP_CONNECT) {
		if (res < 0 || dl->cancelled) {
			close(dl->kfd);
			dial_failed(c, dl, dl->cancelled ? -ECANCELED : res);
			return;
		}
		dl->op.type = OP_DIAL_INSTALL;
		dl->slot = dl->kfd;
		struct io_uring_sqe *sqe = core_sqe(c);
		io_uring_prep_files_update(sqe, &dl->slot, 1, (int)IORING_FILE_INDEX_ALLOC);
		io_uring_sqe_set_data64(sqe, core_tag(&dl->op, CQE_NET));
		return;
	}
	DURO_ASSERT(op->type == OP_DIAL_INSTALL);
	close(dl->kfd); /* the table holds its own reference now, or none */
	if (res != 1) {
		dial_failed(c, dl, res < 0 ? res : -EMFILE);
		return;
	}
	if (dl->cancelled) {
		struct io_uring_sqe *sqe = core_sqe(c);
		io_uring_prep_close_direct(sqe, (unsigned)dl->slot);
		io_uring_sqe_set_data64(sqe, core_tag(NULL, CQE_CORE));
		dial_failed(c, dl, -ECANCELED);
		return;
	}
	int slot = dl->slot;
	const struct net_events *ev = dl->ev;
	void *user = dl->user;
	pool_put(&nc->dials, dl);
	uring_conn_dialed(c, slot, ev, user);
}
