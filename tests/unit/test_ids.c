/* Object IDs: naming is deterministic per namespace, strings round-trip, IDs from another
 * namespace or malformed strings are refused, new IDs differ. */
#include "check.h"
#include "obj.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct duro_namespace ns_a, ns_b;

static void setup(void)
{
	uint8_t sa[32], sb[32];
	for (int i = 0; i < 32; i++) {
		sa[i] = (uint8_t)i;
		sb[i] = (uint8_t)(i * 7 + 1);
	}
	obj_namespace_keys(&ns_a, sa);
	obj_namespace_keys(&ns_b, sb);
}

static void test_from_name(void)
{
	struct duro_id x, y, z;
	CHECK_EQ(duro_id_from_name(&ns_a, "alice", 5, &x), 0);
	CHECK_EQ(duro_id_from_name(&ns_a, "alice", 5, &y), 0);
	CHECK(memcmp(&x, &y, sizeof(x)) == 0);
	CHECK_EQ(duro_id_from_name(&ns_a, "bob", 3, &z), 0);
	CHECK(memcmp(&x, &z, sizeof(x)) != 0);
	CHECK_EQ(duro_id_from_name(&ns_b, "alice", 5, &z), 0);
	CHECK(memcmp(&x, &z, sizeof(x)) != 0);
	CHECK_EQ(duro_id_from_name(&ns_a, "", 0, &z), -EINVAL);
	char longname[300];
	memset(longname, 'n', sizeof(longname));
	CHECK_EQ(duro_id_from_name(&ns_a, longname, 256, &z), 0);
	CHECK_EQ(duro_id_from_name(&ns_a, longname, 257, &z), -EINVAL);
}

static void test_string_round_trip(void)
{
	struct duro_id x, y;
	char hex[DURO_ID_HEX + 1];
	CHECK_EQ(duro_id_new(&ns_a, &x), 0);
	duro_id_to_string(&x, hex);
	CHECK_EQ(strlen(hex), 64);
	for (int i = 0; i < 64; i++)
		CHECK((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
	CHECK_EQ(duro_id_from_string(&ns_a, hex, 64, &y), 0);
	CHECK(memcmp(&x, &y, sizeof(x)) == 0);
	/* Upper case is the same ID. */
	for (int i = 0; i < 64; i++)
		if (hex[i] >= 'a')
			hex[i] = (char)(hex[i] - 32);
	CHECK_EQ(duro_id_from_string(&ns_a, hex, 64, &y), 0);
}

static void test_refusals(void)
{
	struct duro_id x, y;
	char hex[DURO_ID_HEX + 1];
	CHECK_EQ(duro_id_from_name(&ns_a, "alice", 5, &x), 0);
	duro_id_to_string(&x, hex);
	CHECK_EQ(duro_id_from_string(&ns_b, hex, 64, &y), -ENOENT);
	CHECK_EQ(duro_id_from_string(&ns_a, hex, 63, &y), -EINVAL);
	hex[10] = 'g';
	CHECK_EQ(duro_id_from_string(&ns_a, hex, 64, &y), -EINVAL);
	duro_id_to_string(&x, hex);
	hex[0] = hex[0] == '0' ? '1' : '0'; /* body changed: MAC no longer matches */
	CHECK_EQ(duro_id_from_string(&ns_a, hex, 64, &y), -ENOENT);
	duro_id_to_string(&x, hex);
	hex[63] = hex[63] == '0' ? '1' : '0'; /* MAC changed */
	CHECK_EQ(duro_id_from_string(&ns_a, hex, 64, &y), -ENOENT);
}

static void test_new_ids_differ(void)
{
	struct duro_id ids[64];
	for (int i = 0; i < 64; i++)
		CHECK_EQ(duro_id_new(&ns_a, &ids[i]), 0);
	for (int i = 0; i < 64; i++)
		for (int j = i + 1; j < 64; j++)
			CHECK(memcmp(&ids[i], &ids[j], sizeof(ids[i])) != 0);
}

int main(void)
{
	setup();
	RUN(test_from_name);
	RUN(test_string_round_trip);
	RUN(test_refusals);
	RUN(test_new_ids_differ);
	return CHECK_DONE();
}
