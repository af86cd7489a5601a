/* The module loader: every check a class module must pass before durod runs its code,
 * in the order that keeps a bad file from running anything it need not:
 *
 *   read the file (SHA-256, ELF header: a shared object for this machine)
 *     -> dlopen RTLD_NOW | RTLD_LOCAL (relocations: an unresolved symbol fails here;
 *        the module's own constructors run here too, and duro_register_class refuses them)
 *     -> duro_module_magic: magic, ABI major and minor, pointer width, struct sizes
 *     -> duro_module_init(durod's ABI) -> each class: name, no duplicate, on_request
 *
 * RTLD_LOCAL keeps each module's symbols to itself, so two versions of one module never
 * bind to each other; durod lends modules only the duro_* calls (its dynamic list). A
 * refused file is closed; an accepted one stays mapped for good (PostgreSQL gave up
 * unloading for the same reason: code pointers into a module outlive any check). */
#include "module.h"
#include "obj-t.h"
#include "registry.h"
#include "sha256.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#else
#define HOST_MACHINE EM_NONE /* not checked */
#endif

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static struct obj_module *loaded; /* every module accepted, for the process's life */

static int fail(char *err, size_t errlen, const char *path, int r, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int fail(char *err, size_t errlen, const char *path, int r, const char *fmt, ...)
{
	int n = snprintf(err, errlen, "module %s: ", path);
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return r;
}

/* Reads the whole file: its hash, and the ELF header checked before dlopen sees it. */
static int read_file(const char *path, char sha[65], Elf64_Ehdr *eh, size_t *size, char *err,
		     size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, path, -errno, "%s", strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = errno;
		close(fd);
		return fail(err, errlen, path, -ENOEXEC, "%s", e ? strerror(e) : "not a regular file");
	}
	if ((uint64_t)st.st_size > OBJ_MODULE_MAX_BYTES) {
		close(fd);
		return fail(err, errlen, path, -EFBIG, "%lld bytes, over the %u a module may have",
			    (long long)st.st_size, OBJ_MODULE_MAX_BYTES);
	}
	struct sha256 h;
	sha256_init(&h);
	memset(eh, 0, sizeof(*eh));
	size_t total = 0;
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return fail(err, errlen, path, -e, "read: %s", strerror(e));
		}
		if (n == 0)
			break;
		if (total < sizeof(*eh))
			memcpy((char *)eh + total, buf,
			       (size_t)n < sizeof(*eh) - total ? (size_t)n : sizeof(*eh) - total);
		sha256_update(&h, buf, (size_t)n);
		total += (size_t)n;
		if (total > OBJ_MODULE_MAX_BYTES) {
			close(fd);
			return fail(err, errlen, path, -EFBIG, "over the %u bytes a module may have",
				    OBJ_MODULE_MAX_BYTES);
		}
	}
	close(fd);
	uint8_t d[32];
	sha256_final(&h, d);
	for (unsigned i = 0; i < 32; i++)
		snprintf(sha + 2 * i, 3, "%02x", d[i]);
	*size = total;
	return 0;
}

static int check_elf(const char *path, const Elf64_Ehdr *eh, size_t size, char *err, size_t errlen)
{
	if (size < EI_NIDENT || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return fail(err, errlen, path, -ENOEXEC,
			    "not an ELF file: a module is a shared object (cc -shared -fPIC)");
	if (eh->e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32))
		return fail(err, errlen, path, -ENOEXEC, "a %d-bit ELF file; durod is %d-bit",
			    eh->e_ident[EI_CLASS] == ELFCLASS32 ? 32 : 64, (int)sizeof(void *) * 8);
	if (size < sizeof(*eh))
		return fail(err, errlen, path, -ENOEXEC, "a truncated ELF file");
	if (eh->e_type != ET_DYN)
		return fail(err, errlen, path, -ENOEXEC,
			    "an ELF %s, not a shared object (build it with -shared -fPIC)",
			    eh->e_type == ET_EXEC ? "executable" : eh->e_type == ET_REL ? "object file"
											: "file");
	if (HOST_MACHINE != EM_NONE && eh->e_machine != HOST_MACHINE)
		return fail(err, errlen, path, -ENOEXEC,
			    "built for another machine (ELF machine %u, durod's is %u)",
			    eh->e_machine, HOST_MACHINE);
	return 0;
}

/* struct duro_class as ABI 1.0 had it: without on_ws_open (1.1). */
#define CLASS_SIZE_1_0 offsetof(struct duro_class, on_ws_open)

/* Struct sizes per ABI minor version this durod knows (1.0 and 1.1). A newer minor is
 * refused; an older one is checked against the sizes it had. */
static int check_magic(const char *path, const struct duro_module_magic *mg, char *err,
		       size_t errlen)
{
	const char *rebuild = "rebuild it against this durod's duro.h";
	if (mg->magic != DURO_MODULE_MAGIC || mg->size < sizeof(*mg))
		return fail(err, errlen, path, -ENOEXEC,
			    "its magic block is not duro's (magic %#x, %u bytes): %s", mg->magic,
			    mg->size, rebuild);
	if (mg->abi_major != DURO_API_VERSION_MAJOR)
		return fail(err, errlen, path, -ENOEXEC,
			    "built for duro ABI major version %u, durod runs %u: %s", mg->abi_major,
			    DURO_API_VERSION_MAJOR, rebuild);
	if (mg->abi_minor > DURO_API_VERSION_MINOR)
		return fail(err, errlen, path, -ENOEXEC,
			    "built for duro ABI %u.%u, newer than durod's %u.%u: %s", mg->abi_major,
			    mg->abi_minor, DURO_API_VERSION_MAJOR, DURO_API_VERSION_MINOR, rebuild);
	if (mg->pointer_size != sizeof(void *))
		return fail(err, errlen, path, -ENOEXEC, "%u-byte pointers, durod's are %zu",
			    mg->pointer_size, sizeof(void *));
	static const struct {
		const char *what;
		size_t off, want;
	} sizes[] = {
		{ "struct duro_class", offsetof(struct duro_module_magic, class_size), sizeof(struct duro_class) },
		{ "struct duro_str", offsetof(struct duro_module_magic, str_size), sizeof(struct duro_str) },
		{ "struct duro_kv", offsetof(struct duro_module_magic, kv_size), sizeof(struct duro_kv) },
		{ "struct duro_list_options", offsetof(struct duro_module_magic, list_options_size),
		  sizeof(struct duro_list_options) },
		{ "struct duro_alarm_info", offsetof(struct duro_module_magic, alarm_info_size),
		  sizeof(struct duro_alarm_info) },
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint16_t have;
		memcpy(&have, (const char *)mg + sizes[i].off, sizeof(have));
		size_t want = sizes[i].want;
		if (i == 0 && mg->abi_minor == 0)
			want = CLASS_SIZE_1_0;
		if (have != want)
			return fail(err, errlen, path, -ENOEXEC,
				    "%s is %u bytes in the module, %zu in durod (ABI %u.%u): %s",
				    sizes[i].what, have, want, mg->abi_major, mg->abi_minor,
				    rebuild);
	}
	if (mg->id_bytes != DURO_ID_BYTES || mg->max_key != DURO_MAX_KEY)
		return fail(err, errlen, path, -ENOEXEC,
			    "DURO_ID_BYTES %u and DURO_MAX_KEY %u, durod's are %d and %d: %s",
			    mg->id_bytes, mg->max_key, DURO_ID_BYTES, DURO_MAX_KEY, rebuild);
	return 0;
}

static int check_classes(const char *path, const struct duro_class *const *cls, size_t n,
			 char *err, size_t errlen)
{
	if (n == 0 || !cls)
		return fail(err, errlen, path, -ENOEXEC, "defines no class (no DURO_CLASS line)");
	if (n > DURO_MAX_CLASSES)
		return fail(err, errlen, path, -ENOEXEC, "defines %zu classes, at most %d", n,
			    DURO_MAX_CLASSES);
	for (size_t i = 0; i < n; i++) {
		const struct duro_class *c = cls[i];
		if (!c || !c->name || !c->name[0] || strnlen(c->name, OBJ_NAME_MAX) >= OBJ_NAME_MAX)
			return fail(err, errlen, path, -ENOEXEC,
				    "class %zu has no name or one over %d bytes", i, OBJ_NAME_MAX - 1);
		if (!c->on_request)
			return fail(err, errlen, path, -ENOEXEC, "class \"%s\" has no on_request",
				    c->name);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cls[j]->name, c->name))
				return fail(err, errlen, path, -ENOEXEC,
					    "class \"%s\" is defined twice", c->name);
	}
	return 0;
}

/* A 1.0 module's classes end before on_ws_open: durod reads copies, the rest zeroed.
 * Kept for the process's life, as the module is. */
static int widen_classes(const char *path, struct obj_module *m, char *err, size_t errlen)
{
	struct duro_class *copies = calloc(m->nclasses, sizeof(*copies));
	const struct duro_class **ptrs = calloc(m->nclasses, sizeof(*ptrs));
	if (!copies || !ptrs) {
		free(copies);
		free(ptrs);
		return fail(err, errlen, path, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < m->nclasses; i++) {
		memcpy(&copies[i], m->classes[i], CLASS_SIZE_1_0);
		ptrs[i] = &copies[i];
	}
	m->classes = ptrs;
	return 0;
}

static int load_locked(const char *path, struct obj_module **out, char *err, size_t errlen)
{
	struct obj_module *m = calloc(1, sizeof(*m));
	if (!m)
		return fail(err, errlen, path, -ENOMEM, "out of memory");
	if (strlen(path) >= sizeof(m->path)) {
		free(m);
		return fail(err, errlen, "(path)", -ENAMETOOLONG, "path over %zu bytes",
			    sizeof(m->path) - 1);
	}
	snprintf(m->path, sizeof(m->path), "%s", path);
	Elf64_Ehdr eh;
	size_t size = 0;
	int r = read_file(path, m->sha, &eh, &size, err, errlen);
	if (r == 0)
		r = check_elf(path, &eh, size, err, errlen);
	if (r < 0) {
		free(m);
		return r;
	}
	/* dlopen hands back the handle it has for a file already open (by its inode): a
	 * module is loaded once; a new version must be a new file. */
	for (struct obj_module *o = loaded; o; o = o->next) {
		struct stat a, b;
		if (!stat(o->path, &a) && !stat(path, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			free(m);
			return fail(err, errlen, path, -EEXIST, "the same file as module %s, loaded already",
				    o->path);
		}
	}
	obj_registry_loading(1);
	dlerror();
	m->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	obj_registry_loading(0);
	if (!m->handle) {
		const char *e = dlerror();
		/* dlerror names the file itself: "PATH: undefined symbol: foo". */
		size_t pl = strlen(path);
		if (e && !strncmp(e, path, pl) && e[pl] == ':')
			e += pl + 2;
		free(m);
		return fail(err, errlen, path, -ENOEXEC, "%s", e ? e : "dlopen failed");
	}
	char refused[OBJ_NAME_MAX];
	const struct duro_module_magic *mg = dlsym(m->handle, "duro_module_magic");
	duro_module_init_fn *init = (duro_module_init_fn *)(uintptr_t)dlsym(m->handle, "duro_module_init");
	if (obj_registry_refused_while_loading(refused, sizeof(refused)))
		r = fail(err, errlen, path, -ENOEXEC,
			 "it registered class \"%s\" from a constructor: build it with -DDURO_MODULE "
			 "(pkg-config --cflags duro), so DURO_CLASS lists classes instead",
			 refused);
	else if (!mg || !init)
		r = fail(err, errlen, path, -ENOEXEC,
			 "no magic block (%s missing): build it against duro.h with -DDURO_MODULE "
			 "(pkg-config --cflags duro)", !mg ? "duro_module_magic" : "duro_module_init");
	else
		r = check_magic(path, mg, err, errlen);
	if (r == 0) {
		m->abi_major = mg->abi_major;
		m->abi_minor = mg->abi_minor;
		size_t n = 0;
		m->classes = init(DURO_API_VERSION_MAJOR, DURO_API_VERSION_MINOR, &n);
		m->nclasses = n;
		r = check_classes(path, m->classes, n, err, errlen);
		if (r == 0 && mg->abi_minor == 0)
			r = widen_classes(path, m, err, errlen);
	}
	if (r < 0) {
		dlclose(m->handle); /* nothing of it ran but its constructors */
		free(m);
		return r;
	}
	m->next = loaded;
	loaded = m;
	*out = m;
	return 0;
}

int obj_module_load(const char *path, struct obj_module **out, char *err, size_t errlen)
{
	pthread_mutex_lock(&load_lock);
	int r = load_locked(path, out, err, errlen);
	pthread_mutex_unlock(&load_lock);
	return r;
}

static int check_stat(const struct stat *stp, const char *path, char *err, size_t errlen)
{
	struct stat st = *stp;
	if (!S_ISREG(st.st_mode))
		return fail(err, errlen, path, -EPERM, "not a regular file");
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return fail(err, errlen, path, -EPERM,
			    "writable by %s (mode %04o): a module runs as durod, so only its owner "
			    "may write it (chmod go-w)",
			    (st.st_mode & S_IWOTH) ? "others" : "its group", (unsigned)(st.st_mode & 07777));
	return 0;
}

int obj_module_check_mode(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return fail(err, errlen, path, -errno, "%s", strerror(errno));
	return check_stat(&st, path, err, errlen);
}

int obj_module_check_fd(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fail(err, errlen, path, -errno, "%s", strerror(errno));
	return check_stat(&st, path, err, errlen);
}

const struct duro_class *obj_module_class(const struct obj_module *m, const char *name)
{
	for (size_t i = 0; i < m->nclasses; i++)
		if (!strcmp(m->classes[i]->name, name))
			return m->classes[i];
	return NULL;
}
