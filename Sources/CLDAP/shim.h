#ifndef FEDLOGIN_CLDAP_SHIM_H
#define FEDLOGIN_CLDAP_SHIM_H
#include <lber.h>
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
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

/* How a connection uses TLS (fedlogin_ldap_open's tls_mode). */
enum { FEDLOGIN_LDAP_TLS_NONE = 0, FEDLOGIN_LDAP_TLS_STARTTLS = 1, FEDLOGIN_LDAP_TLS_LDAPS = 2 };

/* How far fedlogin_ldap_open/connect got before a failure (*stage). */
enum {
	FEDLOGIN_LDAP_STAGE_SETUP = 0,    /* the handle or its TLS settings */
	FEDLOGIN_LDAP_STAGE_CONNECT = 1,  /* the connection (for ldaps://, with its TLS handshake) */
	FEDLOGIN_LDAP_STAGE_STARTTLS = 2, /* the StartTLS request and its handshake */
	FEDLOGIN_LDAP_STAGE_BIND = 3,
	FEDLOGIN_LDAP_STAGE_DONE = 4,
};

/* A connection to `uri`, not bound. With TLS (tls_mode STARTTLS or LDAPS)
   the TLS settings are the handle's own, in a TLS context made for it
   (LDAP_OPT_X_TLS_NEWCTX), never libldap's global ones: the server's
   certificate is checked as `require_cert` says (LDAP_OPT_X_TLS_DEMAND for
   every real connection: a chain to `ca_file`, or to the system's CAs when
   it is NULL, and the URI's host name in the certificate), TLS 1.2 at
   least; `cert_file` + `key_file`, when given, are the client certificate
   the server may ask for. Every network wait is bounded by `timeout_sec`.
   Returns 0 and *out, or an LDAP result code (the connection closed) with
   the reason in errbuf and the failed step in *stage. */
static inline int fedlogin_ldap_open(const char *uri, int timeout_sec, int tls_mode, const char *ca_file,
				     const char *cert_file, const char *key_file, int require_cert, LDAP **out,
				     int *stage, char *errbuf, size_t errlen)
{
	LDAP *ld = NULL;
	*out = NULL;
	*stage = FEDLOGIN_LDAP_STAGE_SETUP;
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
	if (tls_mode != FEDLOGIN_LDAP_TLS_NONE) {
		int min = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
		int is_server = 0;
		const char *what = "require_cert";
		rc = ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require_cert);
		if (rc == LDAP_OPT_SUCCESS) {
			what = "protocol_min";
			rc = ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min);
		}
		if (rc == LDAP_OPT_SUCCESS && ca_file) {
			what = "ca_file";
			rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, ca_file);
		}
		if (rc == LDAP_OPT_SUCCESS && cert_file) {
			what = "tls_cert";
			rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CERTFILE, cert_file);
		}
		if (rc == LDAP_OPT_SUCCESS && key_file) {
			what = "tls_key";
			rc = ldap_set_option(ld, LDAP_OPT_X_TLS_KEYFILE, key_file);
		}
		if (rc == LDAP_OPT_SUCCESS) {
			what = "the TLS context (ca_file, tls_cert, tls_key)";
			rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &is_server);
		}
		if (rc != LDAP_OPT_SUCCESS) {
			snprintf(errbuf, errlen, "TLS settings: %s cannot be used", what);
			ldap_unbind_ext_s(ld, NULL, NULL);
			return LDAP_LOCAL_ERROR;
		}
	}
	*stage = FEDLOGIN_LDAP_STAGE_CONNECT;
	rc = ldap_connect(ld);
	if (rc != LDAP_SUCCESS) {
		fedlogin_ldap_reason(ld, rc, "", errbuf, errlen);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return rc;
	}
	if (tls_mode == FEDLOGIN_LDAP_TLS_STARTTLS) {
		*stage = FEDLOGIN_LDAP_STAGE_STARTTLS;
		rc = ldap_start_tls_s(ld, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			fedlogin_ldap_reason(ld, rc, "StartTLS: ", errbuf, errlen);
			ldap_unbind_ext_s(ld, NULL, NULL);
			return rc;
		}
	}
	*out = ld;
	return 0;
}

/* A connection to `uri` as fedlogin_ldap_open makes it (the server's
   certificate always verified), bound as `bind_dn` with `password` (simple
   bind), or with SASL EXTERNAL when bind_dn is NULL: the identity is the
   ldapi:// peer's credentials, or the TLS client certificate. Returns 0 and
   *out, or an LDAP result code (the connection closed) with the reason in
   errbuf and the failed step in *stage. */
static inline int fedlogin_ldap_connect(const char *uri, int timeout_sec, int tls_mode, const char *ca_file,
					const char *cert_file, const char *key_file, const char *bind_dn,
					const char *password, LDAP **out, int *stage, char *errbuf, size_t errlen)
{
	LDAP *ld = NULL;
	int rc = fedlogin_ldap_open(uri, timeout_sec, tls_mode, ca_file, cert_file, key_file,
				    LDAP_OPT_X_TLS_DEMAND, &ld, stage, errbuf, errlen);
	if (rc != 0)
		return rc;
	*stage = FEDLOGIN_LDAP_STAGE_BIND;
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
	*stage = FEDLOGIN_LDAP_STAGE_DONE;
	*out = ld;
	return 0;
}

/* Appends `s` to out (", " between items), truncating. */
static inline void fedlogin_ldap_append(char *out, size_t outlen, const char *s, size_t n)
{
	size_t used = strlen(out);
	if (used + 3 >= outlen)
		return;
	if (used) {
		memcpy(out + used, ", ", 2);
		used += 2;
	}
	if (n > outlen - used - 1)
		n = outlen - used - 1;
	memcpy(out + used, s, n);
	out[used + n] = 0;
}

/* The whole DER element (tag, length, contents) whose contents `c` is, as
   ber_skip_element gives it: DER's lengths are minimal, so the header is
   the tag byte and the length's shortest form. */
static inline struct berval fedlogin_ldap_der_element(struct berval c)
{
	size_t hdr = c.bv_len < 0x80 ? 2 : c.bv_len < 0x100 ? 3 : c.bv_len < 0x10000 ? 4 : 5;
	struct berval e = {c.bv_len + hdr, c.bv_val - hdr};
	return e;
}

/* The names a DER certificate is issued for, read with lber: its subject
   DN, then the dNSName ("DNS:") and iPAddress ("IP:") values of its
   subjectAltName. Returns 0, or -1 when it cannot be read. */
static inline int fedlogin_ldap_cert_names(struct berval *der, char *out, size_t outlen)
{
	static const unsigned char san_oid[] = {0x55, 0x1d, 0x11}; /* 2.5.29.17 */
	ber_len_t len;
	/* ber_skip_element gives an element's contents, without tag and length. */
	struct berval tbs, el, subject, exts;
	int ok = -1;
	out[0] = 0;
	BerElement *cert = ber_init(der);
	if (!cert)
		return -1;
	BerElement *t = NULL, *x = NULL;
	if (ber_skip_tag(cert, &len) == LBER_DEFAULT || ber_skip_element(cert, &tbs) == LBER_DEFAULT)
		goto done;
	t = ber_init(&tbs);
	if (!t)
		goto done;
	if (ber_peek_tag(t, &len) == 0xa0 && ber_skip_element(t, &el) == LBER_DEFAULT) /* version */
		goto done;
	for (int i = 0; i < 4; i++) /* serial, signature, issuer, validity */
		if (ber_skip_element(t, &el) == LBER_DEFAULT)
			goto done;
	if (ber_skip_element(t, &subject) == LBER_DEFAULT)
		goto done;
	struct berval name_der = fedlogin_ldap_der_element(subject);
	struct berval dn = {0, NULL};
	if (ldap_X509dn2bv(&name_der, &dn, NULL, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS && dn.bv_val) {
		snprintf(out, outlen, "subject %s", dn.bv_val);
		ber_memfree(dn.bv_val);
	}
	ok = 0;
	if (ber_skip_element(t, &el) == LBER_DEFAULT) /* subjectPublicKeyInfo */
		goto done;
	ber_tag_t tag;
	while ((tag = ber_peek_tag(t, &len)) == 0x81 || tag == 0x82)
		ber_skip_element(t, &el);
	if (tag != 0xa3 || ber_skip_element(t, &exts) == LBER_DEFAULT)
		goto done;
	x = ber_init(&exts);
	if (!x || ber_skip_tag(x, &len) == LBER_DEFAULT) /* into the SEQUENCE OF Extension */
		goto done;
	struct berval ext;
	while (ber_peek_tag(x, &len) == LBER_SEQUENCE && ber_skip_element(x, &ext) != LBER_DEFAULT) {
		BerElement *e = ber_init(&ext);
		struct berval oid, value;
		if (!e)
			break;
		if (ber_skip_element(e, &oid) != LBER_DEFAULT && oid.bv_len == sizeof san_oid &&
		    memcmp(oid.bv_val, san_oid, sizeof san_oid) == 0) {
			if (ber_peek_tag(e, &len) == LBER_BOOLEAN)
				ber_skip_element(e, &el);
			if (ber_get_stringbv(e, &value, LBER_BV_NOTERM) != LBER_DEFAULT) {
				BerElement *g = ber_init(&value);
				if (g && ber_skip_tag(g, &len) != LBER_DEFAULT) {
					struct berval name;
					while ((tag = ber_peek_tag(g, &len)) != LBER_DEFAULT) {
						if (tag == 0x82 && ber_get_stringbv(g, &name, LBER_BV_NOTERM) != LBER_DEFAULT) {
							char buf[300];
							int n = snprintf(buf, sizeof buf, "DNS:%.*s",
									 (int)(name.bv_len < 255 ? name.bv_len : 255), name.bv_val);
							fedlogin_ldap_append(out, outlen, buf, (size_t)n);
						} else if (tag == 0x87 && ber_get_stringbv(g, &name, LBER_BV_NOTERM) != LBER_DEFAULT) {
							char ip[INET6_ADDRSTRLEN + 3] = "IP:";
							if ((name.bv_len == 4 && inet_ntop(AF_INET, name.bv_val, ip + 3, INET6_ADDRSTRLEN)) ||
							    (name.bv_len == 16 && inet_ntop(AF_INET6, name.bv_val, ip + 3, INET6_ADDRSTRLEN)))
								fedlogin_ldap_append(out, outlen, ip, strlen(ip));
						} else if (ber_skip_element(g, &el) == LBER_DEFAULT) {
							break;
						}
					}
				}
				if (g)
					ber_free(g, 1);
			}
		}
		ber_free(e, 1);
	}
done:
	if (x)
		ber_free(x, 1);
	if (t)
		ber_free(t, 1);
	ber_free(cert, 1);
	return ok;
}

/* After a TLS failure, what the server's certificate says, for the error
   message: a handshake with the server's certificate requested but not
   verified (LDAP_OPT_X_TLS_ALLOW), no bind and nothing sent beyond the
   handshake, then the certificate's subject and names (fedlogin_ldap_cert_names).
   Returns 0 with the names in out, or an LDAP result code when even that
   handshake fails (the server speaks no TLS there) with the reason in out. */
static inline int fedlogin_ldap_tls_names(const char *uri, int timeout_sec, int tls_mode, const char *ca_file,
					  const char *cert_file, const char *key_file, char *out, size_t outlen)
{
	LDAP *ld = NULL;
	int stage = 0;
	int rc = fedlogin_ldap_open(uri, timeout_sec, tls_mode, ca_file, cert_file, key_file, LDAP_OPT_X_TLS_ALLOW,
				    &ld, &stage, out, outlen);
	if (rc != 0)
		return rc;
	struct berval der = {0, NULL};
	rc = ldap_get_option(ld, LDAP_OPT_X_TLS_PEERCERT, &der);
	if (rc != LDAP_OPT_SUCCESS || !der.bv_val || fedlogin_ldap_cert_names(&der, out, outlen) != 0) {
		snprintf(out, outlen, "the server's certificate cannot be read");
		rc = LDAP_LOCAL_ERROR;
	}
	if (der.bv_val)
		ber_memfree(der.bv_val);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return rc == LDAP_OPT_SUCCESS ? 0 : rc;
}

/* The bound identity (RFC 4532 Who am I?), e.g. "dn:cn=dev1,ou=devices,...",
   in out; returns the LDAP result code. */
static inline int fedlogin_ldap_whoami(LDAP *ld, char *out, size_t outlen)
{
	struct berval *authzid = NULL;
	out[0] = 0;
	int rc = ldap_whoami_s(ld, &authzid, NULL, NULL);
	if (rc == LDAP_SUCCESS && authzid && authzid->bv_val)
		snprintf(out, outlen, "%.*s", (int)authzid->bv_len, authzid->bv_val);
	else if (rc != LDAP_SUCCESS)
		fedlogin_ldap_reason(ld, rc, "", out, outlen);
	if (authzid)
		ber_bvfree(authzid);
	return rc;
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

/* One page of a search with the paged results control (RFC 2696), so that
   a server's size limit for the bind DN (slapd's default: 500 entries)
   does not cut a long answer short. `cookie` holds the previous page's
   cookie (bv_len 0 for the first page) and receives the next page's
   (bv_len 0 after the last; its bv_val is freed here or by the caller with
   ber_memfree). The control is not critical: a server without paging
   answers the whole search at once. Returns the LDAP result code, with a
   reason in errbuf. */
static inline int fedlogin_ldap_search_page(LDAP *ld, const char *base, int scope, const char *filter,
					    char **attrs, int pagesize, int timeout_sec,
					    struct berval *cookie, LDAPMessage **res, char *errbuf,
					    size_t errlen)
{
	struct timeval tv = {timeout_sec, 0};
	LDAPControl *page = NULL;
	LDAPControl *ctrls[2] = {NULL, NULL};
	LDAPControl **returned = NULL;
	*res = NULL;
	errbuf[0] = 0;
	int rc = ldap_create_page_control(ld, pagesize, cookie->bv_len ? cookie : NULL, 0, &page);
	if (cookie->bv_val)
		ber_memfree(cookie->bv_val);
	cookie->bv_val = NULL;
	cookie->bv_len = 0;
	if (rc != LDAP_SUCCESS) {
		fedlogin_ldap_reason(ld, rc, "paged results control: ", errbuf, errlen);
		return rc;
	}
	ctrls[0] = page;
	rc = ldap_search_ext_s(ld, base, scope, filter, attrs, 0, ctrls, NULL, &tv, 0, res);
	ldap_control_free(page);
	if (rc != LDAP_SUCCESS) {
		fedlogin_ldap_reason(ld, rc, "", errbuf, errlen);
		return rc;
	}
	/* The next page's cookie. A result or a page response that does not
	   parse is an error: taken as "no more pages" it would cut the answer
	   short without a word. */
	int result = LDAP_SUCCESS;
	rc = ldap_parse_result(ld, *res, &result, NULL, NULL, NULL, &returned, 0);
	if (rc != LDAP_SUCCESS) {
		fedlogin_ldap_reason(ld, rc, "search result: ", errbuf, errlen);
		return rc;
	}
	if (returned) {
		LDAPControl *response = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, returned, NULL);
		ber_int_t estimate = 0;
		if (response)
			rc = ldap_parse_pageresponse_control(ld, response, &estimate, cookie);
		ldap_controls_free(returned);
		if (rc != LDAP_SUCCESS) {
			fedlogin_ldap_reason(ld, rc, "paged results response: ", errbuf, errlen);
			return rc;
		}
	}
	return LDAP_SUCCESS;
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
   `uri` (TLS as for fedlogin_ldap_open), bound as the user `dn` with `oldpw` (simple bind), which changes
   the bound user's own password from `oldpw` to `newpw`: the directory
   hashes it and applies its own policy. Returns 0 or an LDAP result code,
   with a reason in errbuf; *stage is 0 when the connection or the bind
   failed (*connect_stage: how far, as for fedlogin_ldap_connect), 1 when
   the password modify did. */
static inline int fedlogin_ldap_passwd(const char *uri, int timeout_sec, int tls_mode, const char *ca_file,
				       const char *cert_file, const char *key_file, const char *dn, const char *oldpw,
				       const char *newpw, int *stage, int *connect_stage, char *errbuf, size_t errlen)
{
	LDAP *ld = NULL;
	*stage = 0;
	int rc = fedlogin_ldap_connect(uri, timeout_sec, tls_mode, ca_file, cert_file, key_file, dn, oldpw, &ld,
				       connect_stage, errbuf, errlen);
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
