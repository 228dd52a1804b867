/*
 * nss_cache.h - the NSS cache file of fedlogind, version 1, for the NSS
 * module (docs/protocol.md, "NSS cache file").
 *
 * fedlogind publishes its recent NSS answers in FEDLOGIN_NSS_CACHE, a file
 * root owns, which libnss_fedlogin.so.2 reads before it asks the socket.
 * This header defines the format and declares its decoder (nss_cache.c): a
 * pure function over the file's bytes, with no I/O, no allocation and no
 * global state, so it can be tested against Tests/fixtures/nsscache and
 * fuzzed on its own. Opening, checking and mapping the file is the module's
 * (nss_fedlogin.c).
 *
 * All integers are little-endian; there is no alignment padding anywhere.
 *
 *   header (FL_CACHE_HEADER bytes)
 *     0  8  magic      "FLNSSCH1"
 *     8  4  version    u32, FL_CACHE_VERSION
 *    12  4  size       u32, the whole file's size
 *    16  8  generated  i64 unix seconds when written
 *    24  8  ids_until  i64 unix seconds: while now < ids_until, a uid or gid
 *                      absent from the id index is not found; 0 = never
 *    32  4  n_names    u32 entries of the name index
 *    36  4  n_ids      u32 entries of the id index
 *    40  4  names_off  u32 offset of the name index (n_names u32 record
 *                      offsets, by record name: unsigned bytes, the shorter
 *                      of two names with a common prefix first; unique)
 *    44  4  ids_off    u32 offset of the id index (n_ids u32 record offsets,
 *                      by record uid, ascending; unique)
 *
 *   record (at an offset an index gives)
 *     0  1  kind       FL_CACHE_USER, FL_CACHE_NOTFOUND or FL_CACHE_ASK
 *     1  3  zero
 *     4  4  uid        u32 (0 for NOTFOUND)
 *     8  4  gid        u32 (0 for NOTFOUND)
 *    12  8  expires    i64 unix seconds: the record answers while now < expires
 *    20  .  name, gecos, dir, shell: each a u16 length, then that many bytes
 *
 * Every record is in the name index; USER and ASK records are also in the
 * id index.
 */
#ifndef FEDLOGIN_NSS_CACHE_H
#define FEDLOGIN_NSS_CACHE_H

#include "fedlogin_proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where fedlogind publishes the file: the folder of FEDLOGIN_DEFAULT_SOCKET. */
#define FEDLOGIN_NSS_CACHE "/run/fedlogin/nss.cache"

#define FL_CACHE_MAGIC "FLNSSCH1"
#define FL_CACHE_MAGIC_LEN 8
#define FL_CACHE_VERSION 1
/* Bytes of the header; the smallest file. */
#define FL_CACHE_HEADER 48
/* The largest file, in bytes. */
#define FL_CACHE_MAX_SIZE (8u * 1024 * 1024)
/* Most entries of either index. */
#define FL_CACHE_MAX_ENTRIES 65536u
/* Bytes of a record before its strings. */
#define FL_CACHE_RECORD_FIXED 20

/* Longest name the module asks about, or takes from a reply or the file. */
#define FL_NSS_MAX_NAME 256
/* The "no id" value of chown(2) and setreuid(2); never an entry's id. */
#define FL_NSS_NO_ID UINT32_MAX

/* Record kinds. */
enum fl_cache_kind {
	FL_CACHE_USER = 1, /* a passwd entry, and its private group (same name and gid, no members) */
	FL_CACHE_NOTFOUND = 2, /* the name is neither a passwd nor a group entry */
	FL_CACHE_ASK = 3, /* a reserved uid with no fresh answer: ask fedlogind */
};

/* What a lookup asks: a request type and a name or an id. */
struct fl_key {
	uint8_t type; /* FEDLOGIN_MSG_NSS_GET* */
	const char *name; /* by name; NULL when by id */
	size_t name_len;
	uint32_t id; /* by id */
};

/* What the file says about a key. */
enum fl_cache_result {
	FL_CACHE_INVALID = -1, /* the file, or a record the lookup read, is malformed: ignore the file */
	FL_CACHE_MISS = 0, /* no answer here (ASK, expired, absent): ask fedlogind */
	FL_CACHE_ANSWER = 1, /* the reply fedlogind would give is in *reply */
};

/*
 * Looks `key` up in the cache file `map` (`size` bytes, the whole file) at
 * `now` (unix seconds, CLOCK_REALTIME).
 *
 * FL_CACHE_ANSWER fills *reply as the socket's reply frame would be:
 * NSS_PASSWD (name, uid, gid, gecos, dir, shell) to getpwnam/getpwuid,
 * NSS_GROUP (name, gid, no members) to getgrnam/getgrgid, or NSS_NOTFOUND.
 * Its strings point into `map` (not NUL-terminated). An entry answered is
 * always for the key asked, with uid and gid neither 0 nor 4294967295, a
 * valid name (fl_nss_valid_name) and no ':', '\n' or NUL in any string.
 *
 * Every check of the header, and of every record the lookup reads, is made
 * against `size`: any input is safe.
 */
int fl_nss_cache_lookup(const uint8_t *map, size_t size, int64_t now, const struct fl_key *key,
			struct fedlogin_msg *reply);

/* True when `s` (`len` bytes) holds ':' or '\n': it would break a passwd or group line. */
bool fl_nss_has_separator(const char *s, size_t len);

/* A name the module asks about, or accepts in an answer: 1 to
 * FL_NSS_MAX_NAME bytes, no ':' or '\n', not "root". */
bool fl_nss_valid_name(const char *s, size_t len);

/* An id an entry may have: neither 0 nor FL_NSS_NO_ID. */
bool fl_nss_valid_id(uint32_t id);

#endif /* FEDLOGIN_NSS_CACHE_H */
