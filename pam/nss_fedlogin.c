/*
 * nss_fedlogin.c - glibc NSS module of fedlogin (libnss_fedlogin.so.2).
 *
 * Answers getpwnam, getpwuid, getgrnam and getgrgid for the users fedlogind
 * announces (directory users who may log in here and have no local account
 * yet). A lookup first reads fedlogind's NSS cache file (below); when that
 * has no answer, it sends one request frame on fedlogind's socket and reads
 * exactly one reply frame (docs/protocol.md, "NSS clients"):
 *
 *   NSS_PASSWD / NSS_GROUP for the key asked   NSS_STATUS_SUCCESS
 *   NSS_NOTFOUND                               NSS_STATUS_NOTFOUND, ENOENT
 *   anything else (RESULT of any status, another frame type, an entry for
 *   another key, a malformed frame, a short read, no socket, no connection,
 *   a timeout)                                 NSS_STATUS_UNAVAIL, ENOENT
 *   an entry that does not fit the buffer      NSS_STATUS_TRYAGAIN, ERANGE
 *
 * The cache file (FEDLOGIN_NSS_CACHE, docs/protocol.md, "NSS cache file";
 * format in nss_cache.h) holds fedlogind's recent answers, so most lookups
 * cost no round trip. It is opened with O_NOFOLLOW and O_NONBLOCK and used
 * only if it is a regular file root owns, writable by no one else, of
 * FL_CACHE_HEADER to FL_CACHE_MAX_SIZE bytes; a file of up to
 * FL_CACHE_READ_MAX bytes is read into memory for the one lookup, a larger
 * one mapped read-only (the descriptor closed at once, the copy freed or the
 * mapping undone before the lookup returns). Its header must be version 1, of the file's size,
 * written no later than now (CLOCK_REALTIME: a clock that went back ignores
 * the file), with both indexes inside the file. Then:
 *
 *   by name: a fresh USER record           the entry (getgrnam: its private
 *                                          group, gid, no members)
 *            a fresh NOTFOUND record       NSS_STATUS_NOTFOUND, ENOENT
 *   by id (a gid is looked up as the uid of its private group):
 *            a fresh USER record           the entry (getgrgid: if its gid
 *                                          is the one asked)
 *            no record, before ids_until   NSS_STATUS_NOTFOUND, ENOENT
 *   an ASK record, an expired one, no record: the socket is asked
 *
 * An entry from the file is checked like a reply entry (below), and does
 * not fit a small buffer the same way (TRYAGAIN, ERANGE). Any failed check
 * of the file, its header, or a record the lookup reads ignores the whole
 * file: the socket is asked as if there were none. The file can only make a
 * lookup faster, never make it fail.
 *
 * UNAVAIL is never TRYAGAIN/EAGAIN: a retry would only wait on the same
 * daemon again. With the default action (continue) glibc goes on to the next
 * source, and `getent` says "not found" (exit 2).
 *
 * Neither looked up in the cache file nor asked, answered at once:
 *   - FEDLOGIN_NSS_DISABLE set (any value), or the caller is PID 1:
 *     NSS_STATUS_UNAVAIL. fedlogind sets the variable for itself and the
 *     shadow-utils it runs, so they never ask it about itself; init (PID 1)
 *     would wait on a socket whose daemon only it can start.
 *   - root, uid 0, gid 0, uid/gid 4294967295 ((uid_t)-1), and names that are
 *     empty, longer than FL_NSS_MAX_NAME bytes or hold ':' or '\n':
 *     NSS_STATUS_NOTFOUND, ENOENT.
 *
 * A reply entry is refused (UNAVAIL) unless it is for the key asked, its
 * uid and gid are neither 0 nor 4294967295, its name is valid and not
 * "root", and no field holds ':' or '\n' (they would break passwd/group
 * lines); group members must be non-empty names.
 *
 * Bounds: FEDLOGIN_NSS_CONNECT_TIMEOUT_MS on connecting and
 * FEDLOGIN_NSS_TIMEOUT_MS on the whole lookup, connect included. A missing
 * socket fails at once. The socket path is fixed (FEDLOGIN_DEFAULT_SOCKET):
 * no argument, variable or file changes it. The trust checks are those of
 * pam_fedlogin.so: a socket owned by root (lstat, so no symlink), and a peer
 * running as uid 0 (SO_PEERCRED). The socket's descriptor is close-on-exec
 * and kept off 0-2; writes use MSG_NOSIGNAL. The cache file's path is fixed
 * in the same way, and its descriptor (close-on-exec, read-only) is closed
 * before anything is read from it.
 *
 * No enumeration: there are no setpwent/getpwent/endpwent or group
 * equivalents. glibc skips a source that lacks them, so `getent passwd`
 * lists the other sources only.
 *
 * Thread-safe: no mutable static state; each lookup has its own socket,
 * mapping and buffers. Silent: nothing is logged. libc only.
 */
#include "fedlogin_client.h"
#include "fedlogin_proto.h"
#include "nss_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <nss.h>
#include <poll.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Largest body of a well-formed NSS reply: NSS_PASSWD with four strings of
 * FEDLOGIN_MAX_STR bytes. A longer length prefix is refused unread. */
#define FL_NSS_MAX_REPLY (2 + 4 * (2 + FEDLOGIN_MAX_STR) + 2 * 4)
/* A request frame: header, version, type, a name of at most FL_NSS_MAX_NAME. */
#define FL_NSS_MAX_REQUEST (FEDLOGIN_FRAME_HEADER + 2 + 2 + FL_NSS_MAX_NAME)

enum nss_status _nss_fedlogin_getpwnam_r(const char *name, struct passwd *pwd, char *buf, size_t buflen,
					 int *errnop);
enum nss_status _nss_fedlogin_getpwuid_r(uid_t uid, struct passwd *pwd, char *buf, size_t buflen,
					 int *errnop);
enum nss_status _nss_fedlogin_getgrnam_r(const char *name, struct group *grp, char *buf, size_t buflen,
					 int *errnop);
enum nss_status _nss_fedlogin_getgrgid_r(gid_t gid, struct group *grp, char *buf, size_t buflen, int *errnop);

#ifdef FEDLOGIN_NSS_TEST
/* Test builds only (pam/tests/test_nss.c): the socket a lookup asks and the
 * cache file it reads first. The shipped module has no such variables and
 * always uses the fixed paths. */
static const char *fl_nss_test_socket = FEDLOGIN_DEFAULT_SOCKET;
static const char *fl_nss_test_cache = FEDLOGIN_NSS_CACHE;

void fl_nss_test_set_socket(const char *path);
void fl_nss_test_set_socket(const char *path)
{
	fl_nss_test_socket = path;
}

void fl_nss_test_set_cache(const char *path);
void fl_nss_test_set_cache(const char *path)
{
	fl_nss_test_cache = path;
}
#define FL_NSS_SOCKET fl_nss_test_socket
#define FL_NSS_CACHE fl_nss_test_cache
#else
#define FL_NSS_SOCKET FEDLOGIN_DEFAULT_SOCKET
#define FL_NSS_CACHE FEDLOGIN_NSS_CACHE
#endif

/* One reply frame: the parsed message views into `body` (freed by the caller). */
struct fl_reply {
	uint8_t *body;
	struct fedlogin_msg msg;
};

#define now_ms fedlogin_now_ms

/*
 * The transport: sends the request frame `req` to the daemon at `path` and
 * reads exactly one reply frame into `r` (r->body is malloc'ed; the caller
 * frees it). Everything, connect included, ends by FEDLOGIN_NSS_TIMEOUT_MS.
 * Returns 0, or -1 with nothing to free.
 */
static int fl_nss_query(const char *path, const uint8_t *req, size_t req_len, struct fl_reply *r)
{
	const int64_t deadline = now_ms() + FEDLOGIN_NSS_TIMEOUT_MS;
	uint8_t header[FEDLOGIN_FRAME_HEADER];
	uint32_t len;
	/* Silent (no log): a lookup that fails is UNAVAIL, and NSS has no log of its own. */
	struct fedlogin_client c = {.fd = -1, .deadline = deadline};

	r->body = NULL;
	if (fedlogin_client_connect(&c, path, FEDLOGIN_NSS_CONNECT_TIMEOUT_MS) != 0)
		return -1;
	if (fedlogin_client_send(&c, req, req_len, deadline, FEDLOGIN_NSS_TIMEOUT_MS) != 0 ||
	    fedlogin_client_recv(&c, header, sizeof(header), deadline, FEDLOGIN_NSS_TIMEOUT_MS) != 0 ||
	    fedlogin_frame_length(header, &len) != FEDLOGIN_OK || len > FL_NSS_MAX_REPLY)
		goto fail;
	r->body = malloc(len);
	if (r->body == NULL ||
	    fedlogin_client_recv(&c, r->body, len, deadline, FEDLOGIN_NSS_TIMEOUT_MS) != 0 ||
	    fedlogin_parse(r->body, len, &r->msg) != FEDLOGIN_OK)
		goto fail;
	close(c.fd);
	return 0;

fail:
	close(c.fd);
	free(r->body);
	r->body = NULL;
	return -1;
}

/* The field `f` (a string) equals the name asked. */
static bool same_name(const struct fedlogin_field *f, const struct fl_key *k)
{
	return f->len == k->name_len && memcmp(f->str, k->name, f->len) == 0;
}

/* Copies a protocol string to *p as a C string and advances *p. */
static char *put_str(char **p, const char *s, size_t len)
{
	char *start = *p;

	memcpy(start, s, len);
	start[len] = '\0';
	*p += len + 1;
	return start;
}

/*
 * The start of a lookup: NOTFOUND for a key never asked about, UNAVAIL when
 * the module is switched off, otherwise a request frame in `req` and
 * NSS_STATUS_SUCCESS (meaning: go on and ask).
 */
static enum nss_status fl_prepare(const struct fl_key *k, uint8_t *req, size_t cap, size_t *req_len,
				  int *errnop)
{
	struct fedlogin_builder b;

	if (getenv("FEDLOGIN_NSS_DISABLE") != NULL || getpid() == 1) {
		*errnop = ENOENT;
		return NSS_STATUS_UNAVAIL;
	}
	if (k->name != NULL ? !fl_nss_valid_name(k->name, k->name_len) : !fl_nss_valid_id(k->id)) {
		*errnop = ENOENT;
		return NSS_STATUS_NOTFOUND;
	}
	fedlogin_build_begin(&b, req, cap, k->type);
	if (k->name != NULL)
		fedlogin_build_str(&b, k->name, k->name_len);
	else
		fedlogin_build_u32(&b, k->id);
	if (fedlogin_build_finish(&b, req_len) != FEDLOGIN_OK) {
		*errnop = ENOENT;
		return NSS_STATUS_UNAVAIL;
	}
	return NSS_STATUS_SUCCESS;
}

/* The length of a name argument, capped just past FL_NSS_MAX_NAME. */
static size_t key_len(const char *name)
{
	return name == NULL ? 0 : strnlen(name, FL_NSS_MAX_NAME + 1);
}

/* Fills `pwd` from an NSS_PASSWD reply to `k`, or refuses it. */
static enum nss_status fill_passwd(const struct fedlogin_msg *m, const struct fl_key *k, struct passwd *pwd,
				   char *buf, size_t buflen, int *errnop)
{
	const struct fedlogin_field *name = &m->fields[0], *gecos = &m->fields[3];
	const struct fedlogin_field *dir = &m->fields[4], *shell = &m->fields[5];
	uint32_t uid = m->fields[1].num, gid = m->fields[2].num;
	size_t need;
	char *p = buf;

	if (!fl_nss_valid_name(name->str, name->len) || !fl_nss_valid_id(uid) || !fl_nss_valid_id(gid) ||
	    fl_nss_has_separator(gecos->str, gecos->len) || fl_nss_has_separator(dir->str, dir->len) ||
	    fl_nss_has_separator(shell->str, shell->len) ||
	    (k->name != NULL ? !same_name(name, k) : uid != k->id)) {
		*errnop = ENOENT;
		return NSS_STATUS_UNAVAIL;
	}
	need = name->len + 1 + sizeof("x") + gecos->len + 1 + dir->len + 1 + shell->len + 1;
	if (buf == NULL || buflen < need) {
		*errnop = ERANGE;
		return NSS_STATUS_TRYAGAIN;
	}
	pwd->pw_name = put_str(&p, name->str, name->len);
	pwd->pw_passwd = put_str(&p, "x", 1);
	pwd->pw_uid = uid;
	pwd->pw_gid = gid;
	pwd->pw_gecos = put_str(&p, gecos->str, gecos->len);
	pwd->pw_dir = put_str(&p, dir->str, dir->len);
	pwd->pw_shell = put_str(&p, shell->str, shell->len);
	return NSS_STATUS_SUCCESS;
}

/*
 * Fills `grp` from an NSS_GROUP reply to `k`, or refuses it. The buffer
 * holds the member pointer array first (aligned), then the strings.
 */
static enum nss_status fill_group(const struct fedlogin_msg *m, const struct fl_key *k, struct group *grp,
				  char *buf, size_t buflen, int *errnop)
{
	const struct fedlogin_field *name = &m->fields[0], *members = &m->fields[2];
	uint32_t gid = m->fields[1].num;
	size_t nmem = 0, pad, need;
	char **mem, *p;

	if (!fl_nss_valid_name(name->str, name->len) || !fl_nss_valid_id(gid) ||
	    fl_nss_has_separator(members->str, members->len) ||
	    (k->name != NULL ? !same_name(name, k) : gid != k->id))
		goto refuse;
	/* "a,b": two members; "": none; an empty member ("a,,b", ",a", "a,") is malformed. */
	if (members->len > 0) {
		size_t start = 0;

		for (size_t i = 0; i <= members->len; i++) {
			if (i < members->len && members->str[i] != ',')
				continue;
			if (i == start)
				goto refuse;
			nmem++;
			start = i + 1;
		}
	}

	pad = (sizeof(char *) - (uintptr_t)buf % sizeof(char *)) % sizeof(char *);
	need = pad + (nmem + 1) * sizeof(char *) + name->len + 1 + sizeof("x") +
	       (nmem > 0 ? members->len + 1 : 0);
	if (buf == NULL || buflen < need) {
		*errnop = ERANGE;
		return NSS_STATUS_TRYAGAIN;
	}
	mem = (char **)(void *)(buf + pad);
	p = buf + pad + (nmem + 1) * sizeof(char *);
	grp->gr_name = put_str(&p, name->str, name->len);
	grp->gr_passwd = put_str(&p, "x", 1);
	grp->gr_gid = gid;
	if (nmem > 0) {
		size_t start = 0, j = 0;
		char *list = put_str(&p, members->str, members->len);

		for (size_t i = 0; i <= members->len; i++) {
			if (i < members->len && list[i] != ',')
				continue;
			list[i] = '\0';
			mem[j++] = list + start;
			start = i + 1;
		}
	}
	mem[nmem] = NULL;
	grp->gr_mem = mem;
	return NSS_STATUS_SUCCESS;

refuse:
	*errnop = ENOENT;
	return NSS_STATUS_UNAVAIL;
}

/*
 * Maps a reply to `k` (from the socket or the cache file) to the lookup's
 * result (see the table at the top): the entry in `pwd` or `grp`, NOTFOUND,
 * or UNAVAIL for anything that is no answer to this request.
 */
static enum nss_status fl_answer(const struct fedlogin_msg *m, const struct fl_key *k, struct passwd *pwd,
				 struct group *grp, char *buf, size_t buflen, int *errnop)
{
	if (m->type == FEDLOGIN_MSG_NSS_NOTFOUND) {
		*errnop = ENOENT;
		return NSS_STATUS_NOTFOUND;
	}
	if (pwd != NULL && m->type == FEDLOGIN_MSG_NSS_PASSWD)
		return fill_passwd(m, k, pwd, buf, buflen, errnop);
	if (grp != NULL && m->type == FEDLOGIN_MSG_NSS_GROUP)
		return fill_group(m, k, grp, buf, buflen, errnop);
	/* RESULT (UNAVAIL: the daemon cannot reach its directory), or a frame
	 * that is no answer to this request. */
	*errnop = ENOENT;
	return NSS_STATUS_UNAVAIL;
}

/* Cache files up to this size are read, larger ones mapped. A read costs
 * fewer system calls than a mapping (nothing to undo, no page fault) and
 * does not take the process's address-space lock, which threads looking
 * users up at once would otherwise queue on. */
#define FL_CACHE_READ_MAX (64 * 1024)

/* Reads `len` bytes from the start of `fd`; false on an error or a short file. */
static bool read_all(int fd, uint8_t *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = pread(fd, p + off, len - off, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	return true;
}

/*
 * Looks `k` up in the cache file at `path` (docs/protocol.md, "NSS cache
 * file"). True when the file answered: *st and *errnop are the lookup's
 * result (an entry, NOTFOUND, or TRYAGAIN/ERANGE for a small buffer). False
 * when the file cannot be used or has no answer, and the socket is asked.
 *
 * The file is used only when it is a regular file, not reached through a
 * symlink, owned by root, writable by no one else, and FL_CACHE_HEADER to
 * FL_CACHE_MAX_SIZE bytes long. It is read (up to FL_CACHE_READ_MAX bytes)
 * or mapped for this lookup alone: the descriptor is closed at once, the
 * copy freed or the mapping undone before returning.
 */
static bool fl_cache_lookup(const char *path, const struct fl_key *k, struct passwd *pwd, struct group *grp,
			    char *buf, size_t buflen, enum nss_status *st, int *errnop)
{
	struct fedlogin_msg m;
	struct timespec now;
	struct stat sb;
	bool answered = false;
	uint8_t *copy = NULL;
	void *map = MAP_FAILED;
	const uint8_t *data;
	size_t size;
	int fd, err = 0;

	/* O_NONBLOCK: opening a FIFO put in the file's place must not wait. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return false;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != 0 ||
	    (sb.st_mode & (S_IWGRP | S_IWOTH)) != 0 || sb.st_size < FL_CACHE_HEADER ||
	    sb.st_size > FL_CACHE_MAX_SIZE) {
		close(fd);
		return false;
	}
	size = (size_t)sb.st_size;
	if (size <= FL_CACHE_READ_MAX) {
		copy = malloc(size);
		if (copy != NULL && !read_all(fd, copy, size)) {
			free(copy);
			copy = NULL;
		}
		data = copy;
	} else {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		data = map == MAP_FAILED ? NULL : map;
	}
	close(fd);
	if (data == NULL)
		return false;

	if (clock_gettime(CLOCK_REALTIME, &now) == 0 &&
	    fl_nss_cache_lookup(data, size, (int64_t)now.tv_sec, k, &m) == FL_CACHE_ANSWER) {
		/* The entry is checked again as a reply from the socket would be;
		 * one refused (it cannot be) leaves the question to the socket. */
		enum nss_status s = fl_answer(&m, k, pwd, grp, buf, buflen, &err);

		if (s != NSS_STATUS_UNAVAIL) {
			*st = s;
			if (s != NSS_STATUS_SUCCESS)
				*errnop = err;
			answered = true;
		}
	}
	if (copy != NULL)
		free(copy);
	else
		munmap(map, size);
	return answered;
}

/* Answers `k` from the cache file, or else asks fedlogind (see the table at the top). */
static enum nss_status fl_lookup(const struct fl_key *k, struct passwd *pwd, struct group *grp, char *buf,
				 size_t buflen, int *errnop)
{
	uint8_t req[FL_NSS_MAX_REQUEST];
	struct fl_reply r;
	enum nss_status st;
	size_t req_len = 0;
	int saved = errno;

	st = fl_prepare(k, req, sizeof(req), &req_len, errnop);
	if (st != NSS_STATUS_SUCCESS)
		return st;
	if (fl_cache_lookup(FL_NSS_CACHE, k, pwd, grp, buf, buflen, &st, errnop)) {
		if (st == NSS_STATUS_SUCCESS)
			errno = saved;
		return st;
	}
	if (fl_nss_query(FL_NSS_SOCKET, req, req_len, &r) != 0) {
		*errnop = ENOENT;
		return NSS_STATUS_UNAVAIL;
	}
	st = fl_answer(&r.msg, k, pwd, grp, buf, buflen, errnop);
	free(r.body);
	if (st == NSS_STATUS_SUCCESS)
		errno = saved;
	return st;
}

enum nss_status _nss_fedlogin_getpwnam_r(const char *name, struct passwd *pwd, char *buf, size_t buflen,
					 int *errnop)
{
	struct fl_key k = {FEDLOGIN_MSG_NSS_GETPWNAM, name != NULL ? name : "", key_len(name), 0};

	return fl_lookup(&k, pwd, NULL, buf, buflen, errnop);
}

enum nss_status _nss_fedlogin_getpwuid_r(uid_t uid, struct passwd *pwd, char *buf, size_t buflen, int *errnop)
{
	struct fl_key k = {FEDLOGIN_MSG_NSS_GETPWUID, NULL, 0, (uint32_t)uid};

	return fl_lookup(&k, pwd, NULL, buf, buflen, errnop);
}

enum nss_status _nss_fedlogin_getgrnam_r(const char *name, struct group *grp, char *buf, size_t buflen,
					 int *errnop)
{
	struct fl_key k = {FEDLOGIN_MSG_NSS_GETGRNAM, name != NULL ? name : "", key_len(name), 0};

	return fl_lookup(&k, NULL, grp, buf, buflen, errnop);
}

enum nss_status _nss_fedlogin_getgrgid_r(gid_t gid, struct group *grp, char *buf, size_t buflen, int *errnop)
{
	struct fl_key k = {FEDLOGIN_MSG_NSS_GETGRGID, NULL, 0, (uint32_t)gid};

	return fl_lookup(&k, NULL, grp, buf, buflen, errnop);
}
