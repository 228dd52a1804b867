#ifndef FEDLOGIN_CLDAP_SHIM_H
#define FEDLOGIN_CLDAP_SHIM_H
#include <lber.h>
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* OpenLDAP's libldap, for fedlogin-directoryd's LDAP backend. All calls
   block: callers run them off the event loops and the concurrency pool. */

/* SASL EXTERNAL asks nothing: the peer's credentials are the identity. */
static int fedlogin_ldap_no_interaction(LDAP *ld, unsigned flags, void *defaults, void *interact)
{
	(void)ld;
	(void)flags;
	(void)defaults;
	(void)interact;
	return LDAP_SUCCESS;
}

/* The reason for result `rc` on `ld`: libldap's text, then the server's
   diagnostic message when it sent one, after `prefix`. */
static inline void fedlogin_ldap_reason(LDAP *ld, int rc, const char *prefix, char *errbuf, size_t errlen)
{
	char *diag = NULL;
	ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	snprintf(errbuf, errlen, "%s%s%s%s", prefix, ldap_err2string(rc), diag && diag[0] ? ": " : "",
		 diag ? diag : "");
	ldap_memfree(diag);
}

/* A connection to `uri`, bound as `bind_dn` with `password` (simple bind),
   or with SASL EXTERNAL when bind_dn is NULL (ldapi:// peer credentials).
   Every network wait is bounded by `timeout_sec`. Returns 0 and *out, or an
   LDAP result code (the connection closed) with a reason in errbuf. */
static inline int fedlogin_ldap_connect(const char *uri, int timeout_sec, const char *bind_dn,
					const char *password, LDAP **out, char *errbuf, size_t errlen)
{
	LDAP *ld = NULL;
	*out = NULL;
	errbuf[0] = 0;
	int rc = ldap_initialize(&ld, uri);
	if (rc != LDAP_SUCCESS) {
		snprintf(errbuf, errlen, "%s", ldap_err2string(rc));
		return rc;
	}
	int version = LDAP_VERSION3;
	struct timeval tv = {timeout_sec, 0};
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if (bind_dn) {
		struct berval cred = {password ? strlen(password) : 0, (char *)(password ? password : "")};
		rc = ldap_sasl_bind_s(ld, bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	} else {
		rc = ldap_sasl_interactive_bind_s(ld, NULL, "EXTERNAL", NULL, NULL, LDAP_SASL_QUIET,
						  fedlogin_ldap_no_interaction, NULL);
	}
	if (rc != LDAP_SUCCESS) {
		fedlogin_ldap_reason(ld, rc, "bind: ", errbuf, errlen);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return rc;
	}
	*out = ld;
	return 0;
}

/* A search (scope: LDAP_SCOPE_BASE/ONELEVEL/SUBTREE) for `attrs` (a NULL-
   terminated list), at most `sizelimit` entries, bounded by `timeout_sec`.
   Returns the LDAP result code; *res is set (free with ldap_msgfree) when it
   is LDAP_SUCCESS, LDAP_NO_SUCH_OBJECT or LDAP_SIZELIMIT_EXCEEDED. */
static inline int fedlogin_ldap_search(LDAP *ld, const char *base, int scope, const char *filter,
				       char **attrs, int sizelimit, int timeout_sec, LDAPMessage **res,
				       char *errbuf, size_t errlen)
{
	struct timeval tv = {timeout_sec, 0};
	*res = NULL;
	errbuf[0] = 0;
	int rc = ldap_search_ext_s(ld, base, scope, filter, attrs, 0, NULL, NULL, &tv, sizelimit, res);
	if (rc != LDAP_SUCCESS) {
		fedlogin_ldap_reason(ld, rc, "", errbuf, errlen);
	}
	return rc;
}

/* Adds the entry `dn` with `n` attributes, one value each (types[i]:
   values[i]), bounded by the connection's timeout. Returns the LDAP result
   code (LDAP_ALREADY_EXISTS when the entry is there), with a reason in errbuf. */
static inline int fedlogin_ldap_add(LDAP *ld, const char *dn, int n, char **types, char **values,
				    char *errbuf, size_t errlen)
{
	LDAPMod mods[16];
	LDAPMod *list[17];
	char *vals[16][2];
	errbuf[0] = 0;
	if (n < 0 || n > 16) {
		snprintf(errbuf, errlen, "too many attributes");
		return LDAP_PARAM_ERROR;
	}
	for (int i = 0; i < n; i++) {
		vals[i][0] = values[i];
		vals[i][1] = NULL;
		mods[i].mod_op = LDAP_MOD_ADD;
		mods[i].mod_type = types[i];
		mods[i].mod_values = vals[i];
		list[i] = &mods[i];
	}
	list[n] = NULL;
	int rc = ldap_add_ext_s(ld, dn, list, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		fedlogin_ldap_reason(ld, rc, "", errbuf, errlen);
	}
	return rc;
}

/* A password change (RFC 3062 Password Modify) on a fresh connection to
   `uri`, bound as the user `dn` with `oldpw` (simple bind), which changes
   the bound user's own password from `oldpw` to `newpw`: the directory
   hashes it and applies its own policy. Returns 0 or an LDAP result code,
   with a reason in errbuf; *stage is 0 when the connection or the bind
   failed, 1 when the password modify did. */
static inline int fedlogin_ldap_passwd(const char *uri, int timeout_sec, const char *dn, const char *oldpw,
				       const char *newpw, int *stage, char *errbuf, size_t errlen)
{
	LDAP *ld = NULL;
	*stage = 0;
	int rc = fedlogin_ldap_connect(uri, timeout_sec, dn, oldpw, &ld, errbuf, errlen);
	if (rc != 0)
		return rc;
	*stage = 1;
	struct berval user = {strlen(dn), (char *)dn};
	struct berval old = {strlen(oldpw), (char *)oldpw};
	struct berval new_ = {strlen(newpw), (char *)newpw};
	struct berval generated = {0, NULL};
	rc = ldap_passwd_s(ld, &user, &old, &new_, &generated, NULL, NULL);
	if (rc != LDAP_SUCCESS)
		fedlogin_ldap_reason(ld, rc, "password modify: ", errbuf, errlen);
	if (generated.bv_val)
		ber_memfree(generated.bv_val);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return rc;
}

static inline void fedlogin_ldap_close(LDAP *ld)
{
	if (ld)
		ldap_unbind_ext_s(ld, NULL, NULL);
}
#endif
