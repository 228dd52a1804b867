/* The floor under a request through a local service: the round trip of one
 * byte over a Unix socket pair to another process, and the same with the
 * server handing each request to a second thread of its own and waiting for
 * it (as fedlogin-directoryd's event loop hands a request to a request
 * thread). 20 000 round trips, every other one after a 200 us sleep, so the
 * server's threads are woken from sleep as between real requests.
 *
 *     gcc -O2 -pthread bench/socket_handover.c -o /tmp/socket_handover
 *     /tmp/socket_handover 0     # straight to the other process
 *     /tmp/socket_handover 1     # with one hand-over inside it
 *
 * Prints the p50 and p99 of the round trip in microseconds. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int inner[2];

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void *worker(void *arg)
{
	char b[64];

	(void)arg;
	for (;;) {
		if (read(inner[1], b, sizeof b) <= 0)
			return NULL;
		if (write(inner[1], b, 1) != 1)
			return NULL;
	}
}

int main(int argc, char **argv)
{
	int handover = argc > 1 ? atoi(argv[1]) : 0;
	int sv[2], n = 20000;
	double *d = malloc(n * sizeof *d);
	char b[64];

	if (!d || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || socketpair(AF_UNIX, SOCK_STREAM, 0, inner))
		return 1;
	if (fork() == 0) {
		pthread_t t;

		if (handover && pthread_create(&t, NULL, worker, NULL))
			return 1;
		for (;;) {
			if (read(sv[1], b, sizeof b) <= 0)
				return 0;
			if (handover && (write(inner[0], b, 1) != 1 || read(inner[0], b, sizeof b) <= 0))
				return 1;
			if (write(sv[1], b, 1) != 1)
				return 1;
		}
	}
	for (int i = 0; i < n; i++) {
		double t0 = now_us();

		if (write(sv[0], "x", 1) != 1 || read(sv[0], b, sizeof b) <= 0)
			return 1;
		d[i] = now_us() - t0;
		if (i % 2 == 0)
			usleep(200);
	}
	qsort(d, n, sizeof *d, by_value);
	printf("hand-overs %d: p50 %.1f us, p99 %.1f us\n", handover, d[n / 2], d[n * 99 / 100]);
	return 0;
}
