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
        let minLength = effective.minLength
        let minClasses = effective.minClasses
        var out: [String] = []
        let length = passcode.count
        if length < minLength {
            out.append("use at least \(minLength) characters (this one has \(length))")
        }
        var classes = 0
        var lower = false, upper = false, digit = false, symbol = false
        for ch in passcode.unicodeScalars {
            if ch.properties.isLowercase { lower = true }
            else if ch.properties.isUppercase { upper = true }
            else if ("0"..."9").contains(ch) { digit = true }
            else { symbol = true }
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
