/* Each box's load as the others see it: every CLUSTER_LOAD_PERIOD_MS a joined box puts
 * load/<box> = {"rps", "active", "sockets"} under its lease (gone with the box), one small
 * write per box per period; the watch brings the others' into the table, and status,
 * dashboard and Prometheus show them per box. */
#include "cluster_int.h"
#include "clock.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

void cluster_set_load_source(struct cluster *cl, cluster_load_fn *fn, void *arg)
{
	pthread_mutex_lock(&cl->lock);
	cl->load_fn = fn;
	cl->load_arg = arg;
	pthread_mutex_unlock(&cl->lock);
}

void cluster_load_tick(struct cluster *cl, uint64_t now)
{
	if (now < cl->load_next_ms || !cl->lease)
		return;
	cl->load_next_ms = now + CLUSTER_LOAD_PERIOD_MS;
	pthread_mutex_lock(&cl->lock);
	cluster_load_fn *fn = cl->load_fn;
	void *arg = cl->load_arg;
	pthread_mutex_unlock(&cl->lock);
	if (!fn)
		return;
	struct cluster_load_figures lf = { 0 };
	fn(arg, &lf);
	uint64_t rps = 0;
	if (cl->load_last_ms && now > cl->load_last_ms && lf.requests >= cl->load_last_requests)
		rps = (lf.requests - cl->load_last_requests) * 1000 / (now - cl->load_last_ms);
	cl->load_last_ms = now;
	cl->load_last_requests = lf.requests;
	char suffix[96], val[160];
	snprintf(suffix, sizeof(suffix), "load/%s", cl->me);
	int n = snprintf(val, sizeof(val), "{\"rps\":%llu,\"active\":%llu,\"sockets\":%llu}",
			 (unsigned long long)rps, (unsigned long long)lf.active,
			 (unsigned long long)lf.sockets);
	json_t *put = json_pack("{s:o, s:o, s:o}", "key", cluster_key_json(cl, suffix), "value",
				cluster_b64(val, (size_t)n), "lease", cluster_i64_json(cl->lease));
	json_t *r = NULL;
	/* Best effort: a figure missed is the next period's. */
	if (put && etcd_call(&cl->etcd, "/v3/kv/put", put, &r) == 0)
		json_decref(r);
	json_decref(put);
}

static struct cluster_box *find(struct cluster *cl, const char *name)
{
	for (unsigned i = 0; i < cl->nboxes; i++)
		if (!strcmp(cl->boxes[i].name, name))
			return &cl->boxes[i];
	return NULL;
}

static uint64_t figure(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v) : 0;
}

void cluster_load_apply(struct cluster *cl, const char *box, const char *value, size_t len,
			int deleted)
{
	struct cluster_box *b = find(cl, box); /* a load names no new box */
	if (!b)
		return;
	if (deleted) {
		memset(&b->load, 0, sizeof(b->load));
		return;
	}
	json_t *o = json_loadb(value, len, 0, NULL);
	if (!json_is_object(o)) {
		cl->f.bad_values++;
		json_decref(o);
		return;
	}
	b->load.rps = figure(o, "rps");
	b->load.active = figure(o, "active");
	b->load.sockets = figure(o, "sockets");
	b->load.at_ms = clock_now_ms();
	json_decref(o);
}

json_t *cluster_load_json(const struct cluster_box *b)
{
	if (!b->load.at_ms)
		return NULL;
	return json_pack("{s:I, s:I, s:I, s:I}", "rps", (json_int_t)b->load.rps, "active",
			 (json_int_t)b->load.active, "sockets", (json_int_t)b->load.sockets, "age_ms",
			 (json_int_t)(clock_now_ms() - b->load.at_ms));
}
