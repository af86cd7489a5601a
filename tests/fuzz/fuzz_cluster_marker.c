/* libFuzzer target: the hop marker a forwarded request carries (Duro-Forwarded, parsed by
 * obj_cluster_parse_marker in dataplane/obj/cluster_forward.h), which any client can send:
 * what it accepts must print back to the same values. */
#include "cluster_forward.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned slot;
	int64_t epoch;
	if (obj_cluster_parse_marker((const char *)data, size, 4096, &slot, &epoch) < 0)
		return 0;
	if (slot >= 4096 || epoch < 0)
		abort();
	/* Accepted: digits, a space, digits, so it is no longer than the values printed
	 * (leading zeros aside), and what is printed parses back to the same values. */
	char back[64];
	int n = snprintf(back, sizeof(back), "%u %" PRId64, slot, epoch);
	unsigned s2;
	int64_t e2;
	if (n <= 0 || (size_t)n > size ||
	    obj_cluster_parse_marker(back, (size_t)n, 4096, &s2, &e2) < 0 || s2 != slot || e2 != epoch)
		abort();
	return 0;
}
