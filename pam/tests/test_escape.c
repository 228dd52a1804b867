/*
 * test_escape - fedlogin_escape(), the one helper that makes text from
 * outside safe for the C modules' log lines.
 */
#include "../fedlogin_escape.h"

#include <stdio.h>
#include <string.h>

static int failures;

static void check(const char *name, const char *in, size_t len, size_t size, const char *want)
{
	char out[FEDLOGIN_ESCAPED_MAX];

	fedlogin_escape(out, size, in, len);
	if (strcmp(out, want) != 0 || strlen(out) >= size) {
		printf("FAIL %s: got \"%s\", want \"%s\"\n", name, out, want);
		failures++;
	} else {
		printf("ok   %s\n", name);
	}
}

#define CHECK(name, in, size, want) check(name, in, sizeof(in) - 1, size, want)

int main(void)
{
	const size_t big = sizeof(((char[FEDLOGIN_ESCAPED_MAX]){0}));

	CHECK("plain text is copied", "alice pts/7 198.51.100.7", big, "alice pts/7 198.51.100.7");
	CHECK("empty", "", big, "");
	CHECK("ESC of a terminal sequence", "al\x1b[31mice", big, "al\\x1b[31mice");
	CHECK("newline starts no new log line", "bob\nservice=sshd fake", big, "bob\\nservice=sshd fake");
	CHECK("carriage return and tab", "a\rb\tc", big, "a\\rb\\tc");
	CHECK("backslash is doubled, so escapes are unambiguous", "a\\x1b", big, "a\\\\x1b");
	CHECK("other C0 controls and DEL", "\x01\x07\x08\x7f", big, "\\x01\\x07\\x08\\x7f");
	CHECK("a NUL inside the field", "a\0b", big, "a\\x00b");
	CHECK("UTF-8 above U+009F is kept", "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x94\x91", big,
	      "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x94\x91");
	CHECK("C1 control CSI (U+009B) encoded in UTF-8",
	      "a\xc2\x9b"
	      "31m",
	      big, "a\\xc2\\x9b31m");
	CHECK("raw 8-bit CSI byte",
	      "a\x9b"
	      "31m",
	      big, "a\\x9b31m");
	CHECK("overlong encoding of ESC", "\xc0\x9b", big, "\\xc0\\x9b");
	CHECK("truncated sequence at the end", "ok\xe2\x82", big, "ok\\xe2\\x82");
	CHECK("surrogate", "\xed\xa0\x80", big, "\\xed\\xa0\\x80");
	CHECK("beyond U+10FFFF", "\xf4\x90\x80\x80", big, "\\xf4\\x90\\x80\\x80");
	CHECK("cut with ... when the buffer is small", "abcdefghij", 8, "abcd...");
	CHECK("exactly fits", "abcdefg", 8, "abcdefg");
	CHECK("never cut inside an escape", "abc\x1b\x1b", 8, "abc...");
	CHECK("never cut inside a character", "ab\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9,
	      "ab\xe2\x82\xac...");
	CHECK("smallest buffer", "abcdef", 4, "...");

	if (failures) {
		printf("%d failure(s)\n", failures);
		return 1;
	}
	printf("fedlogin_escape: all cases pass\n");
	return 0;
}
