/*
 * fedlogin_client.c - the Unix-socket client of both modules
 * (fedlogin_client.h).
 */
#include "fedlogin_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LOG(c, ...)                                          \
	do {                                                 \
		if ((c)->log != NULL)                        \
			(c)->log((c)->log_ctx, __VA_ARGS__); \
	} while (0)

int64_t fedlogin_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fedlogin_client_wait(struct fedlogin_client *c, short events, int64_t until, int limit_ms,
			 const char *what)
{
	for (;;) {
		int64_t end = until < c->deadline ? until : c->deadline;
		int64_t left = end - fedlogin_now_ms();
		struct pollfd p = {.fd = c->fd, .events = events};
		int n;

		if (left <= 0) {
			if (c->deadline <= until)
				LOG(c, "%s: request exceeded max_time=%ds", what, c->max_time_s);
			else
				LOG(c, "%s: timed out after %d ms", what, limit_ms);
			return -1;
		}
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0; /* readable, writable, or an error for recv/send to report */
		if (n < 0 && errno != EINTR) {
			LOG(c, "%s: poll: %m", what);
			return -1;
		}
	}
}

/* Connects c->fd; the checks of the path and the peer are the caller's. 0 or -1 (logged). */
static int connect_bounded(struct fedlogin_client *c, const struct sockaddr_un *sa, const char *path,
			   int connect_timeout_ms)
{
	const int64_t until = fedlogin_now_ms() + connect_timeout_ms;
	socklen_t len;
	int err;

	while (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		if (errno == EAGAIN) {
			/* The daemon's backlog is full: retry until connect_timeout. */
			int64_t left = (until < c->deadline ? until : c->deadline) - fedlogin_now_ms();

			if (left <= 0) {
				LOG(c, "connect to %s: timed out after %d ms", path, connect_timeout_ms);
				return -1;
			}
			poll(NULL, 0, left < 10 ? (int)left : 10);
			continue;
		}
		if (errno != EINPROGRESS && errno != EINTR) {
			LOG(c, "connect to %s: %m", path);
			return -1;
		}
		if (fedlogin_client_wait(c, POLLOUT, until, connect_timeout_ms, "connect to fedlogind") != 0)
			return -1;
		err = 0;
		len = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
			if (err != 0)
				errno = err;
			LOG(c, "connect to %s: %m", path);
			return -1;
		}
		break;
	}
	return 0;
}

int fedlogin_client_connect(struct fedlogin_client *c, const char *path, int connect_timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t plen = strlen(path);
	struct ucred cred;
	socklen_t len;
	struct stat st;
	int fd, err;

	c->fd = -1;
	if (path[0] != '/' || plen >= sizeof(sa.sun_path)) {
		LOG(c, "socket path must be absolute and under %zu bytes: %s", sizeof(sa.sun_path), path);
		return -1;
	}
	memcpy(sa.sun_path, path, plen + 1);

	/* A missing socket (fedlogind not installed or stopped) fails here, at once. */
	if (lstat(path, &st) != 0) {
		LOG(c, "cannot stat %s: %m", path);
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		LOG(c, "%s is not a socket", path);
		return -1;
	}
	if (st.st_uid != 0) {
		LOG(c, "%s is owned by uid %u, not root", path, (unsigned)st.st_uid);
		return -1;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		LOG(c, "socket: %m");
		return -1;
	}
	/* Keep off stdin/stdout/stderr: the application may have closed them. */
	if (fd <= STDERR_FILENO) {
		int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);

		err = errno;
		close(fd);
		if (moved < 0) {
			errno = err;
			LOG(c, "fcntl(F_DUPFD_CLOEXEC): %m");
			return -1;
		}
		fd = moved; /* O_NONBLOCK is shared with the duplicate */
	}
	c->fd = fd;

	if (connect_bounded(c, &sa, path, connect_timeout_ms) != 0)
		goto fail;
	len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		LOG(c, "SO_PEERCRED on %s: %m", path);
		goto fail;
	}
	if (cred.uid != 0) {
		LOG(c, "peer on %s runs as uid %u, not root", path, (unsigned)cred.uid);
		goto fail;
	}
	return 0;

fail:
	close(fd);
	c->fd = -1;
	return -1;
}

int fedlogin_client_send(struct fedlogin_client *c, const uint8_t *p, size_t len, int64_t until, int limit_ms)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		if (fedlogin_client_wait(c, POLLOUT, until, limit_ms, "send to fedlogind") != 0)
			return -1;
		n = send(c->fd, p + done, len - done, MSG_NOSIGNAL);
		if (n >= 0) {
			done += (size_t)n;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			LOG(c, "send to fedlogind: %m");
			return -1;
		}
	}
	return 0;
}

int fedlogin_client_recv(struct fedlogin_client *c, uint8_t *p, size_t len, int64_t until, int limit_ms)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		if (fedlogin_client_wait(c, POLLIN, until, limit_ms, "waiting for fedlogind") != 0)
			return -1;
		n = recv(c->fd, p + done, len - done, 0);
		if (n > 0) {
			done += (size_t)n;
		} else if (n == 0) {
			LOG(c, "fedlogind closed the connection before its result");
			return -1;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			LOG(c, "recv from fedlogind: %m");
			return -1;
		}
	}
	return 0;
}
