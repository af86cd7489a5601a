/* Classes, namespaces and object IDs. An ID is body16 || MAC16: the body is random (new) or
 * SipHash-128 of the name under the namespace's name key; the MAC is SipHash-128 of the
 * body under its MAC key, so only the namespace that minted an ID accepts it. */
#include "obj.h"
#include "base_assert.h"
#include "hex.h"
#include "log.h"
#include "siphash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- class registry (filled by constructors before main) ---- */

static const struct duro_class *classes[DURO_MAX_CLASSES];
static unsigned nclasses;

int duro_register_class(const struct duro_class *cls)
{
	if (obj_find_class(cls->name))
		return -EEXIST;
	if (nclasses == DURO_MAX_CLASSES)
		return -ENOSPC;
	classes[nclasses++] = cls;
	return 0;
}

const struct duro_class *obj_find_class(const char *name)
{
	for (unsigned i = 0; i < nclasses; i++)
		if (strcmp(classes[i]->name, name) == 0)
			return classes[i];
	return NULL;
}

void obj_each_class(void (*fn)(const char *name, void *arg), void *arg)
{
	for (unsigned i = 0; i < nclasses; i++)
		fn(classes[i]->name, arg);
}

/* ---- IDs ---- */

void obj_namespace_keys(struct duro_namespace *ns, const uint8_t secret[32])
{
	memcpy(ns->name_key, secret, 16);
	memcpy(ns->mac_key, secret + 16, 16);
}

static void seal(const struct duro_namespace *ns, struct duro_id *id)
{
	siphash128(ns->mac_key, id->bytes, 16, id->bytes + 16);
}

int duro_id_from_name(const struct duro_namespace *ns, const char *name, size_t len,
		      struct duro_id *out)
{
	if (len == 0 || len > DURO_MAX_NAME)
		return -EINVAL;
	siphash128(ns->name_key, name, len, out->bytes);
	seal(ns, out);
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
	seal(ns, out);
	return 0;
}

int duro_id_from_string(const struct duro_namespace *ns, const char *hex, size_t len,
			struct duro_id *out)
{
	if (len != DURO_ID_HEX || hex_decode(hex, DURO_ID_BYTES, out->bytes) < 0)
		return -EINVAL;
	uint8_t mac[16];
	siphash128(ns->mac_key, out->bytes, 16, mac);
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

/* ---- namespace secrets ---- */

static int mkdir_p(const char *dir)
{
	char tmp[600];
	size_t n = strlen(dir);
	if (n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* Reads the class's 32-byte secret, creating it durably on first start. Keyed by class, so
 * every binding to one class addresses the same objects. */
int obj_load_secret(const char *data_dir, const char *class_name, uint8_t secret[32])
{
	char dir[600], path[700], tmp[720];
	snprintf(dir, sizeof(dir), "%s/namespaces", data_dir);
	int r = mkdir_p(dir);
	if (r < 0) {
		log_error("namespace %s: mkdir %s: %s", class_name, dir, strerror(-r));
		return r;
	}
	snprintf(path, sizeof(path), "%s/%s.secret", dir, class_name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, secret, 32);
		uint8_t extra;
		ssize_t more = read(fd, &extra, 1);
		close(fd);
		if (n != 32 || more != 0) {
			log_error("namespace %s: %s is not a 32-byte secret", class_name, path);
			return -EINVAL;
		}
		return 0;
	}
	if (errno != ENOENT) {
		log_error("namespace %s: open %s: %s", class_name, path, strerror(errno));
		return -errno;
	}
	if (getrandom(secret, 32, 0) != 32)
		return -EIO;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("namespace %s: create %s: %s", class_name, tmp, strerror(errno));
		return -errno;
	}
	/* Write, sync, rename, sync the directory: a crash leaves the old state or the new. */
	if (write(fd, secret, 32) != 32 || fsync(fd) < 0) {
		r = -errno;
		close(fd);
		unlink(tmp);
		log_error("namespace %s: write %s: %s", class_name, tmp, strerror(-r));
		return r;
	}
	close(fd);
	if (rename(tmp, path) < 0 || (r = fsync_dir(dir)) < 0) {
		r = r < 0 ? r : -errno;
		log_error("namespace %s: install %s: %s", class_name, path, strerror(-r));
		return r;
	}
	log_info("namespace %s: new secret in %s", class_name, path);
	return 0;
}
