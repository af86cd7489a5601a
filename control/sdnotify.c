/* systemd's service notification protocol, without libsystemd: the protocol is one
 * datagram of newline-separated KEY=VALUE assignments to an AF_UNIX socket whose name is
 * in $NOTIFY_SOCKET, a path or, with a leading '@', a name in the abstract namespace
 * (sd_notify(3), "Notes"). Twenty lines do that; linking libsystemd would add a library
 * (and its dependencies) to every durod for one sendto. */
#include "sdnotify.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sdnotify_open(struct sdnotify *n)
{
	memset(n, 0, sizeof(*n));
	n->fd = -1;
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof(n->addr.sun_path)) {
		log_error("NOTIFY_SOCKET=\"%s\": want an absolute path or @name of at most %zu bytes",
			  path, sizeof(n->addr.sun_path) - 1);
		return -EINVAL;
	}
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, len);
	if (path[0] == '@')
		n->addr.sun_path[0] = 0; /* abstract: the name is the bytes after a NUL, unterminated */
	n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->fd < 0) {
		int e = errno;
		log_error("NOTIFY_SOCKET: socket: %s", strerror(e));
		return -e;
	}
	return 1;
}

int sdnotify_send(struct sdnotify *n, const char *fmt, ...)
{
	if (n->fd < 0)
		return 0;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(msg))
		len = (int)strlen(msg);
	if (sendto(n->fd, msg, (size_t)len, MSG_NOSIGNAL, (const struct sockaddr *)&n->addr,
		   n->addrlen) == len)
		return 0;
	int e = errno;
	if (!n->warned) {
		n->warned = 1;
		log_warn("NOTIFY_SOCKET: sending \"%.*s\": %s", (int)strcspn(msg, "\n"), msg, strerror(e));
	}
	return -e;
}

void sdnotify_close(struct sdnotify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
