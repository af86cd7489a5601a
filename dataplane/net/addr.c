/* Address parsing for the network config and for the addresses a box dials ("host:port",
 * "[v6]:port"). */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int net_parse_addr(const char *text, struct net_listen *out)
{
	memset(out, 0, sizeof(*out));
	size_t len = strlen(text);
	if (len == 0 || len >= sizeof(out->text))
		return -EINVAL;
	memcpy(out->text, text, len + 1);
	char host[64];
	const char *port;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, text + 1, (size_t)(close - text - 1));
		host[close - text - 1] = 0;
		port = close + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (!colon || (size_t)(colon - text) >= sizeof(host))
			return -EINVAL;
		memcpy(host, text, (size_t)(colon - text));
		host[colon - text] = 0;
		port = colon + 1;
	}
	char *end;
	errno = 0;
	long p = strtol(port, &end, 10);
	if (*port == 0 || *end || errno || p < 1 || p > 65535)
		return -EINVAL;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&out->addr;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->addr;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)p);
		out->addrlen = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)p);
		out->addrlen = sizeof(*v6);
		return 0;
	}
	return -EINVAL;
}

int net_parse_dial(const char *text, struct net_dial *out)
{
	struct net_listen nl;
	int r = net_parse_addr(text, &nl);
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	memcpy(&out->addr, &nl.addr, nl.addrlen);
	out->addrlen = nl.addrlen;
	return 0;
}

int net_probe_listen(const struct net_listen *nl)
{
	int fd = socket(nl->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, r = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (nl->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&nl->addr, nl->addrlen) < 0) {
		r = -errno;
		log_error("listen on %s: %s%s", nl->text, strerror(errno),
			  errno == EADDRINUSE ? " (another process, maybe another durod, has it)" : "");
	}
	close(fd);
	return r;
}
