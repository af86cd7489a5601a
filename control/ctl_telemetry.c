/* duro's figures as DPDK telemetry commands, so DPDK's own tooling (dpdk-telemetry.py,
 * collectors reading the telemetry socket) sees them: /duro/status, /duro/stats (totals)
 * and /duro/core,N (one core). The callbacks run on the EAL's telemetry thread and read
 * the same lock-free snapshots as the control socket. */
#include "ctl_int.h"

#include <stdlib.h>
#include <string.h>

#include <rte_telemetry.h>

static struct ctl *tel_ctl; /* the EAL's callbacks take no argument */

/* Flattens a JSON object of numbers and strings into a telemetry dict. */
static void dict_from_json(struct rte_tel_data *d, json_t *o)
{
	const char *k;
	json_t *v;
	rte_tel_data_start_dict(d);
	json_object_foreach(o, k, v) {
		if (json_is_integer(v))
			rte_tel_data_add_dict_u64(d, k, (uint64_t)json_integer_value(v));
		else if (json_is_real(v))
			rte_tel_data_add_dict_u64(d, k, (uint64_t)json_real_value(v));
		else if (json_is_string(v))
			rte_tel_data_add_dict_string(d, k, json_string_value(v));
		else if (json_is_object(v)) {
			/* latency_us: flattened as latency_us_p50 ... */
			const char *k2;
			json_t *v2;
			json_object_foreach(v, k2, v2) {
				char name[64];
				snprintf(name, sizeof(name), "%s_%s", k, k2);
				rte_tel_data_add_dict_u64(d, name, (uint64_t)json_number_value(v2));
			}
		}
	}
}

static int tel_status(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	json_t *s = ctl_status_json(tel_ctl);
	if (!s)
		return -1;
	json_object_del(s, "listeners");
	json_object_del(s, "ok");
	dict_from_json(d, s);
	json_decref(s);
	return 0;
}

static int tel_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	json_t *s = ctl_stats_json(tel_ctl);
	if (!s)
		return -1;
	json_t *t = json_object_get(s, "total");
	json_object_del(t, "ring_depth");
	dict_from_json(d, t);
	json_decref(s);
	return 0;
}

static int tel_core(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	char *end;
	if (!params || !*params)
		return -1;
	unsigned long core = strtoul(params, &end, 10);
	if (*end || core >= tel_ctl->group->ncores)
		return -1;
	json_t *s = ctl_stats_json(tel_ctl);
	if (!s)
		return -1;
	json_t *c = json_array_get(json_object_get(s, "cores"), core);
	json_object_del(c, "ring_depth");
	dict_from_json(d, c);
	json_decref(s);
	return 0;
}

int ctl_telemetry_register(struct ctl *ctl)
{
	tel_ctl = ctl;
	if (rte_telemetry_register_cmd("/duro/status", tel_status,
				       "durod's version, uptime, backend and cores. Takes no parameters") < 0 ||
	    rte_telemetry_register_cmd("/duro/stats", tel_stats,
				       "durod's figures summed over cores. Takes no parameters") < 0 ||
	    rte_telemetry_register_cmd("/duro/core", tel_core,
				       "one core's figures. Parameter: the core number") < 0)
		return -EINVAL;
	return 0;
}
