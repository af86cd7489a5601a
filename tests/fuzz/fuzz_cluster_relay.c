/* libFuzzer target: the edge field a relayed WebSocket's upgrade carries (Duro-Relay,
 * parsed by obj_cluster_parse_relay in dataplane/obj/cluster_relay_wire.h), which any
 * client can send: what it accepts must print back to the same values. */
#include "cluster_relay_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char box[OBJ_CLUSTER_WSR_BOX_MAX + 1];
	int64_t inc;
	int reopen;
	if (obj_cluster_parse_relay((const char *)data, size, box, &inc, &reopen) < 0)
		return 0;
	size_t bl = strlen(box);
	if (bl == 0 || bl > OBJ_CLUSTER_WSR_BOX_MAX || inc <= 0 || (reopen != 0 && reopen != 1))
		abort();
	for (size_t i = 0; i < bl; i++)
		if ((unsigned char)box[i] <= 0x20 || (unsigned char)box[i] >= 0x7f)
			abort();
	/* Printed back, it parses to the same values and is no longer than the input
	 * (leading zeros aside). */
	char back[128];
	int n = snprintf(back, sizeof(back), "%s %" PRId64 "%s", box, inc, reopen ? " reopen" : "");
	char box2[OBJ_CLUSTER_WSR_BOX_MAX + 1];
	int64_t inc2;
	int re2;
	if (n <= 0 || (size_t)n > size ||
	    obj_cluster_parse_relay(back, (size_t)n, box2, &inc2, &re2) < 0 || strcmp(box, box2) ||
	    inc2 != inc || re2 != reopen)
		abort();
	return 0;
}
