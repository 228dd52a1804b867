/// Untrusted text shown in a log line or a terminal: user names, reasons,
/// ID-token claims, directory fields, a pasted address. Control characters
/// (C0, DEL, C1), line and paragraph separators and bidirectional overrides
/// are shown escaped (`\x1b`, `\n`, `\u202e`), so no value can start a
/// terminal escape sequence, forge a second log line or reorder what the
/// reader sees. Everything else is kept as it is.
public enum SafeText {
    /// The text with every unsafe character escaped.
    public static func escape(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: isUnsafe) else { return s }
        var out = ""
        out.unicodeScalars.reserveCapacity(s.unicodeScalars.count + 8)
        for u in s.unicodeScalars {
            guard isUnsafe(u) else {
                out.unicodeScalars.append(u)
                continue
            }
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                out += u.value < 0x100 ? "\\x" + hex(u.value, width: 2) : "\\u" + hex(u.value, width: 4)
            }
        }
        return out
    }

    /// Whether the text holds a character `escape` would change.
    public static func hasUnsafe(_ s: String) -> Bool {
        s.unicodeScalars.contains(where: isUnsafe)
    }

    /// C0, DEL, C1, U+2028/U+2029 and the bidirectional embedding, override
    /// and isolate controls.
    public static func isUnsafe(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x2028, 0x2029: true
        case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: true
        default: false
        }
    }

    static func hex(_ v: UInt32, width: Int) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
