/* durod's configuration: a JSON file modelled on wrangler.json, defaults for every key,
 * and strict checking that names the path of any bad key. Every key is one row of the
 * table in config_keys.c, which drives parsing, defaults, the JSON shown back, flags and
 * their help. */
#ifndef DURO_CONTROL_CONFIG_H
#define DURO_CONTROL_CONFIG_H

#include "http-t.h"
#include "log.h"
#include "dpdk.h"
#include "net.h"
#include "obj-t.h"
#include "tls.h"
#include "ws.h"

#include <getopt.h>
#include <stdio.h>

/* Class modules (.so) a config may load at start. */
#define CONFIG_MAX_MODULES 16
/* etcd endpoints a cluster box may try (cluster.etcd). */
#define CONFIG_MAX_ETCD 8

struct duro_config {
	unsigned cores;
	char modules[CONFIG_MAX_MODULES][512]; /* loaded before bindings are resolved */
	unsigned nmodules;
	unsigned watchdog_ms; /* a core that has not finished a loop turn for this long: abort */
	char backend[16];
	enum log_level log_level;
	unsigned idle_spin_us;
	unsigned shutdown_timeout_ms;
	struct net_config net;
	struct http_config http;
	struct tls_config tls; /* the certificate of the listeners marked tls */
	struct dpdk_config dpdk; /* backend "dpdk" */
	struct ws_config ws;
	struct obj_config obj;
	struct {
		char socket[512];  /* control socket; "" means <data_dir>/control.sock */
		char group[64];    /* also allowed (mode 0660) when set */
		char metrics[64];  /* Prometheus and dashboard listener, "" for none */
		int dashboard_sql; /* the dashboard's read-only SQL view (/api/sql); off */
	} control;
	/* Cluster mode (control/cluster.c): on when name is set, else a single box, no etcd. */
	struct {
		char name[64];                  /* the cluster: keys under /duro/<name>/ */
		char etcd[CONFIG_MAX_ETCD][128]; /* http://host:port of etcd members */
		unsigned netcd;
		char advertise[128];  /* host:port peers reach this box at; "": the first listener */
		char box[64];         /* this box's name; "": the advertise address */
		unsigned lease_ttl_ms;          /* the member lease; fenced when not renewed */
		unsigned etcd_timeout_ms;       /* one etcd request, per endpoint */
		unsigned rebalance_interval_ms; /* the rebalancer's rounds */
		unsigned settle_ms;             /* membership unchanged this long before it acts */
		unsigned max_moves_per_round;   /* slot moves with data in flight at once */
		unsigned replicas;              /* K: followers per slot besides its owner */
		int allow_fewer_copies;         /* assign slots with fewer than K+1 live boxes */
		int replication;                /* owners send their slots' writes to followers */
		unsigned follower_timeout_ms;   /* an append's answer; then not waited for */
	} cluster;
};

/* Fills the built-in defaults: 127.0.0.1:8787, ./duro-data, one core per CPU, a binding
 * per built-in class with its route (COUNTER on /counter/ ... ROOM on /room/), the
 * generic /obj/ route, and the built-in migration tags (builtin-v1, builtin-v2). */
void config_defaults(struct duro_config *cfg);

/* Reads `path` over what cfg holds (the defaults, usually). Returns 0, or -EINVAL after
 * writing one message such as
 * `config: durable_objects.bindings[1].class_name: unknown class "Conter"` to err. */
int config_load(struct duro_config *cfg, const char *path, char *err, size_t errlen);

/* The same over JSON text in memory (the fuzz target's entry point). */
int config_load_buffer(struct duro_config *cfg, const char *data, size_t len, char *err,
		       size_t errlen);

/* The effective config (defaults, file and flags together) as JSON; the caller owns the
 * reference. NULL when out of memory. config_load_buffer of its text gives the same
 * config back. */
struct json_t;
struct json_t *config_to_json(const struct duro_config *cfg);

/* "aa:bb:cc:dd:ee:ff" (unicast) into mac; 0 or -EINVAL. */
int config_parse_mac(const char *text, uint8_t mac[6]);

/* Checks what flags and the file produced together (e.g. --cores against the CPUs), and
 * that every binding names a registered class: durod loads the config's modules first. */
int config_validate(const struct duro_config *cfg, char *err, size_t errlen);

/* Flags over the file. A flag that sets a key ("--dpdk-mtu 9000") is exactly that key in
 * the file ("dpdk": {"mtu": 9000}); "--set PATH=VALUE" does the same for any key. The
 * caller collects them while reading its arguments and applies them after the file:
 *
 *     struct config_flags fl = { 0 };
 *     n = config_flag_options(opts + mine, cap - mine);   getopt_long over opts
 *     case CONFIG_FLAG_SET: config_flags_add_set(&fl, optarg, err, errlen)
 *     default (o >= CONFIG_FLAG_BASE): config_flags_add(&fl, o, optarg, err, errlen)
 *     config_load(cfg, file); config_flags_apply(cfg, &fl, err, errlen);
 *
 * The texts are not copied: they must outlive config_flags_apply (argv does). */
#define CONFIG_FLAG_BASE 0x1000 /* getopt val of the first key flag */
#define CONFIG_FLAG_SET 0x0fff  /* getopt val the caller gives "--set" */
#define CONFIG_MAX_FLAGS 64     /* flag occurrences one run may give */
#define CONFIG_MAX_KEY_FLAGS 32 /* flags in the key table (config_flag_options' cap) */
struct config_flags {
	struct {
		int key;          /* row of the key table, or -1 for --set */
		const char *text; /* the flag's value ("PATH=VALUE" for --set) */
	} given[CONFIG_MAX_FLAGS];
	unsigned n;
};

/* Fills out (at most cap entries) with a getopt_long option per key flag, val
 * CONFIG_FLAG_BASE + i; returns the count (cap must fit them all: DURO_ASSERT). */
unsigned config_flag_options(struct option *out, unsigned cap);

/* One occurrence of a key flag (val as getopt_long returned it). 0, or -E2BIG after a
 * message in err when more than CONFIG_MAX_FLAGS were given. */
int config_flags_add(struct config_flags *fl, int val, const char *text, char *err,
		     size_t errlen);
int config_flags_add_set(struct config_flags *fl, const char *path_value, char *err,
			 size_t errlen);

/* Applies the flags over cfg: key flags first (a repeated one, like --listen, gives its
 * key every value in order; any other, the last), then each --set in order. Returns 0, or
 * -EINVAL after a message naming the flag and the key, e.g.
 * `durod: --dpdk-mtu: config: dpdk.mtu: 100 is out of range [576, 9000]`. */
int config_flags_apply(struct duro_config *cfg, const struct config_flags *fl, char *err,
		       size_t errlen);

/* --help's lines for the key flags, and the whole key reference (--help-config). */
void config_flags_usage(FILE *f);
void config_keys_usage(FILE *f);

#endif
