/*
 * test_nss - tests of the NSS module (nss_fedlogin.c).
 *
 *   test_nss PATH/libnss_fedlogin.so.2 PATH/Tests/fixtures/protocol PATH/Tests/fixtures/nsscache
 *
 * This file includes nss_fedlogin.c, built with -DFEDLOGIN_NSS_TEST, whose
 * one difference is hooks that point lookups at a socket and a cache file
 * of the test's own: a fake fedlogind forked per case answers with golden
 * frames from Tests/fixtures/protocol (checking the request against them
 * where one fits) or with frames built here. It checks every reply kind,
 * buffer sizes (ERANGE), the time bounds, the trust checks, the guards that
 * answer without connecting, and lookups from several threads.
 *
 * The cache file: every lookup of Tests/fixtures/nsscache/expected.tsv (at
 * its usual time) through the module, an answer from the file given with
 * no socket to ask, and every other one asked of the fake daemon (malformed
 * files included); a file the module must not trust (owner, mode, symlink,
 * FIFO, directory, size); times against the real clock; ERANGE; a file
 * replaced while threads read it; no descriptor or mapping left behind.
 *
 * The shipped module (the first argument) is dlopen'ed to check its entry
 * points, that it has no test hook, and its guards; and it is used through
 * glibc itself (__nss_configure_lookup) when its fixed socket does not exist.
 *
 * Run as root: the trust checks want a root-owned socket and a root peer.
 * Prints "N passed, M failed" and exits non-zero if anything failed.
 */
#include "../nss_fedlogin.c"

#include <dirent.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>

static int passed, failed;
static const char *fixtures, *cache_fixtures;
static char tmpdir[] = "/tmp/fedlogin-nss-test.XXXXXX";
static char sock_path[sizeof(tmpdir) + 16];
static char cache_path[sizeof(tmpdir) + 16];

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (ok) {
		passed++;
	} else {
		failed++;
		fputs("FAIL ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

static const char *status_name(enum nss_status st)
{
	switch (st) {
	case NSS_STATUS_TRYAGAIN:
		return "TRYAGAIN";
	case NSS_STATUS_UNAVAIL:
		return "UNAVAIL";
	case NSS_STATUS_NOTFOUND:
		return "NOTFOUND";
	case NSS_STATUS_SUCCESS:
		return "SUCCESS";
	default:
		return "RETURN";
	}
}

/* --- frames ------------------------------------------------------------------ */

struct bytes {
	uint8_t *p;
	size_t len;
};

/* Fixtures read so far (each once), freed at the end. */
static struct {
	const char *dir;
	char name[128];
	struct bytes b;
} loaded[128];
static size_t nloaded;

/* DIR/NAME.bin, read once. */
static struct bytes load_bin(const char *dir, const char *name)
{
	char path[4096];
	struct bytes b = {NULL, 0};
	FILE *f;
	long n;

	for (size_t i = 0; i < nloaded; i++)
		if (loaded[i].dir == dir && strcmp(loaded[i].name, name) == 0)
			return loaded[i].b;
	if (nloaded == sizeof(loaded) / sizeof(loaded[0]) || strlen(name) >= sizeof(loaded[0].name))
		abort();
	snprintf(path, sizeof(path), "%s/%s.bin", dir, name);
	f = fopen(path, "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	b.p = malloc((size_t)n + 1);
	b.len = fread(b.p, 1, (size_t)n, f);
	fclose(f);
	loaded[nloaded].dir = dir;
	snprintf(loaded[nloaded].name, sizeof(loaded[0].name), "%s", name);
	loaded[nloaded++].b = b;
	return b;
}

/* Tests/fixtures/protocol/NAME.bin */
static struct bytes fixture(const char *name)
{
	return load_bin(fixtures, name);
}

/* Tests/fixtures/nsscache/NAME.bin */
static struct bytes cache_fixture(const char *name)
{
	return load_bin(cache_fixtures, name);
}

static uint8_t frame_buf[8][FEDLOGIN_FRAME_HEADER + FL_NSS_MAX_REPLY];
static int frame_next;

static struct bytes passwd_frame(const char *name, uint32_t uid, uint32_t gid, const char *gecos,
				 const char *dir, const char *shell)
{
	uint8_t *buf = frame_buf[frame_next++ % 8];
	struct fedlogin_builder b;
	struct bytes r = {buf, 0};

	fedlogin_build_begin(&b, buf, sizeof(frame_buf[0]), FEDLOGIN_MSG_NSS_PASSWD);
	fedlogin_build_str(&b, name, strlen(name));
	fedlogin_build_u32(&b, uid);
	fedlogin_build_u32(&b, gid);
	fedlogin_build_str(&b, gecos, strlen(gecos));
	fedlogin_build_str(&b, dir, strlen(dir));
	fedlogin_build_str(&b, shell, strlen(shell));
	if (fedlogin_build_finish(&b, &r.len) != FEDLOGIN_OK)
		abort();
	return r;
}

static struct bytes group_frame(const char *name, uint32_t gid, const char *members)
{
	uint8_t *buf = frame_buf[frame_next++ % 8];
	struct fedlogin_builder b;
	struct bytes r = {buf, 0};

	fedlogin_build_begin(&b, buf, sizeof(frame_buf[0]), FEDLOGIN_MSG_NSS_GROUP);
	fedlogin_build_str(&b, name, strlen(name));
	fedlogin_build_u32(&b, gid);
	fedlogin_build_str(&b, members, strlen(members));
	if (fedlogin_build_finish(&b, &r.len) != FEDLOGIN_OK)
		abort();
	return r;
}

static struct bytes request_frame(uint8_t type, const char *name, uint32_t id)
{
	uint8_t *buf = frame_buf[frame_next++ % 8];
	struct fedlogin_builder b;
	struct bytes r = {buf, 0};

	fedlogin_build_begin(&b, buf, sizeof(frame_buf[0]), type);
	if (name != NULL)
		fedlogin_build_str(&b, name, strlen(name));
	else
		fedlogin_build_u32(&b, id);
	if (fedlogin_build_finish(&b, &r.len) != FEDLOGIN_OK)
		abort();
	return r;
}

static struct bytes raw(const void *p, size_t len)
{
	struct bytes r = {(uint8_t *)p, len};
	return r;
}

/* --- the fake daemon ------------------------------------------------------------- */

struct daemon_script {
	struct bytes reply; /* sent after the request has been read */
	struct bytes expect; /* the request must be these bytes (if .p) */
	int drip_ms; /* > 0: send the reply a byte at a time, this far apart */
	bool silent; /* read the request, then never answer */
	bool hold; /* after the reply, keep the connection open */
	int connections; /* serve this many (default 1) */
	uid_t listen_uid; /* != 0: listen() as this uid (the socket file stays root's) */
};

static int listen_socket(int backlog)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	unlink(sock_path);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, backlog) != 0) {
		perror("fake daemon socket");
		exit(2);
	}
	return fd;
}

static int read_exact_blocking(int fd, uint8_t *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* The child: serves the script, exits 0 if every request was the expected one. */
static void serve(const struct daemon_script *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int connections = s->connections > 0 ? s->connections : 1;
	int lfd, bad = 0;

	alarm(20); /* never outlive a broken test */
	if (s->listen_uid != 0) {
		lfd = socket(AF_UNIX, SOCK_STREAM, 0);
		unlink(sock_path);
		memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    setresuid(s->listen_uid, s->listen_uid, s->listen_uid) != 0 || listen(lfd, 8) != 0)
			_exit(2);
	} else {
		lfd = listen_socket(256);
	}
	/* Tell the parent the socket is there. */
	if (write(STDOUT_FILENO, "", 0) < 0)
		_exit(2);
	raise(SIGSTOP);

	for (int c = 0; c < connections; c++) {
		uint8_t req[FL_NSS_MAX_REQUEST + 64];
		uint32_t len;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			_exit(2);
		if (read_exact_blocking(fd, req, FEDLOGIN_FRAME_HEADER) != 0 ||
		    fedlogin_frame_length(req, &len) != FEDLOGIN_OK ||
		    len > sizeof(req) - FEDLOGIN_FRAME_HEADER ||
		    read_exact_blocking(fd, req + FEDLOGIN_FRAME_HEADER, len) != 0) {
			bad = 1;
		} else if (s->expect.p != NULL && (s->expect.len != len + FEDLOGIN_FRAME_HEADER ||
						   memcmp(s->expect.p, req, s->expect.len) != 0)) {
			bad = 1;
		}
		if (s->silent) {
			for (;;)
				pause();
		}
		if (s->drip_ms > 0) {
			for (size_t i = 0; i < s->reply.len; i++) {
				if (send(fd, s->reply.p + i, 1, MSG_NOSIGNAL) != 1)
					break;
				poll(NULL, 0, s->drip_ms);
			}
		} else if (s->reply.len > 0) {
			/* The client may close first (a refused length): ignore errors. */
			ssize_t n = send(fd, s->reply.p, s->reply.len, MSG_NOSIGNAL);
			(void)n;
		}
		if (s->hold) {
			for (;;)
				pause();
		}
		close(fd);
	}
	_exit(bad);
}

static pid_t start_daemon(const struct daemon_script *s)
{
	int st;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0)
		serve(s);
	/* The child stops itself once it listens. */
	if (waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st)) {
		fprintf(stderr, "fake daemon did not start\n");
		exit(2);
	}
	kill(pid, SIGCONT);
	return pid;
}

/* Waits for the child; true if it saw the expected requests. */
static bool stop_daemon(pid_t pid, bool kill_it)
{
	int st;

	if (kill_it)
		kill(pid, SIGKILL);
	if (waitpid(pid, &st, 0) != pid)
		return false;
	return kill_it || (WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* --- one lookup through the module --------------------------------------------- */

enum op { GETPWNAM, GETPWUID, GETGRNAM, GETGRGID };

struct result {
	enum nss_status st;
	int err;
	int64_t ms;
	struct passwd pw;
	struct group gr;
};

static struct result lookup(enum op op, const char *name, uint32_t id, char *buf, size_t buflen)
{
	struct result r;
	int64_t t0 = now_ms();

	memset(&r, 0, sizeof(r));
	r.err = -12345;
	switch (op) {
	case GETPWNAM:
		r.st = _nss_fedlogin_getpwnam_r(name, &r.pw, buf, buflen, &r.err);
		break;
	case GETPWUID:
		r.st = _nss_fedlogin_getpwuid_r(id, &r.pw, buf, buflen, &r.err);
		break;
	case GETGRNAM:
		r.st = _nss_fedlogin_getgrnam_r(name, &r.gr, buf, buflen, &r.err);
		break;
	case GETGRGID:
		r.st = _nss_fedlogin_getgrgid_r(id, &r.gr, buf, buflen, &r.err);
		break;
	}
	r.ms = now_ms() - t0;
	return r;
}

/* Buffers handed to the module, freed at the end (the entries point into them). */
static char *buffers[2048];
static size_t nbuffers;

/* A lookup against a fake daemon running `s`, with a buffer of exactly
 * `buflen` bytes (so ASan sees any write past it). */
static struct result ask(const char *what, const struct daemon_script *s, enum op op, const char *name,
			 uint32_t id, size_t buflen)
{
	char *buf = buflen > 0 ? malloc(buflen) : NULL;
	pid_t pid = start_daemon(s);
	struct result r = lookup(op, name, id, buf, buflen);

	/* The daemon is stopped when it would wait forever: it never answers, or
	 * the module gave up (it may not even have connected). */
	check(stop_daemon(pid, s->silent || r.st == NSS_STATUS_UNAVAIL),
	      "%s: the fake daemon did not get the expected request", what);
	if (buf != NULL && nbuffers < sizeof(buffers) / sizeof(buffers[0]))
		buffers[nbuffers++] = buf;
	return r;
}

static void expect_status(const char *what, const struct result *r, enum nss_status st, int err)
{
	check(r->st == st && r->err == err, "%s: got %s errno %d, expected %s errno %d", what,
	      status_name(r->st), r->err, status_name(st), err);
}

static void expect_passwd(const char *what, const struct result *r, const char *name, uint32_t uid,
			  uint32_t gid, const char *gecos, const char *dir, const char *shell)
{
	expect_status(what, r, NSS_STATUS_SUCCESS, -12345);
	if (r->st != NSS_STATUS_SUCCESS)
		return;
	check(strcmp(r->pw.pw_name, name) == 0 && strcmp(r->pw.pw_passwd, "x") == 0 && r->pw.pw_uid == uid &&
		      r->pw.pw_gid == gid && strcmp(r->pw.pw_gecos, gecos) == 0 &&
		      strcmp(r->pw.pw_dir, dir) == 0 && strcmp(r->pw.pw_shell, shell) == 0,
	      "%s: entry %s:%s:%u:%u:%s:%s:%s", what, r->pw.pw_name, r->pw.pw_passwd, (unsigned)r->pw.pw_uid,
	      (unsigned)r->pw.pw_gid, r->pw.pw_gecos, r->pw.pw_dir, r->pw.pw_shell);
}

static void expect_group(const char *what, const struct result *r, const char *name, uint32_t gid,
			 const char *const *members)
{
	size_t i;

	expect_status(what, r, NSS_STATUS_SUCCESS, -12345);
	if (r->st != NSS_STATUS_SUCCESS)
		return;
	check(strcmp(r->gr.gr_name, name) == 0 && strcmp(r->gr.gr_passwd, "x") == 0 && r->gr.gr_gid == gid,
	      "%s: group %s:%s:%u", what, r->gr.gr_name, r->gr.gr_passwd, (unsigned)r->gr.gr_gid);
	for (i = 0; members[i] != NULL; i++)
		check(r->gr.gr_mem[i] != NULL && strcmp(r->gr.gr_mem[i], members[i]) == 0,
		      "%s: member %zu is %s, expected %s", what, i,
		      r->gr.gr_mem[i] ? r->gr.gr_mem[i] : "(null)", members[i]);
	check(r->gr.gr_mem[i] == NULL, "%s: more members than %zu", what, i);
}

/* --- the cases ------------------------------------------------------------------ */

static const char *ALICE_GECOS = "Alice \xc3\x85ngstr\xc3\xb6m"; /* nss_passwd.bin */
#define BIG 8192

static void test_passwd(void)
{
	struct daemon_script s = {.reply = fixture("nss_passwd"), .expect = fixture("nss_getpwnam")};
	/* "alice" x "Alice Ångström" /home/alice /bin/bash */
	size_t need = 6 + 2 + strlen(ALICE_GECOS) + 1 + 12 + 10;
	struct result r;

	r = ask("getpwnam alice", &s, GETPWNAM, "alice", 0, BIG);
	expect_passwd("getpwnam alice (NSS_PASSWD)", &r, "alice", 70001, 70001, ALICE_GECOS, "/home/alice",
		      "/bin/bash");
	r = ask("getpwnam alice, exact buffer", &s, GETPWNAM, "alice", 0, need);
	expect_passwd("getpwnam alice, buffer of exactly the size needed", &r, "alice", 70001, 70001,
		      ALICE_GECOS, "/home/alice", "/bin/bash");
	r = ask("getpwnam alice, buffer one short", &s, GETPWNAM, "alice", 0, need - 1);
	expect_status("getpwnam alice, buffer one byte short: TRYAGAIN/ERANGE", &r, NSS_STATUS_TRYAGAIN,
		      ERANGE);
	r = ask("getpwnam alice, 16 bytes", &s, GETPWNAM, "alice", 0, 16);
	expect_status("getpwnam alice, 16-byte buffer: TRYAGAIN/ERANGE", &r, NSS_STATUS_TRYAGAIN, ERANGE);
	r = ask("getpwnam alice, no buffer", &s, GETPWNAM, "alice", 0, 0);
	expect_status("getpwnam alice, no buffer: TRYAGAIN/ERANGE", &r, NSS_STATUS_TRYAGAIN, ERANGE);

	s.expect = request_frame(FEDLOGIN_MSG_NSS_GETPWUID, NULL, 70001);
	r = ask("getpwuid 70001", &s, GETPWUID, NULL, 70001, BIG);
	expect_passwd("getpwuid 70001 (NSS_PASSWD)", &r, "alice", 70001, 70001, ALICE_GECOS, "/home/alice",
		      "/bin/bash");

	s.reply = fixture("nss_passwd_empty_gecos");
	s.expect = request_frame(FEDLOGIN_MSG_NSS_GETPWNAM, "bob", 0);
	r = ask("getpwnam bob", &s, GETPWNAM, "bob", 0, BIG);
	expect_passwd("getpwnam bob, empty gecos", &r, "bob", 70002, 100, "", "/home/bob", "/bin/sh");
}

static void test_group(void)
{
	static const char *const dev[] = {"alice", "bob", NULL};
	static const char *const none[] = {NULL};
	struct daemon_script s = {.reply = fixture("nss_group"), .expect = fixture("nss_getgrnam")};
	size_t strings = 11 + 2 + 10; /* "developers", "x", "alice\0bob\0" */
	size_t need = 3 * sizeof(char *) + strings;
	struct result r;
	char *odd;

	r = ask("getgrnam developers", &s, GETGRNAM, "developers", 0, BIG);
	expect_group("getgrnam developers (NSS_GROUP)", &r, "developers", 70100, dev);
	/* malloc'ed buffers are aligned, so the exact size has no padding. */
	r = ask("getgrnam developers, exact buffer", &s, GETGRNAM, "developers", 0, need);
	expect_group("getgrnam developers, buffer of exactly the size needed", &r, "developers", 70100, dev);
	r = ask("getgrnam developers, buffer one short", &s, GETGRNAM, "developers", 0, need - 1);
	expect_status("getgrnam developers, buffer one byte short: TRYAGAIN/ERANGE", &r, NSS_STATUS_TRYAGAIN,
		      ERANGE);
	r = ask("getgrnam developers, 8 bytes", &s, GETGRNAM, "developers", 0, 8);
	expect_status("getgrnam developers, 8-byte buffer: TRYAGAIN/ERANGE", &r, NSS_STATUS_TRYAGAIN, ERANGE);

	/* A buffer that starts off alignment: the member array is aligned inside it. */
	odd = malloc(BIG + 1);
	{
		pid_t pid = start_daemon(&s);
		struct group gr;
		int err = 0;
		enum nss_status st =
			_nss_fedlogin_getgrnam_r("developers", &gr, odd + 1, need + sizeof(char *), &err);

		stop_daemon(pid, st != NSS_STATUS_SUCCESS);
		check(st == NSS_STATUS_SUCCESS && (uintptr_t)gr.gr_mem % sizeof(char *) == 0 &&
			      strcmp(gr.gr_mem[0], "alice") == 0 && strcmp(gr.gr_mem[1], "bob") == 0 &&
			      gr.gr_mem[2] == NULL,
		      "getgrnam developers, misaligned buffer: %s", status_name(st));
	}
	free(odd);

	s.reply = fixture("nss_group_no_members");
	s.expect = request_frame(FEDLOGIN_MSG_NSS_GETGRGID, NULL, 70101);
	r = ask("getgrgid 70101", &s, GETGRGID, NULL, 70101, BIG);
	expect_group("getgrgid 70101, no members", &r, "empty", 70101, none);
	r = ask("getgrgid 70101, exact buffer", &s, GETGRGID, NULL, 70101, sizeof(char *) + 6 + 2);
	expect_group("getgrgid 70101, no members, exact buffer", &r, "empty", 70101, none);
}

static void test_not_found(void)
{
	struct daemon_script s = {.reply = fixture("nss_notfound"), .expect = fixture("nss_getpwnam")};
	struct result r;

	r = ask("getpwnam alice -> NSS_NOTFOUND", &s, GETPWNAM, "alice", 0, BIG);
	expect_status("NSS_NOTFOUND to getpwnam: NOTFOUND/ENOENT", &r, NSS_STATUS_NOTFOUND, ENOENT);
	s.expect = fixture("nss_getpwuid");
	r = ask("getpwuid 1000 -> NSS_NOTFOUND", &s, GETPWUID, NULL, 1000, BIG);
	expect_status("NSS_NOTFOUND to getpwuid: NOTFOUND/ENOENT", &r, NSS_STATUS_NOTFOUND, ENOENT);
	s.expect = fixture("nss_getgrnam");
	r = ask("getgrnam developers -> NSS_NOTFOUND", &s, GETGRNAM, "developers", 0, BIG);
	expect_status("NSS_NOTFOUND to getgrnam: NOTFOUND/ENOENT", &r, NSS_STATUS_NOTFOUND, ENOENT);
	s.expect = request_frame(FEDLOGIN_MSG_NSS_GETGRGID, NULL, 70100);
	r = ask("getgrgid 70100 -> NSS_NOTFOUND", &s, GETGRGID, NULL, 70100, BIG);
	expect_status("NSS_NOTFOUND to getgrgid: NOTFOUND/ENOENT", &r, NSS_STATUS_NOTFOUND, ENOENT);
	/* A 256-byte name is asked about. */
	{
		char name[FL_NSS_MAX_NAME + 1];

		memset(name, 'a', FL_NSS_MAX_NAME);
		name[FL_NSS_MAX_NAME] = '\0';
		s.expect = request_frame(FEDLOGIN_MSG_NSS_GETPWNAM, name, 0);
		r = ask("getpwnam of 256 bytes", &s, GETPWNAM, name, 0, BIG);
		expect_status("a 256-byte name is asked about", &r, NSS_STATUS_NOTFOUND, ENOENT);
	}
}

/* Replies that are no entry for the key asked: UNAVAIL, ENOENT, at once:
 * the fake daemon keeps the connection open after its reply, so the module
 * must refuse from what it has read, not wait for the end of the stream. */
static void test_unavailable_replies(void)
{
	static const char junk[] = "hello, this is not a frame";
	static const uint8_t big_len[] = {0, 0, 0x4e, 0x20, 1, 0x90}; /* 20000: more than any NSS reply */
	struct {
		const char *what;
		enum op op;
		const char *name;
		uint32_t id;
		struct bytes reply;
	} cases[] = {
		{"RESULT UNAVAIL (directory unreachable)", GETPWNAM, "alice", 0, fixture("result_unavail")},
		{"RESULT SUCCESS", GETPWNAM, "alice", 0, fixture("result_success")},
		{"RESULT IGNORE", GETGRNAM, "developers", 0, fixture("result_ignore")},
		{"RESULT PERM_DENIED", GETPWUID, NULL, 70001, fixture("result_perm_denied")},
		{"KEEPALIVE", GETPWNAM, "alice", 0, fixture("keepalive")},
		{"INFO", GETPWNAM, "alice", 0, fixture("info")},
		{"CONTROL_REPLY", GETGRGID, NULL, 70100, fixture("control_reply_ok")},
		{"NSS_GROUP to getpwnam", GETPWNAM, "developers", 0, fixture("nss_group")},
		{"NSS_PASSWD to getgrnam", GETGRNAM, "alice", 0, fixture("nss_passwd")},
		{"NSS_PASSWD for alice to getpwnam bob", GETPWNAM, "bob", 0, fixture("nss_passwd")},
		{"NSS_PASSWD for alice to getpwnam Alice", GETPWNAM, "Alice", 0, fixture("nss_passwd")},
		{"NSS_PASSWD for alice to getpwnam alic", GETPWNAM, "alic", 0, fixture("nss_passwd")},
		{"NSS_PASSWD for uid 70001 to getpwuid 1000", GETPWUID, NULL, 1000, fixture("nss_passwd")},
		{"NSS_GROUP for developers to getgrnam staff", GETGRNAM, "staff", 0, fixture("nss_group")},
		{"NSS_GROUP for gid 70101 to getgrgid 70100", GETGRGID, NULL, 70100,
		 fixture("nss_group_no_members")},
		{"NSS_PASSWD with uid 0", GETPWNAM, "mallory", 0,
		 passwd_frame("mallory", 0, 70003, "", "/home/mallory", "/bin/bash")},
		{"NSS_PASSWD with gid 0", GETPWNAM, "mallory", 0,
		 passwd_frame("mallory", 70003, 0, "", "/home/mallory", "/bin/bash")},
		{"NSS_PASSWD with uid 4294967295", GETPWNAM, "mallory", 0,
		 passwd_frame("mallory", 4294967295u, 70003, "", "/home/mallory", "/bin/bash")},
		{"NSS_PASSWD named root", GETPWUID, NULL, 70003,
		 passwd_frame("root", 70003, 70003, "", "/root", "/bin/bash")},
		{"NSS_PASSWD with ':' in gecos", GETPWNAM, "mallory", 0,
		 passwd_frame("mallory", 70003, 70003, "a:b", "/home/mallory", "/bin/bash")},
		{"NSS_PASSWD with a newline in dir", GETPWNAM, "mallory", 0,
		 passwd_frame("mallory", 70003, 70003, "", "/home/m\nroot::0:0::/:/bin/sh", "/bin/bash")},
		{"NSS_PASSWD with ':' in shell", GETPWNAM, "mallory", 0,
		 passwd_frame("mallory", 70003, 70003, "", "/home/mallory", "/bin/sh:x")},
		{"NSS_PASSWD with an empty name", GETPWUID, NULL, 70003,
		 passwd_frame("", 70003, 70003, "", "/home/mallory", "/bin/bash")},
		{"NSS_GROUP with gid 0", GETGRNAM, "wheel", 0, group_frame("wheel", 0, "alice")},
		{"NSS_GROUP named root", GETGRGID, NULL, 70100, group_frame("root", 70100, "")},
		{"NSS_GROUP with an empty member", GETGRNAM, "developers", 0,
		 group_frame("developers", 70100, "alice,,bob")},
		{"NSS_GROUP with a leading comma", GETGRNAM, "developers", 0,
		 group_frame("developers", 70100, ",alice")},
		{"NSS_GROUP with a trailing comma", GETGRNAM, "developers", 0,
		 group_frame("developers", 70100, "alice,")},
		{"NSS_GROUP with ':' in members", GETGRNAM, "developers", 0,
		 group_frame("developers", 70100, "alice:bob")},
		{"length 65537", GETPWNAM, "alice", 0, fixture("reject_length_65537")},
		{"length 0xffffffff", GETPWNAM, "alice", 0, fixture("reject_length_ffffffff")},
		{"length 20000 (more than an NSS reply)", GETPWNAM, "alice", 0,
		 raw(big_len, sizeof(big_len))},
		{"version 2", GETPWNAM, "alice", 0, fixture("reject_version_2")},
		{"unknown type 0x88", GETPWNAM, "alice", 0, fixture("reject_type_88")},
		{"RESULT status 9", GETPWNAM, "alice", 0, fixture("reject_result_status_9")},
		{"garbage", GETPWNAM, "alice", 0, raw(junk, sizeof(junk) - 1)},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct daemon_script s = {.reply = cases[i].reply, .hold = true};
		struct result r = ask(cases[i].what, &s, cases[i].op, cases[i].name, cases[i].id, BIG);
		char what[200];

		snprintf(what, sizeof(what), "%s: UNAVAIL/ENOENT", cases[i].what);
		expect_status(what, &r, NSS_STATUS_UNAVAIL, ENOENT);
		check(r.ms < 1000, "%s: took %" PRId64 " ms", cases[i].what, r.ms);
	}

	/* Closed early: nothing, half a length prefix, 10 bytes of nss_passwd.bin,
	 * a frame 3 bytes shorter than its length prefix says. */
	{
		struct bytes whole = fixture("nss_passwd");
		struct bytes cut[] = {raw("", 0), raw("\0\0", 2), raw(whole.p, 10),
				      fixture("reject_nss_passwd_truncated")};
		const char *what[] = {"closed without a reply", "closed after 2 bytes",
				      "closed after 10 bytes of NSS_PASSWD",
				      "closed 3 bytes short of NSS_PASSWD"};

		for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
			struct daemon_script s = {.reply = cut[i]};
			struct result r = ask(what[i], &s, GETPWNAM, "alice", 0, BIG);

			expect_status(what[i], &r, NSS_STATUS_UNAVAIL, ENOENT);
			check(r.ms < 1000, "%s: took %" PRId64 " ms", what[i], r.ms);
		}
	}
}

static void test_time_bounds(void)
{
	struct daemon_script silent = {.silent = true, .expect = fixture("nss_getpwnam")};
	struct daemon_script drip = {.reply = fixture("nss_passwd"), .drip_ms = 150};
	struct result r;

	r = ask("daemon that never answers", &silent, GETPWNAM, "alice", 0, BIG);
	expect_status("a daemon that never answers: UNAVAIL/ENOENT", &r, NSS_STATUS_UNAVAIL, ENOENT);
	check(r.ms >= FEDLOGIN_NSS_TIMEOUT_MS - 50 && r.ms < FEDLOGIN_NSS_TIMEOUT_MS + 500,
	      "a daemon that never answers: gave up after %" PRId64 " ms, expected ~%d", r.ms,
	      FEDLOGIN_NSS_TIMEOUT_MS);

	/* Each byte arrives in time, the whole reply does not (~9 s): the bound is on the lookup. */
	r = ask("daemon that drips its reply", &drip, GETPWNAM, "alice", 0, BIG);
	expect_status("a reply a byte at a time: UNAVAIL/ENOENT", &r, NSS_STATUS_UNAVAIL, ENOENT);
	check(r.ms >= FEDLOGIN_NSS_TIMEOUT_MS - 50 && r.ms < FEDLOGIN_NSS_TIMEOUT_MS + 500,
	      "a reply a byte at a time: gave up after %" PRId64 " ms, expected ~%d", r.ms,
	      FEDLOGIN_NSS_TIMEOUT_MS);

	/* A full backlog: connect() says EAGAIN until FEDLOGIN_NSS_CONNECT_TIMEOUT_MS. */
	{
		int lfd = listen_socket(0), fillers[64], n = 0;
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
		while (n < 64) {
			int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

			if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
				close(fd);
				break;
			}
			fillers[n++] = fd;
		}
		r = lookup(GETPWNAM, "alice", 0, NULL, 0);
		expect_status("a full backlog: UNAVAIL/ENOENT", &r, NSS_STATUS_UNAVAIL, ENOENT);
		check(r.ms >= FEDLOGIN_NSS_CONNECT_TIMEOUT_MS - 50 &&
			      r.ms < FEDLOGIN_NSS_CONNECT_TIMEOUT_MS + 500,
		      "a full backlog: gave up after %" PRId64 " ms, expected ~%d", r.ms,
		      FEDLOGIN_NSS_CONNECT_TIMEOUT_MS);
		while (n > 0)
			close(fillers[--n]);
		close(lfd);
		unlink(sock_path);
	}
}

/* Serves nothing: true if a connection is waiting on `lfd` (taken and closed). */
static bool connected(int lfd)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	bool any = false;

	while (poll(&p, 1, 0) > 0) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			break;
		close(fd);
		any = true;
	}
	return any;
}

static void test_trust(void)
{
	char other[sizeof(sock_path) + 8];
	struct result r;
	int lfd;

	/* No socket at all: at once. */
	unlink(sock_path);
	r = lookup(GETPWNAM, "alice", 0, NULL, 0);
	expect_status("no socket: UNAVAIL/ENOENT", &r, NSS_STATUS_UNAVAIL, ENOENT);
	check(r.ms < 50, "no socket: took %" PRId64 " ms", r.ms);

	/* A regular file. */
	{
		FILE *f = fopen(sock_path, "w");
		fclose(f);
		r = lookup(GETPWNAM, "alice", 0, NULL, 0);
		expect_status("a regular file: UNAVAIL/ENOENT", &r, NSS_STATUS_UNAVAIL, ENOENT);
		unlink(sock_path);
	}

	/* A socket root does not own: refused before connecting. */
	lfd = listen_socket(8);
	if (chown(sock_path, 65534, 65534) != 0)
		perror("chown");
	r = lookup(GETPWNAM, "alice", 0, NULL, 0);
	expect_status("a socket owned by uid 65534: UNAVAIL/ENOENT", &r, NSS_STATUS_UNAVAIL, ENOENT);
	check(!connected(lfd), "a socket owned by uid 65534: the module connected");
	close(lfd);

	/* A symlink to a good socket: refused (lstat). */
	lfd = listen_socket(8);
	snprintf(other, sizeof(other), "%s.lnk", sock_path);
	if (symlink(sock_path, other) != 0)
		perror("symlink");
	fl_nss_test_set_socket(other);
	r = lookup(GETPWNAM, "alice", 0, NULL, 0);
	expect_status("a symlink to the socket: UNAVAIL/ENOENT", &r, NSS_STATUS_UNAVAIL, ENOENT);
	check(!connected(lfd), "a symlink to the socket: the module connected");
	fl_nss_test_set_socket(sock_path);
	unlink(other);
	close(lfd);

	/* A root-owned socket whose listener runs as uid 65534 (SO_PEERCRED). */
	{
		struct daemon_script s = {.reply = fixture("nss_passwd"), .listen_uid = 65534};
		pid_t pid = start_daemon(&s);

		static char buf[BIG];

		r = lookup(GETPWNAM, "alice", 0, buf, sizeof(buf));
		stop_daemon(pid, true);
		expect_status("a peer that is not root: UNAVAIL/ENOENT", &r, NSS_STATUS_UNAVAIL, ENOENT);
	}
	unlink(sock_path);
}

/* Answers without connecting: the fake daemon's socket must see no connection. */
static void test_guards(void)
{
	char long_name[FL_NSS_MAX_NAME + 2];
	int lfd = listen_socket(8);
	struct {
		const char *what;
		enum op op;
		const char *name;
		uint32_t id;
	} refused[] = {
		{"getpwnam root", GETPWNAM, "root", 0},
		{"getgrnam root", GETGRNAM, "root", 0},
		{"getpwuid 0", GETPWUID, NULL, 0},
		{"getgrgid 0", GETGRGID, NULL, 0},
		{"getpwuid 4294967295", GETPWUID, NULL, 4294967295u},
		{"getgrgid 4294967295", GETGRGID, NULL, 4294967295u},
		{"getpwnam \"\"", GETPWNAM, "", 0},
		{"getgrnam \"\"", GETGRNAM, "", 0},
		{"getpwnam NULL", GETPWNAM, NULL, 0},
		{"getpwnam a:b", GETPWNAM, "a:b", 0},
		{"getgrnam a:b", GETGRNAM, "a:b", 0},
		{"getpwnam with a newline", GETPWNAM, "alice\nroot", 0},
		{"getpwnam of 257 bytes", GETPWNAM, long_name, 0},
		{"getgrnam of 257 bytes", GETGRNAM, long_name, 0},
	};
	struct result r;
	char what[200];

	memset(long_name, 'a', FL_NSS_MAX_NAME + 1);
	long_name[FL_NSS_MAX_NAME + 1] = '\0';
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		r = lookup(refused[i].op, refused[i].name, refused[i].id, NULL, 0);
		snprintf(what, sizeof(what), "%s: NOTFOUND/ENOENT without asking", refused[i].what);
		expect_status(what, &r, NSS_STATUS_NOTFOUND, ENOENT);
		check(!connected(lfd), "%s: the module connected", refused[i].what);
	}

	setenv("FEDLOGIN_NSS_DISABLE", "1", 1);
	for (enum op op = GETPWNAM; op <= GETGRGID; op++) {
		r = lookup(op, op == GETPWNAM || op == GETGRNAM ? "alice" : NULL, 70001, NULL, 0);
		snprintf(what, sizeof(what), "FEDLOGIN_NSS_DISABLE=1, op %d: UNAVAIL/ENOENT without asking",
			 op);
		expect_status(what, &r, NSS_STATUS_UNAVAIL, ENOENT);
		check(!connected(lfd), "FEDLOGIN_NSS_DISABLE=1, op %d: the module connected", op);
	}
	setenv("FEDLOGIN_NSS_DISABLE", "", 1);
	r = lookup(GETPWNAM, "alice", 0, NULL, 0);
	expect_status("FEDLOGIN_NSS_DISABLE set but empty: UNAVAIL/ENOENT", &r, NSS_STATUS_UNAVAIL, ENOENT);
	check(!connected(lfd), "FEDLOGIN_NSS_DISABLE set but empty: the module connected");
	unsetenv("FEDLOGIN_NSS_DISABLE");

	/* And the socket is used once the guards do not apply. */
	r = lookup(GETPWNAM, "alice", 0, NULL, 0);
	check(connected(lfd), "getpwnam alice without a guard: the module did not connect");

	/* PID 1 (init) never asks: a grandchild in a new pid namespace is PID 1. */
	{
		pid_t child;
		int st;

		fflush(NULL);
		child = fork();
		if (child == 0) {
			pid_t init;

			if (unshare(CLONE_NEWPID) != 0)
				_exit(77);
			init = fork();
			if (init == 0) {
				r = lookup(GETPWNAM, "alice", 0, NULL, 0);
				_exit(getpid() == 1 && r.st == NSS_STATUS_UNAVAIL && r.err == ENOENT ? 0 : 1);
			}
			if (init < 0 || waitpid(init, &st, 0) != init || !WIFEXITED(st))
				_exit(2);
			_exit(WEXITSTATUS(st));
		}
		waitpid(child, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
			printf("note: no new pid namespace here (unshare): the PID 1 guard is not tested\n");
		} else {
			check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "PID 1: expected UNAVAIL/ENOENT");
			check(!connected(lfd), "PID 1: the module connected");
		}
	}
	close(lfd);
	unlink(sock_path);
}

/* --- threads ------------------------------------------------------------------- */

#define THREADS 8
#define PER_THREAD 25

static void *thread_lookups(void *arg)
{
	long *ok = arg;
	char buf[512];

	for (int i = 0; i < PER_THREAD; i++) {
		struct passwd pw;
		int err = 0;

		if (_nss_fedlogin_getpwnam_r("alice", &pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS &&
		    strcmp(pw.pw_name, "alice") == 0 && pw.pw_uid == 70001 &&
		    strcmp(pw.pw_dir, "/home/alice") == 0)
			(*ok)++;
	}
	return NULL;
}

static void test_threads(void)
{
	struct daemon_script s = {.reply = fixture("nss_passwd"),
				  .expect = fixture("nss_getpwnam"),
				  .connections = THREADS * PER_THREAD};
	pthread_t t[THREADS];
	long ok[THREADS] = {0}, total = 0;
	pid_t pid = start_daemon(&s);

	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, thread_lookups, &ok[i]);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		total += ok[i];
	}
	check(stop_daemon(pid, total != THREADS * PER_THREAD), "threads: the fake daemon saw a bad request");
	check(total == THREADS * PER_THREAD, "threads: %ld of %d lookups succeeded", total,
	      THREADS * PER_THREAD);
}

/* --- the cache file ------------------------------------------------------------------ */

/* The "now" of most lookups of expected.tsv. Their outcomes hold at any
 * time between then and the records' expiry in 2096, so at the real one. */
#define CACHE_NOW 1700000100
/* Fits the largest entry: a 256-byte name, "x" and three 4096-byte strings. */
#define HUGE_BUF 20000

static int64_t real_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The offset of the record in entry `i` of the name index. */
static size_t name_record(const uint8_t *map, size_t i)
{
	return get_le32(map + get_le32(map + 40) + 4 * i);
}

static uint8_t *dup_bytes(struct bytes b)
{
	uint8_t *p = malloc(b.len > 0 ? b.len : 1);

	if (p == NULL)
		abort();
	memcpy(p, b.p, b.len);
	return p;
}

/* Whatever is at the cache path, gone. */
static void remove_cache(void)
{
	if (unlink(cache_path) != 0 && errno == EISDIR)
		rmdir(cache_path);
}

/*
 * Puts a cache file at the cache path as fedlogind does, a new file renamed
 * over the old one: `len` bytes of `p`, then zeros (a hole) up to
 * `file_size`, with `mode`, owned by `uid`:`gid`.
 */
static void install_cache_as(const uint8_t *p, size_t len, size_t file_size, mode_t mode, uid_t uid,
			     gid_t gid)
{
	char tmp[sizeof(cache_path) + 8];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.new", cache_path);
	unlink(tmp);
	rmdir(cache_path); /* a directory left there; a file is replaced by the rename */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (len > 0 && write(fd, p, len) != (ssize_t)len) ||
	    ftruncate(fd, (off_t)file_size) != 0 || fchown(fd, uid, gid) != 0 || fchmod(fd, mode) != 0 ||
	    close(fd) != 0 || rename(tmp, cache_path) != 0) {
		perror("installing the cache file");
		exit(2);
	}
}

static void install_cache(const uint8_t *p, size_t len)
{
	install_cache_as(p, len, len, 0644, 0, 0);
}

static const char *const op_names[] = {"getpwnam", "getpwuid", "getgrnam", "getgrgid"};
static const uint8_t op_types[] = {FEDLOGIN_MSG_NSS_GETPWNAM, FEDLOGIN_MSG_NSS_GETPWUID,
				   FEDLOGIN_MSG_NSS_GETGRNAM, FEDLOGIN_MSG_NSS_GETGRGID};

/*
 * A lookup the cache file must leave to fedlogind: the fake daemon must get
 * the request, and its answer (an entry the file does not hold) is the
 * result.
 */
static void expect_from_socket(const char *what, enum op op, const char *name, uint32_t id)
{
	static const char *const none[] = {NULL};
	struct daemon_script s = {.expect = request_frame(op_types[op], name, id)};
	char w[300], *buf = malloc(BIG);
	struct result r;
	bool from_daemon;
	pid_t pid;

	snprintf(w, sizeof(w), "%s: asked fedlogind", what);
	switch (op) {
	case GETPWNAM:
		s.reply = passwd_frame(name, 61000, 61000, "from fedlogind", "/home/x", "/bin/sh");
		break;
	case GETPWUID:
		s.reply = passwd_frame("fromsocket", id, id, "from fedlogind", "/home/x", "/bin/sh");
		break;
	case GETGRNAM:
		s.reply = group_frame(name, 61000, "");
		break;
	case GETGRGID:
		s.reply = group_frame("fromsocket", id, "");
		break;
	}
	pid = start_daemon(&s);
	r = lookup(op, name, id, buf, BIG);
	/* The daemon's entry: it served its one connection and exits by itself.
	 * Anything else: it may never have been asked, so it is stopped. */
	from_daemon = r.st == NSS_STATUS_SUCCESS &&
		      (op == GETPWNAM || op == GETPWUID ? strcmp(r.pw.pw_gecos, "from fedlogind") == 0
		       : op == GETGRNAM			? r.gr.gr_gid == 61000
							: strcmp(r.gr.gr_name, "fromsocket") == 0);
	check(stop_daemon(pid, !from_daemon) && from_daemon, "%s: no answer from the fake daemon (%s)", w,
	      status_name(r.st));
	switch (op) {
	case GETPWNAM:
		expect_passwd(w, &r, name, 61000, 61000, "from fedlogind", "/home/x", "/bin/sh");
		break;
	case GETPWUID:
		expect_passwd(w, &r, "fromsocket", id, id, "from fedlogind", "/home/x", "/bin/sh");
		break;
	case GETGRNAM:
		expect_group(w, &r, name, 61000, none);
		break;
	case GETGRGID:
		expect_group(w, &r, "fromsocket", id, none);
		break;
	}
	free(buf);
}

/* A lookup with no socket to ask (so only the file can answer), into a buffer of `buflen`. */
static struct result from_file(enum op op, const char *name, uint32_t id, size_t buflen)
{
	char *buf = buflen > 0 ? malloc(buflen) : NULL;
	struct result r;

	unlink(sock_path);
	r = lookup(op, name, id, buf, buflen);
	if (buf != NULL && nbuffers < sizeof(buffers) / sizeof(buffers[0]))
		buffers[nbuffers++] = buf;
	else
		free(buf); /* nothing of it is looked at */
	return r;
}

#define CACHE_COLUMNS 16

/* Every lookup of expected.tsv at CACHE_NOW, through the module. */
static void test_cache_expected(void)
{
	static const char *const none[] = {NULL};
	char path[4096], installed[128] = "", *line = NULL, *cols[CACHE_COLUMNS];
	size_t cap = 0, lines = 0;
	ssize_t len;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/expected.tsv", cache_fixtures);
	fp = fopen(path, "r");
	if (fp == NULL) {
		perror(path);
		exit(2);
	}
	while ((len = getline(&line, &cap, fp)) > 0) {
		char what[200], stem[128];
		const char *name = NULL, *outcome;
		enum op op = GETPWNAM;
		uint32_t id = 0;
		size_t n = 0;
		struct result r;

		if (line[len - 1] == '\n')
			line[--len] = '\0';
		for (char *p = line; n < CACHE_COLUMNS;) {
			char *tab = strchr(p, '\t');

			cols[n++] = p;
			if (tab == NULL)
				break;
			*tab = '\0';
			p = tab + 1;
		}
		if (n < 5 || strtoll(cols[1], NULL, 10) != CACHE_NOW)
			continue;
		while (op <= GETGRGID && strcmp(cols[2], op_names[op]) != 0)
			op++;
		if (op > GETGRGID) {
			check(false, "expected.tsv: unknown lookup %s", cols[2]);
			continue;
		}
		if (op == GETPWNAM || op == GETGRNAM)
			name = cols[3];
		else
			id = (uint32_t)strtoul(cols[3], NULL, 10);
		outcome = cols[4];
		lines++;

		if (strcmp(installed, cols[0]) != 0) {
			struct bytes b;

			snprintf(stem, sizeof(stem), "%.*s", (int)(strlen(cols[0]) - 4), cols[0]);
			b = cache_fixture(stem);
			install_cache(b.p, b.len);
			snprintf(installed, sizeof(installed), "%s", cols[0]);
		}
		snprintf(what, sizeof(what), "cache %s: %s %.40s (%s)", cols[0], cols[2], cols[3], outcome);

		if (strcmp(outcome, "passwd") == 0 && n == 11) {
			r = from_file(op, name, id, HUGE_BUF);
			expect_passwd(what, &r, cols[5], (uint32_t)strtoul(cols[6], NULL, 10),
				      (uint32_t)strtoul(cols[7], NULL, 10), cols[8], cols[9], cols[10]);
		} else if (strcmp(outcome, "group") == 0 && n == 7) {
			r = from_file(op, name, id, HUGE_BUF);
			expect_group(what, &r, cols[5], (uint32_t)strtoul(cols[6], NULL, 10), none);
		} else if (strcmp(outcome, "notfound") == 0) {
			r = from_file(op, name, id, HUGE_BUF);
			expect_status(what, &r, NSS_STATUS_NOTFOUND, ENOENT);
		} else if (strcmp(outcome, "ask") == 0 || strcmp(outcome, "ignore") == 0) {
			expect_from_socket(what, op, name, id);
		} else {
			check(false, "expected.tsv: unknown outcome %s", outcome);
		}
	}
	free(line);
	fclose(fp);
	check(lines > 100, "expected.tsv: only %zu lookups at %d", lines, CACHE_NOW);
	remove_cache();
}

/* Answers from the file while fedlogind's socket exists: no connection. */
static void test_cache_no_connection(void)
{
	struct bytes basic = cache_fixture("basic");
	static char buf[BIG];
	struct result r;
	int lfd;

	install_cache(basic.p, basic.len);
	lfd = listen_socket(8);
	errno = EDOM;
	r = lookup(GETPWNAM, "alice", 0, buf, sizeof(buf));
	expect_passwd("cache: getpwnam alice with a socket there", &r, "alice", 60001, 60001, "Alice Example",
		      "/home/alice", "/bin/bash");
	check(errno == EDOM, "cache: getpwnam alice changed errno to %d", errno);
	check(!connected(lfd), "cache: getpwnam alice: the module connected");
	r = lookup(GETGRGID, NULL, 60002, buf, sizeof(buf));
	expect_status("cache: getgrgid 60002 with a socket there", &r, NSS_STATUS_SUCCESS, -12345);
	check(!connected(lfd), "cache: getgrgid 60002: the module connected");
	r = lookup(GETPWNAM, "zed", 0, buf, sizeof(buf));
	expect_status("cache: getpwnam zed with a socket there", &r, NSS_STATUS_NOTFOUND, ENOENT);
	check(!connected(lfd), "cache: getpwnam zed: the module connected");
	r = lookup(GETGRGID, NULL, 60099, buf, sizeof(buf));
	expect_status("cache: getgrgid 60099 with a socket there", &r, NSS_STATUS_NOTFOUND, ENOENT);
	check(!connected(lfd), "cache: getgrgid 60099: the module connected");
	close(lfd);
	unlink(sock_path);
	remove_cache();
}

/* Buffers of exactly the size needed and one byte short. */
static void test_cache_erange(void)
{
	struct bytes basic = cache_fixture("basic"), edge = cache_fixture("edge");
	size_t alice = 6 + 2 + 14 + 12 + 10, bob = sizeof(char *) + 4 + 2;
	size_t longest = 257 + 2 + 3 * 4097;
	char long_name[FL_NSS_MAX_NAME + 1];
	struct result r;

	install_cache(basic.p, basic.len);
	r = from_file(GETPWNAM, "alice", 0, alice);
	expect_passwd("cache: getpwnam alice, buffer of exactly the size needed", &r, "alice", 60001, 60001,
		      "Alice Example", "/home/alice", "/bin/bash");
	r = from_file(GETPWNAM, "alice", 0, alice - 1);
	expect_status("cache: getpwnam alice, buffer one byte short: TRYAGAIN/ERANGE", &r,
		      NSS_STATUS_TRYAGAIN, ERANGE);
	r = from_file(GETPWUID, NULL, 60001, 0);
	expect_status("cache: getpwuid 60001, no buffer: TRYAGAIN/ERANGE", &r, NSS_STATUS_TRYAGAIN, ERANGE);
	r = from_file(GETGRNAM, "bob", 0, bob);
	check(r.st == NSS_STATUS_SUCCESS && strcmp(r.gr.gr_name, "bob") == 0 && r.gr.gr_mem[0] == NULL,
	      "cache: getgrnam bob, buffer of exactly the size needed: %s", status_name(r.st));
	r = from_file(GETGRNAM, "bob", 0, bob - 1);
	expect_status("cache: getgrnam bob, buffer one byte short: TRYAGAIN/ERANGE", &r, NSS_STATUS_TRYAGAIN,
		      ERANGE);

	install_cache(edge.p, edge.len);
	memset(long_name, 'x', FL_NSS_MAX_NAME);
	long_name[FL_NSS_MAX_NAME] = '\0';
	r = from_file(GETPWNAM, long_name, 0, longest);
	check(r.st == NSS_STATUS_SUCCESS && strlen(r.pw.pw_name) == 256 && strlen(r.pw.pw_gecos) == 4096 &&
		      strlen(r.pw.pw_dir) == 4096 && strlen(r.pw.pw_shell) == 4096,
	      "cache: the largest entry in a buffer of exactly its size: %s", status_name(r.st));
	r = from_file(GETPWNAM, long_name, 0, longest - 1);
	expect_status("cache: the largest entry, buffer one byte short: TRYAGAIN/ERANGE", &r,
		      NSS_STATUS_TRYAGAIN, ERANGE);
	remove_cache();
}

/* Times against the real clock: generated, a record's expiry, ids_until. */
static void test_cache_clock(void)
{
	struct bytes basic = cache_fixture("basic");
	uint8_t *p = dup_bytes(basic);
	size_t alice = name_record(p, 0);
	int64_t now = real_now();
	struct result r;

	put_le(p + 16, (uint64_t)(now - 1), 8);
	install_cache(p, basic.len);
	r = from_file(GETPWNAM, "alice", 0, BIG);
	expect_status("cache: generated a second ago", &r, NSS_STATUS_SUCCESS, -12345);
	put_le(p + 16, (uint64_t)(now + 3600), 8);
	install_cache(p, basic.len);
	expect_from_socket("cache: generated in an hour (the clock went back)", GETPWNAM, "alice", 0);
	memcpy(p, basic.p, basic.len);

	put_le(p + alice + 12, (uint64_t)(now + 3600), 8);
	install_cache(p, basic.len);
	r = from_file(GETPWUID, NULL, 60001, BIG);
	expect_status("cache: alice expires in an hour", &r, NSS_STATUS_SUCCESS, -12345);
	put_le(p + alice + 12, (uint64_t)(now - 1), 8);
	install_cache(p, basic.len);
	expect_from_socket("cache: alice expired a second ago, getpwnam", GETPWNAM, "alice", 0);
	expect_from_socket("cache: alice expired a second ago, getpwuid", GETPWUID, NULL, 60001);
	expect_from_socket("cache: alice expired a second ago, getgrgid", GETGRGID, NULL, 60001);
	memcpy(p, basic.p, basic.len);

	put_le(p + 24, (uint64_t)(now + 3600), 8);
	install_cache(p, basic.len);
	r = from_file(GETPWUID, NULL, 60099, BIG);
	expect_status("cache: ids_until in an hour, getpwuid 60099", &r, NSS_STATUS_NOTFOUND, ENOENT);
	put_le(p + 24, (uint64_t)(now - 1), 8);
	install_cache(p, basic.len);
	expect_from_socket("cache: ids_until a second ago, getpwuid 60099", GETPWUID, NULL, 60099);
	expect_from_socket("cache: ids_until a second ago, getgrgid 60099", GETGRGID, NULL, 60099);
	put_le(p + 24, 0, 8);
	install_cache(p, basic.len);
	expect_from_socket("cache: ids_until 0, getpwuid 60099", GETPWUID, NULL, 60099);
	r = from_file(GETPWUID, NULL, 60002, BIG);
	expect_status("cache: ids_until 0, getpwuid 60002", &r, NSS_STATUS_SUCCESS, -12345);
	free(p);
	remove_cache();
}

/* Files the module must not use, and some it must. */
static void test_cache_trust(void)
{
	struct bytes basic = cache_fixture("basic");
	char other[sizeof(cache_path) + 8];
	uint8_t *p = dup_bytes(basic);
	struct result r;
	struct {
		const char *what;
		mode_t mode;
		uid_t uid;
	} refused[] =
		{
			{"a cache file owned by uid 65534", 0644, 65534},
			{"a cache file owned by uid 65534, mode 0444", 0444, 65534},
			{"a group-writable cache file", 0664, 0},
			{"a cache file others may write", 0646, 0},
			{"a cache file of mode 0666", 0666, 0},
			{"a cache file of mode 0620", 0620, 0},
		},
	  used[] = {
		  {"a cache file of mode 0600", 0600, 0},
		  {"a cache file of mode 0444", 0444, 0},
		  {"a cache file of mode 0755", 0755, 0},
	  };

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		install_cache_as(basic.p, basic.len, basic.len, refused[i].mode, refused[i].uid, 0);
		expect_from_socket(refused[i].what, GETPWNAM, "alice", 0);
	}
	for (size_t i = 0; i < sizeof(used) / sizeof(used[0]); i++) {
		install_cache_as(basic.p, basic.len, basic.len, used[i].mode, used[i].uid, 0);
		r = from_file(GETPWNAM, "alice", 0, BIG);
		expect_status(used[i].what, &r, NSS_STATUS_SUCCESS, -12345);
	}
	install_cache_as(basic.p, basic.len, basic.len, 0644, 0, 65534);
	r = from_file(GETPWNAM, "alice", 0, BIG);
	expect_status("a cache file of group 65534, mode 0644", &r, NSS_STATUS_SUCCESS, -12345);

	/* A symlink to a good file. */
	install_cache(basic.p, basic.len);
	snprintf(other, sizeof(other), "%s.real", cache_path);
	if (rename(cache_path, other) != 0 || symlink(other, cache_path) != 0)
		perror("symlink");
	expect_from_socket("a symlink to a good cache file", GETPWNAM, "alice", 0);
	unlink(other);
	remove_cache();

	/* A FIFO: opening it must not wait for a writer. */
	if (mkfifo(cache_path, 0644) != 0)
		perror("mkfifo");
	{
		int64_t t0 = now_ms();
		pid_t writer;

		/* Were the module to wait for a writer, this one comes after 2 s (and the check fails). */
		fflush(NULL);
		writer = fork();
		if (writer == 0) {
			poll(NULL, 0, 2000);
			if (open(cache_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC) >= 0)
				poll(NULL, 0, 100);
			_exit(0);
		}
		expect_from_socket("a FIFO at the cache path", GETPWNAM, "alice", 0);
		check(now_ms() - t0 < 1000, "a FIFO at the cache path: took %" PRId64 " ms", now_ms() - t0);
		kill(writer, SIGKILL);
		waitpid(writer, NULL, 0);
	}
	remove_cache();

	if (mkdir(cache_path, 0755) != 0)
		perror("mkdir");
	expect_from_socket("a directory at the cache path", GETPWNAM, "alice", 0);
	remove_cache();

	/* Sizes: empty, one byte short of a header; 8 MiB (zeros after basic.bin) and a byte more. */
	install_cache(basic.p, 0);
	expect_from_socket("an empty cache file", GETPWNAM, "alice", 0);
	put_le(p + 12, FL_CACHE_HEADER - 1, 4);
	install_cache(p, FL_CACHE_HEADER - 1);
	expect_from_socket("a cache file of 47 bytes", GETPWNAM, "alice", 0);
	put_le(p + 12, FL_CACHE_MAX_SIZE, 4);
	install_cache_as(p, basic.len, FL_CACHE_MAX_SIZE, 0644, 0, 0);
	r = from_file(GETPWNAM, "alice", 0, BIG);
	expect_status("a cache file of 8 MiB", &r, NSS_STATUS_SUCCESS, -12345);
	put_le(p + 12, FL_CACHE_MAX_SIZE + 1, 4);
	install_cache_as(p, basic.len, FL_CACHE_MAX_SIZE + 1, 0644, 0, 0);
	expect_from_socket("a cache file of 8 MiB and a byte", GETPWNAM, "alice", 0);
	free(p);
	remove_cache();
}

/* The guards answer first: FEDLOGIN_NSS_DISABLE, root, 0. */
static void test_cache_guards(void)
{
	struct bytes basic = cache_fixture("basic"), root = cache_fixture("reject_user_root");
	struct result r;

	install_cache(basic.p, basic.len);
	setenv("FEDLOGIN_NSS_DISABLE", "1", 1);
	r = from_file(GETPWNAM, "alice", 0, BIG);
	expect_status("cache: FEDLOGIN_NSS_DISABLE=1, getpwnam alice: UNAVAIL/ENOENT", &r, NSS_STATUS_UNAVAIL,
		      ENOENT);
	unsetenv("FEDLOGIN_NSS_DISABLE");
	install_cache(root.p, root.len);
	r = from_file(GETPWNAM, "root", 0, BIG);
	expect_status("cache with a USER root: getpwnam root: NOTFOUND/ENOENT", &r, NSS_STATUS_NOTFOUND,
		      ENOENT);
	r = from_file(GETPWUID, NULL, 0, BIG);
	expect_status("cache: getpwuid 0: NOTFOUND/ENOENT", &r, NSS_STATUS_NOTFOUND, ENOENT);
	remove_cache();
}

/* Each lookup reads the file anew; none leaves a descriptor or a mapping behind. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n++;
	closedir(d);
	return n;
}

static bool maps_mention(const char *s)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	bool found = false;

	if (f == NULL)
		return true;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, s) != NULL;
	fclose(f);
	return found;
}

static void test_cache_replaced(void)
{
	struct bytes basic = cache_fixture("basic"), bad = cache_fixture("reject_magic");
	uint8_t *p = dup_bytes(basic);
	size_t gecos = name_record(p, 0) + 20 + 2 + 5 + 2;
	struct result r;
	int fds;

	p[gecos + 8] = 'b'; /* "Alice Exbmple" */
	install_cache(basic.p, basic.len);
	r = from_file(GETPWNAM, "alice", 0, BIG);
	check(r.st == NSS_STATUS_SUCCESS && strcmp(r.pw.pw_gecos, "Alice Example") == 0, "cache: first file");
	install_cache(p, basic.len);
	r = from_file(GETPWNAM, "alice", 0, BIG);
	check(r.st == NSS_STATUS_SUCCESS && strcmp(r.pw.pw_gecos, "Alice Exbmple") == 0,
	      "cache: a file renamed over the first is read at the next lookup");
	remove_cache();
	r = from_file(GETPWNAM, "alice", 0, BIG);
	expect_status("cache: file removed, no socket: UNAVAIL/ENOENT", &r, NSS_STATUS_UNAVAIL, ENOENT);

	fds = count_fds();
	for (int i = 0; i < 300; i++) {
		static char buf[BIG];

		if (i % 100 == 0)
			install_cache(i == 200 ? bad.p : basic.p, i == 200 ? bad.len : basic.len);
		lookup(GETPWNAM, "alice", 0, buf, sizeof(buf));
		lookup(GETPWNAM, "zed", 0, buf, sizeof(buf));
		lookup(GETPWNAM, "erin", 0, buf, sizeof(buf));
		lookup(GETGRGID, NULL, 60002, buf, 4);
	}
	check(count_fds() == fds, "cache: descriptors left open: %d before, %d after", fds, count_fds());
	check(!maps_mention(cache_path), "cache: a mapping of the cache file is left");
	free(p);
	remove_cache();
}

#define CACHE_THREADS 8
#define CACHE_PER_THREAD 2000

static atomic_int cache_threads_done;

static void *cache_thread(void *arg)
{
	long *ok = arg;
	char buf[512];

	for (int i = 0; i < CACHE_PER_THREAD; i++) {
		struct passwd pw;
		struct group gr;
		int err = 0;

		if (_nss_fedlogin_getpwnam_r("alice", &pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS &&
		    pw.pw_uid == 60001 &&
		    (strcmp(pw.pw_gecos, "Alice Example") == 0 || strcmp(pw.pw_gecos, "Alice Exbmple") == 0))
			(*ok)++;
		if (_nss_fedlogin_getgrgid_r(60002, &gr, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS &&
		    strcmp(gr.gr_name, "bob") == 0 && gr.gr_mem[0] == NULL)
			(*ok)++;
	}
	atomic_fetch_add(&cache_threads_done, 1);
	return NULL;
}

/* Threads read the file while it is replaced again and again; every lookup is answered. */
static void test_cache_threads(void)
{
	struct bytes basic = cache_fixture("basic");
	uint8_t *p = dup_bytes(basic);
	pthread_t t[CACHE_THREADS];
	long ok[CACHE_THREADS] = {0}, total = 0;
	int replaced = 0;

	p[name_record(p, 0) + 20 + 2 + 5 + 2 + 8] = 'b';
	install_cache(basic.p, basic.len);
	unlink(sock_path);
	atomic_store(&cache_threads_done, 0);
	for (int i = 0; i < CACHE_THREADS; i++)
		pthread_create(&t[i], NULL, cache_thread, &ok[i]);
	while (atomic_load(&cache_threads_done) < CACHE_THREADS) {
		install_cache(replaced % 2 ? basic.p : p, basic.len);
		replaced++;
	}
	for (int i = 0; i < CACHE_THREADS; i++) {
		pthread_join(t[i], NULL);
		total += ok[i];
	}
	check(total == 2L * CACHE_THREADS * CACHE_PER_THREAD, "cache threads: %ld of %d lookups answered",
	      total, 2 * CACHE_THREADS * CACHE_PER_THREAD);
	check(replaced > 1, "cache threads: the file was replaced %d times", replaced);
	free(p);
	remove_cache();
}

/* --- the shipped module -------------------------------------------------------------- */

typedef enum nss_status (*getpwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*getpwuid_fn)(uid_t, struct passwd *, char *, size_t, int *);

static void test_shipped(const char *so)
{
	static const char *const entry[] = {"_nss_fedlogin_getpwnam_r", "_nss_fedlogin_getpwuid_r",
					    "_nss_fedlogin_getgrnam_r", "_nss_fedlogin_getgrgid_r"};
	static const char *const absent[] = {
		"fl_nss_test_set_socket",   "fl_nss_test_set_cache",  "fl_nss_query",
		"fl_nss_cache_lookup",	    "fedlogin_parse",	      "_nss_fedlogin_setpwent",
		"_nss_fedlogin_getpwent_r", "_nss_fedlogin_setgrent", "_nss_fedlogin_getgrent_r"};
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	struct stat st;
	getpwnam_fn mod_getpwnam;
	getpwuid_fn mod_getpwuid;
	struct passwd pw;
	char buf[1024];
	int err;
	enum nss_status s;

	check(h != NULL, "dlopen %s: %s", so, dlerror());
	if (h == NULL)
		return;
	for (size_t i = 0; i < 4; i++)
		check(dlsym(h, entry[i]) != NULL, "%s: no %s", so, entry[i]);
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		check(dlsym(h, absent[i]) == NULL, "%s exports %s", so, absent[i]);
	mod_getpwnam = (getpwnam_fn)dlsym(h, entry[0]);
	mod_getpwuid = (getpwuid_fn)dlsym(h, entry[1]);
	if (mod_getpwnam == NULL || mod_getpwuid == NULL)
		return;

	err = 0;
	s = mod_getpwnam("root", &pw, buf, sizeof(buf), &err);
	check(s == NSS_STATUS_NOTFOUND && err == ENOENT, "shipped: getpwnam root: %s %d", status_name(s),
	      err);
	err = 0;
	s = mod_getpwuid(0, &pw, buf, sizeof(buf), &err);
	check(s == NSS_STATUS_NOTFOUND && err == ENOENT, "shipped: getpwuid 0: %s %d", status_name(s), err);
	setenv("FEDLOGIN_NSS_DISABLE", "1", 1);
	err = 0;
	s = mod_getpwnam("alice", &pw, buf, sizeof(buf), &err);
	check(s == NSS_STATUS_UNAVAIL && err == ENOENT, "shipped: FEDLOGIN_NSS_DISABLE: %s %d",
	      status_name(s), err);
	unsetenv("FEDLOGIN_NSS_DISABLE");

	if (lstat(FEDLOGIN_DEFAULT_SOCKET, &st) == 0) {
		printf("note: %s exists: the shipped module's unavailable path is not tested\n",
		       FEDLOGIN_DEFAULT_SOCKET);
	} else {
		int64_t t0 = now_ms();
		struct passwd *res = &pw;
		int rc;

		err = 0;
		s = mod_getpwnam("fedlogin-test-nosuchuser", &pw, buf, sizeof(buf), &err);
		check(s == NSS_STATUS_UNAVAIL && err == ENOENT && now_ms() - t0 < 50,
		      "shipped, no fedlogind: %s %d after %" PRId64 " ms", status_name(s), err,
		      now_ms() - t0);

		/* Through glibc: it loads libnss_fedlogin.so.2, which it finds
		 * already loaded (the soname matches). */
		if (__nss_configure_lookup("passwd", "fedlogin") != 0) {
			check(false, "__nss_configure_lookup failed");
		} else {
			t0 = now_ms();
			rc = getpwnam_r("fedlogin-test-nosuchuser", &pw, buf, sizeof(buf), &res);
			check(res == NULL && (rc == 0 || rc == ENOENT) && now_ms() - t0 < 50,
			      "glibc getpwnam_r through fedlogin, no fedlogind: rc %d, %s", rc,
			      res == NULL ? "no entry" : "an entry");
			rc = getpwnam_r("root", &pw, buf, sizeof(buf), &res);
			check(res == NULL, "glibc getpwnam_r root through fedlogin alone: an entry");
			__nss_configure_lookup("passwd", "files");
			rc = getpwnam_r("root", &pw, buf, sizeof(buf), &res);
			check(rc == 0 && res != NULL && res->pw_uid == 0,
			      "glibc getpwnam_r root through files: rc %d", rc);
		}
	}
	dlclose(h);
	/* glibc keeps its own reference: it did load the module. */
	h = dlopen("libnss_fedlogin.so.2", RTLD_NOW | RTLD_NOLOAD);
	check(lstat(FEDLOGIN_DEFAULT_SOCKET, &st) == 0 || h != NULL,
	      "glibc did not load libnss_fedlogin.so.2");
	if (h != NULL)
		dlclose(h);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr,
			"usage: %s PATH/libnss_fedlogin.so.2 PROTOCOL_FIXTURES_DIR NSSCACHE_FIXTURES_DIR\n",
			argv[0]);
		return 2;
	}
	fixtures = argv[2];
	cache_fixtures = argv[3];
	signal(SIGPIPE, SIG_DFL); /* the module must never raise it */

	test_shipped(argv[1]);
	if (geteuid() != 0) {
		printf("SKIP: the lookups against a fake fedlogind need root (a root-owned socket, a root "
		       "peer)\n");
	} else {
		if (mkdtemp(tmpdir) == NULL) {
			perror("mkdtemp");
			return 2;
		}
		snprintf(sock_path, sizeof(sock_path), "%s/d.sock", tmpdir);
		snprintf(cache_path, sizeof(cache_path), "%s/nss.cache", tmpdir);
		fl_nss_test_set_socket(sock_path);
		/* No cache file until the cache tests put one there. */
		fl_nss_test_set_cache(cache_path);
		test_guards();
		test_trust();
		test_passwd();
		test_group();
		test_not_found();
		test_unavailable_replies();
		test_threads();
		test_cache_expected();
		test_cache_no_connection();
		test_cache_erange();
		test_cache_clock();
		test_cache_trust();
		test_cache_guards();
		test_cache_replaced();
		test_cache_threads();
		test_time_bounds();
		unlink(sock_path);
		rmdir(tmpdir);
	}
	while (nbuffers > 0)
		free(buffers[--nbuffers]);
	while (nloaded > 0)
		free(loaded[--nloaded].b.p);
	printf("test_nss: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
