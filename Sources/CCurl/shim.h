#ifndef FEDLOGIN_CCURL_SHIM_H
#define FEDLOGIN_CCURL_SHIM_H
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

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
