/* Whole reads and writes on a socket, for the benchmark drivers (each a
 * standalone program built by bench/benchlib.py). */
#ifndef FEDLOGIN_BENCH_SOCKIO_H
#define FEDLOGIN_BENCH_SOCKIO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* Reads exactly `len` bytes; -1 on an error or the end of the stream. */
static inline int read_exact(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Writes all `len` bytes (never SIGPIPE); -1 on an error. */
static inline int write_all(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = send(fd, buf + done, len - done, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

#endif
