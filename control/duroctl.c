/* duroctl: the operator's CLI over durod's control socket. One JSON request per command,
 * shown as text for people or as the raw reply with --json; `top` refreshes every second. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

static const char *socket_path = "./duro-data/control.sock";
static int as_json;
static int fd = -1;
static char rbuf[8 << 20]; /* the largest reply: sql's rows are cut at 4 MiB of values */
static size_t rlen;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: duroctl [--socket PATH] [--json] COMMAND [ARGS]\n"
		"\n"
		"  status                       version, uptime, backend, cores, listeners, data_dir,\n"
		"                               space of the point-in-time history\n"
		"  stats                        per core and total: connections, requests, objects,\n"
		"                               WebSockets, commits, alarms, latency, busy time\n"
		"  top [--iterations N]         stats every second, as rates (q or Ctrl-C to leave)\n"
		"  connections                  open connections and WebSockets per core\n"
		"  shards                       slots per core (and the slot -> core map with --json)\n"
		"  cluster status               cluster mode: boxes, slots per box, epochs, the\n"
		"                               rebalancer, this box's lease and state, moves\n"
		"  cluster drain BOX [--undo]   move all of BOX's slots away (then it may stop)\n"
		"  cluster rebalance            a rebalancer round now\n"
		"  config                       the effective config\n"
		"  log-level [LEVEL]            show or set: error, warn, info, debug\n"
		"  drain                        stop accepting; open connections finish\n"
		"  tls-reload                   load the TLS certificates again (like SIGHUP)\n"
		"  objects [--class C] [--after ID] [--limit N]\n"
		"                               stored objects, with names where known\n"
		"  object OBJ                   owner core, in memory or not, size, keys, alarms, sockets\n"
		"  object OBJ keys [--prefix P] [--after K] [--limit N]\n"
		"  evict OBJ                    unload an object now (its sockets stay open)\n"
		"  sql OBJ \"SQL\" [--write] [--limit N] [--param V]...\n"
		"                               run SQL on an object's database (read-only unless\n"
		"                               --write); parameters bind to the last statement\n"
		"  bookmark OBJ [--at TIME]     the object's bookmark now, or at TIME (ms since the\n"
		"                               epoch, or YYYY-MM-DDTHH:MM:SS[.mmm]Z)\n"
		"  restore OBJ BOOKMARK         the object's keys, alarms and SQL as of BOOKMARK\n"
		"                               (durable when answered); prints the undo bookmark\n"
		"  delete OBJ --yes             delete all of an object's storage, alarms and name\n"
		"  export --class C FILE        a consistent backup of class C's objects (durod writes FILE)\n"
		"  import FILE                  restore an export (into a box where the class is empty,\n"
		"                               or one made by the same box)\n"
		"  deploy CLASS FILE [--percent P] [--max-delay S | --immediate] [--check]\n"
		"                               run a new version of CLASS from a module file (.so),\n"
		"                               live: new objects at once, resident ones at their next\n"
		"                               quiescent point, all within S seconds (default 300);\n"
		"                               P%% of objects by a hash of their ID (raising P never\n"
		"                               moves one back); --check validates only\n"
		"  deploy CLASS FILE --tag TAG --binding NAME [--route /PREFIX/ [--route-id name|string]]\n"
		"                               a class no binding names yet, live: its storage made\n"
		"                               under migration tag TAG, bound as NAME, routed at PREFIX\n"
		"  versions CLASS               the last 10 versions: sha, deploy time, objects, crashes\n"
		"  rollback CLASS [SHA] [--max-delay S | --immediate]\n"
		"                               back to the previous version (or SHA)\n"
		"deploy and rollback run code as durod: only durod's user or root may use them.\n"
		"\n"
		"OBJ is an object's ID (64 hex digits) or BINDING NAME: idFromName(NAME) in that\n"
		"binding, as a route with \"id\": \"name\" computes it (duroctl object COUNTER hello).\n"
		"The socket defaults to ./duro-data/control.sock (durod's default data_dir).\n"
		"Exit status: 0 done, 1 the command failed, 2 usage, 3 durod unreachable.\n");
}

static int connect_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "duroctl: socket path too long: %s\n", socket_path);
		return -1;
	}
	memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "duroctl: cannot reach durod at %s: %s\n", socket_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Sends one request, returns the reply (new reference) or NULL. */
static json_t *call(json_t *req)
{
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	size_t n = strlen(text);
	text[n] = '\n';
	ssize_t w = send(fd, text, n + 1, MSG_NOSIGNAL);
	int send_err = w != (ssize_t)(n + 1) ? errno : 0;
	free(text);
	/* A refusal (permission denied) may be waiting even when the send failed: durod says
	 * why, then closes. Read it before giving up. */
	for (;;) {
		char *nl = memchr(rbuf, '\n', rlen);
		if (nl) {
			*nl = 0;
			json_error_t err;
			json_t *r = json_loads(rbuf, 0, &err);
			size_t used = (size_t)(nl - rbuf) + 1;
			memmove(rbuf, rbuf + used, rlen - used);
			rlen -= used;
			if (!r)
				fprintf(stderr, "duroctl: bad reply: %s\n", err.text);
			return r;
		}
		if (rlen == sizeof(rbuf)) {
			fprintf(stderr, "duroctl: reply too large\n");
			return NULL;
		}
		ssize_t r = recv(fd, rbuf + rlen, sizeof(rbuf) - rlen, 0);
		if (r <= 0) {
			if (send_err)
				fprintf(stderr, "duroctl: send: %s\n", strerror(send_err));
			else
				fprintf(stderr, "duroctl: durod closed the connection\n");
			return NULL;
		}
		rlen += (size_t)r;
	}
}

static json_int_t I(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }
static const char *S(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}
static double LAT(json_t *o, const char *p)
{
	return json_number_value(json_object_get(json_object_get(o, "latency_us"), p)) / 1000.0;
}

static void print_status(json_t *r)
{
	printf("durod %s, pid %lld, up %.0f s, backend %s, %lld cores\n", S(r, "version"),
	       (long long)I(r, "pid"), (double)I(r, "uptime_ms") / 1000, S(r, "backend"),
	       (long long)I(r, "cores"));
	printf("listeners:");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(r, "listeners"), i, v)
		printf(" %s", json_string_value(v));
	printf("\ndata_dir: %s\ncontrol socket: %s\n", S(r, "data_dir"), S(r, "control_socket"));
	if (*S(r, "metrics"))
		printf("metrics: http://%s/metrics, dashboard http://%s/dashboard\n", S(r, "metrics"),
		       S(r, "metrics"));
	json_t *pitr = json_object_get(r, "pitr");
	if (pitr && I(pitr, "retention_ms"))
		printf("point-in-time history: %lld bytes, kept %.1f days\n", (long long)I(pitr, "bytes"),
		       (double)I(pitr, "retention_ms") / 86400000.0);
	else if (pitr)
		printf("point-in-time history: off\n");
}

static void stats_row(const char *label, json_t *c)
{
	printf("%-6s %7lld %10lld %6lld %7lld %6lld %9lld %8lld %8lld %8.2f %8.2f %8.2f\n", label,
	       (long long)I(c, "connections"), (long long)I(c, "requests"),
	       (long long)I(c, "websockets"), (long long)I(c, "objects_active"),
	       (long long)I(c, "objects_hibernated"), (long long)I(c, "commits"),
	       (long long)I(c, "syncs"), (long long)I(c, "alarms_pending"), LAT(c, "p50"),
	       LAT(c, "p99"), LAT(c, "p999"));
}

static void print_stats(json_t *r)
{
	printf("%-6s %7s %10s %6s %7s %6s %9s %8s %8s %8s %8s %8s\n", "core", "conns", "requests",
	       "ws", "objects", "hib", "commits", "syncs", "alarms", "p50 ms", "p99 ms", "p999 ms");
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(r, "cores"), i, c) {
		char label[24];
		snprintf(label, sizeof(label), "%zu", i);
		stats_row(label, c);
	}
	stats_row("total", json_object_get(r, "total"));
	json_t *classes = json_object_get(r, "classes");
	if (!json_array_size(classes))
		return;
	printf("\n%-16s %-12s %9s %12s %9s %7s\n", "class", "version", "objects", "events", "errors",
	       "crashes");
	json_array_foreach(classes, i, c)
		printf("%-16s %-12s %9lld %12lld %9lld %7lld\n", S(c, "class"), S(c, "version"),
		       (long long)I(c, "objects"), (long long)I(c, "events"), (long long)I(c, "errors"),
		       (long long)I(c, "crashes"));
}

static volatile sig_atomic_t stop;
static void on_sigint(int sig)
{
	(void)sig;
	stop = 1;
}

static int top(long iterations)
{
	signal(SIGINT, on_sigint);
	json_t *prev = NULL;
	double prev_t = 0;
	for (long it = 0; !stop && (iterations <= 0 || it < iterations); it++) {
		json_t *r = call(json_pack("{s:s}", "cmd", "stats"));
		json_t *st = call(json_pack("{s:s}", "cmd", "status"));
		if (!r || !st)
			return EXIT_UNREACHABLE;
		double t = (double)I(r, "uptime_ms") / 1000;
		double dt = prev ? t - prev_t : 0;
		if (isatty(1))
			printf("\033[H\033[2J");
		printf("duro top — durod %s, up %.0f s, %lld cores, %s\n\n", S(st, "version"), t,
		       (long long)I(st, "cores"), S(st, "backend"));
		printf("%-6s %6s %10s %7s %6s %7s %6s %10s %8s %8s\n", "core", "busy%", "req/s", "conns",
		       "ws", "objects", "hib", "commits/s", "p50 ms", "p99 ms");
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(r, "cores"), i, c) {
			json_t *pc = prev ? json_array_get(json_object_get(prev, "cores"), i) : NULL;
			double busy = pc && dt > 0 ? (double)(I(c, "busy_ns") - I(pc, "busy_ns")) / (dt * 1e7) : 0;
			double rps = pc && dt > 0 ? (double)(I(c, "requests") - I(pc, "requests")) / dt : 0;
			double cps = pc && dt > 0 ? (double)(I(c, "commits") - I(pc, "commits")) / dt : 0;
			printf("%-6zu %6.1f %10.0f %7lld %6lld %7lld %6lld %10.0f %8.2f %8.2f\n", i,
			       busy > 100 ? 100 : busy, rps, (long long)I(c, "connections"),
			       (long long)I(c, "websockets"), (long long)I(c, "objects_active"),
			       (long long)I(c, "objects_hibernated"), cps, LAT(c, "p50"), LAT(c, "p99"));
		}
		fflush(stdout);
		json_decref(prev);
		json_decref(st);
		prev = r;
		prev_t = t;
		if (iterations <= 0 || it + 1 < iterations) {
			/* A second, or q on a terminal. */
			fd_set rs;
			FD_ZERO(&rs);
			FD_SET(0, &rs);
			struct timeval tv = { 1, 0 };
			if (isatty(0) && select(1, &rs, NULL, NULL, &tv) > 0) {
				char ch;
				if (read(0, &ch, 1) == 1 && ch == 'q')
					break;
			} else if (!isatty(0)) {
				nanosleep(&(struct timespec){ 1, 0 }, NULL);
			}
		}
	}
	json_decref(prev);
	return 0;
}

/* --at TIME: ms since the epoch, or an ISO 8601 UTC time. -1 when neither. */
static int64_t parse_time(const char *s)
{
	char *end;
	long long ms = strtoll(s, &end, 10);
	if (*s && !*end)
		return ms >= 0 ? ms : -1;
	struct tm tm = { 0 };
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return -1;
	long frac = 0;
	if (*rest == '.') {
		int digits = 0;
		for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*rest - '0');
		while (digits > 0 && digits < 3) {
			frac *= 10;
			digits++;
		}
	}
	if (strcmp(rest, "Z"))
		return -1;
	time_t t = timegm(&tm);
	return t < 0 ? -1 : (int64_t)t * 1000 + frac;
}

/* --param V: an integer, a real, null, or else text. */
static json_t *param_value(const char *s)
{
	char *end;
	if (!strcmp(s, "null"))
		return json_null();
	long long i = strtoll(s, &end, 10);
	if (*s && !*end)
		return json_integer(i);
	double d = strtod(s, &end);
	if (*s && !*end)
		return json_real(d);
	return json_string(s);
}

/* A value of a row as text: blobs as X'hex', like the sqlite3 shell. */
static void print_value(json_t *v)
{
	if (json_is_null(v)) {
		printf("NULL");
	} else if (json_is_integer(v)) {
		printf("%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		printf("%.17g", json_real_value(v));
	} else if (json_is_string(v)) {
		fwrite(json_string_value(v), 1, json_string_length(v), stdout);
	} else {
		const char *b = S(v, "blob");
		static const signed char dv[256] = { ['A'] = 1 }; /* base64 decoded below */
		(void)dv;
		printf("X'");
		unsigned acc = 0, bits = 0;
		for (const char *p = b; *p && *p != '='; p++) {
			const char *tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
			const char *at = strchr(tbl, *p);
			if (!at)
				break;
			acc = acc << 6 | (unsigned)(at - tbl);
			if ((bits += 6) >= 8) {
				bits -= 8;
				printf("%02X", (acc >> bits) & 0xff);
			}
		}
		printf("'");
	}
}

/* The reply of sql: a header of column names and a row per line, separated by |. */
static void print_rows(json_t *r)
{
	size_t i, k;
	json_t *c, *row, *v;
	json_t *cols = json_object_get(r, "columns");
	json_array_foreach(cols, i, c)
		printf("%s%s", i ? "|" : "", json_string_value(c));
	if (json_array_size(cols))
		printf("\n");
	json_array_foreach(json_object_get(r, "rows"), i, row) {
		json_array_foreach(row, k, v) {
			if (k)
				printf("|");
			print_value(v);
		}
		printf("\n");
	}
	if (json_is_true(json_object_get(r, "truncated")))
		printf("(more rows: --limit N for more)\n");
	fprintf(stderr, "%lld rows, %lld read, %lld written\n", (long long)I(r, "rows_returned"),
		(long long)I(r, "rows_read"), (long long)I(r, "rows_written"));
}

/* The object an object, evict or delete command names: one word is an ID; two or more
 * are BINDING NAME, unless the first has 64 characters (no binding name is that long, so
 * it is an ID). `object` may end with the word `keys`. Returns 0 or -1 (usage printed). */
/* A module's other classes, which a deploy of one of them leaves alone. */
static void print_not_deployed(json_t *r)
{
	json_t *names = json_object_get(r, "not_deployed");
	if (!json_array_size(names))
		return;
	printf("the module's other classes are not deployed:");
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n)
		printf(" %s", json_string_value(n));
	printf(" (deploy each by its name)\n");
}

static int name_object(json_t *req, const char *cmd, int n, char **words)
{
	int by_id = n == 1 || (n >= 1 && strlen(words[0]) == 64);
	int used = by_id ? 1 : 2;
	if (n >= used + 1 && !strcmp(cmd, "object") && !strcmp(words[used], "keys")) {
		json_object_set_new(req, "keys", json_true());
		used++;
	}
	if (n < 1 || n != used || (!by_id && n < 2)) {
		fprintf(stderr, "duroctl %s: want an object ID (64 hex digits) or BINDING NAME%s\n", cmd,
			!strcmp(cmd, "object") ? ", then optionally keys" : "");
		return -1;
	}
	if (by_id) {
		json_object_set_new(req, "id", json_string(words[0]));
		return 0;
	}
	json_t *name = json_string(words[1]);
	if (!name) {
		fprintf(stderr, "duroctl %s: the name is not valid UTF-8\n", cmd);
		return -1;
	}
	json_object_set_new(req, "binding", json_string(words[0]));
	json_object_set_new(req, "name", name);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
		{ "class", required_argument, NULL, 'c' }, { "after", required_argument, NULL, 'a' },
		{ "limit", required_argument, NULL, 'l' }, { "prefix", required_argument, NULL, 'p' },
		{ "iterations", required_argument, NULL, 'i' }, { "yes", no_argument, NULL, 'y' },
		{ "percent", required_argument, NULL, 'P' }, { "max-delay", required_argument, NULL, 'D' },
		{ "immediate", no_argument, NULL, 'I' }, { "check", no_argument, NULL, 'C' },
		{ "write", no_argument, NULL, 'w' }, { "param", required_argument, NULL, 'Q' },
		{ "at", required_argument, NULL, 't' },
		{ "tag", required_argument, NULL, 'T' }, { "binding", required_argument, NULL, 'B' },
		{ "route", required_argument, NULL, 'R' }, { "route-id", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	const char *cls = NULL, *after = NULL, *prefix = NULL, *at = NULL;
	const char *tag = NULL, *binding = NULL, *route = NULL, *route_id = NULL;
	long limit = 0, iterations = 0, percent = -1, max_delay = -1;
	int yes = 0, immediate = 0, check = 0, write = 0, o;
	char *end;
	json_t *params = NULL; /* --param values, made at the first */
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 's': socket_path = optarg; break;
		case 'j': as_json = 1; break;
		case 'c': cls = optarg; break;
		case 'a': after = optarg; break;
		case 'l': limit = strtol(optarg, NULL, 10); break;
		case 'p': prefix = optarg; break;
		case 'i': iterations = strtol(optarg, NULL, 10); break;
		case 'y': yes = 1; break;
		case 'P':
			percent = strtol(optarg, &end, 10);
			if (*end || percent < 1 || percent > 100) {
				fprintf(stderr, "duroctl: --percent: want 1 to 100\n");
				return EXIT_USAGE;
			}
			break;
		case 'D':
			max_delay = strtol(optarg, &end, 10);
			if (*end || max_delay < 0) {
				fprintf(stderr, "duroctl: --max-delay: want seconds (0 or more)\n");
				return EXIT_USAGE;
			}
			break;
		case 'I': immediate = 1; break;
		case 'C': check = 1; break;
		case 'T': tag = optarg; break;
		case 'B': binding = optarg; break;
		case 'R': route = optarg; break;
		case 'r': route_id = optarg; break;
		case 'w': write = 1; break;
		case 't': at = optarg; break;
		case 'Q':
			if (!params)
				params = json_array();
			json_array_append_new(params, param_value(optarg));
			break;
		case 'h': json_decref(params); usage(stdout); return 0;
		default: json_decref(params); usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		json_decref(params);
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	if (strcmp(cmd, "sql")) {
		json_decref(params); /* only sql takes them */
		params = NULL;
	}
	const char *arg1 = optind + 1 < argc ? argv[optind + 1] : NULL;
	json_t *req = json_pack("{s:s}", "cmd", cmd);
	if (!strcmp(cmd, "cluster")) {
		const char *arg2 = optind + 2 < argc ? argv[optind + 2] : NULL;
		if (arg1 && !strcmp(arg1, "drain") && arg2) {
			json_object_set_new(req, "cmd", json_string("cluster-drain"));
			json_object_set_new(req, "box", json_string(arg2));
			if (optind + 3 < argc && !strcmp(argv[optind + 3], "--undo"))
				json_object_set_new(req, "undo", json_true());
		} else if (arg1 && !strcmp(arg1, "rebalance")) {
			json_object_set_new(req, "cmd", json_string("cluster-rebalance"));
		} else if (arg1 && !strcmp(arg1, "status")) {
			json_object_set_new(req, "cmd", json_string("cluster-status"));
		} else {
			fprintf(stderr, "duroctl cluster: want \"cluster status\", \"cluster drain BOX [--undo]\" or \"cluster rebalance\"\n");
			json_decref(req);
			json_decref(params);
			return EXIT_USAGE;
		}
	} else if (!strcmp(cmd, "log-level") && arg1) {
		json_object_set_new(req, "level", json_string(arg1));
	} else if (!strcmp(cmd, "objects")) {
		if (cls)
			json_object_set_new(req, "class", json_string(cls));
		if (after)
			json_object_set_new(req, "after", json_string(after));
		if (limit)
			json_object_set_new(req, "limit", json_integer(limit));
	} else if (!strcmp(cmd, "export") || !strcmp(cmd, "import")) {
		/* durod writes and reads the file itself: give it an absolute path. */
		char abs[4096];
		if (!arg1 || (!strcmp(cmd, "export") && !cls)) {
			fprintf(stderr, "duroctl: export --class C FILE | import FILE\n");
			json_decref(req);
			return EXIT_USAGE;
		}
		if (arg1[0] == '/') {
			snprintf(abs, sizeof(abs), "%s", arg1);
		} else {
			char cwd[2048];
			if (!getcwd(cwd, sizeof(cwd))) {
				json_decref(req);
				return EXIT_USAGE;
			}
			snprintf(abs, sizeof(abs), "%s/%s", cwd, arg1);
		}
		json_object_set_new(req, "path", json_string(abs));
		if (cls)
			json_object_set_new(req, "class", json_string(cls));
	} else if (!strcmp(cmd, "deploy") || !strcmp(cmd, "rollback") || !strcmp(cmd, "versions")) {
		const char *arg2 = optind + 2 < argc ? argv[optind + 2] : NULL;
		int deploy = !strcmp(cmd, "deploy");
		if (!arg1 || (deploy && !arg2) || (!strcmp(cmd, "versions") && arg2) ||
		    optind + 3 < argc) {
			fprintf(stderr, "duroctl: deploy CLASS FILE | versions CLASS | rollback CLASS [SHA] (see --help)\n");
			json_decref(req);
			return EXIT_USAGE;
		}
		json_object_set_new(req, "class", json_string(arg1));
		if (deploy) {
			/* durod opens the file itself: give it an absolute path. */
			char abs[4096], cwd[2048];
			if (arg2[0] != '/' && !getcwd(cwd, sizeof(cwd))) {
				json_decref(req);
				return EXIT_USAGE;
			}
			snprintf(abs, sizeof(abs), "%s%s%s", arg2[0] == '/' ? "" : cwd,
				 arg2[0] == '/' ? "" : "/", arg2);
			json_object_set_new(req, "path", json_string(abs));
			if (percent > 0)
				json_object_set_new(req, "percent", json_integer(percent));
			if (check)
				json_object_set_new(req, "check", json_true());
			/* A class no binding names yet: its migration tag, binding and route. */
			if (tag)
				json_object_set_new(req, "tag", json_string(tag));
			if (binding)
				json_object_set_new(req, "binding", json_string(binding));
			if (route)
				json_object_set_new(req, "route", json_string(route));
			if (route_id)
				json_object_set_new(req, "route_id", json_string(route_id));
		} else if (arg2) {
			json_object_set_new(req, "sha", json_string(arg2));
		}
		if (max_delay >= 0)
			json_object_set_new(req, "max_delay_s", json_integer(max_delay));
		if (immediate)
			json_object_set_new(req, "immediate", json_true());
	} else if (!strcmp(cmd, "bookmark")) {
		if (name_object(req, cmd, argc - optind - 1, argv + optind + 1) < 0) {
			json_decref(req);
			json_decref(params);
			return EXIT_USAGE;
		}
		if (at) {
			int64_t ms = parse_time(at);
			if (ms < 0) {
				fprintf(stderr, "duroctl bookmark: --at %s: want ms since the epoch or YYYY-MM-DDTHH:MM:SS[.mmm]Z\n", at);
				json_decref(req);
				json_decref(params);
				return EXIT_USAGE;
			}
			json_object_set_new(req, "at_ms", json_integer(ms));
		}
	} else if (!strcmp(cmd, "restore")) {
		int n = argc - optind - 1;
		if (n < 2 || name_object(req, cmd, n - 1, argv + optind + 1) < 0) {
			fprintf(stderr, "duroctl restore OBJ BOOKMARK\n");
			json_decref(req);
			json_decref(params);
			return EXIT_USAGE;
		}
		json_object_set_new(req, "bookmark", json_string(argv[argc - 1]));
	} else if (!strcmp(cmd, "sql")) {
		/* The object's words, then the SQL as the last argument. */
		int n = argc - optind - 1;
		if (n < 2 || name_object(req, cmd, n - 1, argv + optind + 1) < 0) {
			fprintf(stderr, "duroctl sql OBJ \"SQL\" [--write] [--limit N] [--param V]...\n");
			json_decref(req);
			json_decref(params);
			return EXIT_USAGE;
		}
		json_object_set_new(req, "sql", json_string(argv[argc - 1]));
		json_object_set_new(req, "params", params ? json_incref(params) : json_array());
		if (write)
			json_object_set_new(req, "write", json_true());
		if (limit)
			json_object_set_new(req, "limit", json_integer(limit));
	} else if (!strcmp(cmd, "object") || !strcmp(cmd, "evict") || !strcmp(cmd, "delete")) {
		if (name_object(req, cmd, argc - optind - 1, argv + optind + 1) < 0) {
			json_decref(req);
			return EXIT_USAGE;
		}
		if (!strcmp(cmd, "delete")) {
			if (!yes) {
				fprintf(stderr, "duroctl delete: this removes all of the object's storage, alarms and name for good; add --yes\n");
				json_decref(req);
				return EXIT_USAGE;
			}
			json_object_set_new(req, "confirm", json_true());
		}
		if (json_is_true(json_object_get(req, "keys"))) {
			if (prefix)
				json_object_set_new(req, "prefix", json_string(prefix));
			if (after)
				json_object_set_new(req, "after", json_string(after));
			if (limit)
				json_object_set_new(req, "limit", json_integer(limit));
		}
	}
	json_decref(params);
	if (connect_socket() < 0) {
		json_decref(req);
		return EXIT_UNREACHABLE;
	}
	if (!strcmp(cmd, "top")) {
		json_decref(req);
		int r = top(iterations);
		close(fd);
		return r;
	}
	json_t *r = call(req);
	close(fd);
	if (!r)
		return EXIT_UNREACHABLE;
	if (!json_is_true(json_object_get(r, "ok")) || as_json) {
		int failed = !json_is_true(json_object_get(r, "ok"));
		char *t = json_dumps(r, failed ? JSON_COMPACT : JSON_INDENT(2));
		if (t && as_json)
			puts(t);
		free(t);
		if (failed)
			fprintf(stderr, "duroctl %s: %s\n", cmd, S(r, "error"));
		json_decref(r);
		return failed ? EXIT_FAILED : 0;
	}
	if (!strcmp(cmd, "status")) {
		print_status(r);
	} else if (!strcmp(cmd, "stats")) {
		print_stats(r);
	} else if (!strcmp(cmd, "connections")) {
		printf("%-6s %8s %8s %10s %10s %8s %10s\n", "core", "open", "http", "websockets",
		       "accepted", "refused", "slow-closes");
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(r, "cores"), i, c)
			printf("%-6lld %8lld %8lld %10lld %10lld %8lld %10lld\n", (long long)I(c, "core"),
			       (long long)I(c, "open"), (long long)I(c, "http"), (long long)I(c, "websockets"),
			       (long long)I(c, "accepted"), (long long)I(c, "refused"),
			       (long long)I(c, "slow_closes"));
		printf("total: %lld open, %lld WebSockets\n", (long long)I(r, "open"),
		       (long long)I(r, "websockets"));
	} else if (!strcmp(cmd, "cluster") && !json_object_get(r, "cluster")) {
		/* drain or rebalance: the cluster thread carries it out on its next turn */
		if (json_object_get(r, "box"))
			printf("box %s: marked in etcd on the next turn; `duroctl cluster status` shows "
			       "its slots leaving\n", S(r, "box"));
		else
			printf("a rebalancer round runs now (on the elected rebalancer's next turn)\n");
	} else if (!strcmp(cmd, "cluster")) {
		printf("cluster %s, box %s (%s): %s, incarnation %lld, lease %lld ms left\n",
		       S(r, "cluster"), S(r, "box"), S(r, "address"), S(r, "state"),
		       (long long)I(r, "incarnation"), (long long)I(r, "lease_ms_left"));
		if (*S(r, "why"))
			printf("  %s\n", S(r, "why"));
		printf("rebalancer: %s%s; table at revision %lld, newest epoch %lld\n",
		       *S(r, "rebalancer") ? S(r, "rebalancer") : "(none)",
		       json_is_true(json_object_get(r, "is_rebalancer")) ? " (this box)" : "",
		       (long long)I(r, "revision"), (long long)I(r, "epoch_max"));
		printf("%-24s %-24s %5s %6s %12s %7s %12s %12s\n", "box", "address", "live", "cores",
		       "incarnation", "slots", "epoch_min", "epoch_max");
		size_t i;
		json_t *b;
		json_array_foreach(json_object_get(r, "boxes"), i, b)
			printf("%-24s %-24s %5s %6lld %12lld %7lld %12lld %12lld\n", S(b, "name"),
			       S(b, "address"), json_is_true(json_object_get(b, "live")) ? "yes" : "no",
			       (long long)I(b, "cores"), (long long)I(b, "incarnation"),
			       (long long)I(b, "slots"), (long long)I(b, "epoch_min"),
			       (long long)I(b, "epoch_max"));
		printf("%lld of %lld slots without a live owner; %lld would move to their target box\n",
		       (long long)I(r, "unowned"), (long long)I(r, "slots"),
		       (long long)I(r, "moves_wanted"));
		json_t *mv = json_object_get(r, "moves");
		if (json_array_size(mv))
			printf("%zu moves in flight:\n", json_array_size(mv));
		json_array_foreach(mv, i, b)
			printf("  slot %lld: %s -> %s (epoch %lld)\n", (long long)I(b, "slot"),
			       S(b, "from"), S(b, "to"), (long long)I(b, "epoch"));
		json_array_foreach(json_object_get(r, "boxes"), i, b)
			if (json_is_true(json_object_get(b, "draining")))
				printf("box %s is draining: %lld slots left\n", S(b, "name"),
				       (long long)I(b, "slots"));
		json_t *m = json_object_get(r, "move_counters");
		if (m)
			printf("moves here: %lld begun (as rebalancer), %lld done, %lld failed, %lld "
			       "rolled back; %lld bytes in; last pause %lld ms, longest %lld ms\n",
			       (long long)I(m, "begun"), (long long)I(m, "done"), (long long)I(m, "failed"),
			       (long long)I(m, "rolled_back"), (long long)I(m, "bytes_moved"),
			       (long long)I(m, "last_pause_ms"), (long long)I(m, "max_pause_ms"));
		json_t *rp = json_object_get(r, "replication");
		if (rp) {
			printf("replicas: %lld per slot besides its owner%s; %lld slots with fewer live "
			       "copies; %lld failovers, %lld slots reassigned with no copy left\n",
			       (long long)I(rp, "replicas"),
			       json_is_true(json_object_get(rp, "allow_fewer_copies"))
				       ? " (fewer copies allowed)" : "",
			       (long long)I(rp, "under_replicated"), (long long)I(rp, "failovers"),
			       (long long)I(rp, "copies_lost"));
			if (*S(rp, "refused"))
				printf("  refused: %s\n", S(rp, "refused"));
		}
	} else if (!strcmp(cmd, "shards")) {
		printf("%lld slots over %lld cores\n", (long long)I(r, "slots"), (long long)I(r, "cores"));
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(r, "slots_per_core"), i, v)
			printf("core %zu: %lld slots\n", i, (long long)json_integer_value(v));
	} else if (!strcmp(cmd, "config")) {
		char *t = json_dumps(json_object_get(r, "config"), JSON_INDENT(2));
		puts(t);
		free(t);
	} else if (!strcmp(cmd, "log-level")) {
		printf("%s\n", S(r, "level"));
	} else if (!strcmp(cmd, "drain")) {
		printf("draining: %lld cores stopped accepting\n", (long long)I(r, "cores_drained"));
	} else if (!strcmp(cmd, "objects")) {
		size_t i;
		json_t *ob;
		json_array_foreach(json_object_get(r, "objects"), i, ob)
			printf("%s %-12s core %lld %10lld bytes %6lld keys%s%s\n", S(ob, "id"), S(ob, "class"),
			       (long long)I(ob, "core"), (long long)I(ob, "bytes"), (long long)I(ob, "keys"),
			       json_object_get(ob, "name") ? "  name " : "", S(ob, "name"));
		if (json_object_get(r, "next"))
			printf("more: --after %s\n", S(r, "next"));
	} else if (!strcmp(cmd, "object") && json_object_get(r, "keys") && json_is_array(json_object_get(r, "keys"))) {
		size_t i;
		json_t *k;
		json_array_foreach(json_object_get(r, "keys"), i, k)
			printf("%s\t%lld bytes\n", S(k, "key"), (long long)I(k, "bytes"));
	} else if (!strcmp(cmd, "object")) {
		printf("id: %s\nclass: %s (binding %s)\nowner core: %lld\nin memory: %s%s\n", S(r, "id"),
		       S(r, "class"), S(r, "binding"), (long long)I(r, "core"),
		       json_is_true(json_object_get(r, "in_memory")) ? "yes" : "no",
		       json_is_true(json_object_get(r, "hibernated")) ? " (hibernated)" : "");
		if (json_object_get(r, "name"))
			printf("name: %s\n", S(r, "name"));
		printf("storage: %lld bytes in %lld keys\nsql database: %lld bytes\nsockets: %lld\n",
		       (long long)I(r, "bytes"), (long long)I(r, "keys"), (long long)I(r, "sql_bytes"),
		       (long long)I(r, "sockets"));
		size_t i;
		json_t *a;
		json_array_foreach(json_object_get(r, "alarms"), i, a) {
			time_t t = (time_t)(I(a, "time_ms") / 1000);
			char when[64];
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
			printf("alarm%s%s: %s\n", json_object_get(a, "name") ? " " : "", S(a, "name"), when);
		}
	} else if (!strcmp(cmd, "deploy") && json_is_true(json_object_get(r, "checked"))) {
		printf("%s: version %s is valid (not deployed)\n", S(r, "class"), S(r, "sha"));
		print_not_deployed(r);
	} else if (!strcmp(cmd, "deploy") && json_is_true(json_object_get(r, "new_class"))) {
		printf("%s: new class, version %s, bound as %s%s%s (migration tag %s): served now\n",
		       S(r, "class"), S(r, "label"), S(r, "binding"),
		       json_object_get(r, "route") ? ", route " : "", S(r, "route"), S(r, "tag"));
		print_not_deployed(r);
	} else if (!strcmp(cmd, "deploy") || !strcmp(cmd, "rollback")) {
		printf("%s: %s version %s to %lld%% of objects", S(r, "class"),
		       !strcmp(cmd, "deploy") ? "deployed" : "rolled back to", S(r, "label"),
		       (long long)I(r, "percent"));
		if (json_is_string(json_object_get(r, "old")))
			printf(" (the others stay on %.12s)", S(r, "old"));
		printf("; resident objects switch within %lld s\n", (long long)I(r, "max_delay_s"));
		print_not_deployed(r);
	} else if (!strcmp(cmd, "versions")) {
		printf("%-12s %-8s %-20s %9s %10s %8s %7s  %s\n", "version", "source", "deployed (UTC)",
		       "objects", "events", "errors", "crashes", "");
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(r, "versions"), i, v) {
			time_t t = (time_t)(I(v, "deployed_ms") / 1000);
			char when[32] = "-";
			if (t)
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime(&t));
			const char *sha = S(v, "sha");
			int cur = !strcmp(sha, S(r, "current")), old = !strcmp(sha, S(r, "old"));
			printf("%-12.12s %-8s %-20s %9lld %10lld %8lld %7lld  %s%s%s\n", sha, S(v, "source"),
			       when, (long long)I(v, "objects"), (long long)I(v, "events"),
			       (long long)I(v, "errors"), (long long)I(v, "crashes"),
			       cur ? "current" : old ? "old" : "",
			       cur && json_is_string(json_object_get(r, "old")) ? " (gradual)" : "",
			       json_is_true(json_object_get(v, "quarantined")) ? " quarantined" : "");
		}
		if (json_is_string(json_object_get(r, "old")))
			printf("%lld%% of objects on %.12s, the rest on %.12s\n", (long long)I(r, "percent"),
			       S(r, "current"), S(r, "old"));
	} else if (!strcmp(cmd, "sql")) {
		print_rows(r);
	} else if (!strcmp(cmd, "bookmark")) {
		printf("%s\n", S(r, "bookmark"));
	} else if (!strcmp(cmd, "restore")) {
		printf("restored; undo with: duroctl restore ... %s\n", S(r, "undo"));
	} else if (!strcmp(cmd, "evict")) {
		printf("%s\n", json_is_true(json_object_get(r, "evicted")) ? "evicted" : "not in memory");
	} else if (!strcmp(cmd, "delete")) {
		printf("deleted\n");
	} else if (!strcmp(cmd, "tls-reload")) {
		printf("TLS certificates reloaded: new connections get them, open ones keep theirs\n");
	} else if (!strcmp(cmd, "export")) {
		printf("exported %lld objects (%lld keys, %lld bytes) of class %s to %s\n",
		       (long long)I(r, "objects"), (long long)I(r, "keys"), (long long)I(r, "bytes"),
		       S(r, "class"), S(r, "path"));
	} else if (!strcmp(cmd, "import")) {
		printf("imported %lld objects of class %s (%lld already present, %lld failed)\n",
		       (long long)I(r, "objects"), S(r, "class"), (long long)I(r, "already_present"),
		       (long long)I(r, "failed"));
	} else {
		char *t = json_dumps(r, JSON_INDENT(2));
		puts(t);
		free(t);
	}
	json_decref(r);
	return 0;
}
