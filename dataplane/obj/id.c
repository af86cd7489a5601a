/* Object IDs. An ID is body16 || MAC16: the body is random (new) or SipHash-128 of the name
 * under the namespace's name key; the MAC is SipHash-128 of the body under its MAC key, so
 * only the namespace that minted an ID accepts it. */
#include "obj.h"
#include "base_assert.h"
#include "hex.h"
#include "siphash.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>

void obj_namespace_keys(struct duro_namespace *ns, const uint8_t secret[32])
{
	memcpy(ns->keys_initial, secret, 32);
	atomic_store_explicit(&ns->keys, ns->keys_initial, memory_order_release);
}

static const uint8_t *keys_of(const struct duro_namespace *ns)
{
	return atomic_load_explicit(&((struct duro_namespace *)ns)->keys, memory_order_acquire);
}

static void seal(const uint8_t *keys, struct duro_id *id)
{
	siphash128(keys + 16, id->bytes, 16, id->bytes + 16);
}

int duro_id_from_name(const struct duro_namespace *ns, const char *name, size_t len,
		      struct duro_id *out)
{
	if (len == 0 || len > DURO_MAX_NAME)
		return -EINVAL;
	const uint8_t *k = keys_of(ns);
	siphash128(k, name, len, out->bytes);
	seal(k, out);
	return 0;
}

int duro_id_new(const struct duro_namespace *ns, struct duro_id *out)
{
	size_t got = 0;
	while (got < 16) {
		ssize_t r = getrandom(out->bytes + got, 16 - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	seal(keys_of(ns), out);
	return 0;
}

int obj_id_check(const struct duro_namespace *ns, const struct duro_id *id)
{
	uint8_t mac[16];
	siphash128(keys_of(ns) + 16, id->bytes, 16, mac);
	uint8_t diff = 0;
	for (int i = 0; i < 16; i++)
		diff |= (uint8_t)(mac[i] ^ id->bytes[16 + i]);
	return diff ? -ENOENT : 0;
}

int duro_id_from_string(const struct duro_namespace *ns, const char *hex, size_t len,
			struct duro_id *out)
{
	if (len != DURO_ID_HEX || hex_decode(hex, DURO_ID_BYTES, out->bytes) < 0)
		return -EINVAL;
	uint8_t mac[16];
	siphash128(keys_of(ns) + 16, out->bytes, 16, mac);
	/* Constant time: the comparison must not tell an attacker how many bytes matched. */
	uint8_t diff = 0;
	for (int i = 0; i < 16; i++)
		diff |= (uint8_t)(mac[i] ^ out->bytes[16 + i]);
	return diff ? -ENOENT : 0;
}

void duro_id_to_string(const struct duro_id *id, char out[DURO_ID_HEX + 1])
{
	hex_encode(id->bytes, DURO_ID_BYTES, out);
	out[DURO_ID_HEX] = 0;
}
