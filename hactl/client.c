#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hactl/hactl.h"
#include "proto/frame.h"

#define RESPONSE_MAX (64u << 20) /* a list of many thousands of guests */

int client_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

Hagent__Response *client_call(struct hactl *h, Hagent__Request *req, int *fd_out)
{
	Hagent__Response *resp;
	uint8_t type, *buf = NULL;
	ssize_t n;
	int fd = client_connect(h->socket);

	if (fd < 0) {
		fprintf(stderr, "hactl: cannot reach hagentd at %s: %s\n", h->socket,
			errno == ENOENT || errno == ECONNREFUSED ? "is hagentd running?"
								  : strerror(errno));
		return NULL;
	}
	if (frame_write_fd(fd, FRAME_REQUEST, &req->base) < 0 ||
	    (n = frame_read_fd(fd, RESPONSE_MAX, &type, &buf)) < 0) {
		fprintf(stderr, "hactl: lost hagentd at %s: %s\n", h->socket, strerror(errno));
		close(fd);
		return NULL;
	}
	resp = type == FRAME_RESPONSE ? hagent__response__unpack(NULL, (size_t)n, buf) : NULL;
	free(buf);
	if (!resp) {
		fprintf(stderr, "hactl: malformed answer from hagentd\n");
		close(fd);
		return NULL;
	}
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return resp;
}

int client_finish(struct hactl *h, Hagent__Response *resp)
{
	size_t i;
	int rc = resp->status;

	for (i = 0; i < resp->n_messages; i++)
		fprintf(stderr, "%s\n", resp->messages[i]);
	if (rc && resp->error && resp->error[0])
		fprintf(stderr, "hactl: %s\n", resp->error);
	hagent__response__free_unpacked(resp, NULL);
	return rc;
}
