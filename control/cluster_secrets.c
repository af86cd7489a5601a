/* Namespace secrets shared by a cluster's boxes (cluster_int.h): an object's ID is a keyed
 * hash of its name under its class's secret, so every box must hold the same secret or the
 * same name would be a different object (and slot) on each box. The first box to join
 * publishes its secret per class under secrets/<class> (CREATE == 0); the others adopt it,
 * as an import does, and only into a class that holds no objects under its own IDs yet.
 * etcd thereby holds the secrets: its access must be as restricted as the data dirs'. */
#include "cluster_int.h"
#include "hex.h"
#include "log.h"
#include "obj.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* 1 when the class's column family holds any key. */
static int class_nonempty(struct store *st, int cf)
{
	struct store_iter *it = store_iter_open(st, cf, "", 0, NULL, 0, 0);
	const char *k, *v;
	size_t kl, vl;
	int nonempty = it && store_iter_next(it, &k, &kl, &v, &vl) == 1;
	if (it)
		store_iter_close(it);
	return nonempty;
}

static int share_one(struct cluster *cl, const char *class_name, char *err, size_t errlen)
{
	struct store *st = obj_runtime_store();
	int cf;
	uint8_t mine[32], theirs[32];
	if (store_class(st, class_name, &cf, mine, NULL) < 0) {
		snprintf(err, errlen, "class %s has no storage", class_name);
		return -ENOENT;
	}
	char suffix[96], key[ETCD_MAX_KEY], hex[65];
	snprintf(suffix, sizeof(suffix), "secrets/%s", class_name);
	int kn = snprintf(key, sizeof(key), "%s%s", cl->prefix, suffix);
	hex_encode(mine, 32, hex);
	json_t *txn = json_pack(
		"{s:[{s:o, s:s, s:s, s:s}], s:[{s:{s:o, s:o}}], s:[{s:{s:o}}]}",
		"compare", "key", cluster_b64(key, (size_t)kn), "target", "CREATE", "create_revision",
		"0", "result", "EQUAL",
		"success", "request_put", "key", cluster_b64(key, (size_t)kn), "value",
		cluster_b64(hex, 64),
		"failure", "request_range", "key", cluster_b64(key, (size_t)kn));
	int ok = 0;
	int64_t rev;
	json_t *reply = NULL;
	int r = txn ? cluster_txn(cl, txn, &ok, &rev, &reply) : -ENOMEM;
	json_decref(txn);
	if (r < 0) {
		snprintf(err, errlen, "etcd unreachable (%.200s)", cl->etcd.last_error);
		return r;
	}
	if (ok) {
		json_decref(reply);
		return 0; /* ours is the cluster's */
	}
	/* responses[0].response_range.kvs[0].value: the secret in hex. */
	json_t *rr = json_object_get(json_array_get(json_object_get(reply, "responses"), 0),
				     "response_range");
	struct etcd_kv kv;
	r = etcd_parse_kv(json_array_get(json_object_get(rr, "kvs"), 0), &kv);
	json_decref(reply);
	if (r < 0 || kv.value_len != 64 || hex_decode(kv.value, 32, theirs) < 0) {
		cl->f.bad_values++;
		snprintf(err, errlen, "%s in etcd is not a 64-digit hex secret", suffix);
		return -EPROTO;
	}
	if (!memcmp(mine, theirs, 32))
		return 0;
	if (class_nonempty(st, cf)) {
		snprintf(err, errlen, "class %s here holds objects under this box's own namespace "
			 "secret, not the cluster's: join with an empty data directory (or import)",
			 class_name);
		return -EEXIST;
	}
	if (store_class_set_secret(st, class_name, theirs) < 0) {
		snprintf(err, errlen, "class %s: could not store the cluster's secret", class_name);
		return -EIO;
	}
	for (unsigned ns = 0; ns < obj_namespaces(); ns++)
		if (!strcmp(obj_namespace_class(ns), class_name) && obj_namespace_adopt(ns, theirs) < 0) {
			snprintf(err, errlen, "class %s: could not adopt the cluster's secret", class_name);
			return -EIO;
		}
	log_info("cluster %s: class %s adopts the cluster's namespace secret", cl->cfg->cluster.name,
		 class_name);
	return 0;
}

int cluster_share_secrets(struct cluster *cl, char *err, size_t errlen)
{
	for (unsigned ns = 0; ns < obj_namespaces(); ns++) {
		int r = share_one(cl, obj_namespace_class(ns), err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}
