/*
 * pam_fedlogin.c - PAM module of fedlogin.
 *
 * A thin relay: each pam_sm_* call sends one request to fedlogind over its
 * Unix socket, shows the daemon's messages through the application's
 * conversation function, sends the answers to its prompts back, and maps the
 * daemon's RESULT to a PAM code. All policy lives in the daemon.
 *
 * Fails closed: every path that does not end in a well-formed RESULT returns
 * PAM_AUTHINFO_UNAVAIL (PAM_CONV_ERR when the application's conversation
 * fails), and in the update pass of a password change fedlogin owns, every
 * outcome but SUCCESS is PAM_AUTHTOK_ERR (pam_sm_chauthtok). Text from
 * outside is written to the log with its control characters escaped
 * (fedlogin_escape.h). The wire protocol is docs/protocol.md.
 *
 * Module arguments:
 *   socket=PATH          fedlogind's socket (default /run/fedlogin/fedlogind.sock)
 *   connect_timeout=MS   bound on connecting (default 2000)
 *   timeout=MS           bound on waiting for each frame from the daemon (default 10000)
 *   max_time=S           bound on the whole request, time in the conversation
 *                        function excluded (default 900)
 *   debug                log the message types exchanged (never their contents)
 *   authfail             (auth, after pam_unix) tell fedlogind the local password
 *                        was wrong: it counts the attempt for the lockout policy
 *                        and may offer a passcode reset at the IdP
 */
#include "fedlogin_client.h"
#include "fedlogin_escape.h"
#include "fedlogin_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#define PAM_SM_SESSION
#define PAM_SM_PASSWORD
#include <security/pam_ext.h>
#include <security/pam_modules.h>

struct fl_args {
	const char *socket;
	int connect_timeout_ms;
	int timeout_ms;
	int max_time_s;
	bool debug;
	bool authfail; /* auth: report a wrong local password (after pam_unix) */
};

/* One request to fedlogind and the conversation that follows it. */
struct fl_request {
	pam_handle_t *pamh;
	struct fl_args args;
	/* The connection; its deadline is the end of the max_time budget,
	 * moved later by the time spent in the application's conversation
	 * function. */
	struct fedlogin_client client;
	/* The last answer could not be sent (the daemon stopped reading): only
	 * a failure RESULT already on its way is taken. */
	bool answer_lost;
	struct fedlogin_msg msg; /* the last frame read; views into rbuf */
	uint8_t rbuf[FEDLOGIN_MAX_FRAME];
	uint8_t wbuf[FEDLOGIN_FRAME_HEADER + FEDLOGIN_MAX_FRAME];
};

#define now_ms fedlogin_now_ms

/* PAM code of each RESULT status (docs/protocol.md, "Result status"). */
static const int status_to_pam[] = {
	[FEDLOGIN_STATUS_SUCCESS] = PAM_SUCCESS,
	[FEDLOGIN_STATUS_IGNORE] = PAM_IGNORE,
	[FEDLOGIN_STATUS_USER_UNKNOWN] = PAM_USER_UNKNOWN,
	[FEDLOGIN_STATUS_AUTH_ERR] = PAM_AUTH_ERR,
	[FEDLOGIN_STATUS_UNAVAIL] = PAM_AUTHINFO_UNAVAIL,
	[FEDLOGIN_STATUS_PERM_DENIED] = PAM_PERM_DENIED,
	[FEDLOGIN_STATUS_ACCT_EXPIRED] = PAM_ACCT_EXPIRED,
	[FEDLOGIN_STATUS_NEW_AUTHTOK_REQD] = PAM_NEW_AUTHTOK_REQD,
	[FEDLOGIN_STATUS_AUTHTOK_ERR] = PAM_AUTHTOK_ERR,
};

static const char *const status_names[] = {
	"SUCCESS",     "IGNORE",       "USER_UNKNOWN",	   "AUTH_ERR",	  "UNAVAIL",
	"PERM_DENIED", "ACCT_EXPIRED", "NEW_AUTHTOK_REQD", "AUTHTOK_ERR",
};

/* Parses a decimal in [min, max]; false if `s` is not one. */
static bool parse_int(const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = (int)v;
	return true;
}

static void parse_args(pam_handle_t *pamh, int argc, const char **argv, struct fl_args *a)
{
	a->socket = FEDLOGIN_DEFAULT_SOCKET;
	a->connect_timeout_ms = FEDLOGIN_DEFAULT_CONNECT_TIMEOUT_MS;
	a->timeout_ms = FEDLOGIN_DEFAULT_TIMEOUT_MS;
	a->max_time_s = FEDLOGIN_DEFAULT_MAX_TIME_S;
	a->debug = false;
	a->authfail = false;

	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "debug") == 0) {
			a->debug = true;
		} else if (strcmp(arg, "authfail") == 0) {
			a->authfail = true;
		} else if (strncmp(arg, "socket=", 7) == 0) {
			a->socket = arg + 7; /* checked when connecting */
		} else if (strncmp(arg, "connect_timeout=", 16) == 0) {
			if (!parse_int(arg + 16, 1, INT_MAX, &a->connect_timeout_ms))
				pam_syslog(pamh, LOG_ERR, "bad value, default kept: %s", arg);
		} else if (strncmp(arg, "timeout=", 8) == 0) {
			if (!parse_int(arg + 8, 1, INT_MAX, &a->timeout_ms))
				pam_syslog(pamh, LOG_ERR, "bad value, default kept: %s", arg);
		} else if (strncmp(arg, "max_time=", 9) == 0) {
			if (!parse_int(arg + 9, 1, INT_MAX / 1000, &a->max_time_s))
				pam_syslog(pamh, LOG_ERR, "bad value, default kept: %s", arg);
		} else {
			pam_syslog(pamh, LOG_ERR, "unknown option: %s", arg);
		}
	}
}

/* A PAM string item, or "" when it is not set. */
static const char *get_item(pam_handle_t *pamh, int type)
{
	const void *v = NULL;

	if (pam_get_item(pamh, type, &v) != PAM_SUCCESS || v == NULL)
		return "";
	return v;
}

/* Writes the client's failures to the system log (errno as it was, for %m). */
static void fl_log(void *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pam_vsyslog(ctx, LOG_ERR, fmt, ap);
	va_end(ap);
}

/* Connects to fedlogind (fedlogin_client.h: trust checks, bounds). 0 or -1 (logged). */
static int fl_connect(struct fl_request *r)
{
	return fedlogin_client_connect(&r->client, r->args.socket, r->args.connect_timeout_ms);
}

/* Sends a whole frame from wbuf within `timeout`. 0 or -1 (logged). */
static int send_frame(struct fl_request *r, size_t len)
{
	return fedlogin_client_send(&r->client, r->wbuf, len, now_ms() + r->args.timeout_ms,
				    r->args.timeout_ms);
}

/* Reads exactly `len` bytes before `until` (and max_time). 0 or -1 (logged). */
static int recv_exact(struct fl_request *r, uint8_t *buf, size_t len, int64_t until)
{
	return fedlogin_client_recv(&r->client, buf, len, until, r->args.timeout_ms);
}

/*
 * Reads and parses one frame into r->msg; the whole frame must arrive within
 * `timeout`. A length out of range is rejected before any body is read.
 * Returns 0 or -1 (logged).
 */
static int read_frame(struct fl_request *r)
{
	const int64_t until = now_ms() + r->args.timeout_ms;
	uint8_t header[FEDLOGIN_FRAME_HEADER];
	uint32_t len;
	int rc;

	if (recv_exact(r, header, sizeof(header), until) != 0)
		return -1;
	if (fedlogin_frame_length(header, &len) != FEDLOGIN_OK) {
		pam_syslog(r->pamh, LOG_ERR, "protocol error: frame length %u out of range",
			   (unsigned)header[0] << 24 | (unsigned)header[1] << 16 | (unsigned)header[2] << 8 |
				   header[3]);
		return -1;
	}
	if (recv_exact(r, r->rbuf, len, until) != 0)
		return -1;
	rc = fedlogin_parse(r->rbuf, len, &r->msg);
	if (rc != FEDLOGIN_OK) {
		pam_syslog(r->pamh, LOG_ERR, "protocol error: %s (version %u, type 0x%02x)",
			   fedlogin_strerror(rc), r->rbuf[0], r->rbuf[1]);
		return -1;
	}
	if (r->args.debug)
		pam_syslog(r->pamh, LOG_DEBUG, "received %s (%u bytes)", fedlogin_type_name(r->msg.type),
			   (unsigned)len);
	return 0;
}

/*
 * Calls the application's conversation function with the daemon's text;
 * `resp` is NULL for messages that take no answer. Time spent here does not
 * count against max_time.
 */
static int converse(struct fl_request *r, int style, const struct fedlogin_field *text, char **resp)
{
	int64_t start = now_ms();
	int rc = pam_prompt(r->pamh, style, resp, "%.*s", (int)text->len, text->str);

	r->client.deadline += now_ms() - start;
	return rc;
}

/*
 * Text for the start of the session (SESSION_INFO), such as a first login's
 * welcome. It is kept in the PAM environment, not shown now: sshd keeps PAM
 * text that follows the last keyboard-interactive prompt and then shows it
 * twice (as the userauth banner and as the session starts), and it runs the
 * authentication in a process of its own that hands only the PAM environment
 * on to the one that opens the session. pam_sm_open_session shows it and
 * removes the variable, so the session's environment never holds it.
 */
#define SESSION_INFO_VAR "FEDLOGIN_SESSION_INFO"
#define SESSION_INFO_MAX 8192

static void hold_session_info(pam_handle_t *pamh, const struct fedlogin_field *text)
{
	const char *held = pam_getenv(pamh, SESSION_INFO_VAR);
	size_t hlen = held != NULL ? strlen(held) : 0;
	size_t need = sizeof(SESSION_INFO_VAR) + hlen + 1 + text->len + 1;
	char *entry;
	int n;

	if (hlen + text->len >= SESSION_INFO_MAX || memchr(text->str, 0, text->len) != NULL) {
		pam_syslog(pamh, LOG_NOTICE, "session text not kept: over %d bytes or not text",
			   SESSION_INFO_MAX);
		return;
	}
	entry = malloc(need);
	if (entry == NULL)
		return;
	n = snprintf(entry, need, "%s=%s%s%.*s", SESSION_INFO_VAR, held != NULL ? held : "",
		     held != NULL ? "\n" : "", (int)text->len, text->str);
	if (n > 0 && (size_t)n < need && pam_putenv(pamh, entry) != PAM_SUCCESS)
		pam_syslog(pamh, LOG_NOTICE, "session text not kept: pam_putenv failed");
	free(entry);
}

/* Relays a prompt and sends the answer. Returns a PAM code. */
static int relay_prompt(struct fl_request *r, int style)
{
	struct fedlogin_builder b;
	char *resp = NULL;
	size_t len = 0, rlen;
	int rc;

	rc = converse(r, style, &r->msg.fields[0], &resp);
	if (rc != PAM_SUCCESS || resp == NULL) {
		pam_syslog(r->pamh, LOG_ERR, "conversation failed: %s",
			   pam_strerror(r->pamh, rc != PAM_SUCCESS ? rc : PAM_CONV_ERR));
		if (resp != NULL) {
			explicit_bzero(resp, strlen(resp));
			free(resp);
		}
		return PAM_CONV_ERR;
	}

	rlen = strlen(resp);
	fedlogin_build_begin(&b, r->wbuf, sizeof(r->wbuf), FEDLOGIN_MSG_ANSWER);
	fedlogin_build_str(&b, resp, rlen);
	rc = fedlogin_build_finish(&b, &len);
	explicit_bzero(resp, rlen);
	free(resp);
	if (rc != FEDLOGIN_OK) {
		explicit_bzero(r->wbuf, sizeof(r->wbuf));
		pam_syslog(r->pamh, LOG_ERR, "answer not sent: %s", fedlogin_strerror(rc));
		return PAM_AUTHINFO_UNAVAIL;
	}
	rc = send_frame(r, len);
	explicit_bzero(r->wbuf, len);
	if (rc != 0) {
		/* fedlogind may have given up on the prompt (its timeout) and
		 * sent its RESULT already: read it rather than guess. */
		r->answer_lost = true;
	}
	return PAM_SUCCESS;
}

/*
 * Sends one request (AUTHENTICATE, ACCT_MGMT or CHAUTHTOK) and runs the
 * conversation to its RESULT. `op` names the request in the audit line.
 * *status_out is the RESULT's status, or -1 when none was read.
 */
static int fl_transact(pam_handle_t *pamh, int flags, int argc, const char **argv, uint8_t type,
		       const char *op, int *status_out)
{
	struct fl_request *r = NULL;
	struct fedlogin_builder b;
	const struct fedlogin_field *reason = NULL;
	const char *user = NULL, *service = "", *tty = "", *rhost = "", *ruser = "";
	int retval = PAM_AUTHINFO_UNAVAIL;
	int status = -1;
	size_t len = 0;
	int rc;
	/* Log fields from outside, with controls and escape sequences shown escaped. */
	char e_user[FEDLOGIN_ESCAPED_MAX], e_service[FEDLOGIN_ESCAPED_MAX], e_tty[FEDLOGIN_ESCAPED_MAX],
		e_rhost[FEDLOGIN_ESCAPED_MAX], e_reason[FEDLOGIN_ESCAPED_MAX];

	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		pam_syslog(pamh, LOG_CRIT, "out of memory");
		retval = PAM_BUF_ERR;
		goto done;
	}
	r->pamh = pamh;
	r->client.fd = -1;
	r->client.log = fl_log;
	r->client.log_ctx = pamh;
	parse_args(pamh, argc, argv, &r->args);
	if (type == FEDLOGIN_MSG_AUTHENTICATE && r->args.authfail) {
		type = FEDLOGIN_MSG_AUTH_FAILED;
		op = "failed-login report";
	}
	r->client.deadline = now_ms() + (int64_t)r->args.max_time_s * 1000;
	r->client.max_time_s = r->args.max_time_s;

	rc = pam_get_user(pamh, &user, NULL);
	if (rc != PAM_SUCCESS) {
		pam_syslog(pamh, LOG_ERR, "cannot determine the user name: %s", pam_strerror(pamh, rc));
		user = NULL;
		retval = rc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : rc;
		goto done;
	}
	if (user == NULL || user[0] == '\0') {
		pam_syslog(pamh, LOG_ERR, "empty user name");
		user = NULL;
		retval = PAM_USER_UNKNOWN;
		goto done;
	}
	service = get_item(pamh, PAM_SERVICE);
	tty = get_item(pamh, PAM_TTY);
	rhost = get_item(pamh, PAM_RHOST);
	ruser = get_item(pamh, PAM_RUSER);

	fedlogin_build_begin(&b, r->wbuf, sizeof(r->wbuf), type);
	fedlogin_build_str(&b, user, strlen(user));
	fedlogin_build_str(&b, service, strlen(service));
	if (type == FEDLOGIN_MSG_AUTHENTICATE || type == FEDLOGIN_MSG_AUTH_FAILED) {
		fedlogin_build_str(&b, tty, strlen(tty));
		fedlogin_build_str(&b, rhost, strlen(rhost));
		fedlogin_build_str(&b, ruser, strlen(ruser));
	}
	rc = fedlogin_build_finish(&b, &len);
	if (rc != FEDLOGIN_OK) {
		pam_syslog(pamh, LOG_ERR, "cannot encode the %s request: %s", fedlogin_type_name(type),
			   fedlogin_strerror(rc));
		goto done;
	}

	if (fl_connect(r) != 0 || send_frame(r, len) != 0)
		goto done;
	if (r->args.debug)
		pam_syslog(pamh, LOG_DEBUG, "sent %s to %s", fedlogin_type_name(type), r->args.socket);

	for (;;) {
		const struct fedlogin_msg *m = &r->msg;

		if (read_frame(r) != 0)
			goto done;
		switch (m->type) {
		case FEDLOGIN_MSG_INFO:
		case FEDLOGIN_MSG_ERROR:
			if (flags & PAM_SILENT)
				break; /* the application asked for no messages */
			rc = converse(r, m->type == FEDLOGIN_MSG_INFO ? PAM_TEXT_INFO : PAM_ERROR_MSG,
				      &m->fields[0], NULL);
			if (rc != PAM_SUCCESS) {
				pam_syslog(pamh, LOG_ERR, "conversation failed: %s", pam_strerror(pamh, rc));
				retval = PAM_CONV_ERR;
				goto done;
			}
			break;
		case FEDLOGIN_MSG_SESSION_INFO:
			if (!(flags & PAM_SILENT))
				hold_session_info(pamh, &m->fields[0]);
			break;
		case FEDLOGIN_MSG_PROMPT_ECHO_ON:
		case FEDLOGIN_MSG_PROMPT_ECHO_OFF:
			rc = relay_prompt(r, m->type == FEDLOGIN_MSG_PROMPT_ECHO_ON ? PAM_PROMPT_ECHO_ON
										    : PAM_PROMPT_ECHO_OFF);
			if (rc != PAM_SUCCESS) {
				retval = rc;
				goto done;
			}
			break;
		case FEDLOGIN_MSG_KEEPALIVE:
			break; /* the next read_frame starts a fresh timeout */
		case FEDLOGIN_MSG_RESULT:
			/* The codec only accepts statuses in the table; check anyway. */
			if (m->fields[0].num > FEDLOGIN_STATUS_MAX) {
				pam_syslog(pamh, LOG_ERR, "protocol error: unknown status %u",
					   (unsigned)m->fields[0].num);
				goto done;
			}
			status = (int)m->fields[0].num;
			reason = &m->fields[1];
			retval = status_to_pam[status];
			if (r->answer_lost && status == FEDLOGIN_STATUS_SUCCESS) {
				/* Success for an answer it never got: not believed. */
				pam_syslog(pamh, LOG_ERR,
					   "protocol error: SUCCESS after an answer that was not sent");
				status = -1;
				retval = PAM_AUTHINFO_UNAVAIL;
			}
			goto done;
		default:
			pam_syslog(pamh, LOG_ERR, "protocol error: unexpected %s from fedlogind",
				   fedlogin_type_name(m->type));
			goto done;
		}
	}

done:
	/* One audit line per request. The daemon's reason never holds a secret. */
	if (user != NULL) {
		fedlogin_escape(e_user, sizeof(e_user), user, strlen(user));
		fedlogin_escape(e_service, sizeof(e_service), service, strlen(service));
		fedlogin_escape(e_tty, sizeof(e_tty), tty, strlen(tty));
		fedlogin_escape(e_rhost, sizeof(e_rhost), rhost, strlen(rhost));
		if (status == FEDLOGIN_STATUS_SUCCESS)
			pam_syslog(pamh, LOG_INFO, "%s success; user=%s service=%s tty=%s rhost=%s", op,
				   e_user, e_service, e_tty, e_rhost);
		else if (status >= 0)
			pam_syslog(pamh, LOG_NOTICE,
				   "%s %s; user=%s service=%s tty=%s rhost=%s status=%s reason=%s", op,
				   status == FEDLOGIN_STATUS_IGNORE ? "ignored" : "failure", e_user,
				   e_service, e_tty, e_rhost, status_names[status],
				   fedlogin_escape(e_reason, sizeof(e_reason), (const char *)reason->str,
						   reason->len));
		else
			pam_syslog(pamh, LOG_NOTICE,
				   "%s failure; user=%s service=%s tty=%s rhost=%s error=%s", op, e_user,
				   e_service, e_tty, e_rhost, pam_strerror(pamh, retval));
	}
	if (status_out != NULL)
		*status_out = status;
	if (r != NULL) {
		if (r->client.fd >= 0)
			close(r->client.fd);
		explicit_bzero(r, sizeof(*r));
		free(r);
	}
	return retval;
}

/*
 * fedlogind serves root only: an application running as a user (a screen
 * locker checking its own user's password) gets no opinion from this
 * module, and the rest of the stack decides as if it were not there.
 */
static bool unprivileged(void)
{
	return geteuid() != 0;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	if (unprivileged())
		return PAM_IGNORE;
	return fl_transact(pamh, flags, argc, argv, FEDLOGIN_MSG_AUTHENTICATE, "authentication", NULL);
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh, (void)flags, (void)argc, (void)argv;
	return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	if (unprivileged())
		return PAM_IGNORE;
	return fl_transact(pamh, flags, argc, argv, FEDLOGIN_MSG_ACCT_MGMT, "account", NULL);
}

/*
 * Whose change this is, decided in the preliminary pass and kept in the
 * handle for the update (pam_set_data): libpam runs the whole password
 * stack again in the update, it does not replay the first pass's path.
 */
#define FL_OWNER_DATA "pam_fedlogin_chauthtok_owner"
static const int owner_fedlogin = 1, owner_local = 2;

static void set_owner(pam_handle_t *pamh, const int *owner)
{
	/* Static data: no cleanup function. A failure leaves the update with
	 * no decision, which fails closed unless fedlogind says IGNORE. */
	if (pam_set_data(pamh, FL_OWNER_DATA, (void *)owner, NULL) != PAM_SUCCESS)
		pam_syslog(pamh, LOG_ERR, "cannot keep the password change's owner");
}

static int get_owner(pam_handle_t *pamh)
{
	const void *d = NULL;

	if (pam_get_data(pamh, FL_OWNER_DATA, &d) != PAM_SUCCESS || d == NULL)
		return 0;
	return *(const int *)d;
}

/*
 * The update pass for an account fedlogin does not own: asks for the new
 * password twice and sets PAM_AUTHTOK (as pam_pwquality does), then leaves
 * the change to the modules after it (pam_unix ... use_authtok). PAM_IGNORE,
 * or PAM_AUTHTOK_ERR when no new password was given.
 */
static int local_new_authtok(pam_handle_t *pamh)
{
	const char *tok = NULL;
	int rc = PAM_AUTHTOK_ERR;

	for (int i = 0; i < 3; i++) {
		rc = pam_get_authtok(pamh, PAM_AUTHTOK, &tok, NULL);
		if (rc != PAM_TRY_AGAIN)
			break;
	}
	if (rc != PAM_SUCCESS || tok == NULL) {
		pam_syslog(pamh, LOG_NOTICE, "no new password: %s",
			   pam_strerror(pamh, rc == PAM_SUCCESS ? PAM_AUTHTOK_ERR : rc));
		return PAM_AUTHTOK_ERR;
	}
	return PAM_IGNORE;
}

PAM_EXTERN int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	/* libpam calls the password stack twice: a preliminary pass, then the
	 * update. In the first, fedlogind says whether the change is its own
	 * (SUCCESS: it asks for the current password itself in the update) or
	 * not (IGNORE: pam_unix's preliminary pass checks the current password
	 * as always); fedlogind not reachable counts as not its own. The update
	 * keeps to that decision: fedlogin's change either succeeds through
	 * fedlogind or is PAM_AUTHTOK_ERR (never left to pam_unix, whose update
	 * takes a missing current password for root's); anyone else's new
	 * password is asked here and set for pam_unix. */
	int status = -1, rc, owner;

	if (flags & PAM_PRELIM_CHECK) {
		if (unprivileged()) {
			set_owner(pamh, &owner_local);
			return PAM_IGNORE;
		}
		rc = fl_transact(pamh, flags, argc, argv, FEDLOGIN_MSG_CHAUTHTOK_PRELIM, "password check",
				 &status);
		if (status == FEDLOGIN_STATUS_SUCCESS) {
			set_owner(pamh, &owner_fedlogin);
			return PAM_SUCCESS;
		}
		if (status == FEDLOGIN_STATUS_IGNORE || (status < 0 && rc == PAM_AUTHINFO_UNAVAIL)) {
			set_owner(pamh, &owner_local);
			return PAM_IGNORE;
		}
		/* Any other answer: no change at all. */
		set_owner(pamh, &owner_fedlogin);
		return status >= 0 || rc == PAM_SUCCESS ? PAM_AUTHTOK_ERR : rc;
	}
	if (!(flags & PAM_UPDATE_AUTHTOK))
		return PAM_SERVICE_ERR;

	owner = get_owner(pamh);
	if (owner == owner_local || unprivileged())
		return local_new_authtok(pamh);
	rc = fl_transact(pamh, flags, argc, argv, FEDLOGIN_MSG_CHAUTHTOK, "password change", &status);
	if (status == FEDLOGIN_STATUS_SUCCESS)
		return PAM_SUCCESS;
	if (owner == 0 && status == FEDLOGIN_STATUS_IGNORE)
		return local_new_authtok(pamh); /* no preliminary decision: fedlogind's word */
	if (rc != PAM_AUTHTOK_ERR)
		pam_syslog(pamh, LOG_NOTICE, "password change not completed (%s): the password is unchanged",
			   pam_strerror(pamh, rc));
	return PAM_AUTHTOK_ERR;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *held = pam_getenv(pamh, SESSION_INFO_VAR);
	char *text;

	(void)argc, (void)argv;
	if (held == NULL)
		return PAM_SUCCESS;
	text = strdup(held);
	/* Removed first: the session's environment never holds it. */
	(void)pam_putenv(pamh, SESSION_INFO_VAR);
	if (text == NULL)
		return PAM_SUCCESS;
	if (!(flags & PAM_SILENT))
		(void)pam_prompt(pamh, PAM_TEXT_INFO, NULL, "%s", text);
	free(text);
	return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh, (void)flags, (void)argc, (void)argv;
	return PAM_SUCCESS;
}
