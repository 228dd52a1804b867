/*
 * fuzz_nsscache - libFuzzer target for the NSS cache file decoder
 * (pam/nss_cache.c) and the NSS module's use of its answers
 * (pam/nss_fedlogin.c, included here for its static functions).
 *
 * The input is a whole cache file; libFuzzer hands it over in a buffer of
 * exactly its size, so any read past it is an AddressSanitizer report. It
 * is read as it is, and again with the header's size field set to the
 * input's length (in a copy of exactly that size), so that a file the
 * fuzzer cut short or made longer still gets past that check. The
 * decoder is asked a fixed set of names and ids (those of the fixtures in
 * Tests/fixtures/nsscache, which are the seeds, and a few more), each by
 * passwd and by group, at fixed times and at the time the header says the
 * file was written. For every lookup:
 *
 *  - the result is one of FL_CACHE_INVALID, _MISS, _ANSWER;
 *  - an answer keeps the contract of nss_cache.h: NSS_PASSWD to a passwd
 *    lookup or NSS_GROUP to a group lookup (or NSS_NOTFOUND), for the key
 *    asked, with uid and gid neither 0 nor 4294967295, a valid name, no
 *    ':', '\n' or NUL in a string, every string inside the file, at most
 *    FEDLOGIN_MAX_STR bytes, and a group without members;
 *  - the passwd and the group lookup of the same key agree: the same
 *    result, and the group is the passwd entry's private group (by id,
 *    answered only when its gid is the one asked);
 *  - the module's mapping (fl_answer: fill_passwd, fill_group) takes the
 *    answer into a heap buffer of exactly the size it needs (SUCCESS, the
 *    entry equal to the answer) and refuses one a byte shorter
 *    (TRYAGAIN, ERANGE) without writing to it.
 *
 * A violated check calls abort(), which libFuzzer reports as a crash.
 *
 *   make -C pam OUT=/abs/out fuzz-smoke   (or fuzz, for a long run)
 */
#include "../pam/nss_fedlogin.c"

#include <stdio.h>

#define CHECK(cond)                                                                                   \
	do {                                                                                          \
		if (!(cond)) {                                                                        \
			fprintf(stderr, "fuzz_nsscache: check failed: %s (%s:%d)\n", #cond, __FILE__, \
				__LINE__);                                                            \
			abort();                                                                      \
		}                                                                                     \
	} while (0)

static const char *const names[] = {
	"alice", "bob", "carol", "dave", "zed",		 "nobody-here", "erin", "a",
	"a-",	 "ab",	"b",	 "zoe",	 "\xc3\xa9mile", "\xc3\xa9",	"n",	"x",
};
static const uint32_t ids[] = {
	60001, 60002, 60003, 60004, 60005, 60099, 70001,       70002,
	70003, 70004, 70005, 70100, 1000,  1,	  4294967294u,
};

static bool inside(const uint8_t *map, size_t size, const struct fedlogin_field *f)
{
	return f->len == 0 ||
	       ((const uint8_t *)f->str >= map && (size_t)((const uint8_t *)f->str - map) <= size &&
		f->len <= size - (size_t)((const uint8_t *)f->str - map));
}

static void check_str(const uint8_t *map, size_t size, const struct fedlogin_field *f)
{
	CHECK(f->kind == FEDLOGIN_FIELD_STR);
	CHECK(f->str != NULL);
	CHECK(f->len <= FEDLOGIN_MAX_STR);
	CHECK(inside(map, size, f));
	CHECK(memchr(f->str, '\0', f->len) == NULL);
	CHECK(!fl_nss_has_separator(f->str, f->len));
}

static bool same_str(const char *c, const struct fedlogin_field *f)
{
	return strlen(c) == f->len && memcmp(c, f->str, f->len) == 0;
}

/* The answer `m` to `k` keeps the contract. */
static void check_answer(const uint8_t *map, size_t size, const struct fl_key *k,
			 const struct fedlogin_msg *m)
{
	bool group = k->type == FEDLOGIN_MSG_NSS_GETGRNAM || k->type == FEDLOGIN_MSG_NSS_GETGRGID;
	const struct fedlogin_field *name = &m->fields[0];

	if (m->type == FEDLOGIN_MSG_NSS_NOTFOUND) {
		CHECK(m->nfields == 0);
		return;
	}
	CHECK(m->type == (group ? FEDLOGIN_MSG_NSS_GROUP : FEDLOGIN_MSG_NSS_PASSWD));
	CHECK(m->nfields == (group ? 3u : 6u));
	check_str(map, size, name);
	CHECK(fl_nss_valid_name(name->str, name->len));
	if (k->name != NULL)
		CHECK(name->len == k->name_len && memcmp(name->str, k->name, name->len) == 0);
	CHECK(m->fields[1].kind == FEDLOGIN_FIELD_U32 && fl_nss_valid_id(m->fields[1].num));
	if (group) {
		check_str(map, size, &m->fields[2]);
		CHECK(m->fields[2].len == 0);
		if (k->name == NULL)
			CHECK(m->fields[1].num == k->id);
		return;
	}
	CHECK(m->fields[2].kind == FEDLOGIN_FIELD_U32 && fl_nss_valid_id(m->fields[2].num));
	if (k->name == NULL)
		CHECK(m->fields[1].num == k->id);
	for (size_t i = 3; i < 6; i++)
		check_str(map, size, &m->fields[i]);
}

/* The module's mapping of the answer, into buffers of exactly the size needed and a byte less. */
static void check_fill(const struct fl_key *k, const struct fedlogin_msg *m)
{
	bool group = m->type == FEDLOGIN_MSG_NSS_GROUP;
	struct passwd pw;
	struct group gr;
	size_t need;
	char *buf;
	int err;
	enum nss_status st;

	if (m->type == FEDLOGIN_MSG_NSS_NOTFOUND) {
		err = 0;
		st = fl_answer(m, k, group ? NULL : &pw, group ? &gr : NULL, NULL, 0, &err);
		CHECK(st == NSS_STATUS_NOTFOUND && err == ENOENT);
		return;
	}
	if (group)
		need = sizeof(char *) + m->fields[0].len + 1 + 2; /* malloc'ed: aligned, no padding */
	else
		need = m->fields[0].len + 1 + 2 + m->fields[3].len + 1 + m->fields[4].len + 1 +
		       m->fields[5].len + 1;

	buf = malloc(need - 1);
	CHECK(buf != NULL);
	err = 0;
	st = fl_answer(m, k, group ? NULL : &pw, group ? &gr : NULL, buf, need - 1, &err);
	CHECK(st == NSS_STATUS_TRYAGAIN && err == ERANGE);
	free(buf);

	buf = malloc(need);
	CHECK(buf != NULL);
	err = 0;
	st = fl_answer(m, k, group ? NULL : &pw, group ? &gr : NULL, buf, need, &err);
	CHECK(st == NSS_STATUS_SUCCESS && err == 0);
	if (group) {
		CHECK(same_str(gr.gr_name, &m->fields[0]) && strcmp(gr.gr_passwd, "x") == 0);
		CHECK(gr.gr_gid == m->fields[1].num && gr.gr_mem[0] == NULL);
	} else {
		CHECK(same_str(pw.pw_name, &m->fields[0]) && strcmp(pw.pw_passwd, "x") == 0);
		CHECK(pw.pw_uid == m->fields[1].num && pw.pw_gid == m->fields[2].num);
		CHECK(same_str(pw.pw_gecos, &m->fields[3]) && same_str(pw.pw_dir, &m->fields[4]) &&
		      same_str(pw.pw_shell, &m->fields[5]));
	}
	free(buf);
}

/* One lookup: its result, checked. */
static int ask(const uint8_t *data, size_t size, int64_t now, const struct fl_key *k, struct fedlogin_msg *m)
{
	int r = fl_nss_cache_lookup(data, size, now, k, m);

	CHECK(r == FL_CACHE_INVALID || r == FL_CACHE_MISS || r == FL_CACHE_ANSWER);
	if (r == FL_CACHE_ANSWER) {
		check_answer(data, size, k, m);
		check_fill(k, m);
	}
	return r;
}

static void lookups(const uint8_t *data, size_t size, int64_t now, const char *name, size_t len, uint32_t id)
{
	struct fedlogin_msg pm, gm;
	struct fl_key pk, gk;
	int pr, gr;

	if (name != NULL) {
		pk = (struct fl_key){FEDLOGIN_MSG_NSS_GETPWNAM, name, len, 0};
		gk = (struct fl_key){FEDLOGIN_MSG_NSS_GETGRNAM, name, len, 0};
	} else {
		pk = (struct fl_key){FEDLOGIN_MSG_NSS_GETPWUID, NULL, 0, id};
		gk = (struct fl_key){FEDLOGIN_MSG_NSS_GETGRGID, NULL, 0, id};
	}
	pr = ask(data, size, now, &pk, &pm);
	gr = ask(data, size, now, &gk, &gm);

	/* Both read the same records: the same result, and the group is the
	 * private group of the passwd entry (by id: if its gid is the one asked). */
	if (pr == FL_CACHE_ANSWER && pm.type == FEDLOGIN_MSG_NSS_PASSWD) {
		if (name == NULL && pm.fields[2].num != id) {
			CHECK(gr == FL_CACHE_MISS);
			return;
		}
		CHECK(gr == FL_CACHE_ANSWER && gm.type == FEDLOGIN_MSG_NSS_GROUP);
		CHECK(gm.fields[0].str == pm.fields[0].str && gm.fields[0].len == pm.fields[0].len);
		CHECK(gm.fields[1].num == pm.fields[2].num);
		return;
	}
	CHECK(gr == pr);
	if (pr == FL_CACHE_ANSWER)
		CHECK(pm.type == FEDLOGIN_MSG_NSS_NOTFOUND && gm.type == FEDLOGIN_MSG_NSS_NOTFOUND);
}

static void all_lookups(const uint8_t *data, size_t size)
{
	int64_t times[3] = {1700000100, 1700000004, 0};
	char longest[FL_NSS_MAX_NAME];

	/* The time the file says it was written: every comparison at its edge. */
	if (size >= 24) {
		uint64_t v = 0;

		for (int i = 7; i >= 0; i--)
			v = v << 8 | data[16 + i];
		times[2] = (int64_t)v;
	}
	memset(longest, 'x', sizeof(longest));
	for (size_t t = 0; t < 3; t++) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			lookups(data, size, times[t], names[i], strlen(names[i]), 0);
		lookups(data, size, times[t], longest, sizeof(longest), 0);
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
			lookups(data, size, times[t], NULL, 0, ids[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	all_lookups(data, size);
	if (size >= 16 && size <= FL_CACHE_MAX_SIZE &&
	    (data[12] | data[13] << 8 | data[14] << 16 | (uint32_t)data[15] << 24) != size) {
		uint8_t *copy = malloc(size);

		CHECK(copy != NULL);
		memcpy(copy, data, size);
		for (int i = 0; i < 4; i++)
			copy[12 + i] = (uint8_t)(size >> (8 * i));
		all_lookups(copy, size);
		free(copy);
	}
	return 0;
}
