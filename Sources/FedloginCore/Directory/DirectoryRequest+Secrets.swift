extension DirectoryRequest {
    /// A `change_password` request as JSON bytes written straight into a
    /// `SecretBytes`: the current and new passwords are never copied into a
    /// `String` or an encoder's buffers, so once the request is sent the
    /// caller's wipe leaves no copy in this process. The same document
    /// `JSONEncoder` makes of `DirectoryRequest(op: .changePassword, user:,
    /// current:, new:)`, keys aside from their order.
    public static func changePasswordJSON(user: String, current: SecretBytes, new: SecretBytes) -> SecretBytes {
        let name = Array(user.utf8)
        let parts: [(key: String, write: (inout JSONBytes) -> Void)] = [
            ("op", { $0.string(Array(Op.changePassword.rawValue.utf8)) }),
            ("user", { w in name.withUnsafeBytes { w.string($0) } }),
            ("current", { w in current.withUnsafeBytes { w.string($0) } }),
            ("new", { w in new.withUnsafeBytes { w.string($0) } }),
        ]
        func document(_ w: inout JSONBytes) {
            w.byte(UInt8(ascii: "{"))
            for (i, part) in parts.enumerated() {
                if i > 0 { w.byte(UInt8(ascii: ",")) }
                w.string(Array(part.key.utf8))
                w.byte(UInt8(ascii: ":"))
                part.write(&w)
            }
            w.byte(UInt8(ascii: "}"))
        }
        var measure = JSONBytes(into: nil)
        document(&measure)
        return SecretBytes(count: measure.count) { out in
            var w = JSONBytes(into: out)
            document(&w)
        }
    }
}

/// Writes JSON tokens into a buffer given in advance, or only counts their
/// bytes (no buffer), so a secret's JSON is written once into memory whose
/// size was measured first.
struct JSONBytes {
    let out: UnsafeMutableRawBufferPointer?
    private(set) var count = 0

    init(into out: UnsafeMutableRawBufferPointer?) {
        self.out = out
    }

    mutating func byte(_ b: UInt8) {
        if let out { out[count] = b }
        count += 1
    }

    /// A JSON string: `"` and `\` escaped, control characters as \u00XX,
    /// every other byte (UTF-8 included) as it is.
    mutating func string(_ bytes: UnsafeRawBufferPointer) {
        byte(UInt8(ascii: "\""))
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                byte(UInt8(ascii: "\\"))
                byte(b)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                for c in Array("\\u00".utf8) { byte(c) }
                byte(hex[Int(b >> 4)])
                byte(hex[Int(b & 0xf)])
            default:
                byte(b)
            }
        }
        byte(UInt8(ascii: "\""))
    }

    mutating func string(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { string($0) }
    }
}
