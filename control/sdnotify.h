/* systemd's service notification protocol (sd_notify(3)) spoken directly: a datagram per
 * state change ("READY=1", "STOPPING=1", "STATUS=...") to the socket in $NOTIFY_SOCKET. */
#ifndef DURO_CONTROL_SDNOTIFY_H
#define DURO_CONTROL_SDNOTIFY_H

#include <sys/socket.h>
#include <sys/un.h>

struct sdnotify {
	int fd; /* -1: nobody asked for notifications */
	struct sockaddr_un addr;
	socklen_t addrlen;
	int warned; /* a failed send is logged once */
};

/* Reads $NOTIFY_SOCKET ("/path" or "@abstract"). Returns 1 when notifications will be
 * sent, 0 when the variable is unset (every send is then a no-op), or a negative errno
 * after a log line (a malformed or overlong address, no socket). */
int sdnotify_open(struct sdnotify *n);
/* Sends one message, e.g. "READY=1\nSTATUS=serving". Best effort: 0 or a negative errno,
 * logged the first time. Never blocks. */
int sdnotify_send(struct sdnotify *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sdnotify_close(struct sdnotify *n);

#endif
