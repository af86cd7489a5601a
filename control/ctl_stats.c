/* Figures for operators: per-core snapshots published by the cores and read without locks,
 * as JSON (status, stats) and as Prometheus text exposition. */
#include "ctl_int.h"
#include "cluster.h"
#include "version.h"
#include "clock.h"
#include "core.h"
#include "obj.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SNAPSHOT_EVERY_MS 100

void ctl_publish(struct ctl *ctl, struct core *c)
{
	/* Built here, then copied into the slot word by word. */
	struct ctl_snapshot snap, *s = &snap;
	memset(s, 0, sizeof(*s));
	s->at_ms = c->now_ms;
	s->http = *http_counters(c);
	s->net = *http_net_counters(c);
	s->ws = *ws_counters(c);
	s->obj = *obj_counters(c);
	s->objws = *obj_ws_counters(c);
	s->commit = *obj_commit_counters(c);
	s->alarms = *obj_alarm_counters(c);
	s->core = c->stats;
	s->timers = timer_count(c);
	const struct tls_counters *tls = tls_counters(c);
	if (tls)
		s->tls = *tls;
	for (unsigned i = 0; i < c->group->ncores; i++)
		s->ring_depth[i] = core_inbox_count(c, i);
	s->latency = *http_latency(c);
	memcpy(s->calls, obj_call_counters(c), sizeof(s->calls));
	if (c->hclient)
		s->outbound = *http_client_counters(c);
	const struct net_backend *nb = http_backend(c);
	if (nb->more_counters) {
		const uint64_t *vals;
		unsigned n = nb->more_counters(c, &s->more_names, &vals);
		s->nmore = n < CTL_MORE_MAX ? n : CTL_MORE_MAX;
		memcpy(s->more, vals, s->nmore * sizeof(vals[0]));
	}
	struct ctl_snapshot_slot *slot = &ctl->snap[c->index];
	uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_relaxed);
	atomic_store_explicit(&slot->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (size_t i = 0; i < CTL_SNAPSHOT_WORDS; i++) {
		uint64_t w;
		memcpy(&w, (const char *)s + i * sizeof(w), sizeof(w));
		atomic_store_explicit(&slot->words[i], w, memory_order_relaxed);
	}
	atomic_store_explicit(&slot->seq, seq + 2, memory_order_release);
}

int ctl_snapshot_due(struct ctl *ctl, struct core *c)
{
	if (c->now_ms < ctl->snap_due_ms[c->index])
		return 0;
	ctl->snap_due_ms[c->index] = c->now_ms + SNAPSHOT_EVERY_MS;
	return 1;
}

int ctl_read_snapshot(struct ctl *ctl, unsigned core, struct ctl_snapshot *out)
{
	struct ctl_snapshot_slot *s = &ctl->snap[core];
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t a = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (a & 1)
			continue;
		for (size_t i = 0; i < CTL_SNAPSHOT_WORDS; i++) {
			uint64_t w = atomic_load_explicit(&s->words[i], memory_order_relaxed);
			memcpy((char *)out + i * sizeof(w), &w, sizeof(w));
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->seq, memory_order_relaxed) == a)
			return a ? 0 : -EAGAIN; /* 0: never published yet */
	}
	return -EBUSY;
}

void ctl_load_figures(void *arg, struct cluster_load_figures *out)
{
	struct ctl *ctl = arg;
	struct ctl_snapshot *s = malloc(sizeof(*s));
	if (!s)
		return;
	for (unsigned i = 0; i < ctl->group->ncores; i++) {
		if (ctl_read_snapshot(ctl, i, s) != 0)
			continue;
		out->requests += s->http.requests;
		out->active += s->obj.active;
		out->sockets += s->ws.active;
	}
	free(s);
}

static void hist_merge(struct hist *into, const struct hist *h)
{
	into->count += h->count;
	into->sum_ns += h->sum_ns;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->bucket[i] += h->bucket[i];
}

static json_t *core_json(const struct ctl_snapshot *s, unsigned index, unsigned ncores)
{
	json_t *rings = json_array();
	for (unsigned i = 0; i < ncores; i++)
		json_array_append_new(rings, json_integer((json_int_t)s->ring_depth[i]));
	const struct hist *h = &s->latency;
	json_t *o = json_pack(
		"{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
		" s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:{s:f, s:f, s:f, s:f, s:I}}",
		"core", (int)index,
		"connections", (json_int_t)s->net.active,
		"http_connections", (json_int_t)s->http.conns_open,
		"accepted", (json_int_t)s->net.accepted, "refused", (json_int_t)s->net.refused,
		"requests", (json_int_t)s->http.requests, "responses", (json_int_t)s->http.responses,
		"responses_5xx", (json_int_t)s->http.status_class[5],
		"objects_active", (json_int_t)s->obj.active,
		"objects_hibernated", (json_int_t)s->objws.hibernated,
		"activations", (json_int_t)s->obj.activations, "evictions", (json_int_t)s->obj.evictions,
		"websockets", (json_int_t)s->ws.active, "ws_messages_in", (json_int_t)s->ws.msgs_in,
		"ws_frames_out", (json_int_t)s->ws.frames_out,
		"commits", (json_int_t)s->commit.commits, "batches", (json_int_t)s->commit.batches,
		"syncs", (json_int_t)s->commit.syncs, "commit_failures", (json_int_t)s->commit.failures,
		"alarms_pending", (json_int_t)s->alarms.pending, "alarms_fired", (json_int_t)s->alarms.fired,
		"busy_ns", (json_int_t)s->core.busy_ns, "loops", (json_int_t)s->core.loops,
		"messages_in", (json_int_t)s->core.msgs_in, "timers", (json_int_t)s->timers,
		"ring_depth", rings,
		"latency_us", "p50", hist_percentile(h, 50) / 1e3, "p90", hist_percentile(h, 90) / 1e3,
		"p99", hist_percentile(h, 99) / 1e3, "p999", hist_percentile(h, 99.9) / 1e3,
		"count", (json_int_t)h->count);
	if (o)
		json_object_set_new(o, "tls", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
			"open", (json_int_t)s->tls.active, "handshakes", (json_int_t)s->tls.handshakes,
			"resumed", (json_int_t)s->tls.resumed, "failures", (json_int_t)s->tls.handshake_failures,
			"timeouts", (json_int_t)s->tls.handshake_timeouts, "not_tls", (json_int_t)s->tls.not_tls));
	/* The HTTP limits, each with how often it was hit. */
	if (o)
		json_object_set_new(o, "http", json_pack(
			"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			"bad_requests", (json_int_t)s->http.bad_requests,
			"head_too_large", (json_int_t)s->http.head_too_large,
			"body_too_large", (json_int_t)s->http.body_too_large,
			"header_timeouts", (json_int_t)s->http.timeouts_head,
			"body_timeouts", (json_int_t)s->http.timeouts_body,
			"send_timeouts", (json_int_t)s->http.timeouts_send,
			"idle_timeouts", (json_int_t)s->http.timeouts_idle,
			"pipeline_pauses", (json_int_t)s->http.pipeline_pauses,
			"output_pauses", (json_int_t)s->http.output_pauses,
			"evicted", (json_int_t)s->http.conns_evicted));
	/* Deploys: objects switched to another version, and what forcing a switch cost. */
	if (o)
		json_object_set_new(o, "deploys", json_pack("{s:I, s:I, s:I, s:I, s:I}",
			"switches", (json_int_t)s->obj.switches,
			"forced", (json_int_t)s->obj.switches_forced,
			"deferred_503", (json_int_t)s->obj.switch_deferred_503,
			"syncs_cancelled", (json_int_t)s->obj.switch_cancelled,
			"waiting", (json_int_t)s->obj.switch_waiting));
	if (o && s->nmore && s->more_names) {
		json_t *st = json_object();
		for (unsigned i = 0; i < s->nmore; i++)
			json_object_set_new(st, s->more_names[i], json_integer((json_int_t)s->more[i]));
		json_object_set_new(o, "stack", st);
	}
	return o;
}

/* The latency at percentile p of a call histogram, in microseconds: the upper bound of its
 * bucket (a power of two), 0 when empty. */
static uint64_t call_percentile_us(const struct obj_call_counters *k, double p)
{
	uint64_t total = 0, acc = 0;
	for (unsigned i = 0; i < OBJ_CALL_LAT_BUCKETS; i++)
		total += k->latency[i];
	if (!total)
		return 0;
	uint64_t want = (uint64_t)(p / 100.0 * (double)total);
	if (want >= total)
		want = total - 1;
	for (unsigned i = 0; i < OBJ_CALL_LAT_BUCKETS; i++) {
		acc += k->latency[i];
		if (acc > want)
			return 1ull << i;
	}
	return 0;
}

static void calls_add(struct obj_call_counters *into, const struct obj_call_counters *k)
{
	uint64_t *t = (uint64_t *)into;
	const uint64_t *v = (const uint64_t *)k;
	for (size_t w = 0; w < sizeof(*k) / sizeof(uint64_t); w++)
		t[w] += v[w];
}

/* Calls per binding (and its class), every core summed; bindings with none left out. */
static json_t *calls_json(const struct obj_call_counters *sum)
{
	json_t *o = json_object();
	unsigned nns = obj_namespaces();
	for (unsigned i = 0; i < nns && i < DURO_MAX_BINDINGS; i++) {
		const struct obj_call_counters *k = &sum[i];
		if (!k->made && !k->received && !k->refused && !k->overloaded && !k->queue_full &&
		    !k->fetch_refused)
			continue;
		json_object_set_new(o, obj_namespace_binding(i), json_pack(
			"{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:f, s:I, s:I}}",
			"class", obj_namespace_class(i), "made", (json_int_t)k->made,
			"replies", (json_int_t)k->replies, "timeouts", (json_int_t)k->timeouts,
			"late", (json_int_t)k->late, "overloaded", (json_int_t)k->overloaded,
			"refused", (json_int_t)k->refused, "not_delivered", (json_int_t)k->not_delivered,
			"errors", (json_int_t)k->errors, "received", (json_int_t)k->received,
			"queue_full", (json_int_t)k->queue_full, "fetches", (json_int_t)k->fetches,
			"fetch_refused", (json_int_t)k->fetch_refused, "latency_us", "mean",
			k->replies ? (double)k->latency_sum_ns / 1e3 / (double)k->replies : 0.0, "p50",
			(json_int_t)call_percentile_us(k, 50), "p99", (json_int_t)call_percentile_us(k, 99)));
	}
	return o;
}

json_t *ctl_stats_json(struct ctl *ctl)
{
	unsigned n = ctl->group->ncores;
	/* Heap, not static: the control and telemetry threads both come here. */
	struct ctl_snapshot *s = malloc(sizeof(*s)), *total = calloc(1, sizeof(*total));
	if (!s || !total) {
		free(s);
		free(total);
		return NULL;
	}
	json_t *cores = json_array();
	for (unsigned i = 0; i < n; i++) {
		if (ctl_read_snapshot(ctl, i, s) < 0)
			memset(s, 0, sizeof(*s));
		json_array_append_new(cores, core_json(s, i, n));
		/* Totals: every counter field summed (all are uint64_t from http to timers). */
		uint64_t *t = (uint64_t *)&total->http, *v = (uint64_t *)&s->http;
		size_t words = (offsetof(struct ctl_snapshot, ring_depth) -
				offsetof(struct ctl_snapshot, http)) / sizeof(uint64_t);
		for (size_t k = 0; k < words; k++)
			t[k] += v[k];
		for (unsigned k = 0; k < n; k++)
			total->ring_depth[k] += s->ring_depth[k];
		if (s->nmore) {
			total->nmore = s->nmore;
			total->more_names = s->more_names;
		}
		hist_merge(&total->latency, &s->latency);
		for (unsigned k = 0; k < DURO_MAX_BINDINGS; k++)
			calls_add(&total->calls[k], &s->calls[k]);
		uint64_t *to = (uint64_t *)&total->outbound;
		const uint64_t *so = (const uint64_t *)&s->outbound;
		for (size_t k = 0; k < sizeof(s->outbound) / sizeof(uint64_t); k++)
			to[k] += so[k];
	}
	const struct http_client_counters *oc = &total->outbound;
	json_t *outbound = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"requests", (json_int_t)oc->requests, "responses", (json_int_t)oc->responses,
		"connects", (json_int_t)oc->connects, "connect_failures", (json_int_t)oc->connect_failures,
		"reused", (json_int_t)oc->reused, "timeouts", (json_int_t)oc->timeouts,
		"too_large", (json_int_t)oc->too_large, "bad_responses", (json_int_t)oc->bad_responses,
		"resets", (json_int_t)oc->resets, "retries", (json_int_t)oc->retries,
		"idle", (json_int_t)oc->idle);
	json_t *calls = calls_json(total->calls);
	json_t *tot = core_json(total, 0, n);
	json_object_del(tot, "core");
	free(s);
	free(total);
	return json_pack("{s:b, s:I, s:o, s:o, s:o, s:o, s:o}", "ok", 1, "uptime_ms",
			 (json_int_t)(clock_now_ms() - ctl->started_mono_ms), "cores", cores,
			 "total", tot, "classes", ctl_classes_json(), "calls", calls, "outbound", outbound);
}

static int version_json(const struct obj_version *v, void *arg)
{
	struct obj_version_totals t;
	obj_version_totals(v, &t);
	json_array_append_new(arg, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "class",
					     v->class_name, "version", v->label, "sha", v->sha,
					     "events", (json_int_t)t.events, "errors",
					     (json_int_t)t.errors, "crashes", (json_int_t)t.crashes,
					     "objects", (json_int_t)t.objects));
	return 0;
}

json_t *ctl_classes_json(void)
{
	json_t *a = json_array();
	if (a)
		obj_versions_each(version_json, a);
	return a;
}

json_t *ctl_status_json(struct ctl *ctl)
{
	const struct duro_config *cfg = ctl->cfg;
	json_t *listeners = json_array();
	for (unsigned i = 0; i < cfg->net.nlisten; i++)
		json_array_append_new(listeners, json_string(cfg->net.listen[i].text));
	const struct ctl_counters *k = &ctl->ctr;
	json_t *control = json_pack(
		"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"requests", (json_int_t)atomic_load(&k->requests),
		"bad_requests", (json_int_t)atomic_load(&k->errors),
		"refused_peers", (json_int_t)atomic_load(&k->refused_peer),
		"refused_limit", (json_int_t)atomic_load(&k->refused_limit),
		"dropped_slow", (json_int_t)atomic_load(&k->dropped_slow),
		"timed_out", (json_int_t)atomic_load(&k->timed_out),
		"metrics_requests", (json_int_t)atomic_load(&k->metrics_requests),
		"metrics_bad_requests", (json_int_t)atomic_load(&k->metrics_bad),
		"metrics_refused", (json_int_t)atomic_load(&k->metrics_refused),
		"metrics_timeouts", (json_int_t)atomic_load(&k->metrics_timeouts));
	/* Point-in-time recovery: the window, and what the history family holds for it. */
	json_t *pitr = json_pack("{s:I, s:I}", "retention_ms", (json_int_t)cfg->obj.store.pitr_retention_ms,
				 "bytes", (json_int_t)store_history_bytes(obj_runtime_store()));
	json_t *st = json_pack("{s:b, s:s, s:I, s:I, s:I, s:s, s:i, s:o, s:s, s:s, s:s, s:o}", "ok", 1,
			 "version", ctl->version, "pid", (json_int_t)getpid(),
			 "started_at_ms", (json_int_t)ctl->started_wall_ms, "uptime_ms",
			 (json_int_t)(clock_now_ms() - ctl->started_mono_ms), "backend", ctl->backend,
			 "cores", (int)ctl->group->ncores, "listeners", listeners, "data_dir",
			 cfg->obj.data_dir, "control_socket", ctl->socket_path, "metrics",
			 cfg->control.metrics, "control", control);
	if (st && pitr)
		json_object_set_new(st, "pitr", pitr);
	else
		json_decref(pitr);
	/* The bindings objects are named under (the dashboard's SQL view offers them), and
	 * whether that view is on. */
	json_t *bindings = json_array();
	for (unsigned i = 0; i < obj_namespaces(); i++)
		json_array_append_new(bindings, json_string(obj_namespace_binding(i)));
	if (st) {
		json_object_set_new(st, "bindings", bindings);
		json_object_set_new(st, "dashboard_sql", json_boolean(cfg->control.dashboard_sql));
	} else {
		json_decref(bindings);
	}
	if (st && ctl->cluster) {
		json_t *cl = cluster_status_json(ctl->cluster);
		if (cl)
			json_object_set_new(st, "cluster", cl);
	}
	return st;
}

/* ---- Prometheus text exposition (version 0.0.4) ---- */

struct metric {
	const char *name, *type, *help;
	size_t offset; /* of a uint64_t in struct ctl_snapshot */
};

#define SNAP(field) offsetof(struct ctl_snapshot, field)

static const struct metric metrics[] = {
	{ "duro_connections_open", "gauge", "Open client connections (HTTP and WebSocket).", SNAP(net.active) },
	{ "duro_connections_accepted_total", "counter", "Connections accepted.", SNAP(net.accepted) },
	{ "duro_connections_refused_total", "counter", "Connections refused at the per-core limit.", SNAP(net.refused) },
	{ "duro_received_bytes_total", "counter", "Bytes received from clients.", SNAP(net.recv_bytes) },
	{ "duro_sent_bytes_total", "counter", "Bytes sent to clients.", SNAP(net.sent_bytes) },
	{ "duro_requests_total", "counter", "HTTP requests read.", SNAP(http.requests) },
	{ "duro_responses_total", "counter", "HTTP responses written.", SNAP(http.responses) },
	{ "duro_bad_requests_total", "counter", "Requests refused as malformed (400).", SNAP(http.bad_requests) },
	{ "duro_http_header_timeouts_total", "counter", "Request heads not complete in time (408).", SNAP(http.timeouts_head) },
	{ "duro_http_body_timeouts_total", "counter", "Request bodies not complete in time (408).", SNAP(http.timeouts_body) },
	{ "duro_http_send_timeouts_total", "counter", "Connections closed: the client stopped reading responses.", SNAP(http.timeouts_send) },
	{ "duro_http_idle_timeouts_total", "counter", "Idle keep-alive connections closed.", SNAP(http.timeouts_idle) },
	{ "duro_http_pipeline_pauses_total", "counter", "Reading paused at limits.max_pipeline.", SNAP(http.pipeline_pauses) },
	{ "duro_http_output_pauses_total", "counter", "Reading paused at limits.max_output_bytes.", SNAP(http.output_pauses) },
	{ "duro_connections_evicted_total", "counter", "Connections closed to make room near the per-core limit.", SNAP(http.conns_evicted) },
	{ "duro_objects_active", "gauge", "Objects in memory.", SNAP(obj.active) },
	{ "duro_objects_hibernated", "gauge", "Objects evicted while their WebSockets stay open.", SNAP(objws.hibernated) },
	{ "duro_object_activations_total", "counter", "Objects loaded into memory.", SNAP(obj.activations) },
	{ "duro_object_evictions_total", "counter", "Objects unloaded.", SNAP(obj.evictions) },
	{ "duro_handler_failures_total", "counter", "Request handlers that failed.", SNAP(obj.handler_failures) },
	{ "duro_object_switches_total", "counter", "Objects switched to a deployed version.", SNAP(obj.switches) },
	{ "duro_object_switches_forced_total", "counter", "Switches forced at a deploy's max delay.", SNAP(obj.switches_forced) },
	{ "duro_object_switch_deferred_503_total", "counter", "Held responses answered 503 by a forced switch.", SNAP(obj.switch_deferred_503) },
	{ "duro_object_switch_syncs_cancelled_total", "counter", "sync() callbacks run with -ECANCELED by a forced switch.", SNAP(obj.switch_cancelled) },
	{ "duro_object_switches_waiting", "gauge", "Objects waiting for a quiescent point to switch versions.", SNAP(obj.switch_waiting) },
	{ "duro_websockets_open", "gauge", "WebSockets and event streams open.", SNAP(ws.active) },
	{ "duro_websocket_messages_received_total", "counter", "WebSocket messages received.", SNAP(ws.msgs_in) },
	{ "duro_websocket_frames_sent_total", "counter", "WebSocket frames queued to clients.", SNAP(ws.frames_out) },
	{ "duro_websocket_slow_closes_total", "counter", "Sockets closed with 1013: reader too slow.", SNAP(ws.closes_slow) },
	{ "duro_websocket_protocol_closes_total", "counter", "Sockets closed for a protocol error.", SNAP(ws.closes_protocol) },
	{ "duro_websocket_auto_responses_total", "counter", "Auto-responses answered without waking objects.", SNAP(objws.auto_responses) },
	{ "duro_websocket_outbound_opened_total", "counter", "Outbound WebSockets (duro_ws_connect) opened, again after a drop included.", SNAP(objws.outbound_opened) },
	{ "duro_websocket_outbound_failures_total", "counter", "Outbound WebSockets that failed to open.", SNAP(objws.outbound_failed) },
	{ "duro_websocket_outbound_redials_total", "counter", "Durable outbound WebSockets dialed again by the runtime.", SNAP(objws.outbound_reconnects) },
	{ "duro_websocket_outbound_refused_total", "counter", "duro_ws_connect calls refused before anything was sent.", SNAP(objws.outbound_refused) },
	{ "duro_commits_total", "counter", "Transactions that wrote.", SNAP(commit.commits) },
	{ "duro_commit_batches_total", "counter", "Commit-log records written.", SNAP(commit.batches) },
	{ "duro_commit_syncs_total", "counter", "Commit-log syncs that succeeded.", SNAP(commit.syncs) },
	{ "duro_commit_failures_total", "counter", "Commits that failed.", SNAP(commit.failures) },
	{ "duro_alarms_pending", "gauge", "Alarms scheduled.", SNAP(alarms.pending) },
	{ "duro_alarms_fired_total", "counter", "Alarms fired.", SNAP(alarms.fired) },
	{ "duro_core_loops_total", "counter", "Reactor loop turns.", SNAP(core.loops) },
	{ "duro_tls_connections_open", "gauge", "TLS connections open.", SNAP(tls.active) },
	{ "duro_tls_handshakes_total", "counter", "TLS handshakes completed.", SNAP(tls.handshakes) },
	{ "duro_tls_resumptions_total", "counter", "TLS sessions resumed from a ticket.", SNAP(tls.resumed) },
	{ "duro_tls_handshake_failures_total", "counter", "TLS handshakes that failed (not TLS included).", SNAP(tls.handshake_failures) },
	{ "duro_tls_handshake_timeouts_total", "counter", "TLS handshakes cut off by the timeout.", SNAP(tls.handshake_timeouts) },
	{ "duro_tls_not_tls_total", "counter", "Connections to a TLS port that did not start with TLS.", SNAP(tls.not_tls) },
	{ "duro_core_messages_total", "counter", "Cross-core messages received.", SNAP(core.msgs_in) },
	{ "duro_outbound_requests_total", "counter", "Outbound HTTP requests (duro_fetch) started.", SNAP(outbound.requests) },
	{ "duro_outbound_connects_total", "counter", "Outbound connections made.", SNAP(outbound.connects) },
	{ "duro_outbound_connect_failures_total", "counter", "Outbound connections that could not be made.", SNAP(outbound.connect_failures) },
	{ "duro_outbound_reused_total", "counter", "Outbound requests sent on a pooled keep-alive connection.", SNAP(outbound.reused) },
	{ "duro_outbound_timeouts_total", "counter", "Outbound requests timed out.", SNAP(outbound.timeouts) },
	{ "duro_outbound_idle_connections", "gauge", "Pooled keep-alive connections to origins.", SNAP(outbound.idle) },
};

/* Latency buckets in seconds for the histogram, from the cores' log-linear one. */
static const double le_seconds[] = { 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
				     0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };

char *ctl_prometheus(struct ctl *ctl, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	unsigned n = ctl->group->ncores;
	struct ctl_snapshot *snaps = malloc(n * sizeof(*snaps));
	int have[DURO_MAX_CORES];
	if (!snaps) {
		fclose(f);
		free(buf);
		return NULL;
	}
	for (unsigned i = 0; i < n; i++)
		have[i] = ctl_read_snapshot(ctl, i, &snaps[i]) == 0;
	fprintf(f, "# HELP duro_info duro's version and network backend.\n# TYPE duro_info gauge\n"
		   "duro_info{version=\"%s\",backend=\"%s\"} 1\n", ctl->version, ctl->backend);
	if (ctl->cluster)
		cluster_prometheus(ctl->cluster, f);
	fprintf(f, "# HELP duro_uptime_seconds Seconds since durod started.\n# TYPE duro_uptime_seconds gauge\n"
		   "duro_uptime_seconds %.3f\n", (double)(clock_now_ms() - ctl->started_mono_ms) / 1e3);
	for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name, metrics[m].help,
			metrics[m].name, metrics[m].type);
		for (unsigned i = 0; i < n; i++) {
			if (!have[i])
				continue;
			uint64_t v;
			memcpy(&v, (const char *)&snaps[i] + metrics[m].offset, sizeof(v));
			fprintf(f, "%s{core=\"%u\"} %llu\n", metrics[m].name, i, (unsigned long long)v);
		}
	}
	if (ctl->cluster) {
		/* Cluster mode only: a single box's metrics stay as they were. */
		fprintf(f, "# HELP duro_cluster_refused_total Object requests refused before any handler: "
			   "this box fenced or joining, or another box owns the slot.\n"
			   "# TYPE duro_cluster_refused_total counter\n");
		for (unsigned i = 0; i < n; i++)
			if (have[i])
				fprintf(f, "duro_cluster_refused_total{core=\"%u\",reason=\"fenced\"} %llu\n"
					   "duro_cluster_refused_total{core=\"%u\",reason=\"not_owner\"} %llu\n",
					i, (unsigned long long)snaps[i].obj.cluster_fenced, i,
					(unsigned long long)snaps[i].obj.cluster_not_owner);
		fprintf(f, "# HELP duro_cluster_late_answers_total Answers that reached the output gate "
			   "after this box's lease ran out (a pause, a stall): sent as 503, outcome unknown.\n"
			   "# TYPE duro_cluster_late_answers_total counter\n");
		for (unsigned i = 0; i < n; i++)
			if (have[i])
				fprintf(f, "duro_cluster_late_answers_total{core=\"%u\"} %llu\n", i,
					(unsigned long long)snaps[i].obj.cluster_late);
		fprintf(f, "# HELP duro_cluster_forwarded_total Requests for a slot another box owns, "
			   "forwarded there from this core; retries: attempts made again after the "
			   "owner refused or could not be reached; failed: answered 502/503/504 here.\n"
			   "# TYPE duro_cluster_forwarded_total counter\n");
		for (unsigned i = 0; i < n; i++)
			if (have[i])
				fprintf(f, "duro_cluster_forwarded_total{core=\"%u\",kind=\"requests\"} %llu\n"
					   "duro_cluster_forwarded_total{core=\"%u\",kind=\"retries\"} %llu\n"
					   "duro_cluster_forwarded_total{core=\"%u\",kind=\"failed\"} %llu\n",
					i, (unsigned long long)snaps[i].obj.cluster_fwd, i,
					(unsigned long long)snaps[i].obj.cluster_fwd_retries, i,
					(unsigned long long)snaps[i].obj.cluster_fwd_failed);
		fprintf(f, "# HELP duro_cluster_websockets_total WebSockets whose object another box "
			   "owns, relayed there from this core: relayed (opened), rerouted (the owner "
			   "lost and found again without closing the client), retries (dials made again), "
			   "failed (upgrades refused, or closed 1013 here); inbound: relayed sockets "
			   "this box accepted as the owner; edge_lost: those cut off (1006) because their edge "
			   "box left the cluster; slot_moved: those closed 1012 because their slot left "
			   "this box (their edge dials the new owner).\n"
			   "# TYPE duro_cluster_websockets_total counter\n");
		for (unsigned i = 0; i < n; i++)
			if (have[i]) {
				const struct obj_counters *o = &snaps[i].obj;
				fprintf(f, "duro_cluster_websockets_total{core=\"%u\",kind=\"relayed\"} %llu\n"
					   "duro_cluster_websockets_total{core=\"%u\",kind=\"rerouted\"} %llu\n"
					   "duro_cluster_websockets_total{core=\"%u\",kind=\"retries\"} %llu\n"
					   "duro_cluster_websockets_total{core=\"%u\",kind=\"failed\"} %llu\n"
					   "duro_cluster_websockets_total{core=\"%u\",kind=\"inbound\"} %llu\n"
					   "duro_cluster_websockets_total{core=\"%u\",kind=\"edge_lost\"} %llu\n"
					   "duro_cluster_websockets_total{core=\"%u\",kind=\"slot_moved\"} %llu\n",
					i, (unsigned long long)o->cluster_ws_relayed, i,
					(unsigned long long)o->cluster_ws_rerouted, i,
					(unsigned long long)o->cluster_ws_retries, i,
					(unsigned long long)o->cluster_ws_failed, i,
					(unsigned long long)o->cluster_ws_inbound, i,
					(unsigned long long)o->cluster_ws_edge_lost, i,
					(unsigned long long)o->cluster_ws_slot_moved);
			}
		fprintf(f, "# HELP duro_cluster_websocket_messages_total Messages of relayed "
			   "WebSockets: to_owner (client to object), from_owner (object to client).\n"
			   "# TYPE duro_cluster_websocket_messages_total counter\n");
		for (unsigned i = 0; i < n; i++)
			if (have[i])
				fprintf(f, "duro_cluster_websocket_messages_total{core=\"%u\",dir=\"to_owner\"} %llu\n"
					   "duro_cluster_websocket_messages_total{core=\"%u\",dir=\"from_owner\"} %llu\n",
					i, (unsigned long long)snaps[i].obj.cluster_ws_to_owner, i,
					(unsigned long long)snaps[i].obj.cluster_ws_from_owner);
		fprintf(f, "# HELP duro_cluster_websockets_relayed WebSockets relayed to another box "
			   "open now on this core.\n"
			   "# TYPE duro_cluster_websockets_relayed gauge\n");
		for (unsigned i = 0; i < n; i++)
			if (have[i])
				fprintf(f, "duro_cluster_websockets_relayed{core=\"%u\"} %llu\n", i,
					(unsigned long long)snaps[i].obj.cluster_ws_open);
		fprintf(f, "# HELP duro_cluster_alarms_deferred_total Alarms due while another box owned "
			   "their object's slot (or this box was fenced), looked at again later.\n"
			   "# TYPE duro_cluster_alarms_deferred_total counter\n");
		for (unsigned i = 0; i < n; i++)
			if (have[i])
				fprintf(f, "duro_cluster_alarms_deferred_total{core=\"%u\"} %llu\n", i,
					(unsigned long long)snaps[i].alarms.not_owner_deferred);
	}
	fprintf(f, "# HELP duro_responses_by_class_total HTTP responses by status class.\n"
		   "# TYPE duro_responses_by_class_total counter\n");
	for (unsigned i = 0; i < n; i++)
		for (unsigned k = 1; k <= 5 && have[i]; k++)
			fprintf(f, "duro_responses_by_class_total{core=\"%u\",class=\"%uxx\"} %llu\n", i, k,
				(unsigned long long)snaps[i].http.status_class[k]);
	fprintf(f, "# HELP duro_core_busy_seconds_total Time in loop turns that did work.\n"
		   "# TYPE duro_core_busy_seconds_total counter\n");
	for (unsigned i = 0; i < n; i++)
		if (have[i])
			fprintf(f, "duro_core_busy_seconds_total{core=\"%u\"} %.6f\n", i,
				(double)snaps[i].core.busy_ns / 1e9);
	fprintf(f, "# HELP duro_ring_depth Messages waiting in a cross-core ring.\n# TYPE duro_ring_depth gauge\n");
	for (unsigned i = 0; i < n; i++)
		for (unsigned k = 0; k < n && have[i]; k++)
			if (k != i)
				fprintf(f, "duro_ring_depth{core=\"%u\",from=\"%u\"} %u\n", i, k,
					snaps[i].ring_depth[k]);
	for (unsigned k = 0; n && have[0] && k < snaps[0].nmore && snaps[0].more_names; k++) {
		const char *name = snaps[0].more_names[k];
		/* The stack's gauges: connections by state (conns_*) and queue depths (*_depth). */
		size_t nl = strlen(name);
		int gauge = strncmp(name, "conns_", 6) == 0 || (nl > 6 && strcmp(name + nl - 6, "_depth") == 0);
		fprintf(f, "# HELP duro_stack_%s%s The TCP/IP stack's %s.\n# TYPE duro_stack_%s%s %s\n",
			name, gauge ? "" : "_total", name, name, gauge ? "" : "_total",
			gauge ? "gauge" : "counter");
		for (unsigned i = 0; i < n; i++)
			if (have[i] && k < snaps[i].nmore)
				fprintf(f, "duro_stack_%s%s{core=\"%u\"} %llu\n", name, gauge ? "" : "_total",
					i, (unsigned long long)snaps[i].more[k]);
	}
	const struct ctl_counters *kc = &ctl->ctr;
	fprintf(f, "# HELP duro_control_requests_total Control socket request lines read.\n"
		   "# TYPE duro_control_requests_total counter\nduro_control_requests_total %llu\n",
		(unsigned long long)atomic_load(&kc->requests));
	fprintf(f, "# HELP duro_control_clients_refused_total Control clients refused.\n"
		   "# TYPE duro_control_clients_refused_total counter\n"
		   "duro_control_clients_refused_total{reason=\"peer\"} %llu\n"
		   "duro_control_clients_refused_total{reason=\"limit\"} %llu\n",
		(unsigned long long)atomic_load(&kc->refused_peer),
		(unsigned long long)atomic_load(&kc->refused_limit));
	fprintf(f, "# HELP duro_control_clients_dropped_total Control clients disconnected by a limit.\n"
		   "# TYPE duro_control_clients_dropped_total counter\n"
		   "duro_control_clients_dropped_total{reason=\"slow\"} %llu\n"
		   "duro_control_clients_dropped_total{reason=\"timeout\"} %llu\n",
		(unsigned long long)atomic_load(&kc->dropped_slow),
		(unsigned long long)atomic_load(&kc->timed_out));
	fprintf(f, "# HELP duro_metrics_requests_total Requests to this listener.\n"
		   "# TYPE duro_metrics_requests_total counter\nduro_metrics_requests_total %llu\n"
		   "# HELP duro_metrics_refused_total Connections to this listener refused at its cap.\n"
		   "# TYPE duro_metrics_refused_total counter\nduro_metrics_refused_total %llu\n",
		(unsigned long long)atomic_load(&kc->metrics_requests),
		(unsigned long long)atomic_load(&kc->metrics_refused));
	/* Calls between objects, per binding and class, every core summed. */
	struct obj_call_counters *csum = calloc(DURO_MAX_BINDINGS, sizeof(*csum));
	unsigned nns = obj_namespaces();
	if (csum) {
		for (unsigned i = 0; i < n; i++)
			for (unsigned k = 0; k < DURO_MAX_BINDINGS && have[i]; k++)
				calls_add(&csum[k], &snaps[i].calls[k]);
		static const struct { const char *outcome; size_t off; } outcomes[] = {
			{ "made", offsetof(struct obj_call_counters, made) },
			{ "replied", offsetof(struct obj_call_counters, replies) },
			{ "timeout", offsetof(struct obj_call_counters, timeouts) },
			{ "late", offsetof(struct obj_call_counters, late) },
			{ "overloaded", offsetof(struct obj_call_counters, overloaded) },
			{ "refused", offsetof(struct obj_call_counters, refused) },
			{ "not_delivered", offsetof(struct obj_call_counters, not_delivered) },
			{ "error", offsetof(struct obj_call_counters, errors) },
			{ "received", offsetof(struct obj_call_counters, received) },
			{ "queue_full", offsetof(struct obj_call_counters, queue_full) },
			{ "fetch", offsetof(struct obj_call_counters, fetches) },
			{ "fetch_refused", offsetof(struct obj_call_counters, fetch_refused) },
		};
		fprintf(f, "# HELP duro_calls_total Calls between objects by the caller's (received, "
			   "queue_full: the callee's) binding and class, by outcome.\n"
			   "# TYPE duro_calls_total counter\n");
		for (unsigned k = 0; k < nns && k < DURO_MAX_BINDINGS; k++)
			for (size_t o = 0; o < sizeof(outcomes) / sizeof(outcomes[0]); o++) {
				uint64_t v;
				memcpy(&v, (const char *)&csum[k] + outcomes[o].off, sizeof(v));
				fprintf(f, "duro_calls_total{binding=\"%s\",class=\"%s\",outcome=\"%s\"} %llu\n",
					obj_namespace_binding(k), obj_namespace_class(k), outcomes[o].outcome,
					(unsigned long long)v);
			}
		fprintf(f, "# HELP duro_call_duration_seconds Time from a call to its answer, by the caller's binding.\n"
			   "# TYPE duro_call_duration_seconds histogram\n");
		for (unsigned k = 0; k < nns && k < DURO_MAX_BINDINGS; k++) {
			const struct obj_call_counters *ck = &csum[k];
			uint64_t acc = 0;
			for (unsigned b = 0; b < OBJ_CALL_LAT_BUCKETS; b++) {
				acc += ck->latency[b];
				fprintf(f, "duro_call_duration_seconds_bucket{binding=\"%s\",class=\"%s\",le=\"%g\"} %llu\n",
					obj_namespace_binding(k), obj_namespace_class(k),
					(double)(1ull << b) / 1e6, (unsigned long long)acc);
			}
			fprintf(f, "duro_call_duration_seconds_bucket{binding=\"%s\",class=\"%s\",le=\"+Inf\"} %llu\n"
				   "duro_call_duration_seconds_sum{binding=\"%s\",class=\"%s\"} %.9f\n"
				   "duro_call_duration_seconds_count{binding=\"%s\",class=\"%s\"} %llu\n",
				obj_namespace_binding(k), obj_namespace_class(k), (unsigned long long)acc,
				obj_namespace_binding(k), obj_namespace_class(k),
				(double)ck->latency_sum_ns / 1e9, obj_namespace_binding(k),
				obj_namespace_class(k), (unsigned long long)ck->replies);
		}
		free(csum);
	}
	fprintf(f, "# HELP duro_request_duration_seconds Time from a request's first byte to its response.\n"
		   "# TYPE duro_request_duration_seconds histogram\n");
	for (unsigned i = 0; i < n; i++) {
		if (!have[i])
			continue;
		const struct hist *h = &snaps[i].latency;
		uint64_t acc = 0;
		unsigned b = 0;
		for (size_t k = 0; k < sizeof(le_seconds) / sizeof(le_seconds[0]); k++) {
			uint64_t limit_ns = (uint64_t)(le_seconds[k] * 1e9);
			/* Buckets whose lower bound is under the limit: within 6.25% of it. */
			while (b < HIST_BUCKETS && hist_value(b) < limit_ns)
				acc += h->bucket[b++];
			fprintf(f, "duro_request_duration_seconds_bucket{core=\"%u\",le=\"%g\"} %llu\n", i,
				le_seconds[k], (unsigned long long)acc);
		}
		fprintf(f, "duro_request_duration_seconds_bucket{core=\"%u\",le=\"+Inf\"} %llu\n", i,
			(unsigned long long)h->count);
		fprintf(f, "duro_request_duration_seconds_sum{core=\"%u\"} %.9f\n", i, (double)h->sum_ns / 1e9);
		fprintf(f, "duro_request_duration_seconds_count{core=\"%u\"} %llu\n", i,
			(unsigned long long)h->count);
	}
	static const struct {
		const char *name, *type, *help;
	} per_version[] = {
		{ "duro_class_events_total", "counter", "Callbacks a class version ran." },
		{ "duro_class_errors_total", "counter", "Callbacks of a class version that failed." },
		{ "duro_class_crashes_total", "counter", "Crashes and hangs of durod attributed to a class version." },
		{ "duro_class_objects", "gauge", "Objects in memory on a class version." },
	};
	json_t *classes = ctl_classes_json();
	for (size_t m = 0; classes && m < sizeof(per_version) / sizeof(per_version[0]); m++) {
		static const char *const keys[] = { "events", "errors", "crashes", "objects" };
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", per_version[m].name, per_version[m].help,
			per_version[m].name, per_version[m].type);
		size_t i;
		json_t *v;
		json_array_foreach(classes, i, v)
			fprintf(f, "%s{class=\"%s\",version=\"%s\"} %lld\n", per_version[m].name,
				json_string_value(json_object_get(v, "class")),
				json_string_value(json_object_get(v, "version")),
				(long long)json_integer_value(json_object_get(v, keys[m])));
	}
	json_decref(classes);
	fprintf(f, "# HELP duro_class_crash_rollbacks_total Versions rolled back at start for crashing durod.\n"
		   "# TYPE duro_class_crash_rollbacks_total counter\nduro_class_crash_rollbacks_total %llu\n",
		(unsigned long long)ctl_deploy_crash_rollbacks());
	free(snaps);
	fclose(f);
	return buf;
}
