/*
 * nss_cache.c - decoder of fedlogind's NSS cache file (see nss_cache.h and
 * docs/protocol.md, "NSS cache file"). Pure functions: no I/O, no
 * allocation, no global state.
 *
 * The header is checked in full before anything else is read. A lookup then
 * reads only the records its binary search lands on, and checks each of
 * them in full (bounds, padding, kind, strings, and the rules of an entry
 * for a USER record) before it uses any field: a record that fails makes
 * the whole file invalid for the lookup. Offsets and lengths are checked
 * against the file's size before every read, so no input reads outside it.
 */
#include "nss_cache.h"

#include <string.h>

/* The header, checked. */
struct cache {
	const uint8_t *map;
	size_t size;
	int64_t ids_until;
	uint32_t n_names, n_ids;
	size_t names_off, ids_off;
};

/* A record, checked; its strings point into the file. */
struct record {
	uint8_t kind;
	uint32_t uid, gid;
	int64_t expires;
	struct fedlogin_field name, gecos, dir, shell;
};

bool fl_nss_has_separator(const char *s, size_t len)
{
	return len > 0 && (memchr(s, ':', len) != NULL || memchr(s, '\n', len) != NULL);
}

bool fl_nss_valid_name(const char *s, size_t len)
{
	return len > 0 && len <= FL_NSS_MAX_NAME && !fl_nss_has_separator(s, len) &&
	       !(len == 4 && memcmp(s, "root", 4) == 0);
}

bool fl_nss_valid_id(uint32_t id)
{
	return id != 0 && id != FL_NSS_NO_ID;
}

static uint32_t get_u16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int64_t get_i64(const uint8_t *p)
{
	uint64_t v = (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;

	/* Two's complement, without the implementation-defined conversion. */
	return v <= INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1;
}

/* An index of `n` u32 entries at `off` lies after the header and inside the file. */
static bool index_inside(size_t size, size_t off, uint32_t n)
{
	return n <= FL_CACHE_MAX_ENTRIES && off >= FL_CACHE_HEADER && off <= size && (size - off) / 4 >= n;
}

/* Checks the header of a `size`-byte file at `now`, and fills *c. */
static bool read_header(const uint8_t *map, size_t size, int64_t now, struct cache *c)
{
	if (map == NULL || size < FL_CACHE_HEADER || size > FL_CACHE_MAX_SIZE)
		return false;
	if (memcmp(map, FL_CACHE_MAGIC, FL_CACHE_MAGIC_LEN) != 0 || get_u32(map + 8) != FL_CACHE_VERSION ||
	    get_u32(map + 12) != size)
		return false;
	/* A file written after `now`: the clock went back, nothing in it is known fresh. */
	if (now < get_i64(map + 16))
		return false;
	c->map = map;
	c->size = size;
	c->ids_until = get_i64(map + 24);
	c->n_names = get_u32(map + 32);
	c->n_ids = get_u32(map + 36);
	c->names_off = get_u32(map + 40);
	c->ids_off = get_u32(map + 44);
	return index_inside(size, c->names_off, c->n_names) && index_inside(size, c->ids_off, c->n_ids);
}

/* Reads a string of at most `max` bytes without NUL at *pos, and advances *pos. */
static bool read_str(const struct cache *c, size_t *pos, size_t max, struct fedlogin_field *f)
{
	size_t n;

	if (c->size - *pos < 2)
		return false;
	n = get_u16(c->map + *pos);
	*pos += 2;
	if (n > max || c->size - *pos < n)
		return false;
	if (n > 0 && memchr(c->map + *pos, '\0', n) != NULL)
		return false;
	f->kind = FEDLOGIN_FIELD_STR;
	f->num = 0;
	f->str = (const char *)(c->map + *pos);
	f->len = n;
	*pos += n;
	return true;
}

/* Reads and checks the record at `off`. False if it is malformed. */
static bool read_record(const struct cache *c, size_t off, struct record *r)
{
	const uint8_t *p;
	size_t pos;

	if (off < FL_CACHE_HEADER || off > c->size || c->size - off < FL_CACHE_RECORD_FIXED)
		return false;
	p = c->map + off;
	if (p[1] != 0 || p[2] != 0 || p[3] != 0)
		return false;
	r->kind = p[0];
	r->uid = get_u32(p + 4);
	r->gid = get_u32(p + 8);
	r->expires = get_i64(p + 12);
	pos = off + FL_CACHE_RECORD_FIXED;
	if (!read_str(c, &pos, FL_NSS_MAX_NAME, &r->name) ||
	    !read_str(c, &pos, FEDLOGIN_MAX_STR, &r->gecos) ||
	    !read_str(c, &pos, FEDLOGIN_MAX_STR, &r->dir) || !read_str(c, &pos, FEDLOGIN_MAX_STR, &r->shell))
		return false;
	if (!fl_nss_valid_name(r->name.str, r->name.len))
		return false;
	switch (r->kind) {
	case FL_CACHE_USER:
		/* The rules of an entry from the socket (nss_fedlogin.c, fill_passwd). */
		return fl_nss_valid_id(r->uid) && fl_nss_valid_id(r->gid) &&
		       !fl_nss_has_separator(r->gecos.str, r->gecos.len) &&
		       !fl_nss_has_separator(r->dir.str, r->dir.len) &&
		       !fl_nss_has_separator(r->shell.str, r->shell.len);
	case FL_CACHE_NOTFOUND:
		return r->uid == 0 && r->gid == 0;
	case FL_CACHE_ASK:
		return true;
	default:
		return false;
	}
}

/* The record offset in entry `i` of the index at `off`. */
static size_t index_entry(const struct cache *c, size_t off, size_t i)
{
	return get_u32(c->map + off + 4 * i);
}

/* Unsigned bytes; of two names with a common prefix, the shorter first. */
static int compare_names(const char *a, size_t alen, const char *b, size_t blen)
{
	int d = memcmp(a, b, alen < blen ? alen : blen);

	if (d != 0)
		return d;
	return alen < blen ? -1 : alen > blen;
}

/* Binary search of the name index: 1 found (*r), 0 absent, -1 a malformed record. */
static int find_name(const struct cache *c, const char *name, size_t len, struct record *r)
{
	size_t lo = 0, hi = c->n_names;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d;

		if (!read_record(c, index_entry(c, c->names_off, mid), r))
			return -1;
		d = compare_names(name, len, r->name.str, r->name.len);
		if (d == 0)
			return 1;
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

/* Binary search of the id index: 1 found (*r), 0 absent, -1 a malformed record. */
static int find_id(const struct cache *c, uint32_t uid, struct record *r)
{
	size_t lo = 0, hi = c->n_ids;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (!read_record(c, index_entry(c, c->ids_off, mid), r))
			return -1;
		/* Only USER and ASK records have a uid to be found by. */
		if (r->kind == FL_CACHE_NOTFOUND)
			return -1;
		if (uid == r->uid)
			return 1;
		if (uid < r->uid)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

static void put_str(struct fedlogin_field *f, const struct fedlogin_field *s)
{
	*f = *s;
}

static void put_u32(struct fedlogin_field *f, uint32_t v)
{
	f->kind = FEDLOGIN_FIELD_U32;
	f->num = v;
	f->str = NULL;
	f->len = 0;
}

/* The reply fedlogind would give for the USER record `r`. */
static void entry_reply(const struct record *r, bool group, struct fedlogin_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (group) {
		m->type = FEDLOGIN_MSG_NSS_GROUP;
		m->nfields = 3;
		put_str(&m->fields[0], &r->name);
		put_u32(&m->fields[1], r->gid);
		/* A private group has no members. */
		m->fields[2].kind = FEDLOGIN_FIELD_STR;
		m->fields[2].str = "";
		m->fields[2].len = 0;
	} else {
		m->type = FEDLOGIN_MSG_NSS_PASSWD;
		m->nfields = 6;
		put_str(&m->fields[0], &r->name);
		put_u32(&m->fields[1], r->uid);
		put_u32(&m->fields[2], r->gid);
		put_str(&m->fields[3], &r->gecos);
		put_str(&m->fields[4], &r->dir);
		put_str(&m->fields[5], &r->shell);
	}
}

static int not_found(struct fedlogin_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = FEDLOGIN_MSG_NSS_NOTFOUND;
	return FL_CACHE_ANSWER;
}

int fl_nss_cache_lookup(const uint8_t *map, size_t size, int64_t now, const struct fl_key *key,
			struct fedlogin_msg *reply)
{
	struct cache c;
	struct record r;
	bool by_name, group;
	int found;

	switch (key->type) {
	case FEDLOGIN_MSG_NSS_GETPWNAM:
		by_name = true;
		group = false;
		break;
	case FEDLOGIN_MSG_NSS_GETPWUID:
		by_name = false;
		group = false;
		break;
	case FEDLOGIN_MSG_NSS_GETGRNAM:
		by_name = true;
		group = true;
		break;
	case FEDLOGIN_MSG_NSS_GETGRGID:
		by_name = false;
		group = true;
		break;
	default:
		return FL_CACHE_MISS;
	}
	/* Keys the module never asks about have no answer here either. */
	if (by_name ? key->name == NULL || !fl_nss_valid_name(key->name, key->name_len)
		    : !fl_nss_valid_id(key->id))
		return FL_CACHE_MISS;

	if (!read_header(map, size, now, &c))
		return FL_CACHE_INVALID;
	/* A private group's gid is its user's uid: a gid is looked up as a uid. */
	found = by_name ? find_name(&c, key->name, key->name_len, &r) : find_id(&c, key->id, &r);
	if (found < 0)
		return FL_CACHE_INVALID;
	if (found == 0)
		return !by_name && now < c.ids_until ? not_found(reply) : FL_CACHE_MISS;
	if (now >= r.expires)
		return FL_CACHE_MISS;
	switch (r.kind) {
	case FL_CACHE_NOTFOUND:
		return not_found(reply);
	case FL_CACHE_USER:
		if (group && !by_name && r.gid != key->id)
			return FL_CACHE_MISS;
		entry_reply(&r, group, reply);
		return FL_CACHE_ANSWER;
	default:
		return FL_CACHE_MISS; /* ASK */
	}
}
