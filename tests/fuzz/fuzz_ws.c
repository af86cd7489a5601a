/* libFuzzer target: untrusted bytes into a WebSocket connection's frame parser (the real
 * ws_conn code on a real core's pools and timers), in pieces whose sizes the input
 * chooses, with the output drained as a backend would; plus the pure framing checks. */
#include "core.h"
#include "timer.h"
#include "ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The backend side: records what the connection asks for; nothing goes on a wire. */
static int closed_how = -1;
static void nb_want_write(struct core *c, struct net_conn *conn) { (void)c; (void)conn; }
static void nb_close(struct core *c, struct net_conn *conn, enum net_close_how how)
{
	(void)c;
	(void)conn;
	closed_how = (int)how;
}
static void nb_pause(struct core *c, struct net_conn *conn, int paused)
{
	(void)c;
	(void)conn;
	(void)paused;
}
static void nb_set_events(struct core *c, struct net_conn *conn, const struct net_events *ev)
{
	(void)c;
	conn->ev = ev;
}
static const struct net_backend fuzz_backend = { .name = "fuzz", .want_write = nb_want_write,
						 .close = nb_close, .pause_read = nb_pause,
						 .set_events = nb_set_events };

static uint64_t messages, closes;
static void on_message(struct core *c, struct ws_conn *wc, int binary, struct buf *msg)
{
	(void)wc;
	/* Text that reached the layer above must be UTF-8. */
	if (!binary && ws_utf8_feed(0, (const uint8_t *)msg->data, msg->len) != 0)
		abort();
	messages++;
	buf_unref(&c->bufs, msg);
}
static void on_closed(struct core *c, struct ws_conn *wc, unsigned code, const char *reason,
		      size_t rlen, int clean)
{
	(void)c;
	(void)wc;
	(void)reason;
	(void)clean;
	if (rlen > WS_MAX_CONTROL || (code != 1005 && code != 1006 && !ws_close_code_valid(code)))
		abort();
	closes++;
}
static const struct ws_events fuzz_events = { .on_message = on_message, .on_closed = on_closed };
static const struct ws_config fuzz_cfg = { .max_message_bytes = 1 << 16,
					   .max_outbound_bytes = 1 << 16, .close_timeout_ms = 10 };

static struct core *setup(void)
{
	static struct core *c;
	static struct core_group g;
	if (c)
		return c;
	c = aligned_alloc(64, sizeof(*c));
	memset(c, 0, sizeof(*c));
	g.ncores = 1;
	g.cores[0] = c;
	c->group = &g;
	buf_pool_init(&c->bufs, 4096);
	if (timer_wheel_create(c, 0) < 0 || ws_core_init(c, &fuzz_cfg, &fuzz_backend, &fuzz_events, 16) < 0)
		abort();
	return c;
}

/* Drains queued output as a backend that writes `step` bytes per call. */
static void drain(struct core *c, struct net_conn *nc, size_t step)
{
	struct iovec iov[16];
	for (int rounds = 0; rounds < 64; rounds++) {
		unsigned n = nc->ev->fill_output(c, nc, iov, 16);
		if (n == 0)
			return;
		size_t total = 0;
		for (unsigned i = 0; i < n; i++)
			total += iov[i].iov_len;
		nc->ev->on_sent(c, nc, total < step ? total : step);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct core *c = setup();
	size_t step = (size_t)(data[0] % 32) + 1;
	size_t out_step = (size_t)(data[1] % 200) + 1;
	data += 2;
	size -= 2;

	/* The pure checks, on the same bytes: incremental UTF-8 agrees with one pass. */
	uint32_t whole = ws_utf8_feed(0, data, size), split = 0;
	for (size_t i = 0; i < size; i += step)
		split = ws_utf8_feed(split, data + i, size - i < step ? size - i : step);
	if ((whole == WS_UTF8_BAD) != (split == WS_UTF8_BAD) ||
	    (whole != WS_UTF8_BAD && whole != split))
		abort();
	uint16_t code;
	ws_check_close(data, size < 125 ? size : 125, &code);

	/* A socket taken over from HTTP, fed the input as it would arrive. */
	struct ws_conn *wc = ws_reserve(c, WS_KIND_SOCKET, NULL);
	if (!wc)
		abort();
	struct net_conn nc = { .core = 0 };
	closed_how = -1;
	ws_takeover(c, wc, &nc, NULL, 0);
	for (size_t i = 0; i < size && closed_how < 0; i += step) {
		nc.ev->on_data(c, &nc, (const char *)data + i, size - i < step ? size - i : step);
		drain(c, &nc, out_step);
	}
	drain(c, &nc, out_step);
	/* The backend reports the connection gone: everything it held is released. */
	nc.ev->on_closed(c, &nc, 0);
	c->now_ms += 100;
	timer_run(c, c->now_ms);
	if (ws_open_sockets(c) != 0)
		abort();
	return 0;
}
