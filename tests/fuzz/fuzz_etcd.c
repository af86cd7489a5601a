/* libFuzzer target: untrusted bytes as etcd's gateway and other boxes send them (control/
 * etcd_wire.c, control/cluster_wire.c): the input's first byte picks what the rest is —
 * base64 text, a JSON reply read every way the cluster thread reads one (key-value,
 * lease, revision, error, watch message), a watch stream split into messages, a key
 * under the cluster's prefix, a member or slot value, or an HTTP reply as etcd_http frames
 * it (fed in pieces, its body's lines consumed as the watch does). */
#include "cluster_wire.h"
#include "etcd_wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_event(void *arg, const struct etcd_event *ev)
{
	size_t *n = arg;
	*n += ev->kv.key_len + ev->kv.value_len;
}

static void as_json(const char *p, size_t n)
{
	json_t *j = json_loadb(p, n, 0, NULL);
	if (!j)
		return;
	struct etcd_kv kv;
	int64_t a, b;
	char msg[64];
	struct etcd_watch_msg m;
	size_t total = 0;
	etcd_parse_kv(j, &kv);
	etcd_parse_kv(json_array_get(json_object_get(j, "kvs"), 0), &kv);
	etcd_parse_lease(j, &a, &b);
	etcd_parse_revision(j, &a);
	etcd_parse_error(j, msg, sizeof(msg));
	etcd_parse_watch(j, &m, on_event, &total);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 7;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	switch (mode) {
	case 0: {
		uint8_t out[4096];
		char back[8192];
		long r = etcd_b64_decode(p, n, out, sizeof(out));
		if (r >= 0 && etcd_b64_encode(out, (size_t)r, back, sizeof(back)) < 0)
			abort();
		break;
	}
	case 1:
		as_json(p, n);
		break;
	case 2: {
		/* A stream: messages up to each newline, as the watch reads them. */
		size_t off = 0;
		for (;;) {
			long l = etcd_stream_line(p + off, n - off, 1024);
			if (l <= 0)
				break;
			as_json(p + off, (size_t)l);
			off += (size_t)l;
		}
		break;
	}
	case 3: {
		char box[CLUSTER_NAME_MAX], end[256];
		unsigned slot;
		cluster_key_parse("/duro/t/", p, n, box, &slot);
		if (n < sizeof(end))
			etcd_prefix_end(p, n, end);
		break;
	}
	case 4: {
		struct cluster_member_value m;
		char text[512];
		if (cluster_member_parse(p, n, &m) == 0)
			cluster_member_format(&m, text, sizeof(text));
		break;
	}
	case 5: {
		struct cluster_slot_value s;
		char text[CLUSTER_SLOT_VALUE_MAX];
		if (cluster_slot_parse(p, n, &s) == 0)
			cluster_slot_format(&s, text, sizeof(text));
		break;
	}
	case 6: {
		/* Pieces of a size the second byte picks, into a buffer only ever appended to or
		 * consumed from, as etcd.c reads a reply or the watch. */
		if (n < 1)
			break;
		size_t step = (size_t)((uint8_t)p[0] % 32) + 1;
		p++;
		n--;
		char *buf = malloc(n + 1);
		struct etcd_http h = { 0 };
		size_t len = 0, off = 0;
		while (off < n) {
			size_t k = n - off < step ? n - off : step;
			memcpy(buf + len, p + off, k);
			len += k;
			off += k;
			int r = etcd_http_feed(&h, buf, len, off == n, 1 << 16);
			if (r < 0)
				break;
			if (h.dst < h.head_len || h.dst > len || h.src > len)
				abort();
			size_t used = 0;
			long l;
			while ((l = etcd_stream_line(buf + h.head_len + used, h.dst - h.head_len - used,
						     4096)) > 0) {
				as_json(buf + h.head_len + used, (size_t)l);
				used += (size_t)l;
			}
			if (used)
				len = etcd_http_consume(&h, buf, len, used);
			if (r == 1)
				break;
		}
		free(buf);
		break;
	}
	}
	return 0;
}
