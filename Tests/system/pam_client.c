/*
 * pam_client.c - a PAM application for the system test, driven over pipes.
 *
 *   pam_client SERVICE USER [STEP...]      steps: authenticate, acct_mgmt (default both), chauthtok
 *
 * Runs the steps in one transaction with the system's own stack
 * (/etc/pam.d/SERVICE). Each conversation message is one line on stdout:
 *
 *   MSG <style> <text>     style 1 ECHO_OFF, 2 ECHO_ON, 3 ERROR, 4 INFO;
 *                          newlines in the text are written as \n, backslashes as \\
 *
 * and each prompt (style 1 or 2) reads its answer as one line from stdin
 * (end of input fails the conversation). Then, per step:
 *
 *   RESULT <step> <code> <pam_strerror>
 *
 * Exit status 0 when every step returned PAM_SUCCESS, 1 otherwise, 2 on usage.
 */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_escaped(const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\n')
			fputs("\\n", stdout);
		else if (*s == '\\')
			fputs("\\\\", stdout);
		else
			putchar(*s);
	}
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *appdata)
{
	(void)appdata;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		printf("MSG %d ", msg[i]->msg_style);
		put_escaped(msg[i]->msg);
		putchar('\n');
		fflush(stdout);
		if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF && msg[i]->msg_style != PAM_PROMPT_ECHO_ON)
			continue;
		char *line = NULL;
		size_t cap = 0;
		ssize_t len = getline(&line, &cap, stdin);
		if (len < 0) {
			free(line);
			for (int j = 0; j < i; j++)
				free(r[j].resp);
			free(r);
			return PAM_CONV_ERR;
		}
		if (len > 0 && line[len - 1] == '\n')
			line[len - 1] = '\0';
		r[i].resp = line;
	}
	*resp = r;
	return PAM_SUCCESS;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s SERVICE USER [authenticate|acct_mgmt|chauthtok]...\n", argv[0]);
		return 2;
	}
	const char *default_steps[] = {"authenticate", "acct_mgmt"};
	const char **steps = argc > 3 ? (const char **)argv + 3 : default_steps;
	int nsteps = argc > 3 ? argc - 3 : 2;

	struct pam_conv c = {conv, NULL};
	pam_handle_t *h = NULL;
	int rc = pam_start(argv[1], argv[2], &c, &h);
	if (rc != PAM_SUCCESS) {
		printf("RESULT start %d %s\n", rc, pam_strerror(h, rc));
		return 1;
	}
	pam_set_item(h, PAM_RHOST, "127.0.0.1");
	pam_set_item(h, PAM_TTY, "ssh");
	int ok = 1;
	for (int i = 0; i < nsteps && ok; i++) {
		if (strcmp(steps[i], "authenticate") == 0)
			rc = pam_authenticate(h, 0);
		else if (strcmp(steps[i], "acct_mgmt") == 0)
			rc = pam_acct_mgmt(h, 0);
		else if (strcmp(steps[i], "chauthtok") == 0)
			rc = pam_chauthtok(h, 0);
		else {
			fprintf(stderr, "unknown step %s\n", steps[i]);
			pam_end(h, PAM_ABORT);
			return 2;
		}
		printf("RESULT %s %d %s\n", steps[i], rc, pam_strerror(h, rc));
		fflush(stdout);
		ok = rc == PAM_SUCCESS;
	}
	pam_end(h, rc);
	return ok ? 0 : 1;
}
