/// The rule that turns a directory identity into a local username
/// (docs/accounts.md): the directory username, else the email's local part;
/// lowercased; valid for useradd; at most 32 characters. A name that does not
/// fit is refused, never altered silently.
public enum LocalUsername {
    public static let maxLength = 32

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case empty
        case tooLong(String)
        case invalid(String)

        public var description: String {
            switch self {
            case .empty: "the directory gives no username or email for this user"
            case .tooLong(let n): "\"\(SafeText.escape(n))\" is longer than \(LocalUsername.maxLength) characters"
            case .invalid(let n):
                "\"\(SafeText.escape(n))\" is not a valid Linux username (letters, digits, '_', '-', '.'; starting with a letter or '_')"
            }
        }
    }

    public static func derive(username: String?, email: String?) throws -> String {
        var base = username ?? ""
        if base.isEmpty, let email, let at = email.firstIndex(of: "@") {
            base = String(email[..<at])
        }
        // ASCII lowercasing only: a Unicode letter (the Kelvin sign U+212A,
        // a dotted capital I) is never turned into an ASCII one.
        let name = String(decoding: base.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
        guard !name.isEmpty else { throw Problem.empty }
        guard name.count <= maxLength else { throw Problem.tooLong(name) }
        guard isValid(name) else { throw Problem.invalid(name) }
        return name
    }

    /// The portable subset shadow-utils accepts: [a-z_][a-z0-9_.-]*
    public static func isValid(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || ("a"..."z").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || "_.-".unicodeScalars.contains($0) }
    }
}
