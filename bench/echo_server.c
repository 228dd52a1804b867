/*
 * echo_server.c - the floor for the request round trip benchmark.
 *
 *   echo_server SOCKET
 *
 * A single-threaded blocking Unix-socket server that speaks the fedlogin
 * framing and does nothing else: per connection it reads SO_PEERCRED, reads
 * one frame (u32 BE length, then the body), answers RESULT IGNORE with a
 * short reason, and closes. Whatever fedlogind adds on top of this is the
 * daemon's own cost. Runs until killed.
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
#include <unistd.h>

#include "sockio.h"

#define MAX_FRAME 65536

int main(int argc, char **argv)
{
	static uint8_t body[MAX_FRAME];
	static const char reason[] = "not a fedlogin user";
	uint8_t reply[4 + 2 + 1 + 2 + sizeof reason];
	size_t rlen = sizeof reply - 1; /* no NUL */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd;

	if (argc != 2 || strlen(argv[1]) >= sizeof sa.sun_path) {
		fprintf(stderr, "usage: echo_server SOCKET\n");
		return 2;
	}
	reply[0] = 0;
	reply[1] = 0;
	reply[2] = (uint8_t)((rlen - 4) >> 8);
	reply[3] = (uint8_t)(rlen - 4);
	reply[4] = 1;    /* version */
	reply[5] = 0x86; /* RESULT */
	reply[6] = 1;    /* IGNORE */
	reply[7] = 0;
	reply[8] = (uint8_t)(sizeof reason - 1);
	memcpy(reply + 9, reason, sizeof reason - 1);

	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 128) != 0) {
		perror("echo_server");
		return 1;
	}
	chmod(argv[1], 0666);
	for (;;) {
		struct ucred cred;
		socklen_t cl = sizeof cred;
		uint8_t hdr[4];
		uint32_t len;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("echo_server: accept");
			return 1;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && read_exact(fd, hdr, 4) == 0) {
			len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
			if (len >= 2 && len <= MAX_FRAME && read_exact(fd, body, len) == 0 && body[0] == 1)
				(void)send(fd, reply, rlen, MSG_NOSIGNAL);
		}
		close(fd);
	}
}
