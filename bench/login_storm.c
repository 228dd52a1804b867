/*
 * login_storm.c - many first logins through the real libpam, each in a
 * process of its own, all in flight at once (or one after another).
 *
 *   login_storm CONFDIR SERVICE PASSCODE IDP_PORT PREFIX FIRST COUNT at-once|one-by-one
 *
 * Logs in the users PREFIX<FIRST> .. PREFIX<FIRST+COUNT-1>, one process per
 * user: pam_start_confdir(SERVICE, user) with CONFDIR, pam_authenticate,
 * pam_acct_mgmt, pam_end. With at-once, every process is forked first and
 * they all start their transaction together; with one-by-one, each starts
 * when the previous one has ended.
 *
 * The conversation plays the user of a device-grant sign-in (RFC 8628) at an
 * IdP on 127.0.0.1:IDP_PORT:
 *   - an INFO text with a verification address holding `user_code=CODE`:
 *     the user approves CODE on "another device", here an HTTP POST of
 *     user_code=CODE&sub=USER to http://127.0.0.1:IDP_PORT/device (the
 *     strict test IdP's form; the IdP's subject is the username);
 *   - a prompt with echo on ("Press Enter once you have signed in"): "";
 *   - a prompt with echo off (choose and repeat the passcode): PASSCODE.
 *
 * Prints one line per user, written with a single write(2) (so the lines of
 * concurrent processes do not mix), fields separated by one space:
 *
 *   USER AUTH_RC ACCT_RC T_START T_AUTH T_AUTH_END T_ACCT_END T_END CODE HTTP CONV ERROR
 *
 * AUTH_RC and ACCT_RC are the PAM return codes (ACCT_RC -1 when
 * pam_authenticate failed); the T_ times are CLOCK_MONOTONIC nanoseconds:
 * before pam_start_confdir, before pam_authenticate, after it, after
 * pam_acct_mgmt (= T_AUTH_END when it was not called), after pam_end. CODE
 * is the user code seen ("-": none), HTTP the status of the approval POST
 * (0: none made). CONV lists the calls of the conversation function as
 * START:END pairs separated by commas ("-": none). ERROR is the first
 * PAM_ERROR_MSG text, newlines and spaces as '_' ("-": none).
 *
 * Exits 0 when every login succeeded, 1 otherwise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <security/pam_appl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONV 32

static const char *passcode;
static int idp_port;

/* The state of the one login of this process. */
static struct {
	char user[64];
	char code[16];
	int http;
	int nconv;
	int64_t conv[MAX_CONV][2];
	char error[200];
} me;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* POSTs the device approval to the IdP; returns the HTTP status (-1: no answer). */
static int approve(const char *code)
{
	struct sockaddr_in sa = { 0 };
	struct timeval tv = { 120, 0 };
	char body[160], req[512], resp[1024];
	size_t got = 0;
	int fd, blen, rlen, status = -1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)idp_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	blen = snprintf(body, sizeof body, "user_code=%s&sub=%s&action=approve", code, me.user);
	rlen = snprintf(req, sizeof req,
			"POST /device HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
			"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
			"Connection: close\r\n\r\n%s",
			idp_port, blen, body);
	if (send(fd, req, (size_t)rlen, MSG_NOSIGNAL) != rlen)
		goto out;
	for (;;) {
		ssize_t r = read(fd, resp + got, sizeof resp - 1 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof resp - 1) {
			/* The status line is in; drain the rest. */
			char sink[4096];

			while (read(fd, sink, sizeof sink) > 0)
				;
			break;
		}
	}
	resp[got] = '\0';
	if (sscanf(resp, "HTTP/%*s %d", &status) != 1)
		status = -1;
out:
	close(fd);
	return status;
}

static void saw_info(const char *text)
{
	const char *p = strstr(text, "user_code=");
	size_t n = 0;

	if (p == NULL || me.code[0] != '\0')
		return;
	p += strlen("user_code=");
	while (n < sizeof me.code - 1 && ((p[n] >= 'A' && p[n] <= 'Z') || p[n] == '-')) {
		me.code[n] = p[n];
		n++;
	}
	me.code[n] = '\0';
	if (n > 0)
		me.http = approve(me.code);
}

static void saw_error(const char *text)
{
	size_t i;

	if (me.error[0] != '\0')
		return;
	for (i = 0; text[i] != '\0' && i < sizeof me.error - 1; i++)
		me.error[i] = (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t') ? '_' : text[i];
	me.error[i] = '\0';
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *appdata)
{
	int64_t t0 = now_ns();
	struct pam_response *r = calloc((size_t)n, sizeof *r);

	(void)appdata;
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		const char *answer = NULL;

		switch (msg[i]->msg_style) {
		case PAM_TEXT_INFO:
			saw_info(msg[i]->msg);
			break;
		case PAM_ERROR_MSG:
			saw_error(msg[i]->msg);
			break;
		case PAM_PROMPT_ECHO_ON:
			answer = "";
			break;
		case PAM_PROMPT_ECHO_OFF:
			answer = passcode;
			break;
		}
		if (answer != NULL && (r[i].resp = strdup(answer)) == NULL) {
			for (int j = 0; j < i; j++)
				free(r[j].resp);
			free(r);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	if (me.nconv < MAX_CONV) {
		me.conv[me.nconv][0] = t0;
		me.conv[me.nconv][1] = now_ns();
		me.nconv++;
	}
	return PAM_SUCCESS;
}

/* One login, then its line on stdout; returns the process's exit status. */
static int login(const char *confdir, const char *service)
{
	struct pam_conv c = { conv, NULL };
	pam_handle_t *h = NULL;
	int64_t t_start, t_auth, t_auth_end, t_acct_end, t_end;
	int auth_rc, acct_rc = -1, len;
	char line[4096], convs[MAX_CONV * 42 + 2] = "-";
	size_t at = 0;

	t_start = now_ns();
	if (pam_start_confdir(service, me.user, &c, confdir, &h) != PAM_SUCCESS) {
		fprintf(stderr, "login_storm: pam_start_confdir(%s) failed\n", service);
		return 1;
	}
	t_auth = now_ns();
	auth_rc = pam_authenticate(h, 0);
	t_auth_end = t_acct_end = now_ns();
	if (auth_rc == PAM_SUCCESS) {
		acct_rc = pam_acct_mgmt(h, 0);
		t_acct_end = now_ns();
	}
	pam_end(h, auth_rc == PAM_SUCCESS ? acct_rc : auth_rc);
	t_end = now_ns();

	for (int i = 0; i < me.nconv; i++)
		at += (size_t)snprintf(convs + at, sizeof convs - at, "%s%lld:%lld", i ? "," : "",
				       (long long)me.conv[i][0], (long long)me.conv[i][1]);
	len = snprintf(line, sizeof line, "%s %d %d %lld %lld %lld %lld %lld %s %d %s %s\n", me.user, auth_rc,
		       acct_rc, (long long)t_start, (long long)t_auth, (long long)t_auth_end, (long long)t_acct_end,
		       (long long)t_end, me.code[0] ? me.code : "-", me.http, convs,
		       me.error[0] ? me.error : "-");
	if (len >= (int)sizeof line)
		len = (int)sizeof line - 1;
	if (write(1, line, (size_t)len) != len)
		return 1;
	return auth_rc == PAM_SUCCESS && acct_rc == PAM_SUCCESS ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *confdir, *service, *prefix;
	int first, count, at_once, go[2], failed = 0;
	pid_t *pids;

	if (argc != 9 || (strcmp(argv[8], "at-once") != 0 && strcmp(argv[8], "one-by-one") != 0)) {
		fprintf(stderr, "usage: login_storm CONFDIR SERVICE PASSCODE IDP_PORT PREFIX FIRST COUNT "
				"at-once|one-by-one\n");
		return 2;
	}
	confdir = argv[1];
	service = argv[2];
	passcode = argv[3];
	idp_port = atoi(argv[4]);
	prefix = argv[5];
	first = atoi(argv[6]);
	count = atoi(argv[7]);
	at_once = strcmp(argv[8], "at-once") == 0;
	pids = calloc((size_t)(count > 0 ? count : 1), sizeof *pids);
	if (pids == NULL || count < 1 || pipe2(go, O_CLOEXEC) != 0)
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);

	for (int i = 0; i < count; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			fprintf(stderr, "login_storm: fork %d of %d: %s\n", i + 1, count, strerror(errno));
			return 2;
		}
		if (pid == 0) {
			char b;

			snprintf(me.user, sizeof me.user, "%s%d", prefix, first + i);
			close(go[1]);
			while (at_once && read(go[0], &b, 1) < 0 && errno == EINTR)
				;
			close(go[0]);
			_exit(login(confdir, service));
		}
		pids[i] = pid;
		if (!at_once) {
			int st;

			waitpid(pid, &st, 0);
			failed += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		}
	}
	close(go[0]);
	close(go[1]); /* at-once: every process starts now */
	if (at_once) {
		for (int i = 0; i < count; i++) {
			int st;

			while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
				;
			failed += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		}
	}
	fprintf(stderr, "login_storm: %d of %d logins failed\n", failed, count);
	return failed ? 1 : 0;
}
