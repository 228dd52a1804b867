/*
 * fedlogin_escape.c - see fedlogin_escape.h.
 */
#include "fedlogin_escape.h"

#include <stdint.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at `s` (at most `left` bytes), 0 if none. */
static size_t utf8_len(const uint8_t *s, size_t left, uint32_t *cp)
{
	size_t n;
	uint32_t c;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0; /* ASCII, a continuation byte, or an overlong/out-of-range lead */
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (n > left)
		return 0;
	c = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0; /* overlong, beyond Unicode, or a surrogate */
	*cp = c;
	return n;
}

/* The escaped form of the character at in[i]: its bytes in `piece`, the input it used in *used. */
static size_t piece_at(const uint8_t *s, size_t len, size_t i, char piece[16], size_t *used)
{
	static const char hex[] = "0123456789abcdef";
	size_t plen = 0, n = 0;
	uint32_t cp = 0;
	uint8_t c = s[i];

	*used = 1;
	if (c == '\\') {
		piece[plen++] = '\\';
		piece[plen++] = '\\';
	} else if (c == '\n' || c == '\r' || c == '\t') {
		piece[plen++] = '\\';
		piece[plen++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
	} else if (c >= 0x20 && c < 0x7f) {
		piece[plen++] = (char)c;
	} else if (c >= 0x80 && (n = utf8_len(s + i, len - i, &cp)) > 0 && cp > 0x9f) {
		memcpy(piece, s + i, n);
		plen = n;
		*used = n;
	} else {
		/* A control, DEL, a C1 control (each of its bytes) or a stray byte. */
		if (c >= 0x80 && n > 0)
			*used = n;
		for (size_t k = 0; k < *used; k++) {
			piece[plen++] = '\\';
			piece[plen++] = 'x';
			piece[plen++] = hex[s[i + k] >> 4];
			piece[plen++] = hex[s[i + k] & 0xf];
		}
	}
	return plen;
}

const char *fedlogin_escape(char *out, size_t size, const char *in, size_t len)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t o = 0, i, used, total = 0;
	size_t limit; /* bytes of output allowed before the NUL */
	char piece[16];

	if (size < 4) {
		if (size > 0)
			out[0] = '\0';
		return out;
	}
	for (i = 0; i < len; i += used)
		total += piece_at(s, len, i, piece, &used);
	limit = total + 1 <= size ? total : size - 4; /* room for "..." when cut */
	for (i = 0; i < len; i += used) {
		size_t plen = piece_at(s, len, i, piece, &used);

		if (o + plen > limit)
			break;
		memcpy(out + o, piece, plen);
		o += plen;
	}
	if (i < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
