/* Every config key, one row each (nginx's command tables): its path, type, field, range,
 * default, flag and one line of documentation. Parsing, defaults, the effective config,
 * --help and --help-config all read this table; the row order is the order of the JSON
 * shown back and of parsing (listeners before tls, bindings before routes).
 *
 * Adding a key is adding a row where its JSON should show: UINT, BOOL (BOOL_NOT when the
 * field holds the opposite), STRING or ENUM for a plain value, CUSTOM with handlers in
 * config_sections.c for a structured one; .flag and .metavar give it a flag. A new section
 * is just a new first path component. Then give the key a non-default value in
 * tests/unit/test_config.c's every_key (test_every_key_covered names a row without one)
 * and mention it in README.md's Configuration (test_config.py checks). The row's macro
 * checks at compile time that the field's width fits the range and the default. */
#include "config_int.h"
#include "duro.h"

#include <stddef.h>
#include <stdint.h>

#define FSIZE(f) sizeof(((struct duro_config *)0)->f)
#define AT(f) .offset = offsetof(struct duro_config, f), .size = FSIZE(f)
/* Checked at compile time: a field of 4 or 8 bytes, a range that fits it, a default in
 * the range (a negative array size otherwise). */
#define UINT_FITS(f, lo, hi, d)                                                              \
	(0 * sizeof(char[((FSIZE(f) == 4 && (uint64_t)(hi) <= UINT32_MAX) || FSIZE(f) == 8) &&  \
				 (uint64_t)(lo) <= (uint64_t)(d) && (uint64_t)(d) <= (uint64_t)(hi)   \
			 ? 1 : -1]))
#define INT_FIELD(f) (0 * sizeof(char[FSIZE(f) == sizeof(int) ? 1 : -1]))

#define UINT(p, f, lo, hi, d, text)                                                         \
	{ .path = p, .type = CONFIG_UINT, .offset = offsetof(struct duro_config, f),           \
	  .size = FSIZE(f) + UINT_FITS(f, lo, hi, d), .min = lo, .max = hi, .def = d,          \
	  .doc = text }
#define UINT_FLAG(p, f, lo, hi, d, fl, mv, text)                                            \
	{ .path = p, .type = CONFIG_UINT, .offset = offsetof(struct duro_config, f),           \
	  .size = FSIZE(f) + UINT_FITS(f, lo, hi, d), .min = lo, .max = hi, .def = d,          \
	  .flag = fl, .metavar = mv, .doc = text }
#define BOOL(p, f, d, text)                                                                 \
	{ .path = p, .type = CONFIG_BOOL, .offset = offsetof(struct duro_config, f),           \
	  .size = FSIZE(f) + INT_FIELD(f), .def = d, .doc = text }
/* The field holds the opposite of the key (uring.buffer_ring into net.no_buffer_ring). */
#define BOOL_NOT(p, f, d, text)                                                             \
	{ .path = p, .type = CONFIG_BOOL, .flags = CONFIG_NEGATE,                              \
	  .offset = offsetof(struct duro_config, f), .size = FSIZE(f) + INT_FIELD(f), .def = d, \
	  .doc = text }
#define STRING(p, f, d, chk, text)                                                          \
	{ .path = p, .type = CONFIG_STRING, AT(f), .def_text = d, .check = chk, .doc = text }
/* A UINT with a check beyond its range (a power of two, a multiple of the page). */
#define UINT_CHECK(p, f, lo, hi, d, chk, text)                                              \
	{ .path = p, .type = CONFIG_UINT, .offset = offsetof(struct duro_config, f),           \
	  .size = FSIZE(f) + UINT_FITS(f, lo, hi, d), .min = lo, .max = hi, .def = d,          \
	  .check_uint = chk, .doc = text }
#define CUSTOM(p, handlers, text) { .path = p, .type = CONFIG_CUSTOM, .custom = &handlers, .doc = text }
#define FAULT(side, d)                                                                      \
	UINT("dpdk." #side ".seed", dpdk.side.seed, 0, UINT32_MAX, 0,                          \
	     "seed of the " d " fault injector's random numbers"),                             \
	UINT("dpdk." #side ".drop_pct", dpdk.side.drop_pct, 0, 100, 0,                          \
	     "percent of " d " frames dropped"),                                                \
	UINT("dpdk." #side ".duplicate_pct", dpdk.side.duplicate_pct, 0, 100, 0,                \
	     "percent of " d " frames duplicated"),                                             \
	UINT("dpdk." #side ".reorder_pct", dpdk.side.reorder_pct, 0, 100, 0,                    \
	     "percent of " d " frames swapped with the next"),                                  \
	UINT("dpdk." #side ".delay_pct", dpdk.side.delay_pct, 0, 100, 0,                        \
	     "percent of " d " frames held back by delay_ms"),                                  \
	UINT("dpdk." #side ".delay_ms", dpdk.side.delay_ms, 0, 10000, 0,                        \
	     "how long a delayed " d " frame is held")

static const char *const backends[] = { "uring", "dpdk", NULL };
static const char *const levels[] = { "error", "warn", "info", "debug", NULL }; /* log.h */

const struct config_key config_keys[] = {
	{ .path = "$schema", .type = CONFIG_IGNORED, .doc = "ignored (for editors)" },
	{ .path = "name", .type = CONFIG_IGNORED, .doc = "ignored (wrangler's worker name)" },
	{ .path = "cores", .type = CONFIG_UINT, .offset = offsetof(struct duro_config, cores),
	  .size = FSIZE(cores) + UINT_FITS(cores, 1, DURO_MAX_CORES, 1), .min = 1,
	  .max = DURO_MAX_CORES, .def = 1, .def_fn = config_default_cores,
	  .def_doc = "one per CPU", .flag = "--cores", .metavar = "N",
	  .doc = "reactors, pinned to CPUs 0..N-1" },
	{ .path = "backend", .type = CONFIG_ENUM, .flags = CONFIG_NAME, AT(backend), .names = backends,
	  .def = 0, .flag = "--backend", .metavar = "uring|dpdk",
	  .doc = "kernel sockets (io_uring), or DPDK with duro's TCP/IP stack" },
	{ .path = "data_dir", .type = CONFIG_STRING, AT(obj.data_dir), .def_text = "./duro-data",
	  .flag = "--data-dir", .metavar = "DIR", .doc = "where the data lives" },
	{ .path = "listeners", .type = CONFIG_CUSTOM, .custom = &config_listeners,
	  .flags = CONFIG_FLAG_REPEAT, .flag = "--listen", .metavar = "ADDR:PORT",
	  .doc = "where to serve: \"host:port\" or {\"address\", \"tls\"}" },
	{ .path = "modules", .type = CONFIG_STRINGS, AT(modules[0]),
	  .count_offset = offsetof(struct duro_config, nmodules), .max = CONFIG_MAX_MODULES,
	  .doc = "class modules (.so files) loaded at start; bindings may name their classes" },
	CUSTOM("durable_objects.bindings", config_bindings,
	       "binding name -> class, with the class's vars; replaces the built-in bindings"),
	CUSTOM("routes", config_routes,
	       "URL prefix -> binding, tried in order"),

	UINT("limits.max_head_bytes", http.max_head_bytes, 1024, 1 << 20, 16384,
	     "a larger request head gets 431"),
	UINT("limits.max_body_bytes", http.max_body_bytes, 0, 1ull << 30, 1 << 20,
	     "a larger request body gets 413"),
	UINT("limits.header_timeout_ms", http.header_timeout_ms, 100, 3600000, 10000,
	     "a head not complete in time gets 408"),
	UINT("limits.body_timeout_ms", http.body_timeout_ms, 100, 3600000, 20000,
	     "a body must arrive within this of its head (plus body_min_rate's extension)"),
	UINT("limits.body_min_rate", http.body_min_rate, 0, 1u << 30, 500,
	     "bytes/s of body that earn a second more of body_timeout_ms (0: none)"),
	UINT("limits.send_timeout_ms", http.send_timeout_ms, 100, 3600000, 30000,
	     "a connection whose responses take no bytes for this long is closed"),
	UINT("limits.idle_timeout_ms", http.idle_timeout_ms, 100, 86400000, 60000,
	     "an idle keep-alive connection is closed"),
	UINT("limits.max_pipeline", http.max_pipeline, 1, 1024, 32,
	     "requests in flight per connection before reading pauses"),
	UINT("limits.max_output_bytes", http.max_output_bytes, 4096, 1u << 30, 1 << 20,
	     "unsent response bytes per connection before reading pauses"),
	UINT("limits.max_connections_per_core", net.max_conns_per_core, 16, 1 << 20, 16384,
	     "beyond it new connections are refused"),

	UINT("objects.evict_idle_ms", obj.evict_idle_ms, 10, 86400000, 30000,
	     "an object idle this long is unloaded"),

	UINT("storage.max_key_bytes", obj.limits.max_key, 1, DURO_MAX_KEY, 2048,
	     "longest storage key"),
	UINT("storage.max_value_bytes", obj.limits.max_value, 1, 128u << 20, 128u << 20,
	     "largest storage value"),
	UINT("storage.max_object_bytes", obj.limits.max_object_bytes, 1, 1ull << 50,
	     50ull * 1000 * 1000 * 1000, "most bytes one object may store"),
	UINT("storage.cache_bytes_per_core", obj.limits.cache_bytes_per_core, 0, 1ull << 40,
	     64u << 20, "per-object read caches, per core"),
	UINT("storage.block_cache_bytes", obj.store.block_cache_bytes, 1 << 20, 1ull << 40,
	     STORE_DEFAULT_BLOCK_CACHE_BYTES, "RocksDB's shared LRU block cache"),
	UINT("storage.write_buffer_bytes", obj.store.write_buffer_bytes, 1 << 20, 1ull << 32,
	     STORE_DEFAULT_WRITE_BUFFER_BYTES, "memtable per column family"),
	UINT("storage.blob_min_bytes", obj.store.blob_min_bytes, 0, 1ull << 32,
	     STORE_DEFAULT_BLOB_MIN_BYTES, "values this large go to blob files"),
	UINT("storage.log_rotate_bytes", obj.store.log_rotate_bytes, 1 << 16, 1ull << 40,
	     STORE_DEFAULT_LOG_ROTATE_BYTES, "size of a core's commit log file"),
	UINT("storage.min_free_bytes", obj.store.min_free_bytes, 0, 1ull << 50,
	     STORE_DEFAULT_MIN_FREE_BYTES, "writes get 507 while less than this is free"),
	UINT("storage.pitr_retention", obj.store.pitr_retention_ms, 0, 3650ull * 86400 * 1000,
	     7ull * 86400 * 1000, "ms of objects' history kept for point-in-time restores (0: none)"),
	UINT("storage.pitr_sweep_ms", obj.store.pitr_sweep_ms, 100, 86400000, 60000,
	     "how often history past storage.pitr_retention is folded away"),
	BOOL_NOT("storage.log_direct_io", obj.store.log_buffered, 1,
		 "commit logs with O_DIRECT where the file system allows it (false: buffered)"),

	UINT("sql.cache_bytes_per_core", obj.sql.cache_bytes_per_core, 1 << 20, 1ull << 40, 64u << 20,
	     "SQLite page caches and pages held in memory, per core; idle caches are given back beyond it"),
	UINT("sql.connection_bytes_per_core", obj.sql.connection_bytes_per_core, 1 << 20, 1ull << 40,
	     256u << 20, "open SQLite connections (schemas, statements), per core; idle ones close beyond it"),
	UINT("sql.max_event_write_bytes", obj.sql.max_event_write_bytes, 1 << 16, 1ull << 34,
	     256u << 20, "SQL pages one event may write"),
	UINT("sql.max_statement_bytes", obj.sql.max_statement_bytes, 1000, 100000000, 100000,
	     "longest SQL text of one call"),
	UINT("sql.max_params", obj.sql.max_params, 1, 32766, 100,
	     "bound parameters of one statement"),
	UINT("sql.max_row_bytes", obj.sql.max_row_bytes, 1024, 1000000000, 2000000,
	     "largest string, blob or row"),
	UINT("sql.max_columns", obj.sql.max_columns, 1, 2000, 100,
	     "columns of a table or a result"),
	UINT("sql.max_expr_depth", obj.sql.max_expr_depth, 10, 1000, 100,
	     "depth of an expression tree"),
	UINT("sql.time_budget_ms", obj.sql.time_budget_ms, 1, 3600000, 30000,
	     "a statement running this long after its event began is interrupted; the event fails"),
	BOOL("sql.open_ahead", obj.sql.open_ahead, 0,
	     "a request waits while a thread of its core opens its object's SQL connection"),

	CUSTOM("migrations", config_migrations,
	       "class tags applied once, in order; replaces the built-in tags"),

	UINT("alarms.retry_initial_ms", obj.alarms.retry_initial_ms, 10, 3600000, 2000,
	     "first retry after a failed alarm handler; doubles each time"),
	UINT("alarms.max_retries", obj.alarms.max_retries, 0, 20, 6,
	     "then the alarm is dropped"),
	UINT("alarms.min_interval_ms", obj.alarms.min_interval_ms, 0, 3600000, 100,
	     "an alarm re-armed sooner after it fired is delayed to this"),

	/* 32 MiB is Cloudflare's limit on a WebSocket message. */
	UINT("websockets.max_message_bytes", ws.max_message_bytes, 125, 32u << 20, 1u << 20,
	     "a larger message closes the socket with 1009"),
	UINT("websockets.max_outbound_bytes", ws.max_outbound_bytes, 4096, 1u << 30, 1u << 20,
	     "queued output per socket; beyond it the socket is closed with 1013"),
	UINT("websockets.close_timeout_ms", ws.close_timeout_ms, 10, 600000, 5000,
	     "wait for the peer's close frame, or a stalled send, then cut"),
	UINT("websockets.max_per_object", obj.websockets.max_per_object, 1, 1u << 24, 32768,
	     "sockets and event streams per object; 503 beyond"),
	UINT("websockets.hibernate_idle_ms", obj.websockets.hibernate_idle_ms, 10, 86400000,
	     10000, "an object with only sockets is evicted after this"),

	/* Calls between objects (duro_call). */
	UINT("calls.timeout_ms", obj.calls.timeout_ms, 1, 3600000, 30000,
	     "a call with no answer this long ends with -ETIMEDOUT"),
	UINT("calls.max_depth", obj.calls.max_depth, 1, 255, 16,
	     "calls in one chain (A calls B calls C ...); deeper is -ELOOP"),
	UINT("calls.max_queue", obj.calls.max_queue, 1, 1u << 20, 1024,
	     "calls an object holds unanswered; further calls to it are refused -EBUSY"),
	UINT("calls.max_pending", obj.calls.max_pending, 1, 1u << 20, 1024,
	     "calls one object waits for at once; more are refused -ENOSPC"),
	UINT("calls.max_per_core", obj.calls.max_per_core, 16, 1u << 22, 65536,
	     "calls out from one core at once; more are refused -EBUSY"),

	/* Outbound HTTP from objects (duro_fetch). */
	{ .path = "outbound.allow", .type = CONFIG_STRINGS, AT(obj.outbound.allow[0]),
	  .count_offset = offsetof(struct duro_config, obj.outbound.nallow), .max = OBJ_MAX_ALLOW,
	  .check = config_check_allow, .def_doc = "[] (nowhere)",
	  .doc = "where objects may fetch: scheme://host[:port] patterns (host *, *.suffix; port *)" },
	UINT("outbound.resolve_interval_ms", obj.outbound.resolve_interval_ms, 0, 86400000, 30000,
	     "host names in outbound.allow are looked up again this often, off the cores (and "
	     "soon after a connect to one fails); 0: only at start"),
	STRING("outbound.hosts_file", obj.outbound.hosts_file, "", NULL,
	       "hosts(5) file read before the system's resolver on every lookup; \"\": none"),
	STRING("outbound.ca_file", tls.client_ca_file, "", NULL,
	       "PEM CAs an https origin's certificate must lead to; \"\": the system's bundle"),
	UINT("outbound.connect_timeout_ms", obj.outbound.connect_timeout_ms, 1, 600000, 5000,
	     "a connection to an origin not made in time fails the fetch (-ETIMEDOUT)"),
	UINT("outbound.timeout_ms", obj.outbound.timeout_ms, 1, 3600000, 30000,
	     "a whole fetch, unless it gives its own timeout (-ETIMEDOUT)"),
	UINT("outbound.max_response_bytes", obj.outbound.max_response_bytes, 0, 1u << 30, 16u << 20,
	     "an answer's body; larger fails the fetch (-EFBIG)"),
	UINT("outbound.max_per_object", obj.outbound.max_per_object, 1, 4096, 6,
	     "fetches one object has at once; more are refused (-EBUSY)"),
	UINT("outbound.max_idle_per_core", obj.outbound.max_idle_per_core, 0, 65536, 256,
	     "keep-alive connections to origins pooled per core"),
	UINT("outbound.idle_timeout_ms", obj.outbound.idle_timeout_ms, 1, 3600000, 30000,
	     "a pooled connection unused this long is closed"),

	STRING("control.socket", control.socket, "", NULL,
	       "the control socket; \"\": <data_dir>/control.sock"),
	STRING("control.group", control.group, "", config_check_group,
	       "a group also allowed on the control socket (mode 0660)"),
	STRING("control.metrics", control.metrics, "", config_check_hostport,
	       "host:port of the Prometheus and dashboard listener; \"\": none"),
	BOOL("control.dashboard_sql", control.dashboard_sql, 0,
	     "the dashboard's read-only SQL view: whoever reaches the listener reads objects' data"),

	UINT("tls.handshake_timeout_ms", tls.handshake_timeout_ms, 100, 600000, 10000,
	     "a TLS handshake not done in time is cut off"),
	UINT("tls.ticket_lifetime_s", tls.ticket_lifetime_s, 0, 604800, 7200,
	     "session tickets for resumption; 0 turns them off"),
	CUSTOM("tls.certificates", config_certificates,
	       "certificates besides the listeners' own; SNI picks among them"),

	/* Cluster mode (issue 18): shown back only when cluster.name is set. */
	STRING("cluster.name", cluster.name, "", config_check_cluster_name,
	       "the cluster this box joins (keys under /duro/<name>/ in etcd); \"\": a single box"),
	{ .path = "cluster.etcd", .type = CONFIG_STRINGS, AT(cluster.etcd[0]),
	  .count_offset = offsetof(struct duro_config, cluster.netcd), .max = CONFIG_MAX_ETCD,
	  .check = config_check_etcd_url, .def_doc = "[]",
	  .doc = "etcd client URLs (http://host:port), tried in turn" },
	STRING("cluster.advertise", cluster.advertise, "", config_check_hostport,
	       "host:port the other boxes reach this one at; \"\": the first listener"),
	STRING("cluster.box", cluster.box, "", config_check_cluster_name,
	       "this box's name in the cluster; \"\": its advertise address"),
	UINT("cluster.lease_ttl_ms", cluster.lease_ttl_ms, 2000, 600000, 5000,
	     "the box's etcd lease (whole seconds, rounded up); not renewed in time: it fences itself"),
	UINT("cluster.etcd_timeout_ms", cluster.etcd_timeout_ms, 50, 60000, 1000,
	     "one etcd request to one endpoint; then the next endpoint is tried"),
	UINT("cluster.rebalance_interval_ms", cluster.rebalance_interval_ms, 100, 3600000, 1000,
	     "how often the elected rebalancer looks at the slot table"),
	UINT("cluster.settle_ms", cluster.settle_ms, 0, 3600000, 3000,
	     "membership must stay unchanged this long before the rebalancer assigns or moves slots"),
	UINT("cluster.max_moves_per_round", cluster.max_moves_per_round, 1, 4096, 64,
	     "slot moves with their data in flight at once (unowned slots are assigned at once)"),
	UINT("cluster.replicas", cluster.replicas, 0, 4, 2,
	     "K: each slot's copies besides its owner's, on other boxes (its voters are the "
	     "owner and K followers); a slot needs K+1 live boxes to be assigned"),
	BOOL("cluster.allow_fewer_copies", cluster.allow_fewer_copies, 0,
	     "assign slots with fewer than cluster.replicas + 1 live boxes (fewer copies) "
	     "instead of leaving them unassigned"),
	BOOL("cluster.pipeline", obj.cluster_pipeline, 0,
	     "forward requests pipelined on one connection per core and peer box (answers come "
	     "in order: a held response stalls the requests behind it)"),
	BOOL("cluster.replication", cluster.replication, 0,
	     "owners send each durable batch's writes of their slots to the slots' followers' "
	     "replica logs; an answer leaves once a majority of the slot's copies holds them"),
	UINT("cluster.follower_timeout_ms", cluster.follower_timeout_ms, 10, 60000, 1000,
	     "a follower that does not answer an append in this long is not waited for during "
	     "as long again (the gate needs the other followers)"),

	BOOL_NOT("uring.buffer_ring", net.no_buffer_ring, 1,
		 "receive into a provided buffer ring where the kernel has them"),
	BOOL_NOT("uring.accept_dontwait", net.accept4, 1,
		 "accept in io_uring rounds that end when the queue is empty (Linux 6.10); "
		 "false: accept4 and a file-table update"),

	UINT("shutdown_timeout_ms", shutdown_timeout_ms, 0, 3600000, 5000,
	     "on SIGTERM, how long in-flight requests may take"),
	UINT("idle_spin_us", idle_spin_us, 0, 10000000, 200,
	     "an idle core busy-polls this long before it sleeps"),
	UINT("watchdog_ms", watchdog_ms, 0, 3600000, 10000,
	     "a core that has not finished a loop turn for this long is aborted, naming the "
	     "class running; 0: no watchdog"),
	{ .path = "log_level", .type = CONFIG_ENUM, .offset = offsetof(struct duro_config, log_level),
	  .size = FSIZE(log_level) + INT_FIELD(log_level), .names = levels,
	  .def = LOG_INFO, .flag = "--log-level", .metavar = "LEVEL", .doc = "log verbosity" },

	/* Shown back only with backend "dpdk". */
	{ .path = "dpdk.eal_args", .type = CONFIG_STRINGS, AT(dpdk.eal_args[0]),
	  .count_offset = offsetof(struct duro_config, dpdk.neal_args), .max = DPDK_MAX_EAL_ARGS,
	  .flags = CONFIG_FLAG_SPLIT, .flag = "--dpdk-eal", .metavar = "\"ARGS\"",
	  .def_doc = "[] (--no-huge -m 1024 --no-pci --no-shconf)",
	  .doc = "EAL arguments replacing the defaults" },
	{ .path = "dpdk.vdevs", .type = CONFIG_STRINGS, AT(dpdk.vdevs[0]),
	  .count_offset = offsetof(struct duro_config, dpdk.nvdevs), .max = 4,
	  .flags = CONFIG_FLAG_REPEAT, .flag = "--dpdk-vdev", .metavar = "ARGS",
	  .doc = "virtual devices, e.g. net_af_packet0,iface=eth1,qpairs=2" },
	UINT_FLAG("dpdk.port", dpdk.port, 0, 1023, 0, "--dpdk-port", "N", "the DPDK port to serve"),
	{ .path = "dpdk.mac", .type = CONFIG_CUSTOM, .custom = &config_dpdk_mac,
	  .flag = "--dpdk-mac", .metavar = "MAC", .doc = "unicast aa:bb:cc:dd:ee:ff; \"\": the port's" },
	{ .path = "dpdk.ipv4", .type = CONFIG_CUSTOM, .custom = &config_dpdk_ipv4,
	  .flag = "--dpdk-ipv4", .metavar = "A/N",
	  .doc = "the stack's address/prefix, e.g. 10.77.0.1/24; required" },
	{ .path = "dpdk.gateway", .type = CONFIG_CUSTOM, .custom = &config_dpdk_gateway,
	  .flag = "--dpdk-gateway", .metavar = "A", .doc = "the default gateway; \"\": none" },
	UINT_FLAG("dpdk.mtu", dpdk.mtu, 576, 9000, DPDK_DEFAULT_MTU, "--dpdk-mtu", "N", "the port's MTU"),
	{ .path = "dpdk.mbufs", .type = CONFIG_UINT, .offset = offsetof(struct duro_config, dpdk.mbufs),
	  .size = FSIZE(dpdk.mbufs) + UINT_FITS(dpdk.mbufs, 0, 16u << 20, 0), .max = 16u << 20,
	  .def_doc = "0 (per core: 16,384 + rx_desc + tx_desc + tx_backlog)",
	  .doc = "packet buffers in the pool, all cores together" },
	UINT("dpdk.idle_sleep_us", dpdk.idle_sleep_us, 0, 5000, DPDK_DEFAULT_IDLE_SLEEP_US,
	     "longest sleep of an idle core between polls"),
	/* Ring sizes (issue 20): the defaults hold a 1,000-member broadcast on one core
	 * without a dropped frame (bench/README.md). */
	UINT("dpdk.rx_desc", dpdk.rx_desc, 64, 65535, DPDK_DEFAULT_RX_DESC,
	     "RX descriptors per queue, clamped to what the port allows"),
	UINT("dpdk.tx_desc", dpdk.tx_desc, 64, 65535, DPDK_DEFAULT_TX_DESC,
	     "TX descriptors per queue, clamped to what the port allows"),
	UINT("dpdk.tx_backlog", dpdk.tx_backlog, 256, 1u << 20, DPDK_DEFAULT_TX_BACKLOG,
	     "frames a core keeps for its next turn when the TX queue is full; then drop_tx_full"),
	UINT_CHECK("dpdk.steer_ring", dpdk.steer_ring, 256, 1u << 20, DPDK_DEFAULT_STEER_RING,
		   config_check_pow2, "slots in each core-to-core steering ring (a power of two)"),
	UINT_CHECK("dpdk.af_packet_blocksz", dpdk.af_packet_blocksz, 4096, 1u << 22,
		   DPDK_DEFAULT_AF_PACKET_BLOCKSZ, config_check_page_multiple,
		   "net_af_packet vdevs without blocksz=: ring block size (a multiple of 4096)"),
	UINT("dpdk.af_packet_framecnt", dpdk.af_packet_framecnt, 16, 1u << 20,
	     DPDK_DEFAULT_AF_PACKET_FRAMECNT,
	     "net_af_packet vdevs without framecnt=: frames per RX and TX ring (whole blocks)"),
	UINT("dpdk.zero_copy_min_bytes", dpdk.zero_copy_min_bytes, 0, 65535,
	     DPDK_DEFAULT_ZERO_COPY_MIN_BYTES,
	     "shared output pieces this large are sent without copying (CPU-copying ports); 0: never"),
	UINT("dpdk.tx_coalesce_us", dpdk.tx_coalesce_us, 0, 10000, DPDK_DEFAULT_TX_COALESCE_US,
	     "under a heavy fan-out a short segment waits this long for more output; 0: never"),
	FAULT(fault_rx, "receive"),
	FAULT(fault_tx, "transmit"),
};

const unsigned config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);
