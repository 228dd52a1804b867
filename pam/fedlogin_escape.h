/*
 * fedlogin_escape.h - text from outside (user names, PAM items, the
 * daemon's reasons) made safe for a log line.
 *
 * Shared by pam_fedlogin.so and libnss_fedlogin.so.2; libc only.
 */
#ifndef FEDLOGIN_ESCAPE_H
#define FEDLOGIN_ESCAPE_H

#include <stddef.h>

/* Room for a field of up to 255 input bytes, each escaped to 4 bytes. */
#define FEDLOGIN_ESCAPED_MAX (255 * 4 + 4)

/*
 * Writes `in` (`len` bytes, may hold NUL) to `out` (`size` bytes, size >= 4),
 * NUL-terminated, with everything a terminal or a log reader could take for
 * something else shown escaped:
 *   backslash          \\
 *   \n \r \t           \n \r \t
 *   other C0 controls, DEL, the C1 controls U+0080..U+009F and bytes that
 *   are not well-formed UTF-8          \xHH (each byte)
 * Printable ASCII and well-formed UTF-8 above U+009F are copied as they are.
 * When `out` is too small the text ends with "..." and is cut before an
 * escape or a character, never inside one. Returns `out`.
 */
const char *fedlogin_escape(char *out, size_t size, const char *in, size_t len);

#endif
