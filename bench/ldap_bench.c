/*
 * ldap_bench.c - times directory requests two ways, each on one persistent
 * connection: through fedlogin-directoryd's socket, and as the same LDAP
 * searches straight to slapd.
 *
 *   ldap_bench socket SOCKET REQUESTS WARMUP
 *   ldap_bench ldap URI BIND_DN PASSWORD_FILE USERS_BASE GROUPS_BASE DEVICES_BASE POLICY_DN REQUESTS WARMUP
 *   ldap_bench ldap-fresh (the same arguments)
 *
 * REQUESTS is a file of lines "lookup USER", "access USER DEVICE" or
 * "device_users DEVICE". The first WARMUP lines are run and not printed;
 * then one line per request: the operation and its time in nanoseconds.
 *
 * socket: one connection to the directory protocol socket (the framing of
 * docs/directory-protocol.md); each request is one JSON frame, its answer
 * must say "ok":true.
 *
 * ldap: one connection to URI, bound once (simple bind), then for each
 * request the searches fedlogin-directoryd's LDAP backend makes for it
 * (Sources/FedloginDirectory/LDAPDirectory.swift, schema "openldap" with the
 * fedlogin schema of packaging/ldap; keep this list in step with it), with
 * every value of every entry read:
 *   lookup        users_base sub (|(uid=U)(mail=U)) [the user attributes],
 *                 then groups_base sub (member=<the user's DN>) [cn]
 *   device_users  devices_base sub (&(objectClass=device)(cn=D))
 *                 [fedloginAssociatedUser fedloginUnboundUser fedloginPolicy],
 *                 the policy entry [fedloginPolicy], users_base sub
 *                 (|(entryDN=dn1)(entryDN=dn2)...) [uid] for the associated
 *                 and unbound users' DNs together, at most 100 a search,
 *                 then with self-service (the policy's default) the
 *                 device's binding entries one level below it
 *                 (objectClass=fedloginBinding) [fedloginBindingReport]
 *   access        lookup, then the device entry with the user's DN in the
 *                 filter, devices_base sub (&(objectClass=device)(cn=D)
 *                 (fedloginAssociatedUser=DN)) [fedloginPolicy]; not
 *                 found: the plain device search [fedloginPolicy]; then
 *                 the device entry with (fedloginUnboundUser=DN) [1.1],
 *                 the policy entry, and with self-service, for a user
 *                 neither list holds, the device's binding entries
 * ldap-fresh: as ldap, but each request connects and binds first and
 * unbinds after (all of it timed): a connection per request, as
 * fedlogin-directoryd's backend made them before it kept its connections.
 * Exits 1 on any error (a failed search, a user or device not found).
 */
#define _GNU_SOURCE
#define LDAP_DEPRECATED 0
#include <errno.h>
#include <ldap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sockio.h"

#define MAX_ANSWER (16 << 20)
#define MAX_VALUES 64

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "ldap_bench: %s\n", what);
	exit(1);
}

/* ---------------------------------------------------------------- socket */

static uint8_t *answer;

static void socket_request(int fd, const char *op, const char *a, const char *b)
{
	char json[1024];
	uint8_t frame[1028];
	uint8_t head[4];
	int n;
	uint32_t len;

	if (strcmp(op, "lookup") == 0)
		n = snprintf(json, sizeof json, "{\"op\":\"lookup\",\"user\":\"%s\"}", a);
	else if (strcmp(op, "access") == 0)
		n = snprintf(json, sizeof json, "{\"op\":\"access\",\"user\":\"%s\",\"device_id\":\"%s\"}", a,
			     b);
	else
		n = snprintf(json, sizeof json, "{\"op\":\"device_users\",\"device_id\":\"%s\"}", a);
	if (n <= 0 || (size_t)n >= sizeof json)
		die("request too long");
	frame[0] = (uint8_t)(n >> 24);
	frame[1] = (uint8_t)(n >> 16);
	frame[2] = (uint8_t)(n >> 8);
	frame[3] = (uint8_t)n;
	memcpy(frame + 4, json, (size_t)n);
	if (write_all(fd, frame, (size_t)n + 4) < 0)
		die("write to the directory socket failed");
	if (read_exact(fd, head, 4) < 0)
		die("the directory closed the connection");
	len = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
	if (len < 2 || len > MAX_ANSWER)
		die("bad answer length");
	if (read_exact(fd, answer, len) < 0)
		die("the directory closed the connection");
	answer[len] = 0;
	if (!strstr((char *)answer, "\"ok\":true")) {
		fprintf(stderr, "ldap_bench: %s %s: %s\n", op, a, (char *)answer);
		exit(1);
	}
	if (strcmp(op, "device_users") != 0 &&
	    !strstr((char *)answer, strcmp(op, "lookup") == 0 ? "\"user\"" : "\"access\"")) {
		fprintf(stderr, "ldap_bench: %s %s: no such user: %s\n", op, a, (char *)answer);
		exit(1);
	}
}

static int connect_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(path) >= sizeof sa.sun_path)
		die("socket");
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect to the directory socket failed");
	return fd;
}

/* ------------------------------------------------------------------ ldap */

static LDAP *ld;
static const char *users_base, *groups_base, *devices_base, *policy_dn;
static struct timeval ldap_timeout = {.tv_sec = 10};

/* An assertion value escaped per RFC 4515. */
static void escape_filter(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (; *in && o + 4 < size; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '*' || c == '(' || c == ')' || c == '\\')
			o += (size_t)snprintf(out + o, size - o, "\\%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = 0;
}

/* Runs a search and reads every value of every entry; returns the number of
 * entries, with the first entry's DN in `dn` and up to MAX_VALUES values of
 * `want` (of all entries) in `values` (malloc'd; the caller frees). */
static int search(const char *base, int scope, const char *filter, char **attrs, int sizelimit, char *dn,
		  size_t dn_size, const char *want, char **values, int *nvalues)
{
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(ld, base, scope, filter, attrs, 0, NULL, NULL, &ldap_timeout, sizelimit,
				   &res);
	int count = 0;

	if (nvalues)
		*nvalues = 0;
	if (rc != LDAP_SUCCESS && !(rc == LDAP_SIZELIMIT_EXCEEDED && sizelimit > 0)) {
		fprintf(stderr, "ldap_bench: search of %s %s: %s\n", base, filter, ldap_err2string(rc));
		exit(1);
	}
	for (LDAPMessage *e = ldap_first_entry(ld, res); e; e = ldap_next_entry(ld, e)) {
		BerElement *ber = NULL;
		char *d = ldap_get_dn(ld, e);

		if (count == 0 && dn && d)
			snprintf(dn, dn_size, "%s", d);
		ldap_memfree(d);
		for (char *a = ldap_first_attribute(ld, e, &ber); a; a = ldap_next_attribute(ld, e, ber)) {
			struct berval **vals = ldap_get_values_len(ld, e, a);

			for (int i = 0; vals && vals[i]; i++) {
				if (want && values && strcasecmp(a, want) == 0 && *nvalues < MAX_VALUES)
					values[(*nvalues)++] = strndup(vals[i]->bv_val, vals[i]->bv_len);
			}
			ldap_value_free_len(vals);
			ldap_memfree(a);
		}
		if (ber)
			ber_free(ber, 0);
		count++;
	}
	ldap_msgfree(res);
	return count;
}

static char *user_attrs[] = {"uid",	     "mail",	     "displayName",	     "cn", "uidNumber",
			     "userPassword", "shadowExpire", "pwdAccountLockedTime", NULL};
static char *cn_attrs[] = {"cn", NULL};
static char *policy_attrs[] = {"fedloginPolicy", NULL};
static char *device_attrs[] = {"fedloginAssociatedUser", "fedloginUnboundUser", "fedloginPolicy", NULL};
static char *binding_attrs[] = {"fedloginBindingReport", NULL};
static char *uid_attrs[] = {"uid", NULL};

struct device {
	char dn[1024];
	char *associated[MAX_VALUES];
	int n_associated;
	char *unbound[MAX_VALUES];
	int n_unbound;
};

/* The user's entry and groups; the DN of the user's entry in `dn`. */
static void ldap_lookup(const char *user, char *dn, size_t dn_size)
{
	char esc[512], filter[2200], edn[2048];

	escape_filter(user, esc, sizeof esc);
	snprintf(filter, sizeof filter, "(|(uid=%s)(mail=%s))", esc, esc);
	if (search(users_base, LDAP_SCOPE_SUBTREE, filter, user_attrs, 16, dn, dn_size, NULL, NULL, NULL) <
	    1) {
		fprintf(stderr, "ldap_bench: no such user %s\n", user);
		exit(1);
	}
	escape_filter(dn, edn, sizeof edn);
	snprintf(filter, sizeof filter, "(member=%s)", edn);
	search(groups_base, LDAP_SCOPE_SUBTREE, filter, cn_attrs, 0, NULL, 0, NULL, NULL, NULL);
}

static int ldap_policy_self_service(void)
{
	char *values[MAX_VALUES];
	int n, self_service;

	search(policy_dn, LDAP_SCOPE_BASE, "(objectClass=*)", policy_attrs, 1, NULL, 0, "fedloginPolicy",
	       values, &n);
	if (n < 1)
		die("the policy entry has no fedloginPolicy");
	self_service = !(strstr(values[0], "\"self_service\": false") ||
			 strstr(values[0], "\"self_service\":false"));
	for (int i = 0; i < n; i++)
		free(values[i]);
	return self_service;
}

static void device_entry(const char *device, struct device *d)
{
	char esc[512], filter[1200];
	LDAPMessage *res = NULL;
	int rc;

	escape_filter(device, esc, sizeof esc);
	snprintf(filter, sizeof filter, "(&(objectClass=device)(cn=%s))", esc);
	/* Two attributes to keep apart: search() keeps one; read both here. */
	rc = ldap_search_ext_s(ld, devices_base, LDAP_SCOPE_SUBTREE, filter, device_attrs, 0, NULL, NULL,
			       &ldap_timeout, 2, &res);
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		fprintf(stderr, "ldap_bench: search of %s %s: %s\n", devices_base, filter,
			ldap_err2string(rc));
		exit(1);
	}
	LDAPMessage *e = ldap_first_entry(ld, res);
	if (!e) {
		fprintf(stderr, "ldap_bench: no such device %s\n", device);
		exit(1);
	}
	char *dn = ldap_get_dn(ld, e);
	snprintf(d->dn, sizeof d->dn, "%s", dn ? dn : "");
	ldap_memfree(dn);
	d->n_associated = d->n_unbound = 0;
	BerElement *ber = NULL;
	for (char *a = ldap_first_attribute(ld, e, &ber); a; a = ldap_next_attribute(ld, e, ber)) {
		struct berval **vals = ldap_get_values_len(ld, e, a);
		int associated = strcasecmp(a, "fedloginAssociatedUser") == 0;
		int unbound = strcasecmp(a, "fedloginUnboundUser") == 0;

		for (int i = 0; vals && vals[i]; i++) {
			if (associated && d->n_associated < MAX_VALUES)
				d->associated[d->n_associated++] = strndup(vals[i]->bv_val, vals[i]->bv_len);
			if (unbound && d->n_unbound < MAX_VALUES)
				d->unbound[d->n_unbound++] = strndup(vals[i]->bv_val, vals[i]->bv_len);
		}
		ldap_value_free_len(vals);
		ldap_memfree(a);
	}
	if (ber)
		ber_free(ber, 0);
	ldap_msgfree(res);
}

/* The user entries of `dns` under users_base: one search for up to 100 DNs
 * (LDAPDirectory.usernames(of:on:)). */
static void usernames(char **dns, int n)
{
	static char filter[100 * 2100 + 8];

	for (int start = 0; start < n; start += 100) {
		int end = start + 100 < n ? start + 100 : n;
		size_t o = 0;

		if (end - start > 1)
			o += (size_t)snprintf(filter + o, sizeof filter - o, "(|");
		for (int i = start; i < end; i++) {
			char edn[2048];

			escape_filter(dns[i], edn, sizeof edn);
			o += (size_t)snprintf(filter + o, sizeof filter - o, "(entryDN=%s)", edn);
		}
		if (end - start > 1)
			snprintf(filter + o, sizeof filter - o, ")");
		search(users_base, LDAP_SCOPE_SUBTREE, filter, uid_attrs, 0, NULL, 0, NULL, NULL, NULL);
	}
}

static void free_device(struct device *d)
{
	for (int i = 0; i < d->n_associated; i++)
		free(d->associated[i]);
	for (int i = 0; i < d->n_unbound; i++)
		free(d->unbound[i]);
}

static void bindings(const char *device_dn)
{
	search(device_dn, LDAP_SCOPE_ONELEVEL, "(objectClass=fedloginBinding)", binding_attrs, 0, NULL, 0,
	       NULL, NULL, NULL);
}

/* The device's users from its entry: LDAPDirectory.users(of:entry:selfService:on:). */
static void users_of(struct device *d)
{
	char *dns[2 * MAX_VALUES];
	int n = 0;
	int self_service = ldap_policy_self_service();

	for (int i = 0; i < d->n_associated; i++)
		dns[n++] = d->associated[i];
	for (int i = 0; i < d->n_unbound; i++)
		dns[n++] = d->unbound[i];
	usernames(dns, n);
	if (self_service)
		bindings(d->dn);
}

/* The device entry found with `condition` in the filter, with `attrs`; its
 * DN in `dn` (when not NULL); 0 when none. */
static int device_where(const char *device, const char *condition, char **attrs, char *dn, size_t dn_size)
{
	char esc[512], filter[5000];

	escape_filter(device, esc, sizeof esc);
	snprintf(filter, sizeof filter, "(&(objectClass=device)(cn=%s)%s)", esc, condition);
	return search(devices_base, LDAP_SCOPE_SUBTREE, filter, attrs, 2, dn, dn_size, NULL, NULL, NULL);
}

static char *no_attrs[] = {"1.1", NULL};

/* LDAPDirectory.access(user:device:on:). */
static void ldap_access(const char *user, const char *device)
{
	char user_dn[1024], device_dn[1024], edn[2048], listed[2200], unbound[2200];
	int is_listed = 0, is_unbound = 0;

	ldap_lookup(user, user_dn, sizeof user_dn);
	escape_filter(user_dn, edn, sizeof edn);
	snprintf(listed, sizeof listed, "(fedloginAssociatedUser=%s)", edn);
	snprintf(unbound, sizeof unbound, "(fedloginUnboundUser=%s)", edn);
	if (device_where(device, listed, policy_attrs, device_dn, sizeof device_dn) > 0) {
		is_listed = 1;
	} else if (device_where(device, "", policy_attrs, device_dn, sizeof device_dn) < 1) {
		fprintf(stderr, "ldap_bench: no such device %s\n", device);
		exit(1);
	}
	is_unbound = device_where(device, unbound, no_attrs, NULL, 0) > 0;
	if (ldap_policy_self_service() && !is_listed && !is_unbound)
		bindings(device_dn);
}

static void ldap_request(const char *op, const char *a, const char *b)
{
	struct device d;
	char dn[1024];

	if (strcmp(op, "lookup") == 0) {
		ldap_lookup(a, dn, sizeof dn);
	} else if (strcmp(op, "access") == 0) {
		ldap_access(a, b);
	} else {
		device_entry(a, &d);
		users_of(&d);
		free_device(&d);
	}
}

static void connect_ldap(const char *uri, const char *bind_dn, const char *password_file)
{
	char pw[256] = "";
	FILE *f = fopen(password_file, "r");
	int version = LDAP_VERSION3;
	struct berval cred;
	int rc;

	if (!f || !fgets(pw, sizeof pw, f))
		die("cannot read the password file");
	fclose(f);
	pw[strcspn(pw, "\r\n")] = 0;
	if (ldap_initialize(&ld, uri) != LDAP_SUCCESS)
		die("ldap_initialize");
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	cred.bv_val = pw;
	cred.bv_len = strlen(pw);
	rc = ldap_sasl_bind_s(ld, bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		fprintf(stderr, "ldap_bench: bind as %s: %s\n", bind_dn, ldap_err2string(rc));
		exit(1);
	}
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	const char *requests;
	long warmup, i = 0;
	int fd = -1, ldap_mode;
	char line[1024];
	FILE *f;

	if (argc == 5 && strcmp(argv[1], "socket") == 0) {
		ldap_mode = 0;
		fd = connect_socket(argv[2]);
		requests = argv[3];
		warmup = atol(argv[4]);
		answer = malloc(MAX_ANSWER + 1);
		if (!answer)
			die("out of memory");
	} else if (argc == 11 && (strcmp(argv[1], "ldap") == 0 || strcmp(argv[1], "ldap-fresh") == 0)) {
		ldap_mode = strcmp(argv[1], "ldap") == 0 ? 1 : 2;
		users_base = argv[5];
		groups_base = argv[6];
		devices_base = argv[7];
		policy_dn = argv[8];
		connect_ldap(argv[2], argv[3], argv[4]);
		requests = argv[9];
		warmup = atol(argv[10]);
	} else {
		fprintf(stderr,
			"usage: ldap_bench socket SOCKET REQUESTS WARMUP\n"
			"       ldap_bench ldap|ldap-fresh URI BIND_DN PASSWORD_FILE USERS_BASE GROUPS_BASE "
			"DEVICES_BASE POLICY_DN "
			"REQUESTS WARMUP\n");
		return 2;
	}
	f = fopen(requests, "r");
	if (!f)
		die("cannot open the requests file");
	while (fgets(line, sizeof line, f)) {
		char op[32] = "", a[400] = "", b[400] = "";
		int64_t t0, t1;

		if (sscanf(line, "%31s %399s %399s", op, a, b) < 2)
			continue;
		t0 = now_ns();
		if (ldap_mode == 0) {
			socket_request(fd, op, a, b);
		} else {
			if (!ld)
				connect_ldap(argv[2], argv[3], argv[4]);
			ldap_request(op, a, b);
			if (ldap_mode == 2) {
				ldap_unbind_ext_s(ld, NULL, NULL);
				ld = NULL;
			}
		}
		t1 = now_ns();
		if (i++ >= warmup)
			printf("%s %lld\n", op, (long long)(t1 - t0));
	}
	fclose(f);
	if (ld)
		ldap_unbind_ext_s(ld, NULL, NULL);
	if (fd >= 0)
		close(fd);
	return 0;
}
