import FedloginCore
import Testing

struct SafeTextTests {
    @Test func plainTextIsKept() {
        #expect(SafeText.escape("alice@example.test") == "alice@example.test")
        #expect(SafeText.escape("Zoë Łukasz 山田") == "Zoë Łukasz 山田")
        #expect(SafeText.escape("") == "")
        #expect(!SafeText.hasUnsafe("Zoë"))
    }

    @Test func controlCharactersAreShownEscaped() {
        #expect(SafeText.escape("a\u{1b}[31mred") == "a\\x1b[31mred")
        #expect(SafeText.escape("one\ntwo\r\tthree") == "one\\ntwo\\r\\tthree")
        #expect(SafeText.escape("nul\u{0}bel\u{7}del\u{7f}") == "nul\\x00bel\\x07del\\x7f")
        // C1: CSI (U+009B) starts an escape sequence on some terminals.
        #expect(SafeText.escape("x\u{9b}31m") == "x\\x9b31m")
        #expect(SafeText.escape("x\u{85}y") == "x\\x85y")
        #expect(SafeText.hasUnsafe("a\u{1b}"))
        #expect(SafeText.hasUnsafe("a\u{9b}"))
    }

    @Test func separatorsAndBidiOverridesAreShownEscaped() {
        #expect(SafeText.escape("a\u{2028}b\u{2029}c") == "a\\u2028b\\u2029c")
        #expect(SafeText.escape("evil\u{202e}gpj.exe") == "evil\\u202egpj.exe")
        #expect(SafeText.escape("\u{2066}x\u{2069}") == "\\u2066x\\u2069")
    }

    @Test func theResultHasNothingLeftToEscape() {
        let nasty = (0..<0x100).compactMap(Unicode.Scalar.init).map(String.init).joined()
        let shown = SafeText.escape(nasty)
        #expect(!SafeText.hasUnsafe(shown))
        #expect(SafeText.escape(shown) == shown)
    }
}
