/*
 * test_proto_fixtures - checks the C codec against the golden fixtures.
 *
 *   test_proto_fixtures PATH/fixtures.tsv
 *
 * For each line of fixtures.tsv (see Tests/fixtures/protocol/make_fixtures.py)
 * the frame NAME.bin beside it is decoded:
 *   ok     - decoding succeeds, the type and every field equal the line;
 *            for client-to-daemon types the builder, fed the fields of the
 *            line, produces the same bytes;
 *   reject - decoding fails;
 *   refuse - the builder, fed the fields of the line (strings in hex),
 *            refuses them; and decoding the frame fails.
 * Prints "N passed, M failed" and exits non-zero if anything failed.
 */
#include "../fedlogin_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLUMNS (3 + FEDLOGIN_MAX_FIELDS + 1)

static int failures;

static void fail(const char *name, const char *fmt, const char *detail)
{
	fprintf(stderr, "FAIL %s: ", name);
	fprintf(stderr, fmt, detail);
	fputc('\n', stderr);
	failures++;
}

/* Reads a whole small file; returns NULL on error. */
static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n == cap) {
			uint8_t *p = realloc(buf, cap = cap ? cap * 2 : 4096);
			if (p == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = p;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

/* Parses a decimal u32 column; returns -1 if it is not one. */
static int parse_num(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Checks an `ok` fixture: decoded fields equal the columns; rebuilds client frames. */
static int check_ok(const char *name, uint8_t type, char **cols, size_t ncols, const uint8_t *frame,
		    size_t len)
{
	struct fedlogin_msg msg;
	const char *sig = fedlogin_signature(type);
	int rc;

	rc = fedlogin_decode_frame(frame, len, &msg);
	if (rc != FEDLOGIN_OK) {
		fail(name, "decode failed: %s", fedlogin_strerror(rc));
		return -1;
	}
	if (msg.type != type) {
		fail(name, "decoded type differs from the tsv%s", "");
		return -1;
	}
	if (sig == NULL || strlen(sig) != ncols || msg.nfields != ncols) {
		fail(name, "field count differs from the signature%s", "");
		return -1;
	}
	for (size_t i = 0; i < ncols; i++) {
		const struct fedlogin_field *f = &msg.fields[i];
		uint32_t num;

		if (f->kind == FEDLOGIN_FIELD_STR) {
			if (f->len != strlen(cols[i]) || memcmp(f->str, cols[i], f->len) != 0) {
				fail(name, "string field differs: expected \"%s\"", cols[i]);
				return -1;
			}
		} else {
			if (parse_num(cols[i], &num) != 0 || f->num != num) {
				fail(name, "number field differs: expected %s", cols[i]);
				return -1;
			}
		}
	}

	/* Client-to-daemon frames: what the C client sends must be these bytes. */
	if (type < 0x80) {
		static uint8_t buf[FEDLOGIN_FRAME_HEADER + FEDLOGIN_MAX_FRAME];
		struct fedlogin_builder b;
		size_t blen = 0;

		fedlogin_build_begin(&b, buf, sizeof(buf), type);
		for (size_t i = 0; i < ncols; i++) {
			uint32_t num = 0;

			switch (sig[i]) {
			case FEDLOGIN_FIELD_STR:
				fedlogin_build_str(&b, cols[i], strlen(cols[i]));
				break;
			case FEDLOGIN_FIELD_U8:
				parse_num(cols[i], &num);
				fedlogin_build_u8(&b, (uint8_t)num);
				break;
			case FEDLOGIN_FIELD_U32:
				parse_num(cols[i], &num);
				fedlogin_build_u32(&b, num);
				break;
			}
		}
		rc = fedlogin_build_finish(&b, &blen);
		if (rc != FEDLOGIN_OK) {
			fail(name, "build failed: %s", fedlogin_strerror(rc));
			return -1;
		}
		if (blen != len || memcmp(buf, frame, len) != 0) {
			fail(name, "built frame differs from the fixture bytes%s", "");
			return -1;
		}
	}
	return 0;
}

/* Decodes a hex column into out (at most cap bytes); returns the length or -1. */
static long unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex);

	if (n % 2 != 0 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return (long)(n / 2);
}

/* Checks a `refuse` fixture: the builder refuses the fields, decoders the frame. */
static void check_refuse(const char *name, uint8_t type, char **cols, size_t ncols, const uint8_t *frame,
			 size_t len)
{
	static uint8_t buf[FEDLOGIN_FRAME_HEADER + FEDLOGIN_MAX_FRAME];
	static uint8_t str[2 * FEDLOGIN_MAX_STR];
	const char *sig = fedlogin_signature(type);
	struct fedlogin_builder b;
	struct fedlogin_msg msg;
	size_t blen = 0;

	if (sig == NULL || strlen(sig) != ncols) {
		fail(name, "field count differs from the signature%s", "");
		return;
	}
	fedlogin_build_begin(&b, buf, sizeof(buf), type);
	for (size_t i = 0; i < ncols; i++) {
		uint32_t num = 0;
		long n;

		switch (sig[i]) {
		case FEDLOGIN_FIELD_STR:
			n = unhex(cols[i], str, sizeof(str));
			if (n < 0) {
				fail(name, "bad hex column \"%s\"", cols[i]);
				return;
			}
			fedlogin_build_str(&b, (const char *)str, (size_t)n);
			break;
		case FEDLOGIN_FIELD_U8:
			parse_num(cols[i], &num);
			fedlogin_build_u8(&b, (uint8_t)num);
			break;
		case FEDLOGIN_FIELD_U32:
			parse_num(cols[i], &num);
			fedlogin_build_u32(&b, num);
			break;
		}
	}
	if (fedlogin_build_finish(&b, &blen) == FEDLOGIN_OK)
		fail(name, "built a frame whose fields must be refused%s", "");
	if (fedlogin_decode_frame(frame, len, &msg) == FEDLOGIN_OK)
		fail(name, "decoded a frame that must be rejected%s", "");
}

int main(int argc, char **argv)
{
	FILE *tsv;
	char *line = NULL, *dir, *dircopy;
	size_t cap = 0;
	ssize_t n;
	int passed = 0, lineno = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH/fixtures.tsv\n", argv[0]);
		return 2;
	}
	tsv = fopen(argv[1], "r");
	if (tsv == NULL) {
		perror(argv[1]);
		return 2;
	}
	dircopy = strdup(argv[1]);
	if (dircopy == NULL)
		return 2;
	dir = dirname(dircopy);

	while ((n = getline(&line, &cap, tsv)) != -1) {
		char *cols[MAX_COLUMNS], *rest = line, *path = NULL;
		size_t ncols = 0, len = 0;
		uint8_t *frame;
		unsigned long type = 0;
		int before = failures;

		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0)
			continue;
		while (rest != NULL && ncols < MAX_COLUMNS)
			cols[ncols++] = strsep(&rest, "\t");
		if (rest != NULL || ncols < 3) {
			fprintf(stderr, "FAIL line %d: malformed tsv line\n", lineno);
			failures++;
			continue;
		}

		const char *name = cols[0], *verdict = cols[1];
		if (strcmp(cols[2], "-") != 0) {
			char *end;
			type = strtoul(cols[2], &end, 16);
			if (strncmp(cols[2], "0x", 2) != 0 || *end != '\0' || type > 0xff) {
				fail(name, "bad type column \"%s\"", cols[2]);
				continue;
			}
		}
		if (asprintf(&path, "%s/%s.bin", dir, name) < 0)
			return 2;
		frame = read_file(path, &len);
		if (frame == NULL) {
			fail(name, "cannot read %s", path);
			free(path);
			continue;
		}

		if (strcmp(verdict, "ok") == 0) {
			if (strcmp(cols[2], "-") == 0)
				fail(name, "ok fixture without a type%s", "");
			else
				check_ok(name, (uint8_t)type, cols + 3, ncols - 3, frame, len);
		} else if (strcmp(verdict, "reject") == 0) {
			struct fedlogin_msg msg;
			int rc = fedlogin_decode_frame(frame, len, &msg);

			if (rc == FEDLOGIN_OK)
				fail(name, "decoded a frame that must be rejected%s", "");
		} else if (strcmp(verdict, "refuse") == 0) {
			if (strcmp(cols[2], "-") == 0)
				fail(name, "refuse fixture without a type%s", "");
			else
				check_refuse(name, (uint8_t)type, cols + 3, ncols - 3, frame, len);
		} else {
			fail(name, "unknown verdict \"%s\"", verdict);
		}
		if (failures == before)
			passed++;
		free(frame);
		free(path);
	}
	free(line);
	free(dircopy);
	fclose(tsv);

	if (passed + failures == 0) {
		fprintf(stderr, "no fixtures in %s\n", argv[1]);
		failures++;
	}
	printf("%d passed, %d failed\n", passed, failures);
	return failures == 0 ? 0 : 1;
}
