/*
 * fuzz_frame - libFuzzer target for the C frame parser (pam/fedlogin_proto.c).
 *
 * The input is read two ways:
 *
 *  1. as one whole frame (fedlogin_decode_frame), the way the golden fixtures
 *     are decoded;
 *  2. as a byte stream of frames, the way pam_fedlogin.c's read_frame reads
 *     the daemon's socket: 4-byte length prefix (fedlogin_frame_length, which
 *     must reject an out-of-range length before any body is read), then the
 *     body (fedlogin_parse), again until the input runs out or a frame is
 *     rejected. Each body is copied into a buffer of exactly its size, so any
 *     read past it is an AddressSanitizer report;
 *  3. as a frame body of any length (fedlogin_parse called directly, which
 *     must itself refuse a length outside [2, FEDLOGIN_MAX_FRAME]).
 *
 * For every frame the parser accepts it checks the contract of
 * fedlogin_proto.h: a known type, as many fields as the type's signature,
 * each of the right kind; strings inside the body, at most FEDLOGIN_MAX_STR
 * bytes and without NUL; a RESULT status in the closed set. Then it rebuilds
 * the frame from the parsed fields with the builder and requires the very
 * same bytes (the encoding is canonical: build(parse(x)) == x).
 *
 * A violated check calls abort(), which libFuzzer reports as a crash.
 *
 *   make -C pam OUT=/abs/out fuzz-smoke   (or fuzz, for a long run)
 */
#include "../pam/fedlogin_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_frame: check failed: %s (%s:%d)\n", #cond, __FILE__, \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static uint8_t rebuilt[FEDLOGIN_FRAME_HEADER + FEDLOGIN_MAX_FRAME];

/* Checks an accepted frame body against the contract; rebuilds it. */
static void check_accepted(const uint8_t *body, size_t len, const struct fedlogin_msg *m)
{
	const char *sig = fedlogin_signature(m->type);
	struct fedlogin_builder b;
	size_t frame_len = 0;

	CHECK(len >= FEDLOGIN_MIN_FRAME && len <= FEDLOGIN_MAX_FRAME);
	CHECK(body[0] == FEDLOGIN_PROTO_VERSION);
	CHECK(m->type == body[1]);
	CHECK(sig != NULL);
	CHECK(fedlogin_type_name(m->type) != NULL);
	CHECK(m->nfields == strlen(sig));
	CHECK(m->nfields <= FEDLOGIN_MAX_FIELDS);

	fedlogin_build_begin(&b, rebuilt, sizeof(rebuilt), m->type);
	for (size_t i = 0; i < m->nfields; i++) {
		const struct fedlogin_field *f = &m->fields[i];

		CHECK(f->kind == sig[i]);
		switch (f->kind) {
		case FEDLOGIN_FIELD_STR:
			CHECK(f->len <= FEDLOGIN_MAX_STR);
			CHECK(f->len == 0 || f->str != NULL);
			if (f->len > 0) {
				/* A view into the body, never past it. */
				CHECK((const uint8_t *)f->str >= body + 2);
				CHECK((const uint8_t *)f->str + f->len <= body + len);
				CHECK(memchr(f->str, '\0', f->len) == NULL);
			}
			fedlogin_build_str(&b, f->str, f->len);
			break;
		case FEDLOGIN_FIELD_U8:
			CHECK(f->num <= 0xff);
			fedlogin_build_u8(&b, (uint8_t)f->num);
			break;
		case FEDLOGIN_FIELD_U32:
			fedlogin_build_u32(&b, f->num);
			break;
		default:
			CHECK(!"unknown field kind");
		}
	}
	if (m->type == FEDLOGIN_MSG_RESULT)
		CHECK(m->fields[0].num <= FEDLOGIN_STATUS_MAX);

	CHECK(fedlogin_build_finish(&b, &frame_len) == FEDLOGIN_OK);
	CHECK(frame_len == FEDLOGIN_FRAME_HEADER + len);
	CHECK(memcmp(rebuilt + FEDLOGIN_FRAME_HEADER, body, len) == 0);
}

static void check_error(int rc)
{
	CHECK(rc >= FEDLOGIN_E_UTF8 && rc < 0);
	/* Parsing never reports a builder-only error. */
	CHECK(rc != FEDLOGIN_E_SPACE && rc != FEDLOGIN_E_SCHEMA);
	CHECK(strcmp(fedlogin_strerror(rc), "unknown error") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fedlogin_msg msg;
	size_t pos = 0;
	int rc;

	/* 1. One whole frame. */
	rc = fedlogin_decode_frame(data, size, &msg);
	if (rc == FEDLOGIN_OK)
		check_accepted(data + FEDLOGIN_FRAME_HEADER, size - FEDLOGIN_FRAME_HEADER, &msg);
	else
		check_error(rc);

	/* 3. A frame body of any length. */
	rc = fedlogin_parse(data, size, &msg);
	if (rc == FEDLOGIN_OK)
		check_accepted(data, size, &msg);
	else
		check_error(rc);
	if (size < FEDLOGIN_MIN_FRAME || size > FEDLOGIN_MAX_FRAME)
		CHECK(rc == FEDLOGIN_E_LENGTH);

	/* 2. A stream of frames, read as pam_fedlogin.c reads the socket. */
	while (size - pos >= FEDLOGIN_FRAME_HEADER) {
		uint32_t len = 0;
		uint8_t *body;

		rc = fedlogin_frame_length(data + pos, &len);
		if (rc != FEDLOGIN_OK) {
			CHECK(rc == FEDLOGIN_E_LENGTH);
			break; /* the reader closes without reading a body */
		}
		CHECK(len >= FEDLOGIN_MIN_FRAME && len <= FEDLOGIN_MAX_FRAME);
		pos += FEDLOGIN_FRAME_HEADER;
		if (size - pos < len)
			break; /* the reader would wait for the rest, then time out */
		body = malloc(len);
		CHECK(body != NULL);
		memcpy(body, data + pos, len);
		pos += len;
		rc = fedlogin_parse(body, len, &msg);
		if (rc == FEDLOGIN_OK)
			check_accepted(body, len, &msg);
		else
			check_error(rc);
		free(body);
		if (rc != FEDLOGIN_OK)
			break; /* a protocol error ends the connection */
	}
	return 0;
}
