/*
 * fedlogin_proto.c - codec for the fedlogind wire protocol (see
 * fedlogin_proto.h and docs/protocol.md). Pure functions: no I/O, no
 * allocation, no global state.
 */
#include "fedlogin_proto.h"

#include <string.h>

struct type_info {
	uint8_t type;
	const char *name;
	const char *signature;
};

/* The schema table of docs/protocol.md. */
static const struct type_info types[] = {
	{FEDLOGIN_MSG_AUTHENTICATE, "AUTHENTICATE", "sssss"},
	{FEDLOGIN_MSG_ANSWER, "ANSWER", "s"},
	{FEDLOGIN_MSG_ACCT_MGMT, "ACCT_MGMT", "ss"},
	{FEDLOGIN_MSG_CHAUTHTOK, "CHAUTHTOK", "ss"},
	{FEDLOGIN_MSG_AUTH_FAILED, "AUTH_FAILED", "sssss"},
	{FEDLOGIN_MSG_PASSCODE_RESET, "PASSCODE_RESET", ""},
	{FEDLOGIN_MSG_CHAUTHTOK_PRELIM, "CHAUTHTOK_PRELIM", "ss"},
	{FEDLOGIN_MSG_NSS_GETPWNAM, "NSS_GETPWNAM", "s"},
	{FEDLOGIN_MSG_NSS_GETPWUID, "NSS_GETPWUID", "u"},
	{FEDLOGIN_MSG_NSS_GETGRNAM, "NSS_GETGRNAM", "s"},
	{FEDLOGIN_MSG_NSS_GETGRGID, "NSS_GETGRGID", "u"},
	{FEDLOGIN_MSG_CONTROL, "CONTROL", "s"},
	{FEDLOGIN_MSG_INFO, "INFO", "s"},
	{FEDLOGIN_MSG_ERROR, "ERROR", "s"},
	{FEDLOGIN_MSG_PROMPT_ECHO_ON, "PROMPT_ECHO_ON", "s"},
	{FEDLOGIN_MSG_PROMPT_ECHO_OFF, "PROMPT_ECHO_OFF", "s"},
	{FEDLOGIN_MSG_KEEPALIVE, "KEEPALIVE", ""},
	{FEDLOGIN_MSG_RESULT, "RESULT", "bs"},
	{FEDLOGIN_MSG_SESSION_INFO, "SESSION_INFO", "s"},
	{FEDLOGIN_MSG_NSS_PASSWD, "NSS_PASSWD", "suusss"},
	{FEDLOGIN_MSG_NSS_GROUP, "NSS_GROUP", "sus"},
	{FEDLOGIN_MSG_NSS_NOTFOUND, "NSS_NOTFOUND", ""},
	{FEDLOGIN_MSG_CONTROL_REPLY, "CONTROL_REPLY", "bs"},
	{FEDLOGIN_MSG_CONTROL_REPLY_PART, "CONTROL_REPLY_PART", "s"},
};

static const struct type_info *lookup(uint8_t type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return &types[i];
	return NULL;
}

const char *fedlogin_signature(uint8_t type)
{
	const struct type_info *t = lookup(type);
	return t ? t->signature : NULL;
}

const char *fedlogin_type_name(uint8_t type)
{
	const struct type_info *t = lookup(type);
	return t ? t->name : NULL;
}

const char *fedlogin_strerror(int err)
{
	switch (err) {
	case FEDLOGIN_OK:
		return "ok";
	case FEDLOGIN_E_LENGTH:
		return "frame length out of range";
	case FEDLOGIN_E_VERSION:
		return "unsupported protocol version";
	case FEDLOGIN_E_TYPE:
		return "unknown message type";
	case FEDLOGIN_E_TRUNCATED:
		return "truncated field";
	case FEDLOGIN_E_TRAILING:
		return "trailing bytes after the last field";
	case FEDLOGIN_E_NUL:
		return "NUL byte inside a string";
	case FEDLOGIN_E_STRLEN:
		return "string longer than the protocol allows";
	case FEDLOGIN_E_STATUS:
		return "unknown result status or flag";
	case FEDLOGIN_E_SPACE:
		return "frame does not fit the buffer";
	case FEDLOGIN_E_SCHEMA:
		return "fields do not match the message type";
	case FEDLOGIN_E_UTF8:
		return "string is not UTF-8";
	}
	return "unknown error";
}

/* Whether s[0..n) is well-formed UTF-8 (Unicode 15, table 3-7): no
 * overlong forms, no surrogates, nothing above U+10FFFF, no sequence cut
 * short. The same rule as the Swift codec's (docs/protocol.md, "Strings"). */
static int utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t more;
		uint8_t lo = 0x80, hi = 0xBF;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			more = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			more = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			more = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else {
			return 0;
		}
		if (n - i - 1 < more)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t k = 2; k <= more; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return 0;
		i += more + 1;
	}
	return 1;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int fedlogin_frame_length(const uint8_t header[FEDLOGIN_FRAME_HEADER], uint32_t *len)
{
	uint32_t n = get_u32(header);

	if (n < FEDLOGIN_MIN_FRAME || n > FEDLOGIN_MAX_FRAME)
		return FEDLOGIN_E_LENGTH;
	*len = n;
	return FEDLOGIN_OK;
}

int fedlogin_parse(const uint8_t *body, size_t len, struct fedlogin_msg *msg)
{
	const char *sig;
	size_t pos = 2;

	if (len < FEDLOGIN_MIN_FRAME || len > FEDLOGIN_MAX_FRAME)
		return FEDLOGIN_E_LENGTH;
	if (body[0] != FEDLOGIN_PROTO_VERSION)
		return FEDLOGIN_E_VERSION;
	sig = fedlogin_signature(body[1]);
	if (sig == NULL)
		return FEDLOGIN_E_TYPE;

	memset(msg, 0, sizeof(*msg));
	msg->type = body[1];
	for (; *sig != '\0'; sig++) {
		struct fedlogin_field *f = &msg->fields[msg->nfields++];

		f->kind = *sig;
		switch (*sig) {
		case FEDLOGIN_FIELD_U8:
			if (len - pos < 1)
				return FEDLOGIN_E_TRUNCATED;
			f->num = body[pos];
			pos += 1;
			break;
		case FEDLOGIN_FIELD_U32:
			if (len - pos < 4)
				return FEDLOGIN_E_TRUNCATED;
			f->num = get_u32(body + pos);
			pos += 4;
			break;
		case FEDLOGIN_FIELD_STR: {
			size_t n;

			if (len - pos < 2)
				return FEDLOGIN_E_TRUNCATED;
			n = (size_t)body[pos] << 8 | body[pos + 1];
			pos += 2;
			if (n > FEDLOGIN_MAX_STR)
				return FEDLOGIN_E_STRLEN;
			if (len - pos < n)
				return FEDLOGIN_E_TRUNCATED;
			if (memchr(body + pos, '\0', n) != NULL)
				return FEDLOGIN_E_NUL;
			if (!utf8_valid(body + pos, n))
				return FEDLOGIN_E_UTF8;
			f->str = (const char *)(body + pos);
			f->len = n;
			pos += n;
			break;
		}
		default:
			return FEDLOGIN_E_SCHEMA; /* a bad entry in the table above */
		}
	}
	if (pos != len)
		return FEDLOGIN_E_TRAILING;
	/* RESULT status is a closed set (docs/protocol.md, "Result status"), and
	 * CONTROL_REPLY's ok is 0 or 1: one meaning, one encoding. */
	if (msg->type == FEDLOGIN_MSG_RESULT && msg->fields[0].num > FEDLOGIN_STATUS_MAX)
		return FEDLOGIN_E_STATUS;
	if (msg->type == FEDLOGIN_MSG_CONTROL_REPLY && msg->fields[0].num > 1)
		return FEDLOGIN_E_STATUS;
	return FEDLOGIN_OK;
}

int fedlogin_decode_frame(const uint8_t *frame, size_t len, struct fedlogin_msg *msg)
{
	uint32_t n;
	int rc;

	if (len < FEDLOGIN_FRAME_HEADER)
		return FEDLOGIN_E_LENGTH;
	rc = fedlogin_frame_length(frame, &n);
	if (rc != FEDLOGIN_OK)
		return rc;
	if (len - FEDLOGIN_FRAME_HEADER != n)
		return FEDLOGIN_E_LENGTH;
	return fedlogin_parse(frame + FEDLOGIN_FRAME_HEADER, n, msg);
}

/* Appends raw bytes, recording FEDLOGIN_E_SPACE if they do not fit. */
static void append(struct fedlogin_builder *b, const void *p, size_t n)
{
	if (b->err != FEDLOGIN_OK)
		return;
	if (b->cap - b->len < n) {
		b->err = FEDLOGIN_E_SPACE;
		return;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

void fedlogin_build_begin(struct fedlogin_builder *b, uint8_t *buf, size_t cap, uint8_t type)
{
	uint8_t head[FEDLOGIN_FRAME_HEADER + 2] = {0, 0, 0, 0, FEDLOGIN_PROTO_VERSION, type};

	b->buf = buf;
	b->cap = cap;
	b->len = 0;
	b->err = FEDLOGIN_OK;
	append(b, head, sizeof(head)); /* length prefix filled in by finish */
}

void fedlogin_build_str(struct fedlogin_builder *b, const char *s, size_t len)
{
	uint8_t n[2];

	if (b->err != FEDLOGIN_OK)
		return;
	if (len > FEDLOGIN_MAX_STR) {
		b->err = FEDLOGIN_E_STRLEN;
		return;
	}
	if (len > 0 && memchr(s, '\0', len) != NULL) {
		b->err = FEDLOGIN_E_NUL;
		return;
	}
	if (!utf8_valid((const uint8_t *)s, len)) {
		b->err = FEDLOGIN_E_UTF8;
		return;
	}
	n[0] = (uint8_t)(len >> 8);
	n[1] = (uint8_t)len;
	append(b, n, sizeof(n));
	if (len > 0)
		append(b, s, len);
}

void fedlogin_build_u8(struct fedlogin_builder *b, uint8_t v)
{
	append(b, &v, 1);
}

void fedlogin_build_u32(struct fedlogin_builder *b, uint32_t v)
{
	uint8_t p[4];

	put_u32(p, v);
	append(b, p, sizeof(p));
}

int fedlogin_build_finish(struct fedlogin_builder *b, size_t *frame_len)
{
	struct fedlogin_msg check;
	size_t body;
	int rc;

	if (b->err != FEDLOGIN_OK)
		return b->err;
	body = b->len - FEDLOGIN_FRAME_HEADER;
	if (body > FEDLOGIN_MAX_FRAME)
		return FEDLOGIN_E_SPACE;
	put_u32(b->buf, (uint32_t)body);
	/* A frame that would not parse is never handed out. */
	rc = fedlogin_parse(b->buf + FEDLOGIN_FRAME_HEADER, body, &check);
	if (rc != FEDLOGIN_OK)
		return rc == FEDLOGIN_E_TRUNCATED || rc == FEDLOGIN_E_TRAILING ? FEDLOGIN_E_SCHEMA : rc;
	*frame_len = b->len;
	return FEDLOGIN_OK;
}
