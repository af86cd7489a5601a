/* The `uring` backend's insides, shared by its two files: uring.c (connections: receive,
 * send, close) and uring_listen.c (listening sockets and accepting). */
#ifndef DURO_NET_URING_INT_H
#define DURO_NET_URING_INT_H

#include "net.h"
#include "list.h"
#include "pool.h"
#include "timer.h"

#include <liburing.h>

enum uring_op_type {
	OP_ACCEPT = 1, /* an accept round on a listener */
	OP_RECV,
	OP_SEND,
	OP_SHUTDOWN,
	OP_CLOSE,
	OP_CANCEL,
	OP_POLL,    /* readiness of the core's listeners (through its epoll descriptor) */
	OP_INSTALL, /* accept4 fallback: a kernel socket moved into the direct table */
	OP_CONNECT, /* an outbound connection's connect (uring_dial.c) */
	OP_DIAL_INSTALL, /* its socket moved into the direct table */
};

/* 8-aligned: its address travels in user_data with the completion kind in the low bits. */
struct uring_op {
	uint8_t type;
} __attribute__((aligned(8)));

enum uring_listen_state {
	LS_BOUND,     /* address taken, not listening: a SYN is refused, nothing is queued */
	LS_LISTENING, /* every core is ready: connections are taken */
	LS_DRAINING,  /* stopping: new SYNs are dropped, connections already under way taken */
	LS_CLOSED,
};

struct uring_listener {
	struct uring_op op; /* its accept round */
	int fd;             /* a plain descriptor, never registered with io_uring; -1 once closed */
	unsigned index;     /* in net_config.listen */
	enum uring_listen_state state;
	uint8_t round;      /* an accept round is in flight */
	uint8_t again;      /* readiness was reported during the round: another one after it */
	struct timer retry; /* after a refusal (table full) or a full accept4 batch */
};

struct net_core {
	const struct net_config *cfg;
	const struct net_events *ev;
	struct uring_listener listeners[DURO_MAX_LISTENERS];
	unsigned nlisteners;
	unsigned open_listeners; /* not yet closed */
	int epfd;                /* the listeners' readiness, polled by the ring (uring_listen.c) */
	struct uring_op poll_op;
	int poll_armed;
	int dontwait;    /* accept rounds with IORING_ACCEPT_DONTWAIT; 0: accept4 (older kernels) */
	int dontwait_ok; /* a round has worked: an EINVAL now is not the kernel refusing the flag */
	struct pool installs;    /* accept4 fallback: sockets on their way into the direct table */
	struct timer close_timer; /* while draining: closes each listener once its queue is empty */
	struct pool conns;
	struct pool sends; /* struct uring_send, one per send in flight */
	struct pool dials; /* struct uring_dial, one per outbound connection being made */
	uint32_t next_id;
	uint64_t refused_logged_ms; /* refusals are logged at most once a second */
	struct list_node dirty; /* connections with output to send this turn */
	/* provided buffer ring */
	struct io_uring_buf_ring *br;
	char *rbufs;
	unsigned br_mask;
	int have_br;
	struct net_counters ctr;
};

/* uring.c: a new connection on direct descriptor `fd`, accepted on listener `listener`;
 * the connection owns the descriptor from here on (closed if it cannot be kept). */
void uring_conn_new(struct core *c, unsigned listener, int fd);
/* uring.c: an outbound connection established on direct descriptor `fd`: made a
 * connection with events `ev` and user state `user`, then ev->on_accept. */
void uring_conn_dialed(struct core *c, int fd, const struct net_events *ev, void *user);
/* uring_dial.c: outbound connections (net_backend.dial), a completion of OP_CONNECT or
 * OP_DIAL_INSTALL. */
int uring_dial(struct core *c, const struct net_dial *d, const struct net_events *ev, void *user,
	       uint64_t *handle);
void uring_dial_cancel(struct core *c, uint64_t handle);
void uring_dial_pool_init(struct net_core *nc);
void uring_dial_cqe(struct core *c, struct uring_op *op, struct io_uring_cqe *cqe);
/* Counts a refused connection, with a log line at most once a second. */
void uring_note_refused(struct core *c, const char *why);

/* uring_listen.c, each on the core's own thread. */
/* Creates the listening sockets and binds them (no listen yet): 0 or a negative errno,
 * after a log line naming the address. */
int uring_listen_init(struct core *c);
/* Starts listening and accepting: 0 or a negative errno (logged). */
int uring_listen_start(struct core *c);
/* Stops taking new connections without resetting any that the kernel has taken. */
void uring_listen_drain(struct core *c);
/* A completion of OP_ACCEPT, OP_POLL or OP_INSTALL. */
void uring_listen_cqe(struct core *c, struct uring_op *op, struct io_uring_cqe *cqe);
void uring_listen_fini(struct core *c);

#endif
