/*
 * pam_bench.c - times PAM transactions through the real libpam.
 *
 *   pam_bench CONFDIR USER PASSWORD N WARMUP SERVICE...
 *
 * Every round runs one transaction per SERVICE (a file in CONFDIR, read with
 * pam_start_confdir, so /etc/pam.d is not involved). The services take turns
 * going first (round i starts with service i mod count), so neither stack
 * always runs on a warmer cache. A transaction is pam_start_confdir,
 * pam_authenticate, pam_acct_mgmt, pam_end; every prompt is answered with
 * PASSWORD.
 *
 * Output, one line per measured transaction (WARMUP rounds are run first and
 * not printed):
 *
 *   SERVICE ROUND AUTH_ACCT_NS TOTAL_NS
 *
 * AUTH_ACCT_NS covers pam_authenticate + pam_acct_mgmt; TOTAL_NS also covers
 * pam_start_confdir and pam_end (loading the stack's modules). Exits 1 on the
 * first transaction that does not succeed.
 */
#define _GNU_SOURCE
#include <security/pam_appl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *password;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *appdata)
{
	struct pam_response *r = calloc((size_t)n, sizeof *r);

	(void)appdata;
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		int style = msg[i]->msg_style;

		if (style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON) {
			r[i].resp = strdup(password);
			if (r[i].resp == NULL) {
				for (int j = 0; j < i; j++)
					free(r[j].resp);
				free(r);
				return PAM_BUF_ERR;
			}
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

/* One transaction; 0 on success. */
static int transaction(const char *confdir, const char *service, const char *user, int64_t *auth_acct,
		       int64_t *total)
{
	struct pam_conv c = { conv, NULL };
	pam_handle_t *h = NULL;
	int64_t t0, t1, t2;
	int rc;

	t0 = now_ns();
	rc = pam_start_confdir(service, user, &c, confdir, &h);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pam_bench: pam_start_confdir(%s): %d\n", service, rc);
		return -1;
	}
	t1 = now_ns();
	rc = pam_authenticate(h, 0);
	if (rc == PAM_SUCCESS)
		rc = pam_acct_mgmt(h, 0);
	t2 = now_ns();
	if (rc != PAM_SUCCESS)
		fprintf(stderr, "pam_bench: %s: %s\n", service, pam_strerror(h, rc));
	pam_end(h, rc);
	*auth_acct = t2 - t1;
	*total = now_ns() - t0;
	return rc == PAM_SUCCESS ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *confdir, *user;
	int n, warmup, nserv;

	if (argc < 7) {
		fprintf(stderr, "usage: pam_bench CONFDIR USER PASSWORD N WARMUP SERVICE...\n");
		return 2;
	}
	confdir = argv[1];
	user = argv[2];
	password = argv[3];
	n = atoi(argv[4]);
	warmup = atoi(argv[5]);
	nserv = argc - 6;
	for (int round = -warmup; round < n; round++) {
		for (int k = 0; k < nserv; k++) {
			int idx = (int)(((unsigned)(round + warmup) + (unsigned)k) % (unsigned)nserv);
			const char *service = argv[6 + idx];
			int64_t auth_acct, total;

			if (transaction(confdir, service, user, &auth_acct, &total) != 0)
				return 1;
			if (round >= 0)
				printf("%s %d %lld %lld\n", service, round, (long long)auth_acct, (long long)total);
		}
	}
	return 0;
}
