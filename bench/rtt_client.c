/*
 * rtt_client.c - times request round trips on a fedlogin wire-protocol socket.
 *
 *   rtt_client SOCKET N WARMUP authenticate USER
 *   rtt_client SOCKET N WARMUP getpwnam NAME
 *
 * Each round trip does what pam_fedlogin.so does for a request that needs no
 * conversation: lstat the socket path (owner and type check), socket,
 * connect, SO_PEERCRED, send one frame (AUTHENTICATE USER "bench" "" "" ""
 * or NSS_GETPWNAM NAME), read frames until the final one (RESULT, an NSS
 * reply or CONTROL_REPLY; KEEPALIVE, INFO and ERROR are skipped), close. A
 * PROMPT is an error here: the request must be one the daemon answers alone.
 *
 * Prints one line per measured round trip: the time in nanoseconds. The
 * WARMUP round trips before them are not printed. The last reply's type and
 * status byte go to stderr ("reply 0x86 1"). Exits 1 on any error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sockio.h"

#define MAX_FRAME 65536

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s);

	p[0] = (uint8_t)(n >> 8);
	p[1] = (uint8_t)n;
	memcpy(p + 2, s, n);
	return n + 2;
}

static uint8_t last_type, last_status;

static int round_trip(const char *path, const uint8_t *frame, size_t frame_len)
{
	static uint8_t body[MAX_FRAME];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t cl = sizeof cred;
	struct stat st;
	int fd, rc = -1;

	if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0)
		goto out;
	if (write_all(fd, frame, frame_len) != 0)
		goto out;
	for (;;) {
		uint8_t hdr[4];
		uint32_t len;

		if (read_exact(fd, hdr, 4) != 0)
			goto out;
		len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
		if (len < 2 || len > MAX_FRAME || read_exact(fd, body, len) != 0)
			goto out;
		last_type = body[1];
		last_status = len > 2 ? body[2] : 0;
		if (last_type == 0x81 || last_type == 0x82 || last_type == 0x85)
			continue; /* INFO, ERROR, KEEPALIVE */
		if (last_type == 0x83 || last_type == 0x84) {
			fprintf(stderr, "rtt_client: the daemon asked a question\n");
			goto out;
		}
		rc = 0;
		break;
	}
out:
	close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	static uint8_t frame[4 + MAX_FRAME];
	size_t len = 6;
	int n, warmup;

	if (argc != 6) {
		fprintf(stderr, "usage: rtt_client SOCKET N WARMUP authenticate|getpwnam NAME\n");
		return 2;
	}
	n = atoi(argv[2]);
	warmup = atoi(argv[3]);
	if (strlen(argv[5]) > 4096 || strlen(argv[1]) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "rtt_client: name or socket path too long\n");
		return 2;
	}
	frame[4] = 1; /* version */
	if (strcmp(argv[4], "authenticate") == 0) {
		frame[5] = 0x01;
		len += put_str(frame + len, argv[5]);
		len += put_str(frame + len, "bench");
		len += put_str(frame + len, "");
		len += put_str(frame + len, "");
		len += put_str(frame + len, "");
	} else if (strcmp(argv[4], "getpwnam") == 0) {
		frame[5] = 0x10;
		len += put_str(frame + len, argv[5]);
	} else {
		fprintf(stderr, "rtt_client: unknown request %s\n", argv[4]);
		return 2;
	}
	frame[0] = (uint8_t)((len - 4) >> 24);
	frame[1] = (uint8_t)((len - 4) >> 16);
	frame[2] = (uint8_t)((len - 4) >> 8);
	frame[3] = (uint8_t)(len - 4);

	for (int i = -warmup; i < n; i++) {
		int64_t t0 = now_ns();

		if (round_trip(argv[1], frame, len) != 0) {
			fprintf(stderr, "rtt_client: round trip %d failed\n", i);
			return 1;
		}
		if (i >= 0)
			printf("%lld\n", (long long)(now_ns() - t0));
	}
	fprintf(stderr, "reply 0x%02x %u\n", last_type, last_status);
	return 0;
}
