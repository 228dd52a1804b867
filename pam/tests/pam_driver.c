/*
 * pam_driver - a PAM application in C for the sanitizer and valgrind runs of
 * pam_fedlogin.so (Tests/integration/test_pam_sanitizers.py).
 *
 * The Python test client (harness/pamclient.py) cannot host an
 * AddressSanitizer build of the module: the ASan runtime must be loaded
 * first, by the program. This driver is built twice by `make -C pam
 * asan-module`: $(OUT)/asan/pam_driver with -fsanitize=address,undefined
 * (libpam then dlopens $(OUT)/asan/pam_fedlogin.so into an ASan process) and
 * $(OUT)/pam_driver without sanitizers, to run under valgrind.
 *
 * Interactive mode: one transaction, driven over stdin/stdout, one line each:
 *
 *   pam_driver [--tty TTY] [--rhost HOST] CONFDIR SERVICE USER
 *     <- "run STEP FLAGS"   STEP: authenticate, acct_mgmt, chauthtok, setcred,
 *                           open_session, close_session; FLAGS decimal
 *     -> "msg STYLE HEX"    for each conversation message (text in hex)
 *     <- "ok"               after a message that takes no answer
 *     <- "ans HEX" | "fail" after a prompt: the answer, or fail the conversation
 *     -> "rc N"             the step's return code
 *     <- "getenv NAME"      -> "env HEX" (the PAM environment's value) or "noenv"
 *     <- "end N"            pam_end(N); the driver exits 0
 *   USER "-" starts the transaction without a user name.
 *
 * Loop mode: COUNT transactions in one process, no I/O per transaction:
 *
 *   pam_driver --loop COUNT [--answer TEXT] [--expect RC] [--tty TTY]
 *              [--rhost HOST] CONFDIR SERVICE USER STEP...
 *
 * Each transaction runs pam_start_confdir, the STEPs, pam_end. Prompts are
 * answered with TEXT (default "answer"), messages are dropped. Every step must
 * return RC (default PAM_SUCCESS) and the process must hold no more open
 * descriptors afterwards than before; it prints one summary line and exits 1
 * otherwise. Leaks are for LeakSanitizer or valgrind to find at exit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <security/pam_appl.h>

static void die(const char *what)
{
	fprintf(stderr, "pam_driver: %s\n", what);
	exit(2);
}

static int step(pam_handle_t *h, const char *name, int flags)
{
	if (strcmp(name, "authenticate") == 0)
		return pam_authenticate(h, flags);
	if (strcmp(name, "acct_mgmt") == 0)
		return pam_acct_mgmt(h, flags);
	if (strcmp(name, "chauthtok") == 0)
		return pam_chauthtok(h, flags);
	if (strcmp(name, "setcred") == 0)
		return pam_setcred(h, flags);
	if (strcmp(name, "open_session") == 0)
		return pam_open_session(h, flags);
	if (strcmp(name, "close_session") == 0)
		return pam_close_session(h, flags);
	die("unknown step");
	return -1;
}

static int is_prompt(int style)
{
	return style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON;
}

static void free_responses(struct pam_response *r, int n)
{
	if (r == NULL)
		return;
	for (int i = 0; i < n; i++) {
		if (r[i].resp != NULL) {
			explicit_bzero(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	}
	free(r);
}

/* --- interactive mode ------------------------------------------------- */

static char *line;
static size_t line_cap;

/* Reads one line from stdin without its newline; exits on EOF. */
static const char *read_line(void)
{
	ssize_t n = getline(&line, &line_cap, stdin);

	if (n < 0) {
		free(line);
		exit(3); /* the test went away */
	}
	if (n > 0 && line[n - 1] == '\n')
		line[n - 1] = '\0';
	return line;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A malloc'd NUL-terminated string from hex; NULL if malformed. */
static char *unhex(const char *s)
{
	size_t n = strlen(s);
	char *out;

	if (n % 2 != 0)
		return NULL;
	out = malloc(n / 2 + 1);
	if (out == NULL)
		die("out of memory");
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		out[i] = (char)(hi << 4 | lo);
	}
	out[n / 2] = '\0';
	return out;
}

static int conv_stdio(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	(void)data;
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		const char *text = msg[i]->msg ? msg[i]->msg : "";
		const char *reply;

		printf("msg %d ", msg[i]->msg_style);
		for (const unsigned char *p = (const unsigned char *)text; *p; p++)
			printf("%02x", *p);
		printf("\n");
		fflush(stdout);
		reply = read_line();
		if (!is_prompt(msg[i]->msg_style))
			continue;
		if (strncmp(reply, "ans ", 4) == 0)
			r[i].resp = unhex(reply + 4);
		else if (strcmp(reply, "ans") == 0)
			r[i].resp = strdup("");
		if (r[i].resp == NULL) { /* "fail", or a malformed answer */
			free_responses(r, n);
			return PAM_CONV_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static int interactive(const char *confdir, const char *service, const char *user, const char *tty,
		       const char *rhost)
{
	struct pam_conv conv = {conv_stdio, NULL};
	pam_handle_t *h = NULL;
	int rc;

	rc = pam_start_confdir(service, strcmp(user, "-") == 0 ? NULL : user, &conv, confdir, &h);
	if (rc != PAM_SUCCESS) {
		printf("start-failed %d\n", rc);
		return 2;
	}
	if (tty != NULL)
		pam_set_item(h, PAM_TTY, tty);
	if (rhost != NULL)
		pam_set_item(h, PAM_RHOST, rhost);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		const char *cmd = read_line();
		char name[32];
		int flags, end_rc;

		if (sscanf(cmd, "run %31s %d", name, &flags) == 2) {
			rc = step(h, name, flags);
			printf("rc %d\n", rc);
			fflush(stdout);
		} else if (sscanf(cmd, "getenv %31s", name) == 1) {
			const char *v = pam_getenv(h, name);

			if (v == NULL)
				printf("noenv\n");
			else {
				printf("env ");
				for (const char *p = v; *p != '\0'; p++)
					printf("%02x", (unsigned char)*p);
				printf("\n");
			}
			fflush(stdout);
		} else if (sscanf(cmd, "end %d", &end_rc) == 1) {
			pam_end(h, end_rc);
			free(line);
			return 0;
		} else {
			die("unknown command");
		}
	}
}

/* --- loop mode -------------------------------------------------------- */

static int conv_fixed(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (!is_prompt(msg[i]->msg_style))
			continue;
		r[i].resp = strdup(data);
		if (r[i].resp == NULL) {
			free_responses(r, n);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		die("cannot open /proc/self/fd");
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static int loop(long count, const char *answer, int expect, const char *confdir, const char *service,
		const char *user, const char *tty, const char *rhost, char **steps, int nsteps)
{
	struct pam_conv conv = {conv_fixed, (void *)answer};
	long unexpected = 0, calls = 0;
	int first_bad = -1;
	int fds_before = count_fds(), fds_after;

	for (long i = 0; i < count; i++) {
		pam_handle_t *h = NULL;
		int rc = pam_start_confdir(service, user, &conv, confdir, &h);

		if (rc != PAM_SUCCESS) {
			printf("loop: pam_start_confdir failed: %d\n", rc);
			return 1;
		}
		if (tty != NULL)
			pam_set_item(h, PAM_TTY, tty);
		if (rhost != NULL)
			pam_set_item(h, PAM_RHOST, rhost);
		for (int s = 0; s < nsteps; s++) {
			rc = step(h, steps[s], 0);
			calls++;
			if (rc != expect) {
				if (unexpected++ == 0)
					first_bad = rc;
				break;
			}
		}
		pam_end(h, rc);
	}
	fds_after = count_fds();
	printf("loop: %ld transactions, %ld steps, %ld unexpected (first: %d), fds %d -> %d\n", count, calls,
	       unexpected, first_bad, fds_before, fds_after);
	return unexpected == 0 && fds_after <= fds_before ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *tty = NULL, *rhost = NULL, *answer = "answer";
	long count = -1;
	int expect = PAM_SUCCESS;
	int i = 1;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (i + 1 >= argc)
			die("option without a value");
		if (strcmp(argv[i], "--tty") == 0)
			tty = argv[i + 1];
		else if (strcmp(argv[i], "--rhost") == 0)
			rhost = argv[i + 1];
		else if (strcmp(argv[i], "--answer") == 0)
			answer = argv[i + 1];
		else if (strcmp(argv[i], "--loop") == 0)
			count = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--expect") == 0)
			expect = (int)strtol(argv[i + 1], NULL, 10);
		else
			die("unknown option");
	}
	if (count >= 0) {
		if (argc - i < 4)
			die("usage: pam_driver --loop COUNT [options] CONFDIR SERVICE USER STEP...");
		return loop(count, answer, expect, argv[i], argv[i + 1], argv[i + 2], tty, rhost,
			    argv + i + 3, argc - i - 3);
	}
	if (argc - i != 3)
		die("usage: pam_driver [--tty TTY] [--rhost HOST] CONFDIR SERVICE USER");
	return interactive(argv[i], argv[i + 1], argv[i + 2], tty, rhost);
}
