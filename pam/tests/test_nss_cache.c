/*
 * test_nss_cache - checks the NSS cache file decoder (nss_cache.c) against
 * the fixtures of Tests/fixtures/nsscache, and against files made here.
 *
 *   test_nss_cache PATH/Tests/fixtures/nsscache
 *
 * Every line of expected.tsv (see make_fixtures.py there) is one lookup in
 * one file at one time, with the outcome the decoder must give: the entry,
 * NSS_NOTFOUND, no answer (ask fedlogind) or an invalid file. Each file is
 * read into a buffer of exactly its size, so AddressSanitizer sees any read
 * past it. Every .bin of the folder must be covered by a line.
 *
 * Then: files cut short at every length, every byte of basic.bin changed,
 * the limits of the size and of the indexes, signed times, and the keys the
 * module never asks about.
 *
 * Prints "N passed, M failed" and exits non-zero if anything failed.
 */
#include "../nss_cache.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static const char *dir;

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

/* --- files ---------------------------------------------------------------------- */

struct file {
	char name[128];
	uint8_t *p; /* exactly `len` bytes */
	size_t len;
};

static struct file files[128];
static size_t nfiles;

static const struct file *load(const char *name)
{
	char path[4096];
	struct file *f;
	FILE *fp;
	long n;

	for (size_t i = 0; i < nfiles; i++)
		if (strcmp(files[i].name, name) == 0)
			return &files[i];
	if (nfiles == sizeof(files) / sizeof(files[0]) || strlen(name) >= sizeof(files[0].name)) {
		fprintf(stderr, "too many fixtures, or a name too long: %s\n", name);
		exit(2);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "rb");
	if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) <= 0 ||
	    fseek(fp, 0, SEEK_SET) != 0) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	f = &files[nfiles++];
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->p = malloc((size_t)n);
	if (f->p == NULL || fread(f->p, 1, (size_t)n, fp) != (size_t)n) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	f->len = (size_t)n;
	fclose(fp);
	return f;
}

/* A copy of `len` bytes in a buffer of exactly that size (freed by the caller). */
static uint8_t *copy(const uint8_t *p, size_t len)
{
	uint8_t *c = malloc(len > 0 ? len : 1);

	if (c == NULL)
		abort();
	if (len > 0)
		memcpy(c, p, len);
	return c;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_i64(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;

	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(u >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* --- lookups -------------------------------------------------------------------- */

static const char *const result_names[] = {"invalid", "miss", "answer"};

static const char *result_name(int r)
{
	return r >= FL_CACHE_INVALID && r <= FL_CACHE_ANSWER ? result_names[r + 1] : "?";
}

static bool op_type(const char *op, uint8_t *type)
{
	static const struct {
		const char *name;
		uint8_t type;
	} ops[] = {
		{"getpwnam", FEDLOGIN_MSG_NSS_GETPWNAM},
		{"getpwuid", FEDLOGIN_MSG_NSS_GETPWUID},
		{"getgrnam", FEDLOGIN_MSG_NSS_GETGRNAM},
		{"getgrgid", FEDLOGIN_MSG_NSS_GETGRGID},
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(op, ops[i].name) == 0) {
			*type = ops[i].type;
			return true;
		}
	}
	return false;
}

static bool by_name(uint8_t type)
{
	return type == FEDLOGIN_MSG_NSS_GETPWNAM || type == FEDLOGIN_MSG_NSS_GETGRNAM;
}

static struct fl_key make_key(uint8_t type, const char *key)
{
	struct fl_key k = {type, NULL, 0, 0};

	if (by_name(type)) {
		k.name = key;
		k.name_len = strlen(key);
	} else {
		k.id = (uint32_t)strtoul(key, NULL, 10);
	}
	return k;
}

static bool str_is(const struct fedlogin_field *f, const char *s)
{
	return f->kind == FEDLOGIN_FIELD_STR && f->len == strlen(s) &&
	       (f->len == 0 || memcmp(f->str, s, f->len) == 0);
}

static bool num_is(const struct fedlogin_field *f, const char *s)
{
	return f->kind == FEDLOGIN_FIELD_U32 && f->num == (uint32_t)strtoul(s, NULL, 10);
}

/*
 * The contract of an answer (nss_cache.h), whatever the input: the reply
 * type fits the lookup; an entry is for the key, has valid ids and name,
 * and strings inside the file without ':', '\n' or NUL.
 */
static bool answer_keeps_contract(const uint8_t *map, size_t size, const struct fl_key *k,
				  const struct fedlogin_msg *m)
{
	bool group = k->type == FEDLOGIN_MSG_NSS_GETGRNAM || k->type == FEDLOGIN_MSG_NSS_GETGRGID;
	const struct fedlogin_field *name = &m->fields[0];

	if (m->type == FEDLOGIN_MSG_NSS_NOTFOUND)
		return m->nfields == 0;
	if (m->type != (group ? FEDLOGIN_MSG_NSS_GROUP : FEDLOGIN_MSG_NSS_PASSWD) ||
	    m->nfields != (group ? 3u : 6u))
		return false;
	for (size_t i = 0; i < m->nfields; i++) {
		const struct fedlogin_field *f = &m->fields[i];

		if (f->kind != FEDLOGIN_FIELD_STR)
			continue;
		if (f->str == NULL || f->len > FEDLOGIN_MAX_STR || memchr(f->str, '\0', f->len) != NULL ||
		    fl_nss_has_separator(f->str, f->len))
			return false;
		/* Inside the file (an empty member list may be a literal). */
		if (f->len > 0 &&
		    ((const uint8_t *)f->str < map || (const uint8_t *)f->str + f->len > map + size))
			return false;
	}
	if (!fl_nss_valid_name(name->str, name->len))
		return false;
	if (by_name(k->type) && (name->len != k->name_len || memcmp(name->str, k->name, name->len) != 0))
		return false;
	if (group)
		return m->fields[2].len == 0 && fl_nss_valid_id(m->fields[1].num) &&
		       (by_name(k->type) || m->fields[1].num == k->id);
	return fl_nss_valid_id(m->fields[1].num) && fl_nss_valid_id(m->fields[2].num) &&
	       (by_name(k->type) || m->fields[1].num == k->id);
}

/* --- expected.tsv --------------------------------------------------------------- */

#define MAX_COLUMNS 16

/* Splits `line` at tabs in place, keeping empty columns. Returns the count. */
static size_t split(char *line, char **cols)
{
	size_t n = 0;

	for (char *p = line;;) {
		char *tab = strchr(p, '\t');

		if (n == MAX_COLUMNS)
			return n + 1; /* too many */
		cols[n++] = p;
		if (tab == NULL)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	return n;
}

static void test_expected(void)
{
	char path[4096], *line = NULL, *cols[MAX_COLUMNS];
	size_t cap = 0, lineno = 0;
	ssize_t len;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/expected.tsv", dir);
	fp = fopen(path, "r");
	if (fp == NULL) {
		perror(path);
		exit(2);
	}
	while ((len = getline(&line, &cap, fp)) > 0) {
		const struct file *f;
		struct fedlogin_msg m;
		struct fl_key k;
		const char *outcome;
		uint8_t type;
		int64_t now;
		size_t n;
		int r;
		bool ok;

		lineno++;
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		n = split(line, cols);
		if (n < 5 || n > MAX_COLUMNS || !op_type(cols[2], &type)) {
			check(false, "expected.tsv:%zu: malformed line", lineno);
			continue;
		}
		f = load(cols[0]);
		now = strtoll(cols[1], NULL, 10);
		k = make_key(type, cols[3]);
		outcome = cols[4];
		memset(&m, 0xa5, sizeof(m));
		r = fl_nss_cache_lookup(f->p, f->len, now, &k, &m);

		if (strcmp(outcome, "passwd") == 0) {
			ok = n == 11 && r == FL_CACHE_ANSWER && m.type == FEDLOGIN_MSG_NSS_PASSWD &&
			     m.nfields == 6 && str_is(&m.fields[0], cols[5]) &&
			     num_is(&m.fields[1], cols[6]) && num_is(&m.fields[2], cols[7]) &&
			     str_is(&m.fields[3], cols[8]) && str_is(&m.fields[4], cols[9]) &&
			     str_is(&m.fields[5], cols[10]);
		} else if (strcmp(outcome, "group") == 0) {
			ok = n == 7 && r == FL_CACHE_ANSWER && m.type == FEDLOGIN_MSG_NSS_GROUP &&
			     m.nfields == 3 && str_is(&m.fields[0], cols[5]) &&
			     num_is(&m.fields[1], cols[6]) && str_is(&m.fields[2], "");
		} else if (strcmp(outcome, "notfound") == 0) {
			ok = n == 5 && r == FL_CACHE_ANSWER && m.type == FEDLOGIN_MSG_NSS_NOTFOUND;
		} else if (strcmp(outcome, "ask") == 0) {
			ok = n == 5 && r == FL_CACHE_MISS;
		} else if (strcmp(outcome, "ignore") == 0) {
			ok = n == 5 && r == FL_CACHE_INVALID;
		} else {
			check(false, "expected.tsv:%zu: unknown outcome %s", lineno, outcome);
			continue;
		}
		check(ok, "expected.tsv:%zu: %s at %s: %s %.40s: expected %s, got %s (type 0x%02x)", lineno,
		      cols[0], cols[1], cols[2], cols[3], outcome, result_name(r),
		      r == FL_CACHE_ANSWER ? m.type : 0);
		if (r == FL_CACHE_ANSWER)
			check(answer_keeps_contract(f->p, f->len, &k, &m),
			      "expected.tsv:%zu: the answer breaks the contract", lineno);
	}
	free(line);
	fclose(fp);
	check(lineno > 0, "expected.tsv is empty");

	/* Every file of the folder was looked at. */
	{
		DIR *d = opendir(dir);
		struct dirent *e;
		size_t bins = 0;

		if (d == NULL) {
			perror(dir);
			exit(2);
		}
		while ((e = readdir(d)) != NULL) {
			size_t l = strlen(e->d_name);
			bool seen = false;

			if (l < 4 || strcmp(e->d_name + l - 4, ".bin") != 0)
				continue;
			bins++;
			for (size_t i = 0; i < nfiles; i++)
				seen = seen || strcmp(files[i].name, e->d_name) == 0;
			check(seen, "%s has no line in expected.tsv", e->d_name);
		}
		closedir(d);
		check(bins == nfiles, "expected.tsv names %zu files, the folder has %zu", nfiles, bins);
	}
}

/* --- files made here -------------------------------------------------------------- */

#define NOW 1700000100

/* The lookups asked of every variant. */
static const struct {
	uint8_t type;
	const char *key;
} probes[] = {
	{FEDLOGIN_MSG_NSS_GETPWNAM, "alice"},	    {FEDLOGIN_MSG_NSS_GETPWNAM, "bob"},
	{FEDLOGIN_MSG_NSS_GETPWNAM, "carol"},	    {FEDLOGIN_MSG_NSS_GETPWNAM, "dave"},
	{FEDLOGIN_MSG_NSS_GETPWNAM, "zed"},	    {FEDLOGIN_MSG_NSS_GETPWNAM, "erin"},
	{FEDLOGIN_MSG_NSS_GETGRNAM, "nobody-here"}, {FEDLOGIN_MSG_NSS_GETGRNAM, "bob"},
	{FEDLOGIN_MSG_NSS_GETPWUID, "60001"},	    {FEDLOGIN_MSG_NSS_GETPWUID, "60003"},
	{FEDLOGIN_MSG_NSS_GETPWUID, "60099"},	    {FEDLOGIN_MSG_NSS_GETGRGID, "60002"},
	{FEDLOGIN_MSG_NSS_GETGRGID, "60004"},
};

/* Asks every probe of `map`; counts the results; checks every answer. */
static void probe_all(const char *what, const uint8_t *map, size_t size, int64_t now, int counts[3])
{
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct fl_key k = make_key(probes[i].type, probes[i].key);
		struct fedlogin_msg m;
		int r = fl_nss_cache_lookup(map, size, now, &k, &m);

		if (r < FL_CACHE_INVALID || r > FL_CACHE_ANSWER) {
			check(false, "%s: result %d", what, r);
			continue;
		}
		counts[r + 1]++;
		if (r == FL_CACHE_ANSWER && !answer_keeps_contract(map, size, &k, &m))
			check(false, "%s: the answer to %s breaks the contract", what, probes[i].key);
	}
}

static int lookup(const uint8_t *map, size_t size, int64_t now, uint8_t type, const char *key,
		  struct fedlogin_msg *m)
{
	struct fl_key k = make_key(type, key);

	return fl_nss_cache_lookup(map, size, now, &k, m);
}

/*
 * Cut short at every length, with the size field left as it was and made to
 * fit: in basic.bin the records end the file, in shuffled.bin the name index.
 */
static void test_truncations(const struct file *f)
{
	for (size_t len = 0; len < f->len; len++) {
		uint8_t *p = copy(f->p, len);
		int counts[3] = {0};
		char what[sizeof(f->name) + 96];

		snprintf(what, sizeof(what), "%s cut to %zu bytes", f->name, len);
		probe_all(what, p, len, NOW, counts);
		check(counts[0] == (int)(sizeof(probes) / sizeof(probes[0])),
		      "%s: not every lookup ignores it", what);
		if (len >= 16) {
			memset(counts, 0, sizeof(counts));
			put_u32(p + 12, (uint32_t)len);
			snprintf(what, sizeof(what), "%s cut to %zu bytes, size field %zu", f->name, len,
				 len);
			probe_all(what, p, len, NOW, counts);
		}
		free(p);
	}
}

/* Every byte of basic.bin set to a few values: no read outside the file, every answer valid. */
static void test_byte_changes(const struct file *basic)
{
	static const uint8_t values[] = {0x00, 0x01, 0x3a, 0x7f, 0x80, 0xff};
	int counts[3] = {0};

	for (size_t i = 0; i < basic->len; i++) {
		for (size_t v = 0; v < sizeof(values); v++) {
			uint8_t *p = copy(basic->p, basic->len);
			char what[96];

			p[i] = values[v];
			snprintf(what, sizeof(what), "basic.bin byte %zu = 0x%02x", i, values[v]);
			probe_all(what, p, basic->len, NOW, counts);
			free(p);
		}
	}
	/* The header's bytes alone make some variants invalid; record bytes others. */
	check(counts[0] > 0 && counts[1] > 0 && counts[2] > 0,
	      "byte changes: %d invalid, %d miss, %d answers", counts[0], counts[1], counts[2]);
}

/* The limits: 8 MiB, 65536 index entries. */
static void test_limits(const struct file *basic)
{
	struct fedlogin_msg m;
	uint32_t alice = get_u32(basic->p + get_u32(basic->p + 40));
	size_t size;
	uint8_t *p;
	int r;

	/* A file of exactly FL_CACHE_MAX_SIZE (basic.bin, then bytes nothing points at). */
	size = FL_CACHE_MAX_SIZE;
	p = calloc(1, size + 1);
	memcpy(p, basic->p, basic->len);
	put_u32(p + 12, (uint32_t)size);
	r = lookup(p, size, NOW, FEDLOGIN_MSG_NSS_GETPWNAM, "alice", &m);
	check(r == FL_CACHE_ANSWER && m.type == FEDLOGIN_MSG_NSS_PASSWD, "a file of 8 MiB: %s",
	      result_name(r));
	put_u32(p + 12, (uint32_t)size + 1);
	r = lookup(p, size + 1, NOW, FEDLOGIN_MSG_NSS_GETPWNAM, "alice", &m);
	check(r == FL_CACHE_INVALID, "a file of 8 MiB + 1 byte: %s", result_name(r));
	free(p);

	/* 65536 name index entries, all alice's record, after the records: found.
	 * 65537: invalid, though the index is inside the file. */
	for (uint32_t n = FL_CACHE_MAX_ENTRIES; n <= FL_CACHE_MAX_ENTRIES + 1; n++) {
		size = basic->len + 4 * (size_t)n;
		p = malloc(size);
		memcpy(p, basic->p, basic->len);
		for (uint32_t i = 0; i < n; i++)
			put_u32(p + basic->len + 4 * (size_t)i, alice);
		put_u32(p + 12, (uint32_t)size);
		put_u32(p + 32, n);
		put_u32(p + 40, (uint32_t)basic->len);
		r = lookup(p, size, NOW, FEDLOGIN_MSG_NSS_GETPWNAM, "alice", &m);
		if (n == FL_CACHE_MAX_ENTRIES)
			check(r == FL_CACHE_ANSWER, "a name index of 65536 entries: %s", result_name(r));
		else
			check(r == FL_CACHE_INVALID, "a name index of 65537 entries: %s", result_name(r));
		free(p);
	}

	r = fl_nss_cache_lookup(NULL, 0, NOW, &(struct fl_key){FEDLOGIN_MSG_NSS_GETPWUID, NULL, 0, 60001},
				&m);
	check(r == FL_CACHE_INVALID, "no file: %s", result_name(r));
}

/* Times are signed: before 1970 is before, not after 2262. */
static void test_signed_times(const struct file *basic)
{
	uint8_t *p = copy(basic->p, basic->len);
	struct fedlogin_msg m;
	int r;

	put_i64(p + 16, -1); /* generated */
	r = lookup(p, basic->len, NOW, FEDLOGIN_MSG_NSS_GETPWNAM, "alice", &m);
	check(r == FL_CACHE_ANSWER, "generated -1: %s", result_name(r));
	r = lookup(p, basic->len, -1, FEDLOGIN_MSG_NSS_GETPWNAM, "alice", &m);
	check(r == FL_CACHE_ANSWER, "generated -1, now -1: %s", result_name(r));
	r = lookup(p, basic->len, -2, FEDLOGIN_MSG_NSS_GETPWNAM, "alice", &m);
	check(r == FL_CACHE_INVALID, "generated -1, now -2: %s", result_name(r));
	put_i64(p + 16, INT64_MIN);
	put_i64(p + 24, -1); /* ids_until */
	r = lookup(p, basic->len, NOW, FEDLOGIN_MSG_NSS_GETPWUID, "60099", &m);
	check(r == FL_CACHE_MISS, "ids_until -1: %s", result_name(r));
	r = lookup(p, basic->len, -2, FEDLOGIN_MSG_NSS_GETPWUID, "60099", &m);
	check(r == FL_CACHE_ANSWER && m.type == FEDLOGIN_MSG_NSS_NOTFOUND, "ids_until -1, now -2: %s",
	      result_name(r));
	put_i64(p + 24, INT64_MAX);
	r = lookup(p, basic->len, INT64_MAX - 1, FEDLOGIN_MSG_NSS_GETPWUID, "60099", &m);
	check(r == FL_CACHE_ANSWER && m.type == FEDLOGIN_MSG_NSS_NOTFOUND, "ids_until INT64_MAX: %s",
	      result_name(r));
	free(p);
}

/* Keys the module never asks about: no answer, whatever the file says. */
static void test_keys(const struct file *basic)
{
	char long_name[FL_NSS_MAX_NAME + 2];
	struct fedlogin_msg m;
	struct {
		struct fl_key k;
		const char *what;
	} keys[] = {
		{{FEDLOGIN_MSG_NSS_GETPWNAM, "", 0, 0}, "an empty name"},
		{{FEDLOGIN_MSG_NSS_GETPWNAM, NULL, 0, 0}, "no name"},
		{{FEDLOGIN_MSG_NSS_GETPWNAM, "root", 4, 0}, "root"},
		{{FEDLOGIN_MSG_NSS_GETGRNAM, "a:b", 3, 0}, "a:b"},
		{{FEDLOGIN_MSG_NSS_GETGRNAM, "a\nb", 3, 0}, "a newline"},
		{{FEDLOGIN_MSG_NSS_GETPWNAM, long_name, FL_NSS_MAX_NAME + 1, 0}, "257 bytes"},
		{{FEDLOGIN_MSG_NSS_GETPWUID, NULL, 0, 0}, "uid 0"},
		{{FEDLOGIN_MSG_NSS_GETGRGID, NULL, 0, 0}, "gid 0"},
		{{FEDLOGIN_MSG_NSS_GETPWUID, NULL, 0, UINT32_MAX}, "uid 4294967295"},
		{{FEDLOGIN_MSG_NSS_GETGRGID, NULL, 0, UINT32_MAX}, "gid 4294967295"},
		{{FEDLOGIN_MSG_NSS_PASSWD, "alice", 5, 0}, "a reply type"},
		{{FEDLOGIN_MSG_CONTROL, "alice", 5, 0}, "CONTROL"},
	};

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int r = fl_nss_cache_lookup(basic->p, basic->len, NOW, &keys[i].k, &m);

		check(r == FL_CACHE_MISS, "key %s: %s", keys[i].what, result_name(r));
	}
	/* A name of 256 bytes is looked up (edge.bin holds one). */
	{
		const struct file *edge = load("edge.bin");
		int r;

		memset(long_name, 'x', FL_NSS_MAX_NAME);
		long_name[FL_NSS_MAX_NAME] = '\0';
		r = lookup(edge->p, edge->len, NOW, FEDLOGIN_MSG_NSS_GETGRNAM, long_name, &m);
		check(r == FL_CACHE_ANSWER && m.type == FEDLOGIN_MSG_NSS_GROUP &&
			      m.fields[0].len == FL_NSS_MAX_NAME,
		      "a 256-byte name: %s", result_name(r));
	}
}

int main(int argc, char **argv)
{
	const struct file *basic;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH/Tests/fixtures/nsscache\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	test_expected();
	basic = load("basic.bin");
	test_truncations(basic);
	test_truncations(load("shuffled.bin"));
	test_byte_changes(basic);
	test_limits(basic);
	test_signed_times(basic);
	test_keys(basic);
	while (nfiles > 0)
		free(files[--nfiles].p);
	printf("test_nss_cache: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
