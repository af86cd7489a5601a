/* The network backend interface: connection handles and events, the same for kernel
 * sockets through io_uring and for the DPDK stack, so nothing above knows which runs. */
#ifndef DURO_NET_NET_H
#define DURO_NET_NET_H

#include "core-t.h"
#include "base_limits.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct net_listen {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char text[64]; /* as configured, for logs */
	int tls;       /* connections here speak TLS (the tls layer, not the backend) */
};

struct net_config {
	struct net_listen listen[DURO_MAX_LISTENERS];
	unsigned nlisten;
	unsigned max_conns_per_core; /* beyond it new connections are refused and counted */
	unsigned backlog;
	unsigned linger_ms; /* after a graceful close, how long to drain the peer's bytes */
	int no_buffer_ring; /* uring: receive into per-connection buffers even when the kernel
			     * has provided buffer rings (for old kernels and for tests) */
	int accept4;        /* uring: accept with accept4(2) even where io_uring rounds work
			     * (what kernels before 6.10 get by themselves; for tests) */
};

/* Returns 0 or -EINVAL: "127.0.0.1:8787", "[::1]:8787", "0.0.0.0:80". */
int net_parse_addr(const char *text, struct net_listen *out);
struct net_dial;
/* The same text as an address to dial (plain: tls and server_name unset). 0 or -EINVAL. */
int net_parse_dial(const char *text, struct net_dial *out);

/* Checks that nobody (another durod included) listens on the address: SO_REUSEPORT would
 * otherwise let a second process silently take half the connections. Returns 0, or a
 * negative errno (-EADDRINUSE) with a log line. Racy by nature; it catches the mistake. */
int net_probe_listen(const struct net_listen *nl);

/* The handle the layer above sees. The backend owns it: it stays valid from on_accept
 * until on_closed returns, and not a moment longer. */
struct net_events;
struct net_conn {
	void *user;     /* the layer above's state for this connection */
	/* Where this connection's events go: the core's events at accept; a layer that takes
	 * the connection over from another (HTTP to WebSocket) points it at its own. */
	const struct net_events *ev;
	void *layer;    /* a stream layer's state (TLS) between the backend and the user */
	uint32_t id;    /* unique per core, for logs and the control plane */
	uint16_t core;
	uint16_t listener;
	uint8_t secure; /* carried over TLS (set by the tls layer) */
};

enum net_close_how {
	NET_CLOSE_GRACEFUL, /* send what is queued, half-close, drain, then close */
	NET_CLOSE_ABORT,    /* close now; queued output is dropped */
};

/* Output memory many connections send from (a broadcast frame encoded once), named to the
 * backend by fill_output_shared. A backend that sends without copying may keep reading
 * such bytes after on_sent (a TCP stack keeps them until they are acknowledged): it then
 * counts a hold in `holds`, and when its last use ends it takes the hold back and calls
 * `release`, on the core of the connections that sent from it (one core per share),
 * never from inside a call the layer above made. The memory must stay, unchanged, while
 * holds is not 0; the layer above zeroes the share when it makes it. */
struct net_share {
	uint32_t holds;
	void (*release)(struct core *c, struct net_share *sh);
	/* The backend's own: where its record of this memory is, while it holds it. */
	void *priv;
};

/* Events the backend raises on the connection's core. */
struct net_events {
	/* A new connection; returns its user state, or NULL to refuse (it is closed). */
	void *(*on_accept)(struct core *c, struct net_conn *conn);
	/* Bytes arrived; `data` is valid only during the call. len 0: the peer sent FIN. */
	void (*on_data)(struct core *c, struct net_conn *conn, const char *data, size_t len);
	/* The backend can send: fill up to `max` iovecs with queued output (front first) and
	 * return how many. The bytes are lent to the backend: a send may read them until the
	 * next on_sent (whatever it reports) or on_closed, so until then they must not be
	 * freed, moved or changed, even if the layer above gives up on them. A backend that
	 * was lent bytes (a return over 0) ends the loan with on_sent, 0 when it took none,
	 * or on_closed before it calls fill_output again. */
	unsigned (*fill_output)(struct core *c, struct net_conn *conn, struct iovec *iov,
				unsigned max);
	/* `n` bytes from the front of the output were sent (may be a partial write); this ends
	 * the loan of what fill_output lent, sent or not. */
	void (*on_sent)(struct core *c, struct net_conn *conn, size_t n);
	/* The connection is gone (peer reset, error, or after net close); `err` is 0 or the
	 * negative errno that ended it. The handle is freed when this returns. */
	void (*on_closed)(struct core *c, struct net_conn *conn, int err);
	/* Optional: fill_output that also sets share[i] to the shared memory iov[i] lies in
	 * (NULL for bytes of this connection only). The loan of private bytes ends at on_sent
	 * as above; shared ones may be held longer (struct net_share). A layer that copies
	 * (TLS) does not offer it, and a backend may always call fill_output instead. */
	unsigned (*fill_output_shared)(struct core *c, struct net_conn *conn, struct iovec *iov,
				       struct net_share **share, unsigned max);
	/* Outbound connections (net_backend.dial) only: the connection was never made (err:
	 * refused, unreachable, -ECANCELED by dial_cancel, -ENOMEM); `user` as given to dial. */
	void (*on_dial_failed)(struct core *c, void *user, int err);
};

/* An outbound connection to open (net_backend.dial). */
struct net_dial {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int tls;                 /* speak TLS over it (a TLS layer's; the plain backends refuse) */
	const char *server_name; /* TLS: the name sent (SNI) and checked against the certificate */
};

struct net_counters {
	uint64_t accepted, refused, closed, resets, recv_bytes, sent_bytes;
	uint64_t sends, recv_nobufs, accept_errors;
	uint64_t active;
	uint64_t dialed, dial_failures; /* outbound connections made, and those that failed */
};

/* A backend is a table of functions chosen once at start. */
struct net_backend {
	const char *name;
	/* Per-core set-up on the core's own thread; returns 0 or a negative errno. Listen
	 * addresses are taken (bound) but no connection is: see start_accepting. */
	int (*core_init)(struct core *c, const struct net_config *cfg, const struct net_events *ev);
	/* Starts taking connections, on each core once every core has started: a connection
	 * the kernel takes must be answered, so none is taken before all can serve. Returns 0
	 * or a negative errno. */
	int (*start_accepting)(struct core *c);
	void (*core_fini)(struct core *c);
	/* There is output to send: fill_output will be called, batched at the end of the turn. */
	void (*want_write)(struct core *c, struct net_conn *conn);
	void (*close)(struct core *c, struct net_conn *conn, enum net_close_how how);
	/* Stops (paused 1) or resumes (0) reading, so TCP pushes back on a client that sends
	 * faster than its requests are answered. */
	void (*pause_read)(struct core *c, struct net_conn *conn, int paused);
	/* Sends this connection's events to `ev` from now on: a layer taking the connection
	 * over from another (HTTP to WebSocket) calls this, never sets conn->ev itself, so a
	 * stream layer underneath (TLS) stays in between. */
	void (*set_events)(struct core *c, struct net_conn *conn, const struct net_events *ev);
	/* Stops taking new connections (drain, shutdown). Connections the kernel has already
	 * taken (queued, or completing their handshake) still come up through on_accept for a
	 * short while; none is reset. */
	void (*stop_accepting)(struct core *c);
	/* Listening sockets (or their equivalent) still open: a core is not done draining
	 * until this is 0. */
	unsigned (*listening)(struct core *c);
	const struct net_counters *(*counters)(struct core *c);
	/* Counters beyond net_counters (the dpdk stack's packets, drops by reason, TCP
	 * states); NULL where a backend has none. Returns how many, with their names. */
	unsigned (*more_counters)(struct core *c, const char *const **names, const uint64_t **vals);
	/* Opens an outbound connection on this core, events to `ev`: once it is established
	 * ev->on_accept(c, conn) is called with conn->user already `user` (its return value is
	 * ignored unless NULL, which closes it), then it runs as an accepted one; if it cannot
	 * be made, ev->on_dial_failed(c, user, err) instead. Returns 0 with *handle set (for
	 * dial_cancel, until either event), or a negative errno (-EOPNOTSUPP: this backend
	 * has no outbound connections, or no TLS; -EMFILE, -ENOMEM) and no event follows.
	 * NULL where a backend has none. */
	int (*dial)(struct core *c, const struct net_dial *d, const struct net_events *ev,
		    void *user, uint64_t *handle);
	/* Gives up a dial not yet reported: on_dial_failed(-ECANCELED) follows. */
	void (*dial_cancel)(struct core *c, uint64_t handle);
};

extern const struct net_backend net_uring;
/* net_dpdk: dpdk/dpdk.h */

#endif
