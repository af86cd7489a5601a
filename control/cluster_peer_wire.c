/* The peer listener's request line and slot stream records (cluster_peer_wire.h): strict
 * parsers over bytes a peer, or anyone reaching its port, sent. */
#include "cluster_peer_wire.h"

#include <string.h>

static size_t digits(const char *p, size_t n, size_t max, uint64_t *out)
{
	size_t i = 0;
	uint64_t v = 0;
	while (i < n && i < max && p[i] >= '0' && p[i] <= '9')
		v = v * 10 + (uint64_t)(p[i++] - '0');
	*out = v;
	return i;
}

int cluster_peer_parse_request(const char *req, size_t n, unsigned slots,
			       char kind[CLUSTER_PEER_KIND_MAX], unsigned *slot, int64_t *epoch,
			       char mac[CLUSTER_PEER_MAC_HEX + 1])
{
	static const char *const kinds[] = { "snap", "tail", "final", "repl" };
	if (n < 5 || memcmp(req, "GET /", 5))
		return -1;
	size_t i = 5;
	int k = -1;
	for (int j = 0; j < 4 && k < 0; j++) {
		size_t kl = strlen(kinds[j]);
		if (n - i > kl && !memcmp(req + i, kinds[j], kl) && req[i + kl] == '/') {
			k = j;
			i += kl + 1;
		}
	}
	if (k < 0)
		return -1;
	uint64_t s, e;
	size_t d = digits(req + i, n - i, 5, &s);
	if (!d || s >= slots || i + d >= n || req[i + d] != '/')
		return -1;
	i += d + 1;
	d = digits(req + i, n - i, 18, &e);
	if (!d || i + d >= n || req[i + d] != '/')
		return -1;
	i += d + 1;
	if (n - i < CLUSTER_PEER_MAC_HEX)
		return -1;
	for (size_t j = 0; j < CLUSTER_PEER_MAC_HEX; j++) {
		char c = req[i + j];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
		mac[j] = c;
	}
	mac[CLUSTER_PEER_MAC_HEX] = 0;
	i += CLUSTER_PEER_MAC_HEX;
	if (n - i < 8 || memcmp(req + i, " HTTP/1.", 8))
		return -1;
	memcpy(kind, kinds[k], strlen(kinds[k]) + 1);
	*slot = (unsigned)s;
	*epoch = (int64_t)e;
	return 0;
}

int cluster_peer_mac_equal(const char *a, const char *b)
{
	unsigned char diff = 0;
	for (size_t i = 0; i < CLUSTER_PEER_MAC_HEX; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

long cluster_peer_next_record(const char *p, size_t n, uint32_t max_len, struct cluster_peer_rec *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->need = n + 1;
	if (n < 1)
		return 0;
	rec->tag = p[0];
	switch (rec->tag) {
	case 'F':
		if (n < 3)
			return 0;
		rec->family = (uint8_t)p[1];
		rec->name_len = (uint8_t)p[2];
		rec->need = 3u + rec->name_len;
		if (n < rec->need)
			return 0;
		rec->name = p + 3;
		return (long)rec->need;
	case 'R':
	case 'D':
	case 'X':
		if (n < 10)
			return 0;
		rec->family = (uint8_t)p[1];
		memcpy(&rec->key_len, p + 2, 4);
		memcpy(&rec->val_len, p + 6, 4);
		if (rec->key_len > max_len || rec->val_len > max_len || (rec->tag == 'D' && rec->val_len))
			return -1;
		rec->need = 10u + (size_t)rec->key_len + rec->val_len;
		if (n < rec->need)
			return 0;
		rec->key = p + 10;
		rec->val = p + 10 + rec->key_len;
		return (long)rec->need;
	case 'E':
		rec->need = 9;
		if (n < 9)
			return 0;
		memcpy(&rec->count, p + 1, 8);
		return 9;
	default:
		return -1;
	}
}
