/*
 * fuzz_build - libFuzzer target for the C frame builder (pam/fedlogin_proto.c):
 * parse(build(x)) == x.
 *
 * The input describes a message to build:
 *
 *   u8 type | u8 flags | [u16 BE cap if flags & 1] | fields ...
 *
 * In the normal mode the fields follow the type's signature: `str` is a u16
 * BE length, then that many bytes (when the input ends first, the string is
 * padded with 'a' to its length; with flags & 4 every string is all 'a's and
 * takes no bytes of the input; it may hold NUL bytes and may be longer than
 * FEDLOGIN_MAX_STR), `u8` one byte, `u32` four. The frame is built into a
 * heap buffer of exactly `cap` bytes, so a write past it is an
 * AddressSanitizer report. The target works out what the builder must
 * answer (FEDLOGIN_E_SPACE, _STRLEN, _NUL, _TYPE, _STATUS or OK: the first
 * error wins) and checks it; when it is OK, the frame must decode to the very
 * same type and fields, and be exactly as long as the fields.
 *
 * With flags & 2 the fields are appended in kinds the input picks (one byte
 * per field, up to 32 fields, so a frame can outgrow FEDLOGIN_MAX_FRAME),
 * whatever the signature says: whatever fedlogin_build_finish accepts must
 * then be a well-formed frame that rebuilds to the same bytes.
 *
 * Without flags & 1 the buffer is 32 KiB larger than the largest frame, so
 * only the protocol's limit (FEDLOGIN_MAX_FRAME) can refuse a frame of up to
 * that much more. (Not larger: ASan serves allocations above 128 KiB with
 * mmap, which would slow every run down fourfold.)
 *
 * A violated check calls abort(), which libFuzzer reports as a crash.
 */
#include "../pam/fedlogin_proto.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_build: check failed: %s (%s:%d)\n", #cond, __FILE__, \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define FULL_CAP (FEDLOGIN_FRAME_HEADER + FEDLOGIN_MAX_FRAME)
#define BIG_CAP (FULL_CAP + 32768)
#define MAX_WANT 32

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take_u8(struct input *in)
{
	uint8_t v = 0;

	if (in->left > 0) {
		v = *in->p++;
		in->left--;
	}
	return v;
}

static uint32_t take_be(struct input *in, int n)
{
	uint32_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | take_u8(in);
	return v;
}

/* A field as the input asks for it. */
struct want {
	char kind;
	uint32_t num;
	const char *str;
	size_t len;
};

/* Room for the strings of one message: up to MAX_WANT fields of up to 65535
 * bytes. Filled with 'a' once; each run copies its input bytes over the start
 * of a field's room and puts the 'a's back afterwards (cheaper than padding
 * every string in every run). */
static char strings[MAX_WANT][65535];
static size_t copied[MAX_WANT];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	memset(strings, 'a', sizeof(strings));
	return 0;
}

/* flags & 4 of this run: strings are all 'a's, none of their bytes is read. */
static int strings_padded;

static void take_field(struct input *in, char kind, struct want *w, char *room, size_t *room_used)
{
	size_t have;

	w->kind = kind;
	w->num = 0;
	w->str = NULL;
	w->len = 0;
	switch (kind) {
	case FEDLOGIN_FIELD_STR:
		w->len = take_be(in, 2);
		have = strings_padded ? 0 : w->len < in->left ? w->len : in->left;
		if (have > 0)
			memcpy(room, in->p, have);
		*room_used = have;
		w->str = room;
		in->p += have;
		in->left -= have;
		break;
	case FEDLOGIN_FIELD_U8:
		w->num = take_u8(in);
		break;
	default:
		w->num = take_be(in, 4);
		break;
	}
}

static void append(struct fedlogin_builder *b, const struct want *w)
{
	switch (w->kind) {
	case FEDLOGIN_FIELD_STR:
		fedlogin_build_str(b, w->str, w->len);
		break;
	case FEDLOGIN_FIELD_U8:
		fedlogin_build_u8(b, (uint8_t)w->num);
		break;
	default:
		fedlogin_build_u32(b, w->num);
		break;
	}
}

/* A built frame must decode, and rebuild to the same bytes. */
static void check_rebuilds(const uint8_t *frame, size_t len, struct fedlogin_msg *m)
{
	static uint8_t again[FULL_CAP];
	struct fedlogin_builder b;
	size_t again_len = 0;

	CHECK(fedlogin_decode_frame(frame, len, m) == FEDLOGIN_OK);
	fedlogin_build_begin(&b, again, sizeof(again), m->type);
	for (size_t i = 0; i < m->nfields; i++) {
		const struct fedlogin_field *f = &m->fields[i];
		struct want w = {f->kind, f->num, f->str, f->len};

		append(&b, &w);
	}
	CHECK(fedlogin_build_finish(&b, &again_len) == FEDLOGIN_OK);
	CHECK(again_len == len && memcmp(again, frame, len) == 0);
}

/*
 * Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF), written apart from the codec's own check so the two are compared.
 */
static bool model_utf8(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		uint32_t cp;
		size_t more;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i - 1 < more)
			return false;
		for (size_t k = 1; k <= more; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += more + 1;
	}
	return true;
}

static int one_input(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	struct want fields[MAX_WANT];
	struct fedlogin_builder b;
	struct fedlogin_msg m;
	uint8_t type = take_u8(&in);
	uint8_t flags = take_u8(&in);
	size_t cap = flags & 1 ? take_be(&in, 2) : BIG_CAP;
	const char *sig = fedlogin_signature(type);
	size_t nfields = 0, frame_len = 0, need = FEDLOGIN_FRAME_HEADER + 2;
	int expect = need > cap ? FEDLOGIN_E_SPACE : FEDLOGIN_OK;
	uint8_t *buf;
	int rc;

	strings_padded = flags & 4;
	if (flags & 2) {
		nfields = take_u8(&in) % (MAX_WANT + 1);
		for (size_t i = 0; i < nfields; i++) {
			uint8_t k = take_u8(&in) % 3;

			take_field(&in,
				   k == 0   ? FEDLOGIN_FIELD_STR
				   : k == 1 ? FEDLOGIN_FIELD_U8
					    : FEDLOGIN_FIELD_U32,
				   &fields[i], strings[i], &copied[i]);
		}
	} else if (sig != NULL) {
		nfields = strlen(sig);
		CHECK(nfields <= FEDLOGIN_MAX_FIELDS);
		for (size_t i = 0; i < nfields; i++)
			take_field(&in, sig[i], &fields[i], strings[i], &copied[i]);
	}

	buf = malloc(cap > 0 ? cap : 1);
	CHECK(buf != NULL);
	fedlogin_build_begin(&b, buf, cap, type);
	for (size_t i = 0; i < nfields; i++) {
		const struct want *w = &fields[i];

		append(&b, w);
		if (expect != FEDLOGIN_OK)
			continue; /* errors are sticky: the first one stays */
		if (w->kind == FEDLOGIN_FIELD_STR) {
			if (w->len > FEDLOGIN_MAX_STR)
				expect = FEDLOGIN_E_STRLEN;
			else if (w->len > 0 && memchr(w->str, '\0', w->len) != NULL)
				expect = FEDLOGIN_E_NUL;
			else if (!model_utf8((const uint8_t *)w->str, w->len))
				expect = FEDLOGIN_E_UTF8;
			else if ((need += 2 + w->len) > cap)
				expect = FEDLOGIN_E_SPACE;
		} else if ((need += w->kind == FEDLOGIN_FIELD_U8 ? 1 : 4) > cap) {
			expect = FEDLOGIN_E_SPACE;
		}
	}
	if (expect == FEDLOGIN_OK && need - FEDLOGIN_FRAME_HEADER > FEDLOGIN_MAX_FRAME)
		expect = FEDLOGIN_E_SPACE; /* fits the buffer, not the protocol */
	rc = fedlogin_build_finish(&b, &frame_len);
	CHECK(strcmp(fedlogin_strerror(rc), "unknown error") != 0);

	if (flags & 2) {
		/* Free-form fields: only what finish accepts is checked. */
		if (expect != FEDLOGIN_OK)
			CHECK(rc == expect);
		else if (rc == FEDLOGIN_OK)
			check_rebuilds(buf, frame_len, &m);
		else /* fields read back in other kinds than they were written */
			CHECK(rc == FEDLOGIN_E_SCHEMA || rc == FEDLOGIN_E_TYPE || rc == FEDLOGIN_E_STATUS ||
			      rc == FEDLOGIN_E_NUL || rc == FEDLOGIN_E_STRLEN || rc == FEDLOGIN_E_UTF8);
		free(buf);
		return 0;
	}

	if (expect == FEDLOGIN_OK && sig == NULL)
		expect = FEDLOGIN_E_TYPE;
	if (expect == FEDLOGIN_OK && type == FEDLOGIN_MSG_RESULT && fields[0].num > FEDLOGIN_STATUS_MAX)
		expect = FEDLOGIN_E_STATUS;
	if (expect == FEDLOGIN_OK && type == FEDLOGIN_MSG_CONTROL_REPLY && fields[0].num > 1)
		expect = FEDLOGIN_E_STATUS;
	if (rc != expect) {
		fprintf(stderr, "fuzz_build: type 0x%02x: builder said %d (%s), expected %d (%s)\n", type, rc,
			fedlogin_strerror(rc), expect, fedlogin_strerror(expect));
		abort();
	}
	if (rc == FEDLOGIN_OK) {
		CHECK(frame_len == need);
		CHECK(fedlogin_decode_frame(buf, frame_len, &m) == FEDLOGIN_OK);
		CHECK(m.type == type && m.nfields == nfields);
		for (size_t i = 0; i < nfields; i++) {
			CHECK(m.fields[i].kind == fields[i].kind);
			if (fields[i].kind == FEDLOGIN_FIELD_STR)
				CHECK(m.fields[i].len == fields[i].len &&
				      memcmp(m.fields[i].str, fields[i].str, fields[i].len) == 0);
			else
				CHECK(m.fields[i].num == fields[i].num);
		}
		check_rebuilds(buf, frame_len, &m);
	}
	free(buf);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one_input(data, size);
	for (size_t i = 0; i < MAX_WANT; i++) {
		memset(strings[i], 'a', copied[i]);
		copied[i] = 0;
	}
	return 0;
}
