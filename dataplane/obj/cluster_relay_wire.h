/* The field a relayed WebSocket's opening request carries from its edge box to the owner
 * (cluster_wsrelay.c): which box and incarnation holds the client, so the owner can close
 * the socket (1006 to the object) when that member is gone. Pure, over the caller's bytes. */
#ifndef DURO_OBJ_CLUSTER_RELAY_WIRE_H
#define DURO_OBJ_CLUSTER_RELAY_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define OBJ_CLUSTER_WSR_HEADER "Duro-Relay"
/* 16 hex digits the edge picks for the client's socket and sends on every dial of it: the
 * owner keeps the socket's tags and attachment under it (cluster_wsstate.h). */
#define OBJ_CLUSTER_WSSTATE_HEADER "Duro-Relay-State"
/* A box name's bytes at most (the cluster table's names are shorter). */
#define OBJ_CLUSTER_WSR_BOX_MAX 63

/* Parses v[0..n) (untrusted: any client may send the field): "<box> <incarnation>" or
 * "<box> <incarnation> reopen", the box 1 to OBJ_CLUSTER_WSR_BOX_MAX visible ASCII bytes
 * (0x21..0x7e), the incarnation 1 to 18 decimal digits and not 0. Returns 0 and fills box
 * (NUL-terminated), *incarnation and *reopen, or -1 (nothing filled). */
static inline int obj_cluster_parse_relay(const char *v, size_t n,
					  char box[OBJ_CLUSTER_WSR_BOX_MAX + 1],
					  int64_t *incarnation, int *reopen)
{
	size_t i = 0;
	while (i < n && (unsigned char)v[i] > 0x20 && (unsigned char)v[i] < 0x7f)
		i++;
	size_t bl = i;
	if (bl == 0 || bl > OBJ_CLUSTER_WSR_BOX_MAX || i >= n || v[i] != ' ')
		return -1;
	i++;
	uint64_t e = 0;
	size_t d = 0;
	while (i < n && v[i] >= '0' && v[i] <= '9' && d < 18) {
		e = e * 10 + (uint64_t)(v[i++] - '0');
		d++;
	}
	if (d == 0 || e == 0)
		return -1;
	int again = 0;
	static const char re[] = " reopen";
	if (i < n) {
		if (n - i != sizeof(re) - 1)
			return -1;
		for (size_t k = 0; k < sizeof(re) - 1; k++)
			if (v[i + k] != re[k])
				return -1;
		again = 1;
	}
	for (size_t k = 0; k < bl; k++)
		box[k] = v[k];
	box[bl] = 0;
	*incarnation = (int64_t)e;
	*reopen = again;
	return 0;
}

#endif
