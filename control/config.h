/* durod's configuration: a JSON file modelled on wrangler.json, defaults for every key,
 * and strict checking that names the path of any bad key. */
#ifndef DURO_CONTROL_CONFIG_H
#define DURO_CONTROL_CONFIG_H

#include "http-t.h"
#include "log.h"
#include "dpdk.h"
#include "net.h"
#include "obj-t.h"
#include "tls.h"
#include "ws.h"

struct duro_config {
	unsigned cores;
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
	} control;
};

/* Fills the built-in defaults: 127.0.0.1:8787, ./duro-data, one core per CPU, the COUNTER
 * binding with its /counter/ route and the generic /obj/ route. */
void config_defaults(struct duro_config *cfg);

/* Reads `path` over the defaults. Returns 0, or -EINVAL after writing one message such as
 * `config: durable_objects.bindings[1].class_name: unknown class "Conter"` to err. */
int config_load(struct duro_config *cfg, const char *path, char *err, size_t errlen);

/* The same over JSON text in memory (the fuzz target's entry point). */
int config_load_buffer(struct duro_config *cfg, const char *data, size_t len, char *err,
		       size_t errlen);

/* The effective config (defaults, file and flags together) as JSON; the caller owns the
 * reference. NULL when out of memory. */
struct json_t;
struct json_t *config_to_json(const struct duro_config *cfg);

/* "aa:bb:cc:dd:ee:ff" (unicast) into mac; 0 or -EINVAL. */
int config_parse_mac(const char *text, uint8_t mac[6]);

/* Checks what flags and the file produced together (e.g. --cores against the CPUs). */
int config_validate(const struct duro_config *cfg, char *err, size_t errlen);

#endif
