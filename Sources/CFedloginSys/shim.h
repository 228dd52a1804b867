#ifndef FEDLOGIN_CSYS_SHIM_H
#define FEDLOGIN_CSYS_SHIM_H
#include <crypt.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <systemd/sd-id128.h>
#include <curl/curl.h>
#include <qrencode.h>
#include <string.h>
#include <fcntl.h>

/* pipe2(2) with O_CLOEXEC (a _GNU_SOURCE declaration Swift's Glibc module
   does not show): no concurrently spawned program inherits the pipe. */
int pipe2(int pipefd[2], int flags);
static inline int fedlogin_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

/* prctl(2) is variadic; Swift calls these. A process that is not dumpable
   writes no core file, and its /proc/PID files are owned by root and
   closed to ptrace access by other users. */
#include <sys/prctl.h>
static inline int fedlogin_set_dumpable(int on) { return prctl(PR_SET_DUMPABLE, (unsigned long)on, 0UL, 0UL, 0UL); }
static inline int fedlogin_get_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL); }
#include <stdlib.h>

/* The layout of Linux's struct ucred (SO_PEERCRED), which glibc hides
   without _GNU_SOURCE. */
struct fedlogin_ucred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};
#ifndef SO_PEERCRED
#define SO_PEERCRED 17
#endif
static const int fedlogin_so_peercred = SO_PEERCRED;

/* sd_journal_send is variadic; Swift calls this fixed-arity wrapper. */
static inline int fedlogin_journal_send(const char *message, int priority,
                                        const char *message_id, const char *user,
                                        const char *service, const char *idp,
                                        const char *syslog_identifier) {
    return sd_journal_send("MESSAGE=%s", message,
                           "PRIORITY=%d", priority,
                           "MESSAGE_ID=%s", message_id ? message_id : "",
                           "FEDLOGIN_USER=%s", user ? user : "",
                           "FEDLOGIN_SERVICE=%s", service ? service : "",
                           "FEDLOGIN_IDP=%s", idp ? idp : "",
                           "SYSLOG_IDENTIFIER=%s", syslog_identifier,
                           NULL);
}

/* A yescrypt hash of a passcode via libcrypt; returns 0 on success. */
static inline int fedlogin_hash_passcode(const char *passcode, char *out, size_t outlen) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL) return -1;
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (!data) return -1;
    const char *h = crypt_r(passcode, salt, data);
    int rc = -1;
    if (h && h[0] != '*' && strlen(h) < outlen) { strcpy(out, h); rc = 0; }
    explicit_bzero(data, sizeof(*data));
    free(data);
    return rc;
}

/* Whether libcrypt can verify hashes of this scheme: it can when hashing a
   probe with the hash as the setting gives a hash (not a "*" failure token)
   of the same length. Legacy schemes it still verifies ($1$, $5$) pass;
   disabled and unknown ones do not. */
static inline int fedlogin_hash_supported(const char *hash) {
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (!data) return 0;
    const char *h = crypt_r("fedlogin-probe", hash, data);
    int ok = h && h[0] != '*' && strlen(h) == strlen(hash);
    explicit_bzero(data, sizeof(*data));
    free(data);
    return ok;
}

/* Whether `password` matches the crypt(3) `hash` (constant-time compare). */
static inline int fedlogin_verify_password(const char *password, const char *hash) {
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (!data) return 0;
    const char *h = crypt_r(password, hash, data);
    int ok = 0;
    if (h && h[0] != '*' && strlen(h) == strlen(hash)) {
        unsigned char diff = 0;
        for (size_t i = 0; hash[i]; i++) diff |= (unsigned char)(h[i] ^ hash[i]);
        ok = diff == 0;
    }
    explicit_bzero(data, sizeof(*data));
    free(data);
    return ok;
}

/* The device id: the systemd app-specific machine id for fedlogin
   (sd_id128_get_machine_app_specific), as 32 hex characters. */
static inline int fedlogin_machine_app_id(char out[33]) {
    sd_id128_t app = SD_ID128_MAKE(6b,1c,0e,42,93,5f,4d,7a,a3,11,f0,2e,8d,c4,5b,97);
    sd_id128_t id;
    int r = sd_id128_get_machine_app_specific(app, &id);
    if (r < 0) return r;
    sd_id128_to_string(id, out);
    return 0;
}
/* One HTTP request through libcurl, for the IdP client. Blocking: callers
   run it off the event loops. Proxies come from the usual environment
   variables; `cainfo` (may be NULL) adds a CA bundle. The response body is
   capped at 1 MiB. Returns 0 and fills *status/*body/*body_len (free *body),
   or -1 with a reason in errbuf. */
struct fedlogin_http_buf { char *data; size_t len; int overflow; };

static size_t fedlogin_http_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct fedlogin_http_buf *b = (struct fedlogin_http_buf *)userdata;
    size_t n = size * nmemb;
    if (b->len + n > (1u << 20)) { b->overflow = 1; return 0; }
    char *grown = (char *)realloc(b->data, b->len + n + 1);
    if (!grown) return 0;
    b->data = grown;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

/* Called once, before any thread makes a request. */
static inline int fedlogin_http_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }

static inline int fedlogin_http(const char *method, const char *url, const char *const *headers, int nheaders,
                                const char *body, size_t body_len, long timeout_ms, const char *cainfo,
                                long *status, char **out, size_t *out_len, char *errbuf /* CURL_ERROR_SIZE */) {
    CURL *c = curl_easy_init();
    if (!c) { strcpy(errbuf, "curl_easy_init failed"); return -1; }
    struct fedlogin_http_buf b = {NULL, 0, 0};
    struct curl_slist *h = NULL;
    for (int i = 0; i < nheaders; i++) h = curl_slist_append(h, headers[i]);
    errbuf[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fedlogin_http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "fedlogin");
    if (cainfo && cainfo[0]) curl_easy_setopt(c, CURLOPT_CAINFO, cainfo);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    CURLcode rc = curl_easy_perform(c);
    int ret = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        *out = b.data;
        *out_len = b.len;
        b.data = NULL;
        ret = 0;
    } else if (b.overflow) {
        strcpy(errbuf, "response larger than 1 MiB");
    } else if (!errbuf[0]) {
        strncpy(errbuf, curl_easy_strerror(rc), CURL_ERROR_SIZE - 1);
    }
    free(b.data);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return ret;
}
#endif
