/*
 * nss_bench.c - times getpwnam_r through glibc's NSS, as any program's user
 * lookup goes (ls -l, id, sshd before PAM).
 *
 *   nss_bench NAME found|notfound THREADS MILLIS WARMUP
 *
 * WARMUP lookups are made first and not measured (they also fill fedlogind's
 * NSS cache for NAME). Then THREADS threads call getpwnam_r(NAME) back to back for MILLIS
 * milliseconds (each thread stops at the first lookup that ends after the
 * deadline). Which sources answer is up to /etc/nsswitch.conf, so the same
 * run measures `passwd: files` or `passwd: files fedlogin` depending on the
 * mount namespace it runs in. Every lookup's outcome is checked:
 *   found      getpwnam_r returned 0 and an entry named NAME;
 *   notfound   getpwnam_r returned 0 and no entry (every source said
 *              NOTFOUND; an unavailable source makes it return an error).
 *
 * Prints one line:
 *
 *   LOOKUPS ELAPSED_NS WRONG P50_NS P99_NS
 *
 * LOOKUPS counts the lookups of all threads, ELAPSED_NS is from the start
 * of the threads to the end of the last one, WRONG the lookups whose outcome
 * was not the expected one, and P50/P99 the per-lookup latency over all
 * lookups. Exits 1 when any lookup was wrong.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64
#define MAX_SAMPLES (4 * 1024 * 1024)

static const char *name;
static int want_found;
static int64_t deadline;
static pthread_barrier_t start;

struct worker {
	pthread_t thread;
	int64_t lookups, wrong;
	uint32_t *samples; /* per-lookup latency, ns (capped at 4.29 s) */
	size_t nsamples;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	char buf[4096];
	struct passwd pw, *res;

	pthread_barrier_wait(&start);
	for (;;) {
		int64_t t0 = now_ns(), t1;
		int rc = getpwnam_r(name, &pw, buf, sizeof buf, &res);
		int ok = want_found ? (rc == 0 && res != NULL && strcmp(res->pw_name, name) == 0)
				    : (rc == 0 && res == NULL);

		t1 = now_ns();
		w->lookups++;
		if (!ok)
			w->wrong++;
		if (w->nsamples < MAX_SAMPLES) {
			int64_t d = t1 - t0;

			w->samples[w->nsamples++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		}
		if (t1 >= deadline)
			break;
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	struct worker workers[MAX_THREADS];
	int threads, millis, warmup;
	int64_t t0, lookups = 0, wrong = 0;
	size_t total = 0, at = 0;
	uint32_t *all;

	if (argc != 6 || (strcmp(argv[2], "found") != 0 && strcmp(argv[2], "notfound") != 0)) {
		fprintf(stderr, "usage: nss_bench NAME found|notfound THREADS MILLIS WARMUP\n");
		return 2;
	}
	name = argv[1];
	want_found = strcmp(argv[2], "found") == 0;
	threads = atoi(argv[3]);
	millis = atoi(argv[4]);
	warmup = atoi(argv[5]);
	if (threads < 1 || threads > MAX_THREADS || millis < 1) {
		fprintf(stderr, "nss_bench: THREADS must be 1-%d and MILLIS positive\n", MAX_THREADS);
		return 2;
	}
	for (int i = 0; i < warmup; i++) {
		char buf[4096];
		struct passwd pw, *res;

		getpwnam_r(name, &pw, buf, sizeof buf, &res);
	}
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		memset(&workers[i], 0, sizeof workers[i]);
		workers[i].samples = malloc(MAX_SAMPLES * sizeof(uint32_t));
		if (workers[i].samples == NULL ||
		    pthread_create(&workers[i].thread, NULL, run, &workers[i]) != 0) {
			fprintf(stderr, "nss_bench: cannot start thread %d\n", i);
			return 2;
		}
	}
	t0 = now_ns();
	deadline = t0 + (int64_t)millis * 1000000;
	pthread_barrier_wait(&start);
	for (int i = 0; i < threads; i++) {
		pthread_join(workers[i].thread, NULL);
		lookups += workers[i].lookups;
		wrong += workers[i].wrong;
		total += workers[i].nsamples;
	}
	int64_t elapsed = now_ns() - t0;

	all = malloc((total ? total : 1) * sizeof(uint32_t));
	if (all == NULL)
		return 2;
	for (int i = 0; i < threads; i++) {
		memcpy(all + at, workers[i].samples, workers[i].nsamples * sizeof(uint32_t));
		at += workers[i].nsamples;
	}
	qsort(all, total, sizeof(uint32_t), cmp_u32);
	printf("%lld %lld %lld %u %u\n", (long long)lookups, (long long)elapsed, (long long)wrong,
	       total ? all[total / 2] : 0, total ? all[(size_t)((double)(total - 1) * 0.99)] : 0);
	if (wrong > 0)
		fprintf(stderr, "nss_bench: %lld of %lld lookups of %s were not %s\n", (long long)wrong,
			(long long)lookups, name, argv[2]);
	return wrong > 0 ? 1 : 0;
}
