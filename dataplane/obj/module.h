/* Class modules (module.c): a shared object built against duro.h with DURO_MODULE, checked
 * and loaded into durod. Loaded modules are never unloaded: objects, continuations and
 * sync() callbacks may point into their code for as long as the process runs. */
#ifndef DURO_OBJ_MODULE_H
#define DURO_OBJ_MODULE_H

#include "duro.h"

#include <stddef.h>

/* Largest module file read (its SHA-256 and ELF header are taken from the bytes read). */
#define OBJ_MODULE_MAX_BYTES (256u << 20)

struct obj_module {
	char path[512];
	char sha[65];       /* SHA-256 of the file, 64 hex digits */
	void *handle;
	const struct duro_class *const *classes;
	size_t nclasses;
	unsigned abi_major, abi_minor;
	struct obj_module *next;
};

/* Loads the shared object at `path`: checks that it is an ELF shared object for this
 * machine, opens it RTLD_NOW | RTLD_LOCAL, checks its magic block (ABI version, pointer
 * width, struct sizes), calls its init entry and checks each class it returns (a name of
 * 1 to 63 bytes, no name twice, an on_request). Returns 0 with *out (valid for the
 * process's life), or a negative errno with one line in err naming the file and the
 * reason: -ENOENT or another errno of open/read, -EFBIG over OBJ_MODULE_MAX_BYTES,
 * -ENOEXEC for every refusal of the file's contents. A refused file is closed again;
 * nothing of it stays registered. Any thread; loads are serialized. */
int obj_module_load(const char *path, struct obj_module **out, char *err, size_t errlen);

/* A module file runs its code as durod: refused (-EPERM, one line in err) when anyone but
 * its owner may write it (mode g+w or o+w), or when it is not a regular file. */
int obj_module_check_mode(const char *path, char *err, size_t errlen);
/* The same for a file already open (path names it in err). */
int obj_module_check_fd(int fd, const char *path, char *err, size_t errlen);

/* The module's class named `name`, or NULL. */
const struct duro_class *obj_module_class(const struct obj_module *m, const char *name);

#endif
