#ifndef FEDLOGIN_CSYS_SHIM_H
#define FEDLOGIN_CSYS_SHIM_H
#include <crypt.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <systemd/sd-id128.h>
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
#endif
