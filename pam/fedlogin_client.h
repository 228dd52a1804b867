/*
 * fedlogin_client.h - the Unix-socket client of pam_fedlogin.so and
 * libnss_fedlogin.so.2 (docs/protocol.md, "Trust checks" and "Timeouts").
 *
 * One copy of what both modules do on the wire: connect to fedlogind after
 * checking that the socket is one root owns and that the peer runs as root,
 * with the descriptor non-blocking, close-on-exec and off 0-2; send with
 * MSG_NOSIGNAL and receive, every call preceded by a poll bounded by a
 * per-call limit and by the whole request's deadline. libc only.
 */
#ifndef FEDLOGIN_CLIENT_H
#define FEDLOGIN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct fedlogin_client {
	int fd; /* -1 until connected, and after a failed connect */
	int64_t deadline; /* bound on the whole request, fedlogin_now_ms() time */
	int max_time_s; /* named in the log line when `deadline` passes */
	/* Where failures are written (NULL: nowhere). errno is as the failed
	 * call left it, so `fmt` may use %m. */
	void (*log)(void *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
	void *log_ctx;
};

/* CLOCK_MONOTONIC in milliseconds. */
int64_t fedlogin_now_ms(void);

/*
 * Waits until the socket is ready for `events`, at most until `until` and
 * never past c->deadline. `limit_ms` and `what` name the bound in the log
 * line of an expiry. Returns 0 when ready, -1 (logged) on expiry or error.
 */
int fedlogin_client_wait(struct fedlogin_client *c, short events, int64_t until, int limit_ms,
			 const char *what);

/*
 * Connects to fedlogind at `path` (absolute) after checking that it is a
 * socket owned by root, then checks that the peer's SO_PEERCRED uid is 0.
 * Connecting is bounded by `connect_timeout_ms` and c->deadline. Sets c->fd
 * and returns 0, or returns -1 (logged) with c->fd closed and -1.
 */
int fedlogin_client_connect(struct fedlogin_client *c, const char *path, int connect_timeout_ms);

/* Sends `len` bytes before `until` (limit_ms names it). 0 or -1 (logged). */
int fedlogin_client_send(struct fedlogin_client *c, const uint8_t *p, size_t len, int64_t until,
			 int limit_ms);

/*
 * Reads exactly `len` bytes before `until` (limit_ms names it). 0, or -1
 * (logged) on expiry, error, or the daemon closing first.
 */
int fedlogin_client_recv(struct fedlogin_client *c, uint8_t *p, size_t len, int64_t until, int limit_ms);

#endif
