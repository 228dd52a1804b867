/*
 * fedlogin_proto.h - the fedlogind wire protocol, version 1, for C clients.
 *
 * This header is the C definition of docs/protocol.md: framing limits,
 * message types, result statuses and client timeouts. It also declares a
 * small codec (fedlogin_proto.c) shared by pam_fedlogin.so and the NSS
 * module. The codec does no I/O and no allocation: it turns bytes into a
 * message view and fields into bytes, so it can be tested against the golden
 * fixtures in Tests/fixtures/protocol/ and fuzzed on its own.
 *
 * Frame layout:
 *
 *   u32 BE length | u8 version | u8 type | fields ...
 *
 * `length` counts the bytes after itself and is in [2, FEDLOGIN_MAX_FRAME].
 * A field is `str` (u16 BE byte count, then UTF-8 bytes without NUL, at most
 * FEDLOGIN_MAX_STR bytes), `u8` (one byte) or `u32` (four bytes, BE). Each
 * message type has a fixed list of fields; missing or extra bytes are errors.
 */
#ifndef FEDLOGIN_PROTO_H
#define FEDLOGIN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define FEDLOGIN_PROTO_VERSION 1

/* Bytes of the length prefix in front of every frame. */
#define FEDLOGIN_FRAME_HEADER 4
/* Smallest and largest value of the length prefix (version + type + fields). */
#define FEDLOGIN_MIN_FRAME 2
#define FEDLOGIN_MAX_FRAME 65536
/* Largest `str` field, in bytes. */
#define FEDLOGIN_MAX_STR 4096
/* Most fields any message type has (NSS_PASSWD). */
#define FEDLOGIN_MAX_FIELDS 6

/* Defaults of pam_fedlogin.so (its module arguments override them). The NSS
 * module always asks FEDLOGIN_DEFAULT_SOCKET. */
#define FEDLOGIN_DEFAULT_SOCKET "/run/fedlogin/fedlogind.sock"
#define FEDLOGIN_DEFAULT_CONNECT_TIMEOUT_MS 2000 /* connect() to the daemon */
#define FEDLOGIN_DEFAULT_TIMEOUT_MS 10000 /* each frame from the daemon */
#define FEDLOGIN_DEFAULT_MAX_TIME_S 900 /* whole request, conversation excluded */
/* Bounds of the NSS module (libnss_fedlogin.so.2), fixed: it takes no arguments. */
#define FEDLOGIN_NSS_CONNECT_TIMEOUT_MS 1000 /* connect() to the daemon */
#define FEDLOGIN_NSS_TIMEOUT_MS 3000 /* the whole lookup, connect included */
/* The daemon sends KEEPALIVE at least this often while it works. */
#define FEDLOGIN_KEEPALIVE_INTERVAL_MS 2000

/* Message types. Client to daemon: 0x01-0x3f; daemon to client: 0x80-0xbf. */
enum fedlogin_msg_type {
	/* str user, str service, str tty, str rhost, str ruser: pam_sm_authenticate (uid 0 peers) */
	FEDLOGIN_MSG_AUTHENTICATE = 0x01,
	/* str text: the answer to the last PROMPT_* (may be empty) */
	FEDLOGIN_MSG_ANSWER = 0x02,
	/* str user, str service: pam_sm_acct_mgmt (uid 0 peers) */
	FEDLOGIN_MSG_ACCT_MGMT = 0x03,
	/* str user, str service: pam_sm_chauthtok (uid 0 peers) */
	FEDLOGIN_MSG_CHAUTHTOK = 0x04,
	/* str user, str service, str tty, str rhost, str ruser: the local password
	 * was wrong (pam_fedlogin.so authfail, after pam_unix; uid 0 peers) */
	FEDLOGIN_MSG_AUTH_FAILED = 0x05,
	/* (no fields): the peer's own passcode reset (fedloginctl; any peer) */
	FEDLOGIN_MSG_PASSCODE_RESET = 0x06,
	/* str user, str service: pam_sm_chauthtok's preliminary pass; SUCCESS when
	 * fedlogind will handle the change, IGNORE otherwise (uid 0 peers) */
	FEDLOGIN_MSG_CHAUTHTOK_PRELIM = 0x07,
	/* str name: passwd entry by name (any peer) */
	FEDLOGIN_MSG_NSS_GETPWNAM = 0x10,
	/* u32 uid: passwd entry by uid (any peer) */
	FEDLOGIN_MSG_NSS_GETPWUID = 0x11,
	/* str name: group entry by name (any peer) */
	FEDLOGIN_MSG_NSS_GETGRNAM = 0x12,
	/* u32 gid: group entry by gid (any peer) */
	FEDLOGIN_MSG_NSS_GETGRGID = 0x13,
	/* str json: a fedloginctl request */
	FEDLOGIN_MSG_CONTROL = 0x20,

	/* str text: show to the user as PAM_TEXT_INFO; no answer */
	FEDLOGIN_MSG_INFO = 0x81,
	/* str text: show to the user as PAM_ERROR_MSG; no answer */
	FEDLOGIN_MSG_ERROR = 0x82,
	/* str text: ask with echo on (PAM_PROMPT_ECHO_ON); client sends ANSWER */
	FEDLOGIN_MSG_PROMPT_ECHO_ON = 0x83,
	/* str text: ask with echo off (PAM_PROMPT_ECHO_OFF); client sends ANSWER */
	FEDLOGIN_MSG_PROMPT_ECHO_OFF = 0x84,
	/* (no fields): the daemon is still working; resets the client's reply timer */
	FEDLOGIN_MSG_KEEPALIVE = 0x85,
	/* u8 status, str reason: the final answer; the daemon closes after it */
	FEDLOGIN_MSG_RESULT = 0x86,
	/* str text: show to the user as PAM_TEXT_INFO when the session opens; no answer */
	FEDLOGIN_MSG_SESSION_INFO = 0x87,
	/* str name, u32 uid, u32 gid, str gecos, str dir, str shell: a passwd entry */
	FEDLOGIN_MSG_NSS_PASSWD = 0x90,
	/* str name, u32 gid, str members (comma-separated): a group entry */
	FEDLOGIN_MSG_NSS_GROUP = 0x91,
	/* (no fields): no such passwd or group entry */
	FEDLOGIN_MSG_NSS_NOTFOUND = 0x92,
	/* u8 ok, str json: the answer to CONTROL */
	FEDLOGIN_MSG_CONTROL_REPLY = 0xa0,
	/* str json: a leading piece of a CONTROL_REPLY longer than one string (fedloginctl) */
	FEDLOGIN_MSG_CONTROL_REPLY_PART = 0xa1,
};

/* RESULT status: a closed set. Any other value is a protocol error. */
enum fedlogin_status {
	FEDLOGIN_STATUS_SUCCESS = 0, /* PAM_SUCCESS */
	FEDLOGIN_STATUS_IGNORE = 1, /* PAM_IGNORE: not a fedlogin user */
	FEDLOGIN_STATUS_USER_UNKNOWN = 2, /* PAM_USER_UNKNOWN */
	FEDLOGIN_STATUS_AUTH_ERR = 3, /* PAM_AUTH_ERR */
	FEDLOGIN_STATUS_UNAVAIL = 4, /* PAM_AUTHINFO_UNAVAIL */
	FEDLOGIN_STATUS_PERM_DENIED = 5, /* PAM_PERM_DENIED */
	FEDLOGIN_STATUS_ACCT_EXPIRED = 6, /* PAM_ACCT_EXPIRED */
	FEDLOGIN_STATUS_NEW_AUTHTOK_REQD = 7, /* PAM_NEW_AUTHTOK_REQD */
	FEDLOGIN_STATUS_AUTHTOK_ERR = 8, /* PAM_AUTHTOK_ERR */
};
#define FEDLOGIN_STATUS_MAX FEDLOGIN_STATUS_AUTHTOK_ERR

/* Field kinds, as the characters of a type's signature string. */
enum fedlogin_field_kind {
	FEDLOGIN_FIELD_STR = 's',
	FEDLOGIN_FIELD_U8 = 'b',
	FEDLOGIN_FIELD_U32 = 'u',
};

/* Codec results: 0 or one of these (negative). */
enum fedlogin_err {
	FEDLOGIN_OK = 0,
	FEDLOGIN_E_LENGTH = -1, /* length prefix outside [2, FEDLOGIN_MAX_FRAME], or frame size mismatch */
	FEDLOGIN_E_VERSION = -2, /* version is not FEDLOGIN_PROTO_VERSION */
	FEDLOGIN_E_TYPE = -3, /* unknown message type */
	FEDLOGIN_E_TRUNCATED = -4, /* a field runs past the end of the frame */
	FEDLOGIN_E_TRAILING = -5, /* bytes left after the last field */
	FEDLOGIN_E_NUL = -6, /* a string holds a NUL byte */
	FEDLOGIN_E_STRLEN = -7, /* a string is longer than FEDLOGIN_MAX_STR */
	FEDLOGIN_E_STATUS = -8, /* RESULT status outside the closed set, CONTROL_REPLY ok not 0 or 1 */
	FEDLOGIN_E_SPACE = -9, /* builder: the frame does not fit the buffer */
	FEDLOGIN_E_SCHEMA = -10, /* builder: fields do not match the type's signature */
	FEDLOGIN_E_UTF8 = -11, /* a string is not well-formed UTF-8 */
};

/*
 * One decoded field. For `str`, `str` points into the parsed bytes and is
 * NOT NUL-terminated (use `len`, e.g. "%.*s"); it contains no NUL byte.
 * For `u8` and `u32`, the value is in `num`.
 */
struct fedlogin_field {
	char kind; /* enum fedlogin_field_kind */
	uint32_t num;
	const char *str;
	size_t len;
};

/* A decoded message: a view into the bytes it was parsed from. */
struct fedlogin_msg {
	uint8_t type;
	size_t nfields;
	struct fedlogin_field fields[FEDLOGIN_MAX_FIELDS];
};

/*
 * The field signature of a message type ("sssss" for AUTHENTICATE, "bs" for
 * RESULT, "" for KEEPALIVE ...), or NULL if the type is unknown.
 */
const char *fedlogin_signature(uint8_t type);

/* The protocol name of a message type ("AUTHENTICATE"), or NULL if unknown. */
const char *fedlogin_type_name(uint8_t type);

/* A short description of a codec result, for logs. */
const char *fedlogin_strerror(int err);

/*
 * Reads a length prefix. Stores the body length in *len and returns
 * FEDLOGIN_OK if it is within [FEDLOGIN_MIN_FRAME, FEDLOGIN_MAX_FRAME],
 * FEDLOGIN_E_LENGTH otherwise (the caller then closes without reading on).
 */
int fedlogin_frame_length(const uint8_t header[FEDLOGIN_FRAME_HEADER], uint32_t *len);

/*
 * Parses a frame body (the `len` bytes after the length prefix): version,
 * known type, fields per the type's signature, no NUL in strings, strings at
 * most FEDLOGIN_MAX_STR, RESULT status in the closed set, no trailing bytes.
 * On success fills *msg (whose strings point into `body`) and returns
 * FEDLOGIN_OK; otherwise returns a negative enum fedlogin_err.
 */
int fedlogin_parse(const uint8_t *body, size_t len, struct fedlogin_msg *msg);

/*
 * Parses one whole frame (length prefix included) that must be exactly `len`
 * bytes long. Same result as fedlogin_frame_length + fedlogin_parse.
 */
int fedlogin_decode_frame(const uint8_t *frame, size_t len, struct fedlogin_msg *msg);

/*
 * Frame builder over a caller's buffer:
 *
 *   struct fedlogin_builder b;
 *   fedlogin_build_begin(&b, buf, sizeof buf, FEDLOGIN_MSG_ACCT_MGMT);
 *   fedlogin_build_str(&b, user, strlen(user));
 *   fedlogin_build_str(&b, service, strlen(service));
 *   rc = fedlogin_build_finish(&b, &frame_len);   // frame is buf[0..frame_len)
 *
 * Errors are sticky: the append functions record the first one and
 * fedlogin_build_finish returns it. finish also checks the result against
 * the type's signature by parsing it, so a frame it accepts is well formed.
 */
struct fedlogin_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err;
};

void fedlogin_build_begin(struct fedlogin_builder *b, uint8_t *buf, size_t cap, uint8_t type);
void fedlogin_build_str(struct fedlogin_builder *b, const char *s, size_t len);
void fedlogin_build_u8(struct fedlogin_builder *b, uint8_t v);
void fedlogin_build_u32(struct fedlogin_builder *b, uint32_t v);
int fedlogin_build_finish(struct fedlogin_builder *b, size_t *frame_len);

#endif /* FEDLOGIN_PROTO_H */
