/* Unit tests of the config table and engine: the table's own invariants, the effective
 * config round trip (to_json, parse, to_json), errors naming key and range for every key,
 * and flags that are exactly their key in the file. */
#include "check.h"
#include "config_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Every key set to something other than its default (test_every_key_covered checks it). */
static const char every_key[] =
	"{\"$schema\": \"x\", \"name\": \"app\", \"cores\": 3, \"backend\": \"dpdk\","
	" \"modules\": [\"a.so\", \"/x/b.so\"], \"watchdog_ms\": 500,"
	" \"data_dir\": \"./dd\","
	" \"listeners\": [\"0.0.0.0:80\", {\"address\": \"10.77.0.1:443\","
	"   \"tls\": {\"cert\": \"a.pem\", \"key\": \"a.key\"}}],"
	" \"durable_objects\": {\"bindings\": [{\"name\": \"C\", \"class_name\": \"Counter\","
	"   \"vars\": {\"s\": \"x\", \"n\": 3, \"f\": 1.5, \"b\": true}},"
	"   {\"name\": \"R\", \"class_name\": \"ChatRoom\"}]},"
	" \"routes\": [{\"prefix\": \"/c/\", \"binding\": \"C\", \"id\": \"name\"},"
	"   {\"prefix\": \"/s/\", \"binding\": \"R\", \"id\": \"string\"}, {\"prefix\": \"/o/\", \"id\": \"path\"}],"
	" \"limits\": {\"max_head_bytes\": 8192, \"max_body_bytes\": 1000, \"header_timeout_ms\": 1000,"
	"   \"body_timeout_ms\": 2000, \"body_min_rate\": 7, \"send_timeout_ms\": 3000,"
	"   \"idle_timeout_ms\": 5000, \"max_pipeline\": 4, \"max_output_bytes\": 8192,"
	"   \"max_connections_per_core\": 100},"
	" \"objects\": {\"evict_idle_ms\": 100},"
	" \"storage\": {\"max_key_bytes\": 100, \"max_value_bytes\": 1000, \"max_object_bytes\": 100000,"
	"   \"cache_bytes_per_core\": 0, \"block_cache_bytes\": 2097152, \"write_buffer_bytes\": 2097152,"
	"   \"blob_min_bytes\": 0, \"log_rotate_bytes\": 1048576, \"min_free_bytes\": 0,"
	"   \"log_direct_io\": false, \"pitr_retention\": 1000, \"pitr_sweep_ms\": 100},"
	" \"sql\": {\"cache_bytes_per_core\": 1048576, \"connection_bytes_per_core\": 2097152,"
	"   \"max_event_write_bytes\": 65536,"
	"   \"max_statement_bytes\": 1000, \"max_params\": 1, \"max_row_bytes\": 1024,"
	"   \"max_columns\": 1, \"max_expr_depth\": 10, \"time_budget_ms\": 1, \"open_ahead\": true},"
	" \"migrations\": [{\"tag\": \"v1\", \"new_classes\": [\"Counter\"], \"new_sqlite_classes\": [\"Echo\"]},"
	"   {\"tag\": \"v2\", \"renamed_classes\": [{\"from\": \"Echo\", \"to\": \"ChatRoom\", \"from_script\": \"s\"}],"
	"    \"deleted_classes\": [\"KV\"], \"transferred_classes\": [{\"from\": \"A\", \"to\": \"B\"}]}],"
	" \"alarms\": {\"retry_initial_ms\": 10, \"max_retries\": 0, \"min_interval_ms\": 0},"
	" \"websockets\": {\"max_message_bytes\": 125, \"max_outbound_bytes\": 4096,"
	"   \"close_timeout_ms\": 10, \"max_per_object\": 1, \"hibernate_idle_ms\": 10},"
	" \"outbound\": {\"allow\": [\"http://127.0.0.1:*\"], \"ca_file\": \"ca.pem\", \"connect_timeout_ms\": 1, \"timeout_ms\": 1,"
	"   \"max_response_bytes\": 0, \"max_per_object\": 1, \"max_idle_per_core\": 0, \"idle_timeout_ms\": 1,"
	"   \"resolve_interval_ms\": 0, \"hosts_file\": \"hosts\"},"
	" \"calls\": {\"timeout_ms\": 1, \"max_depth\": 1, \"max_queue\": 1, \"max_pending\": 1,"
	"   \"max_per_core\": 16},"
	" \"control\": {\"socket\": \"/tmp/c.sock\", \"group\": \"root\", \"metrics\": \"127.0.0.1:9464\","
	"   \"dashboard_sql\": true},"
	" \"cluster\": {\"name\": \"east\", \"etcd\": [\"http://127.0.0.1:2379\", \"http://[::1]:22379\"],"
	"   \"advertise\": \"127.0.0.1:8801\", \"box\": \"b1\", \"lease_ttl_ms\": 3000,"
	"   \"etcd_timeout_ms\": 500, \"rebalance_interval_ms\": 200, \"settle_ms\": 0,"
	"   \"max_moves_per_round\": 8, \"replicas\": 1, \"allow_fewer_copies\": true, \"pipeline\": true,"
	"   \"replication\": true, \"follower_timeout_ms\": 300},"
	" \"tls\": {\"handshake_timeout_ms\": 100, \"ticket_lifetime_s\": 0,"
	"   \"certificates\": [{\"cert\": \"b.pem\", \"key\": \"b.key\"}]},"
	" \"uring\": {\"buffer_ring\": false, \"accept_dontwait\": false},"
	" \"shutdown_timeout_ms\": 0, \"idle_spin_us\": 0, \"log_level\": \"debug\","
	" \"dpdk\": {\"eal_args\": [\"--no-huge\", \"-m\", \"512\"], \"vdevs\": [\"net_af_packet0,iface=x\"],"
	"   \"port\": 3, \"mac\": \"02:00:00:00:00:01\", \"ipv4\": \"10.77.0.1/24\","
	"   \"gateway\": \"10.77.0.254\", \"mtu\": 9000, \"mbufs\": 4096, \"idle_sleep_us\": 0,"
	"   \"rx_desc\": 512, \"tx_desc\": 1024, \"tx_backlog\": 2048, \"steer_ring\": 1024,"
	"   \"af_packet_blocksz\": 1048576, \"af_packet_framecnt\": 1024,"
	"   \"zero_copy_min_bytes\": 0, \"tx_coalesce_us\": 0,"
	"   \"fault_rx\": {\"seed\": 4294967295, \"drop_pct\": 1, \"duplicate_pct\": 2,"
	"     \"reorder_pct\": 3, \"delay_pct\": 4, \"delay_ms\": 5},"
	"   \"fault_tx\": {\"seed\": 1, \"drop_pct\": 100, \"duplicate_pct\": 6, \"reorder_pct\": 7,"
	"     \"delay_pct\": 8, \"delay_ms\": 10000}}}";

static struct duro_config cfg, cfg2;
static char err[512];

static json_t *at(json_t *root, const char *path)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", path);
	json_t *v = root;
	for (char *save = NULL, *tok = strtok_r(buf, ".", &save); v && tok;
	     tok = strtok_r(NULL, ".", &save))
		v = json_object_get(v, tok);
	return v;
}

static char *dump(const struct duro_config *c)
{
	json_t *j = config_to_json(c);
	CHECK(j != NULL);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

/* Loads text over the defaults; 0 or -EINVAL with err set. */
static int load(struct duro_config *c, const char *text)
{
	config_defaults(c);
	err[0] = 0;
	return config_load_buffer(c, text, strlen(text), err, sizeof(err));
}

/* {"a": {"b": value}} for path "a.b", as text; the caller frees it. */
static char *nested(const char *path, json_t *value)
{
	json_t *root = json_object();
	CHECK(config_json_put(root, path, value) == 0);
	char *s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

static void test_table_invariants(void)
{
	for (unsigned i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		size_t n = strlen(k->path);
		CHECK(n > 0 && k->doc && *k->doc);
		for (unsigned j = 0; j < config_nkeys; j++) {
			if (j == i)
				continue;
			/* unique, and never a key and a section at once */
			CHECK(strcmp(config_keys[j].path, k->path) != 0);
			if (!strncmp(config_keys[j].path, k->path, n) && config_keys[j].path[n] == '.') {
				fprintf(stderr, "  %s is a key and a section\n", k->path);
				CHECK(0);
			}
			if (k->flag && config_keys[j].flag)
				CHECK(strcmp(k->flag, config_keys[j].flag) != 0);
		}
		if (k->flag)
			CHECK(!strncmp(k->flag, "--", 2) && k->metavar);
		if (k->type == CONFIG_UINT) {
			CHECK(k->min <= k->def && k->def <= k->max && (k->size == 4 || k->size == 8));
			/* a default its own check refuses would refuse the default config */
			struct config_ctx x = { .err = err, .errlen = sizeof(err) };
			CHECK(!k->check_uint || k->check_uint(&x, k->path, k->def) == 0);
		}
		if (k->check_uint)
			CHECK(k->type == CONFIG_UINT);
		if (k->type == CONFIG_ENUM) {
			unsigned names = 0;
			while (k->names[names])
				names++;
			CHECK(k->def < names);
		}
		if (k->type == CONFIG_CUSTOM)
			CHECK(k->custom->parse && k->custom->to_json && k->custom->defaults &&
			      k->custom->type && k->custom->def);
		if (k->type == CONFIG_STRINGS)
			CHECK(k->max > 0 && k->count_offset);
	}
}

static void round_trip(const struct duro_config *c, const char *name)
{
	char *a = dump(c);
	/* over the defaults, and over a config that differs everywhere */
	CHECK(load(&cfg2, a) == 0);
	char *b = dump(&cfg2);
	CHECK(a && b && strcmp(a, b) == 0);
	if (a && b && strcmp(a, b))
		fprintf(stderr, "  %s:\n  %s\n  %s\n", name, a, b);
	free(b);
	/* Certificates are a set that keys add to (a listener's, tls.certificates): start
	 * from none. */
	CHECK(load(&cfg2, every_key) == 0);
	cfg2.tls.ncerts = 0;
	/* A single box shows no cluster section (cluster mode is on with a name): start from
	 * a single box, as the certificates start from none. */
	cfg2.cluster.name[0] = 0;
	CHECK(config_load_buffer(&cfg2, a, strlen(a), err, sizeof(err)) == 0);
	b = dump(&cfg2);
	CHECK(a && b && strcmp(a, b) == 0);
	if (a && b && strcmp(a, b))
		fprintf(stderr, "  %s over every_key:\n  %s\n  %s\n", name, a, b);
	free(a);
	free(b);
}

static void test_defaults_round_trip(void)
{
	config_defaults(&cfg);
	round_trip(&cfg, "defaults");
	/* the built-ins: a binding and a name route each, and five migration tags */
	CHECK_EQ(cfg.obj.nbindings, 12);
	CHECK_EQ(cfg.obj.nroutes, 13);
	CHECK_EQ(cfg.obj.nmigrations, 5);
	CHECK(!strcmp(cfg.obj.routes[7].prefix, "/room/") && cfg.obj.routes[7].binding == 7);
	CHECK(!strcmp(cfg.obj.migrations[1].tag, "builtin-v2"));
	CHECK(!strcmp(cfg.obj.migrations[1].new_classes[0], "ChatRoom"));
	CHECK(!strcmp(cfg.obj.migrations[2].tag, "builtin-v3"));
	CHECK(!strcmp(cfg.obj.migrations[2].new_classes[0], "SqlCounter"));
	CHECK(!strcmp(cfg.obj.migrations[3].tag, "builtin-v4"));
	CHECK(!strcmp(cfg.obj.migrations[3].new_classes[0], "Feed"));
	CHECK(!strcmp(cfg.obj.migrations[4].tag, "builtin-v5"));
	CHECK(!strcmp(cfg.obj.migrations[4].new_classes[0], "AppendList"));
	CHECK_EQ(cfg.net.nlisten, 1);
	CHECK(!strcmp(cfg.net.listen[0].text, "127.0.0.1:8787"));
	CHECK(!strcmp(cfg.obj.store.dir, "./duro-data"));
}

static void test_every_key_round_trip(void)
{
	CHECK(load(&cfg, every_key) == 0);
	if (err[0])
		fprintf(stderr, "  %s\n", err);
	round_trip(&cfg, "every key");
	CHECK(cfg.net.listen[1].tls && cfg.tls.ncerts == 2);
	CHECK_EQ(cfg.obj.migrations[0].nnew, 2);
	CHECK(cfg.obj.store.log_buffered && cfg.net.no_buffer_ring && cfg.net.accept4);
}

/* Each key of every_key differs from its default in the JSON shown back: a row added
 * without a value here fails, naming itself. */
static void test_every_key_covered(void)
{
	config_defaults(&cfg);
	snprintf(cfg.backend, sizeof(cfg.backend), "dpdk"); /* show the dpdk section */
	snprintf(cfg.cluster.name, sizeof(cfg.cluster.name), "x"); /* and the cluster's */
	json_t *def = config_to_json(&cfg);
	CHECK(load(&cfg2, every_key) == 0);
	json_t *all = config_to_json(&cfg2);
	for (unsigned i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		if (k->type == CONFIG_IGNORED || !strcmp(k->path, "backend"))
			continue;
		json_t *a = at(def, k->path), *b = at(all, k->path);
		if (!a || !b || json_equal(a, b)) {
			fprintf(stderr, "  %s: not shown, or every_key leaves it at its default\n", k->path);
			CHECK(0);
		}
	}
	json_decref(def);
	json_decref(all);
}

static int has(const char *needle)
{
	if (strstr(err, needle))
		return 1;
	fprintf(stderr, "  want \"%s\" in \"%s\"\n", needle, err);
	return 0;
}

static void test_errors_name_key_and_range(void)
{
	char want[256];
	for (unsigned i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		if (k->type == CONFIG_UINT) {
			char *t = nested(k->path, json_integer((json_int_t)k->max + 1));
			CHECK(load(&cfg, t) == -EINVAL);
			snprintf(want, sizeof(want), "config: %s: %llu is out of range [%llu, %llu]", k->path,
				 (unsigned long long)k->max + 1, (unsigned long long)k->min,
				 (unsigned long long)k->max);
			CHECK(has(want));
			free(t);
			if (k->min > 0) {
				t = nested(k->path, json_integer((json_int_t)k->min - 1));
				CHECK(load(&cfg, t) == -EINVAL);
				CHECK(has("is out of range"));
				free(t);
			}
			t = nested(k->path, json_string("1"));
			CHECK(load(&cfg, t) == -EINVAL);
			snprintf(want, sizeof(want), "config: %s: want an integer, got a string", k->path);
			CHECK(has(want));
			free(t);
		} else if (k->type == CONFIG_BOOL) {
			char *t = nested(k->path, json_integer(1));
			CHECK(load(&cfg, t) == -EINVAL);
			snprintf(want, sizeof(want), "config: %s: want a boolean, got an integer", k->path);
			CHECK(has(want));
			free(t);
		} else if (k->type == CONFIG_ENUM) {
			char *t = nested(k->path, json_string("nope"));
			CHECK(load(&cfg, t) == -EINVAL);
			snprintf(want, sizeof(want), "config: %s: \"nope\": want %s", k->path, k->names[0]);
			CHECK(has(want));
			free(t);
		}
		/* an unknown key beside each key names its path */
		const char *dot = strrchr(k->path, '.');
		if (dot && k->type != CONFIG_IGNORED) {
			char sec[96], bad[128];
			snprintf(sec, sizeof(sec), "%.*s.nokey", (int)(dot - k->path), k->path);
			char *t = nested(sec, json_integer(1));
			CHECK(load(&cfg, t) == -EINVAL);
			snprintf(bad, sizeof(bad), "config: %s: unknown key", sec);
			CHECK(has(bad));
			free(t);
		}
	}
	CHECK(load(&cfg, "{\"listners\": []}") == -EINVAL);
	CHECK(has("config: listners: unknown key (did you mean \"listeners\"?)"));
	CHECK(load(&cfg, "{\"limits\": {\"max_bodybytes\": 1}}") == -EINVAL);
	CHECK(has("config: limits.max_bodybytes: unknown key (did you mean \"max_body_bytes\"?)"));
	/* a dotted name is not a path */
	CHECK(load(&cfg, "{\"limits.max_body_bytes\": 1}") == -EINVAL);
	CHECK(has("config: limits.max_body_bytes: unknown key"));
	CHECK(load(&cfg, "{\"dpdk\": {\"fault_rx\": 1}}") == -EINVAL);
	CHECK(has("config: dpdk.fault_rx: want an object, got an integer"));
	CHECK(load(&cfg, "[]") == -EINVAL);
	CHECK(has("config: (top level): want an object, got an array"));
	CHECK(load(&cfg, "{\"dpdk\": {\"vdevs\": [\"a\", 1]}}") == -EINVAL);
	CHECK(has("config: dpdk.vdevs[1]: want a string shorter than 256 bytes"));
	CHECK(load(&cfg, "{\"log_level\": \"\"}") == -EINVAL);
	CHECK(has("config: log_level: \"\": want error, warn, info or debug"));
}

static int flag_val(const char *flag)
{
	struct option opts[CONFIG_MAX_KEY_FLAGS];
	unsigned n = config_flag_options(opts, CONFIG_MAX_KEY_FLAGS);
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(opts[i].name, flag + 2))
			return opts[i].val;
	fprintf(stderr, "  no flag %s\n", flag);
	CHECK(0);
	return 0;
}

/* Applies flags (name, text, name, text, ..., NULL) over the defaults. */
static int with_flags(struct duro_config *c, ...)
{
	static struct config_flags fl;
	memset(&fl, 0, sizeof(fl));
	va_list ap;
	va_start(ap, c);
	for (const char *name; (name = va_arg(ap, const char *));) {
		const char *text = va_arg(ap, const char *);
		if (!strcmp(name, "--set"))
			CHECK(config_flags_add_set(&fl, text, err, sizeof(err)) == 0);
		else
			CHECK(config_flags_add(&fl, flag_val(name), text, err, sizeof(err)) == 0);
	}
	va_end(ap);
	config_defaults(c);
	err[0] = 0;
	return config_flags_apply(c, &fl, err, sizeof(err));
}

static void same_config(const char *flagged_name)
{
	char *a = dump(&cfg), *b = dump(&cfg2);
	CHECK(a && b && strcmp(a, b) == 0);
	if (a && b && strcmp(a, b))
		fprintf(stderr, "  %s differs from its key\n", flagged_name);
	free(a);
	free(b);
}

static void test_flags_are_their_keys(void)
{
	CHECK(with_flags(&cfg, "--dpdk-mtu", "9000", "--backend", "dpdk", NULL) == 0);
	CHECK(load(&cfg2, "{\"backend\": \"dpdk\", \"dpdk\": {\"mtu\": 9000}}") == 0);
	same_config("--dpdk-mtu");
	CHECK(with_flags(&cfg, "--listen", "127.0.0.1:1", "--listen", "[::1]:2", "--cores", "1",
			 "--log-level", "warn", "--data-dir", "/x", NULL) == 0);
	CHECK(load(&cfg2, "{\"listeners\": [\"127.0.0.1:1\", \"[::1]:2\"], \"cores\": 1,"
			  " \"log_level\": \"warn\", \"data_dir\": \"/x\"}") == 0);
	same_config("--listen");
	CHECK(with_flags(&cfg, "--backend", "dpdk", "--dpdk-eal", "--no-huge -m 512", "--dpdk-vdev",
			 "a", "--dpdk-vdev", "b", "--dpdk-ipv4", "10.0.0.1/8", "--dpdk-gateway",
			 "10.0.0.254", "--dpdk-mac", "02:00:00:00:00:09", "--dpdk-port", "5", NULL) == 0);
	CHECK(load(&cfg2, "{\"backend\": \"dpdk\", \"dpdk\": {\"eal_args\": [\"--no-huge\", \"-m\", \"512\"],"
			  " \"vdevs\": [\"a\", \"b\"], \"ipv4\": \"10.0.0.1/8\", \"gateway\": \"10.0.0.254\","
			  " \"mac\": \"02:00:00:00:00:09\", \"port\": 5}}") == 0);
	same_config("--dpdk-*");
	/* --set: any key, structured ones as JSON; later flags win */
	CHECK(with_flags(&cfg, "--set", "limits={\"max_pipeline\": 4}", "--set", "storage.log_direct_io=false",
			 "--set", "routes=[{\"prefix\": \"/k/\", \"binding\": \"KV\"}]", "--set",
			 "control.socket=/s", "--set", "limits.max_body_bytes=7", NULL) == 0);
	CHECK(load(&cfg2, "{\"limits\": {\"max_pipeline\": 4, \"max_body_bytes\": 7},"
			  " \"storage\": {\"log_direct_io\": false}, \"control\": {\"socket\": \"/s\"},"
			  " \"routes\": [{\"prefix\": \"/k/\", \"binding\": \"KV\"}]}") == 0);
	same_config("--set");
	/* the last of a flag that does not repeat wins, as getopt users expect */
	CHECK(with_flags(&cfg, "--cores", "2", "--cores", "1", NULL) == 0);
	CHECK_EQ(cfg.cores, 1);
}

static void test_flag_errors_name_flag_and_key(void)
{
	CHECK(with_flags(&cfg, "--dpdk-mtu", "100", NULL) == -EINVAL);
	CHECK(has("durod: --dpdk-mtu: config: dpdk.mtu: 100 is out of range [576, 9000]"));
	CHECK(with_flags(&cfg, "--set", "dpdk.mtu=100", NULL) == -EINVAL);
	CHECK(has("durod: --set: config: dpdk.mtu: 100 is out of range [576, 9000]"));
	CHECK(with_flags(&cfg, "--cores", "x", NULL) == -EINVAL);
	CHECK(has("durod: --cores: config: cores: want an integer, got \"x\""));
	CHECK(with_flags(&cfg, "--cores", "", NULL) == -EINVAL);
	CHECK(has("want an integer"));
	CHECK(with_flags(&cfg, "--cores", "99999999999999999999", NULL) == -EINVAL);
	CHECK(has("want an integer"));
	CHECK(with_flags(&cfg, "--cores", "-1", NULL) == -EINVAL);
	CHECK(has("durod: --cores: config: cores: -1 is out of range [1, 64]"));
	CHECK(with_flags(&cfg, "--listen", "nowhere", NULL) == -EINVAL);
	CHECK(has("durod: --listen: config: listeners[0]: bad address \"nowhere\""));
	CHECK(with_flags(&cfg, "--backend", "xdp", NULL) == -EINVAL);
	CHECK(has("durod: --backend: config: backend: \"xdp\": want uring or dpdk"));
	CHECK(with_flags(&cfg, "--set", "limts.max_pipeline=4", NULL) == -EINVAL);
	CHECK(has("durod: --set: config: limts: unknown key (did you mean \"limits\"?)"));
	CHECK(with_flags(&cfg, "--set", "limits", NULL) == -EINVAL);
	CHECK(has("durod: --set: \"limits\": want KEY=VALUE"));
	CHECK(with_flags(&cfg, "--set", "a..b=1", NULL) == -EINVAL);
	CHECK(has("want a key path"));
	CHECK(with_flags(&cfg, "--set", "storage.log_direct_io=yes", NULL) == -EINVAL);
	CHECK(has("durod: --set: config: storage.log_direct_io: want true or false, got \"yes\""));
	CHECK(with_flags(&cfg, "--set", "routes=[", NULL) == -EINVAL);
	CHECK(has("durod: --set: config: routes: not JSON"));
	CHECK(with_flags(&cfg, "--set", "data_dir=\xff", NULL) == -EINVAL);
	CHECK(has("not valid UTF-8"));
	/* every integer flag: its range, with the flag and the key */
	for (unsigned i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		if (k->type != CONFIG_UINT || !k->flag)
			continue;
		char text[32], want[192];
		snprintf(text, sizeof(text), "%llu", (unsigned long long)k->max + 1);
		CHECK(with_flags(&cfg, k->flag, text, NULL) == -EINVAL);
		snprintf(want, sizeof(want), "durod: %s: config: %s: %s is out of range [%llu, %llu]",
			 k->flag, k->path, text, (unsigned long long)k->min, (unsigned long long)k->max);
		CHECK(has(want));
	}
}

/* Values in range that a key's own check refuses, and the af_packet pair checked together
 * after every flag (either may come last). */
static void test_checked_values(void)
{
	CHECK(load(&cfg, "{\"dpdk\": {\"steer_ring\": 3000}}") == -EINVAL);
	CHECK(has("config: dpdk.steer_ring: 3000: want a power of two"));
	CHECK(load(&cfg, "{\"dpdk\": {\"af_packet_blocksz\": 5000}}") == -EINVAL);
	CHECK(has("config: dpdk.af_packet_blocksz: 5000: want a multiple of 4096"));
	CHECK(load(&cfg, "{\"dpdk\": {\"steer_ring\": 65536, \"af_packet_blocksz\": 65536}}") == 0);
	CHECK_EQ(cfg.dpdk.steer_ring, 65536);
	CHECK(with_flags(&cfg, "--set", "dpdk.steer_ring=3000", NULL) == -EINVAL);
	CHECK(has("durod: --set: config: dpdk.steer_ring: 3000: want a power of two"));
	/* 8192-byte blocks hold 4 frames: 1001 frames is no whole number of blocks */
	CHECK(load(&cfg, "{\"dpdk\": {\"af_packet_blocksz\": 8192, \"af_packet_framecnt\": 1001}}") == 0);
	CHECK(config_validate(&cfg, err, sizeof(err)) == -EINVAL);
	CHECK(has("config: dpdk.af_packet_framecnt: 1001: want a multiple of the 4 frames"));
	/* the file sets both, a flag later changes the block size alone */
	CHECK(with_flags(&cfg, "--set", "dpdk={\"af_packet_blocksz\": 4096, \"af_packet_framecnt\": 20}",
			 "--set", "dpdk.af_packet_blocksz=16384", NULL) == 0);
	CHECK(config_validate(&cfg, err, sizeof(err)) == -EINVAL);
	CHECK(has("config: dpdk.af_packet_framecnt: 20: want a multiple of the 8 frames"));
	config_defaults(&cfg);
	cfg.cores = 1;
	CHECK(config_validate(&cfg, err, sizeof(err)) == 0);
}

int main(void)
{
	RUN(test_table_invariants);
	RUN(test_defaults_round_trip);
	RUN(test_every_key_round_trip);
	RUN(test_every_key_covered);
	RUN(test_errors_name_key_and_range);
	RUN(test_flags_are_their_keys);
	RUN(test_flag_errors_name_flag_and_key);
	RUN(test_checked_values);
	return CHECK_DONE();
}
