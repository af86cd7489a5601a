/* Unit tests for etcd's gateway encodings and duro's values in etcd (control/etcd_wire.c,
 * control/cluster_wire.c): base64, int64 strings, key-values, leases, watch messages,
 * the stream's framing, keys under the cluster prefix, member and slot values, weights. */
#include "check.h"
#include "cluster_wire.h"
#include "etcd_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_base64(void)
{
	char out[64];
	uint8_t back[64];
	CHECK_EQ(etcd_b64_encode("/duro/t/", 8, out, sizeof(out)), 12);
	CHECK(!strcmp(out, "L2R1cm8vdC8="));
	CHECK_EQ(etcd_b64_decode(out, 12, back, sizeof(back)), 8);
	CHECK(!memcmp(back, "/duro/t/", 8));
	CHECK_EQ(etcd_b64_decode("L2R1cm8vdC8", 11, back, sizeof(back)), 8); /* unpadded */
	CHECK_EQ(etcd_b64_decode("", 0, back, sizeof(back)), 0);
	CHECK_EQ(etcd_b64_decode("A", 1, back, sizeof(back)), -EINVAL);
	CHECK_EQ(etcd_b64_decode("AB=C", 4, back, sizeof(back)), -EINVAL);
	CHECK_EQ(etcd_b64_decode("AB!=", 4, back, sizeof(back)), -EINVAL);
	CHECK_EQ(etcd_b64_decode("AB==", 4, back, sizeof(back)), -EINVAL); /* bits left over */
	CHECK_EQ(etcd_b64_decode("L2R1cm8vdC8=", 12, back, 7), -ENOSPC);
	CHECK_EQ(etcd_b64_encode("abc", 3, out, 4), -ENOSPC);
	for (unsigned n = 0; n < 40; n++) {
		uint8_t in[40];
		for (unsigned i = 0; i < n; i++)
			in[i] = (uint8_t)(i * 37 + n);
		long e = etcd_b64_encode(in, n, out, sizeof(out));
		CHECK(e >= 0 && etcd_b64_decode(out, (size_t)e, back, sizeof(back)) == (long)n);
		CHECK(!memcmp(in, back, n));
	}
}

static void test_i64(void)
{
	int64_t v;
	json_t *j = json_string("7599537497394575110");
	CHECK(etcd_json_i64(j, &v) == 0 && v == 7599537497394575110ll);
	json_decref(j);
	j = json_string("9223372036854775808");
	CHECK_EQ(etcd_json_i64(j, &v), -EINVAL);
	json_decref(j);
	j = json_string("-5");
	CHECK(etcd_json_i64(j, &v) == 0 && v == -5);
	json_decref(j);
	j = json_string("1x");
	CHECK_EQ(etcd_json_i64(j, &v), -EINVAL);
	json_decref(j);
	j = json_real(1.5);
	CHECK_EQ(etcd_json_i64(j, &v), -EINVAL);
	json_decref(j);
	CHECK(etcd_json_i64(NULL, &v) == 0 && v == 0);
}

static json_t *parse(const char *s)
{
	json_t *j = json_loads(s, 0, NULL);
	CHECK(j != NULL);
	return j;
}

static void test_kv_lease_revision(void)
{
	struct etcd_kv kv;
	json_t *j = parse("{\"key\":\"L2R1cm8vdC8=\",\"create_revision\":\"75\",\"mod_revision\":\"80\","
			  "\"version\":\"2\",\"value\":\"e30=\",\"lease\":\"12\"}");
	CHECK(etcd_parse_kv(j, &kv) == 0);
	CHECK(kv.key_len == 8 && kv.create_rev == 75 && kv.mod_rev == 80 && kv.lease == 12);
	CHECK(kv.value_len == 2 && !strcmp(kv.value, "{}"));
	json_decref(j);
	j = parse("{\"key\":\"\"}");
	CHECK_EQ(etcd_parse_kv(j, &kv), -EINVAL);
	json_decref(j);
	int64_t id, ttl, rev;
	j = parse("{\"result\":{\"header\":{\"revision\":\"3\"},\"ID\":\"7599537497394575110\",\"TTL\":\"5\"}}");
	CHECK(etcd_parse_lease(j, &id, &ttl) == 0 && id == 7599537497394575110ll && ttl == 5);
	json_decref(j);
	j = parse("{\"result\":{\"ID\":\"7\"}}");
	CHECK_EQ(etcd_parse_lease(j, &id, &ttl), -ENOENT);
	json_decref(j);
	j = parse("{\"header\":{\"revision\":\"128\"}}");
	CHECK(etcd_parse_revision(j, &rev) == 0 && rev == 128);
	json_decref(j);
	char msg[64];
	j = parse("{\"error\":\"x\",\"code\":9,\"message\":\"etcdserver: requested lease not found\"}");
	CHECK(etcd_parse_error(j, msg, sizeof(msg)) == 1 && strstr(msg, "lease not found"));
	json_decref(j);
}

static unsigned nput, ndel;
static void count(void *arg, const struct etcd_event *ev)
{
	(void)arg;
	if (ev->type == ETCD_PUT)
		nput++;
	else
		ndel++;
}

static void test_watch(void)
{
	struct etcd_watch_msg m;
	json_t *j = parse("{\"result\":{\"header\":{\"revision\":\"9\"},\"created\":true}}");
	CHECK(etcd_parse_watch(j, &m, count, NULL) == 0 && m.created && m.revision == 9);
	json_decref(j);
	j = parse("{\"result\":{\"header\":{\"revision\":\"10\"},\"events\":[{\"kv\":{\"key\":\"YQ==\","
		  "\"mod_revision\":\"10\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"YQ==\"}},"
		  "{\"type\":\"BOGUS\"},{\"kv\":7}]}}");
	CHECK(etcd_parse_watch(j, &m, count, NULL) == 0);
	CHECK(nput == 1 && ndel == 1 && m.nevents == 4 && m.bad_events == 2);
	json_decref(j);
	j = parse("{\"result\":{\"canceled\":true,\"compact_revision\":\"4\"}}");
	CHECK(etcd_parse_watch(j, &m, NULL, NULL) == 0 && m.canceled && m.compact_revision == 4);
	json_decref(j);
	j = parse("[1]");
	CHECK_EQ(etcd_parse_watch(j, &m, NULL, NULL), -EINVAL);
	json_decref(j);
	CHECK_EQ(etcd_stream_line("{}\n{", 4, 100), 3);
	CHECK_EQ(etcd_stream_line("{}", 2, 100), 0);
	CHECK_EQ(etcd_stream_line("{}", 2, 1), -E2BIG);
	char end[16];
	CHECK(etcd_prefix_end("/a/", 3, end) == 3 && !memcmp(end, "/a0", 3));
	CHECK(etcd_prefix_end("a\xff", 2, end) == 1 && end[0] == 'b');
}

static void test_cluster_values(void)
{
	char box[CLUSTER_NAME_MAX];
	unsigned slot = 0;
	const char *p = "/duro/t/";
#define K(s) cluster_key_parse(p, s, strlen(s), box, &slot)
	CHECK(K("/duro/t/members/b1") == CLUSTER_KEY_MEMBER && !strcmp(box, "b1"));
	CHECK(K("/duro/t/slots/4095") == CLUSTER_KEY_SLOT && slot == 4095);
	CHECK(K("/duro/t/slots/0") == CLUSTER_KEY_SLOT && slot == 0);
	CHECK(K("/duro/t/slots/4096") == CLUSTER_KEY_OTHER);
	CHECK(K("/duro/t/slots/01") == CLUSTER_KEY_OTHER);
	CHECK(K("/duro/t/slots/") == CLUSTER_KEY_OTHER);
	CHECK(K("/duro/t/members/a/b") == CLUSTER_KEY_OTHER);
	CHECK(K("/duro/t/rebalancer") == CLUSTER_KEY_REBALANCER);
	CHECK(K("/duro/u/rebalancer") == CLUSTER_KEY_OTHER);
	CHECK(K("/duro/t/drain/b2") == CLUSTER_KEY_DRAIN && !strcmp(box, "b2"));
	CHECK(K("/duro/t/drain/") == CLUSTER_KEY_OTHER);
	CHECK(K("/duro/t/load/b3") == CLUSTER_KEY_LOAD && !strcmp(box, "b3"));
	CHECK(K("/duro/t/load/") == CLUSTER_KEY_OTHER);
	CHECK(K("/duro/t/rebalance") == CLUSTER_KEY_REBALANCE);
#undef K
	struct cluster_member_value m = { .cores = 2, .incarnation = 77 }, m2;
	strcpy(m.address, "127.0.0.1:8801");
	strcpy(m.version, "0.1.0");
	char text[256];
	long n = cluster_member_format(&m, text, sizeof(text));
	CHECK(n > 0 && cluster_member_parse(text, (size_t)n, &m2) == 0);
	CHECK(!strcmp(m2.address, m.address) && m2.cores == 2 && m2.incarnation == 77);
	CHECK_EQ(cluster_member_parse("{\"address\":5}", 13, &m2), -EINVAL);
	CHECK_EQ(cluster_member_parse("[]", 2, &m2), -EINVAL);
	struct cluster_slot_value s = { .incarnation = 123, .state = CLUSTER_SLOT_ACTIVE }, s2;
	strcpy(s.owner, "b1");
	n = cluster_slot_format(&s, text, sizeof(text));
	CHECK(n > 0 && cluster_slot_parse(text, (size_t)n, &s2) == 0);
	CHECK(!strcmp(s2.owner, "b1") && s2.incarnation == 123 && s2.state == CLUSTER_SLOT_ACTIVE);
	const char *bad = "{\"owner\":\"a/b\",\"incarnation\":\"1\"}";
	CHECK_EQ(cluster_slot_parse(bad, strlen(bad), &s2), -EINVAL);
	bad = "{\"owner\":\"a\",\"incarnation\":\"1\",\"state\":\"gone\"}";
	CHECK_EQ(cluster_slot_parse(bad, strlen(bad), &s2), -EINVAL);
	/* A move names its target box and incarnation. */
	s.state = CLUSTER_SLOT_MOVING;
	strcpy(s.target, "b4");
	s.target_incarnation = 456;
	n = cluster_slot_format(&s, text, sizeof(text));
	CHECK(n > 0 && cluster_slot_parse(text, (size_t)n, &s2) == 0);
	CHECK(s2.state == CLUSTER_SLOT_MOVING && !strcmp(s2.target, "b4") &&
	      s2.target_incarnation == 456 && !strcmp(s2.owner, "b1"));
	bad = "{\"owner\":\"a\",\"incarnation\":\"1\",\"state\":\"moving\"}";
	CHECK_EQ(cluster_slot_parse(bad, strlen(bad), &s2), -EINVAL);
	/* Voters (issue 19): written and read back in order; none in an old value. */
	CHECK_EQ(s2.nvoters, 0u);
	s.state = CLUSTER_SLOT_ACTIVE;
	s.nvoters = 3;
	strcpy(s.voters[0], "b1");
	strcpy(s.voters[1], "b2");
	strcpy(s.voters[2], "b3");
	n = cluster_slot_format(&s, text, sizeof(text));
	CHECK(n > 0 && cluster_slot_parse(text, (size_t)n, &s2) == 0);
	CHECK(s2.nvoters == 3 && !strcmp(s2.voters[0], "b1") && !strcmp(s2.voters[2], "b3"));
	bad = "{\"owner\":\"a\",\"incarnation\":\"1\",\"voters\":[\"a\",\"a\"]}";
	CHECK_EQ(cluster_slot_parse(bad, strlen(bad), &s2), -EINVAL);
	bad = "{\"owner\":\"a\",\"incarnation\":\"1\",\"voters\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"]}";
	CHECK_EQ(cluster_slot_parse(bad, strlen(bad), &s2), -EINVAL);
	bad = "{\"owner\":\"a\",\"incarnation\":\"1\",\"voters\":[\"a/b\"]}";
	CHECK_EQ(cluster_slot_parse(bad, strlen(bad), &s2), -EINVAL);
	bad = "{\"owner\":\"a\",\"incarnation\":\"1\",\"voters\":\"a\"}";
	CHECK_EQ(cluster_slot_parse(bad, strlen(bad), &s2), -EINVAL);
	strcpy(m.peer, "127.0.0.1:9");
	n = cluster_member_format(&m, text, sizeof(text));
	CHECK(n > 0 && cluster_member_parse(text, (size_t)n, &m2) == 0 && !strcmp(m2.peer, m.peer));
	/* Rendezvous: three boxes share 4,096 slots roughly evenly, and adding a fourth moves
	 * only the slots it wins. */
	const char *boxes[] = { "b1", "b2", "b3", "b4" };
	unsigned per[4] = { 0 }, moved = 0;
	for (unsigned sl = 0; sl < 4096; sl++) {
		unsigned best3 = 0, best4 = 0;
		for (unsigned b = 1; b < 4; b++) {
			if (b < 3 && cluster_weight(boxes[b], sl) > cluster_weight(boxes[best3], sl))
				best3 = b;
			if (cluster_weight(boxes[b], sl) > cluster_weight(boxes[best4], sl))
				best4 = b;
		}
		per[best3]++;
		if (best3 != best4) {
			moved++;
			CHECK_EQ(best4, 3);
		}
	}
	for (unsigned b = 0; b < 3; b++)
		CHECK(per[b] > 1200 && per[b] < 1530);
	CHECK(moved > 850 && moved < 1200);
}

/* Feeds text in pieces of `step` bytes, as recv would; returns the last result. */
static int feed(struct etcd_http *h, char *buf, const char *text, size_t step, int eof_at_end)
{
	size_t n = strlen(text), len = 0;
	int r = 0;
	memset(h, 0, sizeof(*h));
	while (len < n) {
		size_t k = n - len < step ? n - len : step;
		memcpy(buf + len, text + len, k);
		len += k;
		r = etcd_http_feed(h, buf, len, eof_at_end && len == n, 1 << 20);
		if (r != 0)
			break;
	}
	return r;
}

static void test_http_framing(void)
{
	char buf[1024];
	struct etcd_http h;
	const char *cl = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
	for (size_t step = 1; step < 60; step += 7) {
		CHECK_EQ(feed(&h, buf, cl, step, 0), 1);
		CHECK(h.status == 200 && h.dst - h.head_len == 7 && !memcmp(buf + h.head_len, "{\"a\":1}", 7));
	}
	const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
	for (size_t step = 1; step < 60; step += 5) {
		CHECK_EQ(feed(&h, buf, ch, step, 0), 1);
		CHECK(h.dst - h.head_len == 7 && !memcmp(buf + h.head_len, "{\"a\":1}", 7));
	}
	CHECK_EQ(feed(&h, buf, "HTTP/1.1 200 OK\r\n\r\nabc", 100, 1), 1); /* to the close */
	CHECK(h.dst - h.head_len == 3);
	CHECK_EQ(feed(&h, buf, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 100, 1), -EPROTO);
	CHECK_EQ(feed(&h, buf, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100, 0),
		 -EPROTO);
	CHECK_EQ(feed(&h, buf, "HTTP/1.1 2x0 OK\r\n\r\n", 100, 0), -EPROTO);
	CHECK_EQ(feed(&h, buf, "HTTP/1.1 200 OK\r\n", 100, 1), -EPROTO); /* closed in the head */
	CHECK_EQ(feed(&h, buf, "HTTP/1.1 100 Continue\r\n\r\n", 100, 0), -EPROTO);
	/* A stream: consume what was handled, keep reading after it. */
	const char *st = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab\n\r\n";
	CHECK_EQ(feed(&h, buf, st, 100, 0), 0);
	size_t len = strlen(st);
	CHECK(h.dst - h.head_len == 3);
	len = etcd_http_consume(&h, buf, len, 3);
	CHECK(h.dst == h.head_len);
	memcpy(buf + len, "2\r\ncd\r\n", 7);
	len += 7;
	CHECK_EQ(etcd_http_feed(&h, buf, len, 0, 1 << 20), 0);
	CHECK(h.dst - h.head_len == 2 && !memcmp(buf + h.head_len, "cd", 2));
}

int main(void)
{
	RUN(test_http_framing);
	RUN(test_base64);
	RUN(test_i64);
	RUN(test_kv_lease_revision);
	RUN(test_watch);
	RUN(test_cluster_values);
	return CHECK_DONE();
}
