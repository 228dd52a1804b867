/// The directory's complexity policy for a local passcode.
public struct PasscodePolicy: Codable, Sendable, Equatable {
    public var minLength: Int
    /// How many of lowercase, uppercase, digits and symbols must appear.
    public var minClasses: Int

    public init(minLength: Int = 8, minClasses: Int = 2) {
        self.minLength = minLength
        self.minClasses = minClasses
    }

    enum CodingKeys: String, CodingKey {
        case minLength = "min_length"
        case minClasses = "min_classes"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        minLength = try c.decodeIfPresent(Int.self, forKey: .minLength) ?? 8
        minClasses = try c.decodeIfPresent(Int.self, forKey: .minClasses) ?? 2
    }

    /// The least fedlogin accepts whatever the directory says: 8 characters, 2 kinds.
    public static let floor = PasscodePolicy(minLength: 8, minClasses: 2)

    /// The directory's policy, raised to the floor where it is weaker.
    public var effective: PasscodePolicy {
        PasscodePolicy(minLength: max(minLength, Self.floor.minLength), minClasses: min(4, max(minClasses, Self.floor.minClasses)))
    }

    /// What the passcode lacks, as sentences a user can act on; empty when it passes.
    public func problems(with passcode: String) -> [String] {
        problems(length: passcode.count, scalars: passcode.unicodeScalars)
    }

    /// The same check on a passcode's UTF-8 bytes, read in place: the
    /// passcode is never copied into a `String`, so the caller can wipe it.
    /// Its length is counted in characters as `String.count` counts them
    /// (extended grapheme clusters). Bytes that are not UTF-8 count as
    /// U+FFFD each (a wire answer is always UTF-8).
    public func problems(withUTF8 passcode: UnsafeRawBufferPointer) -> [String] {
        var length = 0
        var recognizer = Unicode._CharacterRecognizer()
        for scalar in UTF8Scalars(bytes: passcode) where recognizer.hasBreak(before: scalar) {
            length += 1
        }
        return problems(length: length, scalars: UTF8Scalars(bytes: passcode))
    }

    func problems<S: Sequence<Unicode.Scalar>>(length: Int, scalars: S) -> [String] {
        let minLength = effective.minLength
        let minClasses = effective.minClasses
        var out: [String] = []
        if length < minLength {
            out.append("use at least \(minLength) characters (this one has \(length))")
        }
        var classes = 0
        var lower = false
        var upper = false
        var digit = false
        var symbol = false
        for ch in scalars {
            if ch.properties.isLowercase {
                lower = true
            } else if ch.properties.isUppercase {
                upper = true
            } else if ("0"..."9").contains(ch) {
                digit = true
            } else {
                symbol = true
            }
        }
        classes = [lower, upper, digit, symbol].filter { $0 }.count
        if classes < minClasses {
            var missing: [String] = []
            if !lower { missing.append("a lowercase letter") }
            if !upper { missing.append("an uppercase letter") }
            if !digit { missing.append("a digit") }
            if !symbol { missing.append("a symbol") }
            out.append(
                "mix at least \(minClasses) kinds of characters (it has \(classes)); add \(missing.joined(separator: " or "))")
        }
        return out
    }
}

/// The Unicode scalars of UTF-8 bytes, decoded in place.
struct UTF8Scalars: Sequence, IteratorProtocol {
    var bytes: UnsafeRawBufferPointer.Iterator
    var decoder = UTF8()

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes.makeIterator()
    }

    mutating func next() -> Unicode.Scalar? {
        switch decoder.decode(&bytes) {
        case .scalarValue(let s): s
        case .emptyInput: nil
        case .error: "\u{FFFD}"
        }
    }
}
