/* durobench: HTTP/1.1 keep-alive load generator for duro. N connections on one epoll
 * thread, each with `pipeline` requests in flight, names drawn from a set, a log-linear
 * latency histogram, a JSON summary on stdout. With --ws, a WebSocket room instead: N
 * members, one of them sending timestamped messages with `pipeline` broadcasts in flight,
 * every delivery to every member timed (fan-out latency). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define SUB_BITS 6 /* 64 sub-buckets per power of two: under 1.6% error */
#define HIST_SIZE (64 << SUB_BITS)
#define MAX_PIPELINE 256
#define RBUF 65536

struct conn {
	int fd;
	SSL *ssl; /* --tls */
	unsigned inflight;
	uint64_t sent_ns[MAX_PIPELINE]; /* ring of send times, oldest first */
	unsigned head;
	char rbuf[RBUF];
	size_t rlen;
	uint64_t rng;
	uint64_t next_seq; /* --verify: the broadcast this member must get next */
};

static struct {
	const char *host;
	int port;
	unsigned conns, pipeline, names;
	double duration, warmup;
	const char *method, *prefix;
	uint64_t max_requests;
	const char *ws_path; /* --ws: the room to join */
	unsigned size;       /* --size: bytes per WebSocket message */
	int tls;             /* --tls: every connection speaks TLS (no certificate check) */
	uint64_t messages;   /* --messages: broadcasts to send, then stop once all arrived */
	int verify;          /* --verify: every member checks every message, bytes and order */
	int wait_go;         /* --wait-go: once every member is in, say "ready" and wait for a line */
	FILE *timeline;      /* --timeline: "send_ns latency_ns" per measured request */
	uint64_t sql_rows;   /* --sql-point N: Sql class point reads of rows 1..N of table t */
} opt = { "127.0.0.1", 8787, 64, 1, 0, 10.0, 1.0, "POST", "/counter/", 0, NULL, 64, 0, 0, 0, 0, NULL, 0 };

static SSL_CTX *tls_ctx;

/* With --tls: the handshake, on the still-blocking socket. */
static int tls_wrap(struct conn *c)
{
	if (!tls_ctx)
		return 0;
	c->ssl = SSL_new(tls_ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	return SSL_connect(c->ssl) == 1 ? 0 : -1;
}

static ssize_t io_send(struct conn *c, const void *p, size_t n)
{
	if (!c->ssl)
		return send(c->fd, p, n, MSG_NOSIGNAL);
	int r = SSL_write(c->ssl, p, (int)n);
	return r > 0 ? r : -1;
}

static ssize_t io_recv(struct conn *c, void *p, size_t n)
{
	if (!c->ssl)
		return recv(c->fd, p, n, 0);
	int r = SSL_read(c->ssl, p, (int)n);
	if (r > 0)
		return r;
	return SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

/* Decrypted bytes may wait inside the TLS library, where epoll cannot see them. */
static int io_more(struct conn *c) { return c->ssl && SSL_pending(c->ssl) > 0; }

static uint64_t hist[HIST_SIZE];
static uint64_t done, errors, non2xx, measured;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned hist_index(uint64_t v)
{
	if (v < (1u << SUB_BITS))
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - SUB_BITS;
	unsigned idx = ((shift + 1) << SUB_BITS) + (unsigned)((v >> shift) & ((1u << SUB_BITS) - 1));
	return idx < HIST_SIZE ? idx : HIST_SIZE - 1;
}

static uint64_t hist_value(unsigned idx)
{
	if (idx < (1u << SUB_BITS))
		return idx;
	unsigned shift = (idx >> SUB_BITS) - 1;
	uint64_t sub = idx & ((1u << SUB_BITS) - 1);
	return ((1ull << SUB_BITS) | sub) << shift;
}

static double percentile(double p)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < HIST_SIZE; i++)
		total += hist[i];
	if (!total)
		return 0;
	uint64_t want = (uint64_t)(p / 100.0 * (double)total), acc = 0;
	if (want >= total)
		want = total - 1;
	for (unsigned i = 0; i < HIST_SIZE; i++) {
		acc += hist[i];
		if (acc > want)
			return (double)hist_value(i) / 1000.0; /* ns -> µs */
	}
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static int send_request(struct conn *c)
{
	char req[512];
	int n;
	if (opt.sql_rows) {
		char body[160];
		int bl = snprintf(body, sizeof(body),
				  "{\"sql\": \"SELECT id, length(b) FROM t WHERE id = ?\", \"params\": [%llu]}",
				  (unsigned long long)(xorshift(&c->rng) % opt.sql_rows + 1));
		n = snprintf(req, sizeof(req), "POST %shot HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n%s",
			     opt.prefix, bl, body);
	} else if (opt.names)
		n = snprintf(req, sizeof(req), "%s %sn%llu HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n\r\n",
			     opt.method, opt.prefix, (unsigned long long)(xorshift(&c->rng) % opt.names));
	else
		n = snprintf(req, sizeof(req), "%s %shot HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n\r\n",
			     opt.method, opt.prefix);
	ssize_t w = io_send(c, req, (size_t)n);
	if (w != n)
		return -1;
	c->sent_ns[(c->head + c->inflight) % MAX_PIPELINE] = now_ns();
	c->inflight++;
	return 0;
}

/* Consumes complete responses from rbuf; returns how many, or -1 on a protocol error. */
static int parse_responses(struct conn *c, uint64_t t, int measuring)
{
	int got = 0;
	size_t off = 0;
	for (;;) {
		char *start = c->rbuf + off;
		size_t avail = c->rlen - off;
		char *end = memmem(start, avail, "\r\n\r\n", 4);
		if (!end)
			break;
		size_t head = (size_t)(end - start) + 4;
		char *cl = memmem(start, head, "Content-Length: ", 16);
		size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
		if (avail < head + body)
			break;
		if (avail < 12 || memcmp(start, "HTTP/1.1 ", 9) != 0)
			return -1;
		int status = atoi(start + 9);
		if (status < 200 || status > 299)
			non2xx++;
		if (c->inflight == 0)
			return -1;
		uint64_t lat = t - c->sent_ns[c->head];
		c->head = (c->head + 1) % MAX_PIPELINE;
		c->inflight--;
		if (measuring) {
			hist[hist_index(lat)]++;
			measured++;
			if (opt.timeline) /* CLOCK_MONOTONIC, as a script's time.monotonic() */
				fprintf(opt.timeline, "%llu %llu\n", (unsigned long long)(t - lat),
					(unsigned long long)lat);
		}
		done++;
		off += head + body;
		got++;
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	return got;
}

static int connect_one(struct conn *c, struct sockaddr_in *sa, int ep)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)sa, sizeof(*sa)) < 0)
		return -1;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (tls_wrap(c) < 0)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* ---- WebSocket mode ---- */

/* Opens a WebSocket to path into c (blocking until the 101 is read); 0 or -1. */
static int ws_open(struct conn *c, struct sockaddr_in *sa, const char *path)
{
	int fd = c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (tls_wrap(c) < 0)
		return -1;
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: ZHVyb2JlbmNoLWtleS0xMg==\r\nSec-WebSocket-Version: 13\r\n\r\n",
			 path);
	if (io_send(c, req, (size_t)n) != n)
		return -1;
	char buf[1024];
	size_t got = 0;
	/* Byte at a time up to the blank line: nothing after it may be swallowed. */
	while (got < sizeof(buf) - 1) {
		if (io_recv(c, buf + got, 1) != 1)
			return -1;
		got++;
		if (got >= 4 && memcmp(buf + got - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	buf[got] = 0;
	if (strncmp(buf, "HTTP/1.1 101", 12) != 0) {
		fprintf(stderr, "durobench: upgrade refused: %.40s\n", buf);
		return -1;
	}
	return 0;
}

/* --verify: the body after the header fields, a pattern that depends on the sequence. */
static char verify_byte(uint64_t seq, size_t i) { return (char)('a' + (seq * 7 + i) % 26); }

/* A masked text frame carrying the send time (and with --verify its sequence number and a
 * pattern derived from it: "t<16 hex>s<8 hex>..."), padded to opt.size bytes. */
static size_t ws_message(char *out, uint64_t t, uint64_t seq)
{
	size_t n = opt.size < 26 ? 26 : opt.size;
	size_t h = 0;
	out[h++] = (char)0x81;
	if (n < 126) {
		out[h++] = (char)(0x80 | n);
	} else {
		out[h++] = (char)(0x80 | 126);
		out[h++] = (char)(n >> 8);
		out[h++] = (char)n;
	}
	static const unsigned char key[4] = { 0x5a, 0x17, 0xc3, 0x8e };
	memcpy(out + h, key, 4);
	h += 4;
	char plain[65536];
	snprintf(plain, sizeof(plain), "t%016llxs%08llx", (unsigned long long)t,
		 (unsigned long long)(seq & 0xffffffffu));
	for (size_t i = 26; i < n; i++)
		plain[i] = opt.verify ? verify_byte(seq, i) : 'x';
	for (size_t i = 0; i < n; i++)
		out[h + i] = (char)(plain[i] ^ key[i & 3]);
	return h + n;
}

static int ws_main(struct sockaddr_in *sa)
{
	if (opt.size > 60000) {
		fprintf(stderr, "durobench: --size at most 60000\n");
		return 2;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct conn *conns = calloc(opt.conns, sizeof(*conns));
	for (unsigned i = 0; i < opt.conns; i++) {
		if (ws_open(&conns[i], sa, opt.ws_path) < 0) {
			fprintf(stderr, "durobench: member %u: %s\n", i, strerror(errno));
			return 1;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &conns[i] };
		epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
	}
	if (opt.wait_go) {
		/* The caller changes the network (adds loss) between set-up and load. */
		fprintf(stderr, "ready\n");
		fflush(stderr);
		char line[16];
		if (!fgets(line, sizeof(line), stdin))
			return 1;
	}
	struct conn *sender = &conns[0];
	uint64_t t0 = now_ns();
	/* With --messages everything counts, and --duration is the deadline. */
	uint64_t t_measure = opt.messages ? t0 : t0 + (uint64_t)(opt.warmup * 1e9);
	uint64_t t_end = t_measure + (uint64_t)(opt.duration * 1e9);
	uint64_t deliveries = 0, sent = 0, sent_measured = 0, verify_errors = 0, complete = 0;
	unsigned inflight = 0;
	struct epoll_event evs[256];
	uint64_t t = t0;
	char frame[65536 + 16];
	while (t < t_end && (!opt.messages || complete < opt.conns)) {
		/* Keep `pipeline` broadcasts in flight: one is done when its sender has it back. */
		while (inflight < opt.pipeline && (!opt.messages || sent < opt.messages)) {
			size_t n = ws_message(frame, now_ns(), sent);
			if (io_send(sender, frame, n) != (ssize_t)n) {
				fprintf(stderr, "durobench: send: %s\n", strerror(errno));
				return 1;
			}
			inflight++;
			sent++;
			sent_measured += t >= t_measure;
		}
		int n = epoll_wait(ep, evs, 256, 100);
		t = now_ns();
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
		ws_again:;
			ssize_t r = io_recv(c, c->rbuf + c->rlen, RBUF - c->rlen);
			if (r <= 0) {
				fprintf(stderr, "durobench: member %s\n", r == 0 ? "closed by server" : strerror(errno));
				errors++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				continue;
			}
			c->rlen += (size_t)r;
			size_t off = 0;
			for (;;) {
				unsigned char *p = (unsigned char *)c->rbuf + off;
				size_t avail = c->rlen - off;
				if (avail < 2)
					break;
				size_t len = p[1] & 0x7f, hl = 2;
				if (len == 126) {
					if (avail < 4)
						break;
					len = (size_t)p[2] << 8 | p[3];
					hl = 4;
				} else if (len == 127) {
					fprintf(stderr, "durobench: unexpected 64-bit frame\n");
					return 1;
				}
				if (avail < hl + len)
					break;
				if ((p[0] & 0x0f) == 0x8) {
					fprintf(stderr, "durobench: member closed with %u\n",
						len >= 2 ? (unsigned)p[hl] << 8 | p[hl + 1] : 1005);
					return 1;
				}
				if (len >= 26 && p[hl] == 't') {
					char hex[17];
					memcpy(hex, p + hl + 1, 16);
					hex[16] = 0;
					uint64_t ts = strtoull(hex, NULL, 16);
					if (t >= t_measure) {
						hist[hist_index(t - ts)]++;
						deliveries++;
					}
					if (opt.verify) {
						/* In order, none missing, every byte as sent. */
						memcpy(hex, p + hl + 18, 8);
						hex[8] = 0;
						uint64_t seq = strtoull(hex, NULL, 16);
						int bad = len != (opt.size < 26 ? 26 : opt.size) || p[hl + 17] != 's' ||
							  seq != (c->next_seq & 0xffffffffu);
						for (size_t k = 26; k < len && !bad; k++)
							bad = p[hl + k] != (unsigned char)verify_byte(c->next_seq, k);
						verify_errors += bad;
					}
					if (++c->next_seq == opt.messages)
						complete++;
					if (c == sender && inflight)
						inflight--;
				}
				off += hl + len;
			}
			memmove(c->rbuf, c->rbuf + off, c->rlen - off);
			c->rlen -= off;
			if (io_more(c))
				goto ws_again;
		}
	}
	double secs = (double)(t - t_measure) / 1e9;
	uint64_t least = UINT64_MAX;
	for (unsigned i = 0; i < opt.conns; i++)
		if (conns[i].next_seq < least)
			least = conns[i].next_seq;
	printf("{\"mode\": \"ws\", \"members\": %u, \"window\": %u, \"size\": %u, \"seconds\": %.3f, "
	       "\"broadcasts\": %llu, \"deliveries\": %llu, \"deliveries_per_s\": %.0f, "
	       "\"errors\": %llu, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, "
	       "\"p999_us\": %.1f, \"max_us\": %.1f, \"completed\": %llu, \"members_complete\": %llu, "
	       "\"verified\": %s, \"verify_errors\": %llu}\n",
	       opt.conns, opt.pipeline, opt.size, secs, (unsigned long long)sent_measured,
	       (unsigned long long)deliveries, secs > 0 ? (double)deliveries / secs : 0,
	       (unsigned long long)errors, percentile(50), percentile(90), percentile(99),
	       percentile(99.9), percentile(100), (unsigned long long)least,
	       (unsigned long long)complete, opt.verify ? "true" : "false",
	       (unsigned long long)verify_errors);
	fflush(stdout);
	for (unsigned i = 0; i < opt.conns; i++) {
		if (conns[i].ssl)
			SSL_free(conns[i].ssl);
		close(conns[i].fd);
	}
	free(conns);
	close(ep);
	if (opt.messages && complete < opt.conns)
		return 1;
	return errors || verify_errors ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: durobench [--host H] [--port P] [--conns N] [--pipeline K] [--names N]\n"
		"                 [--duration S] [--warmup S] [--method M] [--prefix /counter/]\n"
		"                 [--requests N] [--timeline FILE] [--sql-point ROWS]\n"
		"  --sql-point N: POST <prefix>hot point reads by primary key of rows 1..N of\n"
		"  table t (the Sql class), one random row per request.\n"
		"  --names 0 sends every request to <prefix>hot (one object); N > 0 draws\n"
		"  <prefix>n<i> for i uniform in [0, N).  Output: one JSON object.\n"
		"  --timeline writes \"SEND_NS LATENCY_NS\" per measured request (CLOCK_MONOTONIC).\n"
		"       durobench --ws /room/NAME [--conns MEMBERS] [--pipeline WINDOW] [--size BYTES]\n"
		"                 [--messages N [--verify]] [--wait-go] ...\n"
		"  WebSocket room: member 0 sends, every member's deliveries are timed. With\n"
		"  --messages, N broadcasts, then it ends once every member has all of them\n"
		"  (--duration is then the deadline; exit 1 if missed); --verify checks each one's\n"
		"  order and bytes at every member. --wait-go: once all are in, print \"ready\" on\n"
		"  stderr and start when a line comes on stdin.\n"
		"  --tls speaks TLS on every connection (https, wss; no certificate check).\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", 1, 0, 'H' }, { "port", 1, 0, 'p' }, { "conns", 1, 0, 'c' },
		{ "pipeline", 1, 0, 'k' }, { "names", 1, 0, 'n' }, { "duration", 1, 0, 'd' },
		{ "warmup", 1, 0, 'w' }, { "method", 1, 0, 'm' }, { "prefix", 1, 0, 'x' },
		{ "requests", 1, 0, 'r' }, { "ws", 1, 0, 'W' }, { "size", 1, 0, 's' }, { "tls", 0, 0, 'T' },
		{ "messages", 1, 0, 'N' }, { "verify", 0, 0, 'V' }, { "wait-go", 0, 0, 'G' },
		{ "timeline", 1, 0, 'L' }, { "sql-point", 1, 0, 'S' },
		{ "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
	int o;
	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'c': opt.conns = (unsigned)atoi(optarg); break;
		case 'k': opt.pipeline = (unsigned)atoi(optarg); break;
		case 'n': opt.names = (unsigned)atoi(optarg); break;
		case 'd': opt.duration = atof(optarg); break;
		case 'w': opt.warmup = atof(optarg); break;
		case 'm': opt.method = optarg; break;
		case 'x': opt.prefix = optarg; break;
		case 'r': opt.max_requests = strtoull(optarg, NULL, 10); break;
		case 'W': opt.ws_path = optarg; break;
		case 's': opt.size = (unsigned)atoi(optarg); break;
		case 'T': opt.tls = 1; break;
		case 'N': opt.messages = strtoull(optarg, NULL, 10); break;
		case 'V': opt.verify = 1; break;
		case 'G': opt.wait_go = 1; break;
		case 'L':
			if (!(opt.timeline = fopen(optarg, "w"))) {
				fprintf(stderr, "durobench: %s: %s\n", optarg, strerror(errno));
				return 2;
			}
			break;
		case 'S': opt.sql_rows = strtoull(optarg, NULL, 10); break;
		default: usage(); return 2;
		}
	}
	if (opt.conns == 0 || opt.pipeline == 0 || opt.pipeline > MAX_PIPELINE || opt.duration <= 0) {
		usage();
		return 2;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
	if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) {
		fprintf(stderr, "durobench: bad host %s\n", opt.host);
		return 2;
	}
	if (opt.tls) {
		tls_ctx = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL); /* a load generator, not a client to trust */
	}
	if (opt.ws_path)
		return ws_main(&sa);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct conn *conns = calloc(opt.conns, sizeof(*conns));
	for (unsigned i = 0; i < opt.conns; i++) {
		conns[i].rng = 0x9e3779b97f4a7c15ull * (i + 1);
		if (connect_one(&conns[i], &sa, ep) < 0) {
			fprintf(stderr, "durobench: connect %s:%d: %s\n", opt.host, opt.port, strerror(errno));
			return 1;
		}
	}
	for (unsigned i = 0; i < opt.conns; i++)
		for (unsigned k = 0; k < opt.pipeline; k++)
			if (send_request(&conns[i]) < 0) {
				fprintf(stderr, "durobench: send: %s\n", strerror(errno));
				return 1;
			}
	uint64_t t0 = now_ns();
	uint64_t t_measure = t0 + (uint64_t)(opt.warmup * 1e9);
	uint64_t t_end = t_measure + (uint64_t)(opt.duration * 1e9);
	struct epoll_event evs[256];
	uint64_t t = t0;
	while (t < t_end && (!opt.max_requests || done < opt.max_requests)) {
		int n = epoll_wait(ep, evs, 256, 100);
		t = now_ns();
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
		http_again:;
			ssize_t r = io_recv(c, c->rbuf + c->rlen, RBUF - c->rlen);
			if (r <= 0) {
				fprintf(stderr, "durobench: connection %s\n", r == 0 ? "closed by server" : strerror(errno));
				errors++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				continue;
			}
			c->rlen += (size_t)r;
			int got = parse_responses(c, t, t >= t_measure);
			if (got < 0) {
				fprintf(stderr, "durobench: bad response\n");
				return 1;
			}
			for (int k = 0; k < got; k++)
				if (send_request(c) < 0)
					errors++;
			if (io_more(c))
				goto http_again;
		}
	}
	double secs = (double)(t - t_measure) / 1e9;
	printf("{\"conns\": %u, \"pipeline\": %u, \"names\": %u, \"method\": \"%s\", "
	       "\"seconds\": %.3f, \"requests\": %llu, \"rps\": %.0f, \"non2xx\": %llu, "
	       "\"errors\": %llu, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, "
	       "\"p999_us\": %.1f, \"max_us\": %.1f}\n",
	       opt.conns, opt.pipeline, opt.names, opt.method, secs,
	       (unsigned long long)measured, secs > 0 ? (double)measured / secs : 0,
	       (unsigned long long)non2xx, (unsigned long long)errors, percentile(50),
	       percentile(90), percentile(99), percentile(99.9), percentile(100));
	if (opt.timeline && fclose(opt.timeline) != 0) {
		fprintf(stderr, "durobench: writing the timeline: %s\n", strerror(errno));
		return 1;
	}
	return errors || non2xx ? 1 : 0;
}
