/* durod's main: flags over the config, the DPDK EAL as the runtime, one reactor per core
 * running HTTP over the chosen backend and the object runtime; SIGTERM drains and exits 0. */
#include "cluster.h"
#include "config.h"
#include "crash.h"
#include "dpdk.h"
#include "core.h"
#include "ctl.h"
#include "eal_log.h"
#include "sdnotify.h"
#include "startup_watch.h"
#include "http.h"
#include "log.h"
#include "module.h"
#include "obj.h"
#include "tls.h"
#include "ws.h"
#include "timer.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>

#define DURO_VERSION "0.1.0"
#define EXIT_CONFIG 2

/* Per-core shutdown progress, written only by its own core. */
struct ctl_core {
	int draining;
	int drained;
};

struct durod {
	struct duro_config cfg;
	struct ctl_core ctl[DURO_MAX_CORES];
	struct core_group group;
	const struct net_backend *backend;
	int sigfd;
	struct signalfd_siginfo siginfo; /* core 0's pending read */
	uint64_t drain_deadline_ms;
	_Atomic unsigned drained; /* cores with no connection left */
	struct ctl control;
	struct sdnotify notify; /* systemd's, when durod runs as a Type=notify service */
	int ready;              /* core 0: every core serves, READY=1 sent */
	char addrs[256];        /* the listen addresses, for the log and systemd's status */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: durod [options]\n"
		"\n"
		"Serves Durable Objects: every object ID has one live instance, on one core.\n"
		"With no config, serves the built-in classes on 127.0.0.1:8787 with data in\n"
		"./duro-data, one reactor per CPU, kernel sockets through io_uring.\n"
		"\n"
		"  --config FILE          JSON config (modelled on wrangler.json); see README.md\n"
		"  --check-config FILE    validate FILE (and the flags) and exit: 0 valid, 2 invalid\n"
		"  --print-config         validate, print the effective config (defaults, file and\n"
		"                         flags together) as JSON, and exit: 0 valid, 2 invalid\n"
		"  --help-config          every config key: its range, default, flag and use\n"
		"  --set KEY=VALUE        set any config key over the file, e.g. --set\n"
		"                         limits.max_body_bytes=4194304 or --set 'routes=[...]'\n"
		"  --tls-cert FILE        serve TLS on every listener with this PEM certificate chain\n"
		"  --tls-key FILE         and this PEM private key (mbedTLS: TLS 1.2, no 1.3)\n"
		"  --version              print the version and exit\n"
		"  --help                 this text\n"
		"\n"
		"Flags that set a config key, over the file (the same checks as in it):\n");
	config_flags_usage(f);
	fprintf(f,
		"\n"
		"Signals: SIGTERM or SIGINT stop accepting, finish in-flight requests within\n"
		"shutdown_timeout_ms (default 5000), and exit 0. SIGHUP reloads the TLS\n"
		"certificates (open connections keep theirs).\n"
		"Exit status: 0 after a clean shutdown, 1 on a runtime failure, 2 on a bad config.\n");
}

static void ctl_cqe(struct core *c, void *ptr, struct io_uring_cqe *cqe);

static void arm_signal_read(struct core *c, struct durod *d)
{
	struct io_uring_sqe *sqe = core_sqe(c);
	io_uring_prep_read(sqe, d->sigfd, &d->siginfo, sizeof(d->siginfo), 0);
	io_uring_sqe_set_data64(sqe, core_tag(d, CQE_CTL));
}

static void ctl_cqe(struct core *c, void *ptr, struct io_uring_cqe *cqe)
{
	struct durod *d = ptr;
	core_did_work(c);
	if (cqe->res == (int)sizeof(d->siginfo) && d->siginfo.ssi_signo == SIGHUP) {
		/* Loading certificates reads files: the control thread does it, not a core. */
		if (d->control.tls) {
			log_info("signal %u: reloading the TLS certificates", d->siginfo.ssi_signo);
			ctl_request_tls_reload(&d->control);
		} else {
			log_info("signal %u: no TLS listener, nothing to reload", d->siginfo.ssi_signo);
		}
	} else if (cqe->res == (int)sizeof(d->siginfo)) {
		if (!atomic_load(&c->group->stopping)) {
			log_info("signal %u: draining (up to %u ms)", d->siginfo.ssi_signo,
				 d->cfg.shutdown_timeout_ms);
			sdnotify_send(&d->notify, "STOPPING=1\nSTATUS=draining (up to %u ms)",
				      d->cfg.shutdown_timeout_ms);
			d->drain_deadline_ms = c->now_ms + d->cfg.shutdown_timeout_ms;
			atomic_store(&c->group->stopping, 1);
		} else {
			log_info("signal %u again: stopping now", d->siginfo.ssi_signo);
			atomic_store(&c->group->stop_now, 1);
		}
	}
	arm_signal_read(c, d);
}

/* Core 0, every turn until it happens: once every core takes connections, durod is ready,
 * and says so (the log line tools wait for, and systemd's READY=1). */
static void check_ready(struct core *c, struct durod *d)
{
	struct core_group *g = c->group;
	if (d->ready || atomic_load_explicit(&g->serving, memory_order_acquire) < g->ncores)
		return;
	d->ready = 1;
	log_info("durod %s: serving on %s with %u cores (backend %s), data in %s, control socket %s%s%s",
		 DURO_VERSION, d->addrs, d->cfg.cores, d->backend->name, d->cfg.obj.data_dir,
		 d->control.socket_path, d->cfg.control.metrics[0] ? ", metrics on " : "",
		 d->cfg.control.metrics);
	sdnotify_send(&d->notify, "READY=1\nSTATUS=serving on %s with %u cores", d->addrs,
		      d->cfg.cores);
}

/* Every turn: once stopping, drain this core; when all cores are drained, or the deadline
 * passes, every loop ends. */
static void ctl_hook(struct core *c)
{
	struct core_group *g = c->group;
	struct durod *d = g->arg;
	ctl_core_tick(&d->control, c);
	if (c->index == 0 && !d->ready)
		check_ready(c, d);
	if (!atomic_load_explicit(&g->stopping, memory_order_relaxed))
		return;
	struct ctl_core *cc = &d->ctl[c->index];
	if (!cc->draining) {
		cc->draining = 1;
		http_drain(c);
		ws_drain(c, d->cfg.shutdown_timeout_ms / 2);
	}
	/* Drained: no listener still taking the connections already under way, no connection
	 * left, and no commit still on its way to disk. */
	if (!cc->drained && d->backend->listening(c) == 0 && http_open_conns(c) == 0 &&
	    ws_open_sockets(c) == 0 && obj_idle(c)) {
		cc->drained = 1;
		atomic_fetch_add(&d->drained, 1);
	}
	if (c->index == 0) {
		if (atomic_load(&d->drained) == g->ncores) {
			atomic_store(&g->stop_now, 1);
		} else if (c->now_ms >= d->drain_deadline_ms) {
			log_warn("shutdown: %u of %u cores still had connections after %u ms; closing them",
				 g->ncores - atomic_load(&d->drained), g->ncores,
				 d->cfg.shutdown_timeout_ms);
			atomic_store(&g->stop_now, 1);
		}
	}
}

/* Fault injection for the start-up watch's test: DURO_FAULT_START_STALL_CORE=N stalls core
 * N's start (before its object runtime) for a minute, as a start-up wait that never ends. */
static void fault_start_stall(struct core *c)
{
	const char *v = getenv("DURO_FAULT_START_STALL_CORE");
	if (!v || !*v || (unsigned)atoi(v) != c->index)
		return;
	log_warn("core %u: fault injection: start-up stalls for 60 s", c->index);
	startup_watch_core(c->index, "stalled by DURO_FAULT_START_STALL_CORE");
	for (int i = 0; i < 600; i++)
		usleep(100 * 1000);
}

/* And DURO_FAULT_STOP_STALL=1 stalls the teardown, before storage closes, for a minute. */
static void fault_stop_stall(void)
{
	const char *v = getenv("DURO_FAULT_STOP_STALL");
	if (!v || atoi(v) != 1)
		return;
	log_warn("fault injection: shutdown stalls for 60 s");
	for (int i = 0; i < 600; i++)
		usleep(100 * 1000);
}

static int core_start(struct core *c, void *arg)
{
	struct durod *d = arg;
	startup_watch_core(c->index, "network");
	int r = http_core_init(c, &d->cfg.http, d->backend, &d->cfg.net, obj_handle_http);
	if (r < 0) {
		log_error("core %u: network start: %s", c->index, strerror(-r));
		return r;
	}
	startup_watch_core(c->index, "websockets");
	r = ws_core_init(c, &d->cfg.ws, d->backend, obj_ws_events(), d->cfg.net.max_conns_per_core);
	if (r < 0)
		return r;
	fault_start_stall(c);
	startup_watch_core(c->index, "object runtime (commit log, alarms)");
	r = obj_core_init(c);
	if (r < 0)
		return r;
	core_set_cqe_handler(c, CQE_CTL, ctl_cqe);
	core_add_hook(c, ctl_hook);
	crash_core_enter(c->index);
	startup_watch_core(c->index, "started, waiting for the other cores");
	return 0;
}

/* Every core has started: take connections (the listeners were only bound until now). */
static int core_serve(struct core *c, void *arg)
{
	struct durod *d = arg;
	/* Every core has started: core 0's loop runs from here on, so signals are its to read
	 * (the start-up watch read them until now; one sent meanwhile waits on the signalfd). */
	if (c->index == 0) {
		startup_watch_stop();
		arm_signal_read(c, d);
	}
	startup_watch_core(c->index, "taking connections");
	int r = d->backend->start_accepting(c);
	if (r < 0)
		log_error("core %u: network start: %s", c->index, strerror(-r));
	return r;
}

static void core_stop(struct core *c, void *arg)
{
	(void)arg;
	obj_core_fini(c);
	ws_core_fini(c);
	http_core_fini(c);
	crash_core_leave();
}

/* rte_eal_init pins this thread to core 0's CPU, and it does the start-up's work (the port's
 * mbuf pool, storage's replay and migrations) and the teardown's before and after it is
 * core 0: meanwhile it may run on every CPU, so a busy CPU 0 does not stretch a start-up
 * to minutes (over dpdk on a loaded 2-CPU box one took over 60 s at 1% of CPU 0). Returns
 * whether the affinity was widened, `pinned` then holding the one to restore. */
static int main_cpus_widen(cpu_set_t *pinned)
{
	cpu_set_t all;
	CPU_ZERO(&all);
	for (long i = 0, n = sysconf(_SC_NPROCESSORS_ONLN); i < n && i < CPU_SETSIZE; i++)
		CPU_SET((int)i, &all);
	return pthread_getaffinity_np(pthread_self(), sizeof(*pinned), pinned) == 0 &&
	       pthread_setaffinity_np(pthread_self(), sizeof(all), &all) == 0;
}

/* One durod per data directory: a second one would keep its own copy of every object. */
static int lock_data_dir(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_error("data_dir %s: %s", dir, strerror(errno));
		return -errno;
	}
	char path[600];
	snprintf(path, sizeof(path), "%s/LOCK.durod", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("data_dir %s: open %s: %s", dir, path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		char text[32] = "";
		ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
		text[n > 0 ? n : 0] = 0;
		long pid = strtol(text, NULL, 10);
		if (pid > 0)
			log_error("data_dir %s is in use by another durod (pid %ld)", dir, pid);
		else
			log_error("data_dir %s is in use by another durod", dir);
		close(fd);
		return -e;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) == n) {
		/* informational only */
	}
	return fd; /* held open, and so locked, for the life of the process */
}

/* Runtime directories of durods that died without cleaning up (SIGKILL): each is named
 * durod<pid> beside ours and holds at most the telemetry socket. */
static void remove_stale_runtime_dirs(void)
{
	char parent[512];
	snprintf(parent, sizeof(parent), "%s", rte_eal_get_runtime_dir());
	char *slash = strrchr(parent, '/');
	if (!slash)
		return;
	*slash = 0;
	DIR *d = opendir(parent);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		if (strncmp(e->d_name, "durod", 5) != 0)
			continue;
		long pid = strtol(e->d_name + 5, &end, 10);
		if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s/dpdk_telemetry.v2", parent, e->d_name);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s", parent, e->d_name);
		rmdir(path);
	}
	closedir(d);
}

/* The config's class modules, loaded and their classes registered before the bindings
 * are checked against the classes there are. A module that fails any check stops durod
 * at start with one line naming the file and the reason. */
static int load_modules(const struct duro_config *cfg, char *err, size_t errlen)
{
	for (unsigned i = 0; i < cfg->nmodules; i++) {
		struct obj_module *m;
		char why[400], dup[200];
		int r = obj_module_check_mode(cfg->modules[i], why, sizeof(why));
		if (r == 0)
			r = obj_module_load(cfg->modules[i], &m, why, sizeof(why));
		for (size_t k = 0; r == 0 && k < m->nclasses; k++)
			if ((r = obj_registry_add(m->classes[k], m, dup, sizeof(dup))) < 0)
				snprintf(why, sizeof(why), "module %.180s: %s", m->path, dup);
		if (r < 0) {
			snprintf(err, errlen, "config: modules[%u]: %s", i, why);
			return r;
		}
		for (size_t k = 0; k < m->nclasses; k++)
			log_info("module %s: class %s (sha256 %.12s, ABI %u.%u)", m->path,
				 m->classes[k]->name, m->sha, m->abi_major, m->abi_minor);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct durod d;
	static const struct option own[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, 'C' },
		{ "print-config", no_argument, NULL, 'p' },
		{ "help-config", no_argument, NULL, 'k' },
		{ "set", required_argument, NULL, CONFIG_FLAG_SET },
		{ "tls-cert", required_argument, NULL, 'T' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
	};
	/* Ours, then one per config key that has a flag (--listen, --dpdk-mtu, ...). */
	struct option opts[sizeof(own) / sizeof(own[0]) + CONFIG_MAX_KEY_FLAGS + 1];
	unsigned nown = sizeof(own) / sizeof(own[0]);
	memcpy(opts, own, sizeof(own));
	unsigned nopts = nown + config_flag_options(opts + nown, CONFIG_MAX_KEY_FLAGS);
	opts[nopts] = (struct option){ NULL, 0, NULL, 0 };
	static struct config_flags flags; /* 1 KiB: not on main's stack */
	const char *config_path = NULL, *tls_cert = NULL, *tls_key = NULL;
	int check_only = 0, print_only = 0, o;
	char err[512];
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': config_path = optarg; break;
		case 'C': config_path = optarg; check_only = 1; break;
		case 'p': print_only = 1; break;
		case 'k': config_keys_usage(stdout); return 0;
		case 'T': tls_cert = optarg; break;
		case 'K': tls_key = optarg; break;
		case 'V': printf("durod %s\n", DURO_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		case CONFIG_FLAG_SET:
			if (config_flags_add_set(&flags, optarg, err, sizeof(err)) < 0) {
				fprintf(stderr, "%s\n", err);
				return EXIT_CONFIG;
			}
			break;
		default:
			if (o < CONFIG_FLAG_BASE) {
				usage(stderr);
				return EXIT_CONFIG;
			}
			if (config_flags_add(&flags, o, optarg, err, sizeof(err)) < 0) {
				fprintf(stderr, "%s\n", err);
				return EXIT_CONFIG;
			}
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "durod: unexpected argument \"%s\" (see --help)\n", argv[optind]);
		return EXIT_CONFIG;
	}

	struct duro_config *cfg = &d.cfg;
	if (obj_registry_check(err, sizeof(err)) < 0) {
		fprintf(stderr, "durod: %s\n", err);
		return EXIT_CONFIG;
	}
	config_defaults(cfg);
	if (config_path && config_load(cfg, config_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_CONFIG;
	}
	if (config_flags_apply(cfg, &flags, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_CONFIG;
	}
	if (!tls_cert != !tls_key) {
		fprintf(stderr, "durod: --tls-cert and --tls-key go together\n");
		return EXIT_CONFIG;
	}
	if (tls_cert) {
		/* For a one-off run: every listener serves TLS with this certificate. */
		if (tls_config_add(&cfg->tls, tls_cert, tls_key) < 0) {
			fprintf(stderr, "durod: --tls-cert: more than %d certificates\n", TLS_MAX_CERTS);
			return EXIT_CONFIG;
		}
		for (unsigned i = 0; i < cfg->net.nlisten; i++)
			cfg->net.listen[i].tls = 1;
	}
	snprintf(cfg->obj.store.dir, sizeof(cfg->obj.store.dir), "%s", cfg->obj.data_dir);
	cfg->obj.cluster = cfg->cluster.name[0] != 0;
	cfg->obj.replicate = cfg->obj.cluster && cfg->cluster.replication && cfg->cluster.replicas > 0;
	if (load_modules(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_CONFIG;
	}
	if (config_validate(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_CONFIG;
	}
	int any_tls = 0;
	for (unsigned i = 0; i < cfg->net.nlisten; i++)
		any_tls |= cfg->net.listen[i].tls;
	/* Outbound https (duro_fetch) needs the TLS layer and the CAs it checks origins by. */
	for (unsigned i = 0; i < cfg->obj.outbound.nallow; i++)
		if (!strncasecmp(cfg->obj.outbound.allow[i], "https:", 6) ||
		    !strncasecmp(cfg->obj.outbound.allow[i], "wss:", 4))
			cfg->tls.client = 1;
	struct tls_setup *tls = NULL;
	if ((any_tls || cfg->tls.client) && tls_setup_load(&cfg->tls, &tls, err, sizeof(err)) < 0) {
		fprintf(stderr, "config: %s\n", err);
		return EXIT_CONFIG;
	}
	if (print_only) {
		tls_setup_free(tls);
		json_t *j = config_to_json(cfg);
		char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
		json_decref(j);
		if (!text) {
			fprintf(stderr, "durod: --print-config: out of memory\n");
			return 1;
		}
		printf("%s\n", text);
		free(text);
		return 0;
	}
	if (check_only) {
		tls_setup_free(tls);
		printf("config: %s: valid\n", config_path);
		return 0;
	}
	log_set_level(cfg->log_level);
	sdnotify_open(&d.notify); /* a bad NOTIFY_SOCKET is logged; durod serves anyway */
	cfg->http.shutdown_timeout_ms = cfg->shutdown_timeout_ms;
	int use_dpdk = strcmp(cfg->backend, "dpdk") == 0;
	const struct net_backend *lower = use_dpdk ? &net_dpdk : &net_uring;
	d.backend = lower;
	static struct net_backend tls_over;
	if (tls) {
		tls_backend(&tls_over, lower, tls);
		d.backend = &tls_over;
	}
	if (lock_data_dir(cfg->obj.data_dir) < 0)
		return 1;
	for (unsigned i = 0; i < cfg->net.nlisten && !use_dpdk; i++)
		if (net_probe_listen(&cfg->net.listen[i]) < 0)
			return 1;

	/* Signals go to core 0's io_uring through a signalfd; block them in every thread,
	 * which inherit this mask from main. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d.sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (d.sigfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return 1;
	}
	/* Until the cores serve, SIGTERM is the start-up watch's: a start-up step that waits
	 * forever (on a device, a file, another core) still stops, and says where it was. */
	if (startup_watch_start(d.sigfd, cfg->cores, "start-up") < 0)
		log_warn("start-up watch: no thread; signals wait until the cores serve");
	startup_watch_step("EAL init (probing devices)");

	/* The EAL is the runtime: lcores pinned to CPUs 0..N-1, rings, no hugepages or PCI
	 * for kernel sockets, so durod runs unprivileged. */
	char lcores[32], prefix[32];
	snprintf(lcores, sizeof(lcores), "0-%u", cfg->cores - 1);
	snprintf(prefix, sizeof(prefix), "durod%d", (int)getpid());
	char *eal_argv[16 + DPDK_MAX_EAL_ARGS + 4];
	char vdev_args[4][340];
	int eal_argc = 0;
	/* The telemetry library's one warning says its legacy (v1) socket was not made, which
	 * nobody uses: at error level it stays out of the operator's log. */
	char *base[] = { argv[0], "-l", lcores, "--file-prefix", prefix, "--log-level",
			 "lib.eal:error", "--log-level", "lib.telemetry:error" };
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		eal_argv[eal_argc++] = base[i];
	/* Kernel sockets need no hugepages or PCI: durod runs unprivileged. The dpdk backend's
	 * mbufs need more memory; its config may replace these with hugepage arguments. */
	char *mem_uring[] = { "--no-huge", "-m", "64", "--no-pci", "--no-shconf" };
	char *mem_dpdk[] = { "--no-huge", "-m", "1024", "--no-pci", "--no-shconf" };
	if (use_dpdk && cfg->dpdk.neal_args) {
		for (unsigned i = 0; i < cfg->dpdk.neal_args; i++)
			eal_argv[eal_argc++] = cfg->dpdk.eal_args[i];
	} else {
		char **mem = use_dpdk ? mem_dpdk : mem_uring;
		for (size_t i = 0; i < 5; i++)
			eal_argv[eal_argc++] = mem[i];
	}
	for (unsigned i = 0; use_dpdk && i < cfg->dpdk.nvdevs; i++) {
		if (dpdk_vdev_arg(&cfg->dpdk, i, vdev_args[i], sizeof(vdev_args[i])) < 0) {
			log_error("dpdk.vdevs[%u]: too long with the ring sizes added", i);
			return EXIT_CONFIG;
		}
		eal_argv[eal_argc++] = vdev_args[i];
	}
	eal_argv[eal_argc] = NULL;
	if (eal_log_redirect() < 0)
		log_warn("DPDK's messages go to stdout: no log stream of our own");
	if (rte_eal_init(eal_argc, eal_argv) < 0) {
		log_error("rte_eal_init failed (lcores %s): %s", lcores, rte_strerror(rte_errno));
		return 1;
	}
	remove_stale_runtime_dirs();
	cpu_set_t main_pinned;
	int widened = main_cpus_widen(&main_pinned);
	startup_watch_step("dpdk port start");
	if (use_dpdk && dpdk_port_init(&cfg->dpdk, &cfg->net, cfg->cores) < 0) {
		dpdk_port_fini();
		rte_eal_cleanup();
		return 1;
	}
	sdnotify_send(&d.notify, "STATUS=opening storage (replaying commit logs)");
	startup_watch_step("opening storage (replaying commit logs)");
	int r = obj_runtime_init(&cfg->obj, cfg->cores);
	if (r < 0) {
		obj_runtime_fini();
		rmdir(rte_eal_get_runtime_dir());
		rte_eal_cleanup();
		return r == -EINVAL ? EXIT_CONFIG : 1;
	}
	obj_outbound_resolve(&cfg->obj.outbound);
	startup_watch_step("control and cluster threads");
	/* Deployed versions (rolled back where one kept crashing), then the handler that
	 * attributes and records the next crash. */
	ctl_deploy_restore_bindings(cfg);
	ctl_deploy_restore(cfg);
	crash_init(cfg->obj.data_dir);
	r = core_group_init(&d.group, cfg->cores, 4096);
	if (r < 0) {
		log_error("core set-up: %s", strerror(-r));
		rte_eal_cleanup();
		return 1;
	}
	obj_runtime_attach(&d.group);
	/* Pinned again before the threads below are made (they inherit it, as before) and
	 * before this thread becomes core 0. */
	if (widened)
		pthread_setaffinity_np(pthread_self(), sizeof(main_pinned), &main_pinned);
	d.group.idle_spin_us = cfg->idle_spin_us;
	d.group.core_start = core_start;
	d.group.core_stop = core_stop;
	d.group.core_serve = core_serve;
	d.group.arg = &d;
	for (unsigned i = 0; i < cfg->net.nlisten; i++) {
		size_t n = strlen(d.addrs);
		snprintf(d.addrs + n, sizeof(d.addrs) - n, "%s%s", i ? ", " : "", cfg->net.listen[i].text);
	}
	d.control.tls = tls != NULL;
	r = ctl_init(&d.control, cfg, &d.group, DURO_VERSION, d.backend->name);
	if (r == 0 && ctl_telemetry_register(&d.control) < 0)
		log_warn("DPDK telemetry: could not register duro's commands");
	if (r == 0)
		r = ctl_start(&d.control);
	/* Cluster mode: the cores start serving no object; the cluster thread gives them
	 * their slots once this box has joined. */
	if (r == 0 && cfg->obj.cluster)
		r = cluster_start(&d.control.cluster, cfg, &d.control.mb, &d.group, DURO_VERSION);
	if (r == 0 && d.control.cluster)
		cluster_set_load_source(d.control.cluster, ctl_load_figures, &d.control);
	if (r < 0) {
		ctl_stop(&d.control);
		core_group_destroy(&d.group);
		obj_outbound_resolve_stop();
		obj_runtime_fini();
		rte_eal_cleanup();
		return r == -ENAMETOOLONG ? EXIT_CONFIG : 1;
	}
	sdnotify_send(&d.notify, "STATUS=starting %u cores", cfg->cores);
	startup_watch_step("starting the cores");
	r = core_group_run(&d.group);
	startup_watch_stop(); /* a core that failed to start: core 0 never served */
	/* The cores have stopped and nobody reads the signals: the watch takes them again, so
	 * a teardown step that takes long says which, and a second signal ends it. */
	if (startup_watch_start(d.sigfd, cfg->cores, "shutdown") < 0)
		log_warn("shutdown watch: no thread");
	main_cpus_widen(&main_pinned); /* core 0 is done: the teardown may run anywhere */
	startup_watch_step("calls, cluster and control threads");
	obj_calls_fini(); /* calls a core held for another when they stopped */
	cluster_stop(d.control.cluster);
	d.control.cluster = NULL;
	ctl_stop(&d.control);
	core_group_destroy(&d.group);
	obj_outbound_resolve_stop();
	startup_watch_step("dpdk port teardown (mbuf pool)");
	if (use_dpdk)
		dpdk_port_fini();
	if (tls)
		tls_shutdown();
	startup_watch_step("closing storage (final flush)");
	fault_stop_stall();
	obj_runtime_fini();
	startup_watch_step("EAL cleanup");
	/* The EAL leaves its (empty, with --no-shconf) runtime directory behind: remove it. */
	char rundir[512], sock[600];
	snprintf(rundir, sizeof(rundir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	snprintf(sock, sizeof(sock), "%s/dpdk_telemetry.v2", rundir);
	unlink(sock); /* the telemetry socket outlives the EAL */
	rmdir(rundir);
	startup_watch_stop();
	close(d.sigfd);
	sdnotify_close(&d.notify);
	if (r < 0) {
		log_error("durod: a core failed to start: %s", strerror(-r));
		return 1;
	}
	log_info("durod: stopped");
	return 0;
}
