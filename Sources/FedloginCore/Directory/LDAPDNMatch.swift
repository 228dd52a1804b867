/// Several DNs resolved in one search: the filter pieces, and which entry
/// found answers which DN.
extension LDAPFilter {
    /// The DNs a search of several at once asks for (`chunked`): at most
    /// this many per filter, so that a server's size limit (slapd's default
    /// is 500 entries per search) never cuts an answer short.
    public static let valuesPerSearch = 100

    /// `(a=v1)` or `(|(a=v1)(a=v2)...)`, each value escaped (RFC 4515); nil
    /// for no values.
    public static func anyOf(_ attribute: String, _ values: [String]) -> String? {
        guard !values.isEmpty else { return nil }
        let clauses = values.map { "(\(attribute)=\(escape($0)))" }
        return clauses.count == 1 ? clauses[0] : "(|" + clauses.joined() + ")"
    }

    /// `values` without repeats (the first of each kept, in order), in runs of
    /// at most `size`.
    public static func chunked(_ values: [String], size: Int = valuesPerSearch) -> [[String]] {
        var seen = Set<String>()
        let unique = values.filter { seen.insert($0).inserted }
        let n = max(1, size)
        return stride(from: 0, to: unique.count, by: n).map { Array(unique[$0..<min($0 + n, unique.count)]) }
    }
}

extension LDAPDN {
    /// A DN (RFC 4514) in a form two spellings of the same DN share: the
    /// attribute types in lower case, the values unescaped, without the
    /// spaces around them, internal runs of spaces as one and in lower case
    /// (caseIgnoreMatch, as the naming attributes of users are), the AVAs of
    /// a multi-valued RDN sorted. nil when `dn` is not a DN's syntax. The
    /// server's own matching may still equate DNs this does not (a type
    /// given as an OID, a case-sensitive value): callers use it only to
    /// find which of the entries a server matched answers which DN, and ask
    /// the server about a DN it leaves unanswered.
    public static func normalized(_ dn: String) -> String? {
        let bytes = Array(dn.utf8)
        var rdns: [String] = []
        var avas: [String] = []
        var i = 0
        func skipSpaces() { while i < bytes.count && bytes[i] == 0x20 { i += 1 } }
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case 0x30...0x39: return b - 0x30
            case 0x41...0x46: return b - 0x41 + 10
            case 0x61...0x66: return b - 0x61 + 10
            default: return nil
            }
        }
        skipSpaces()
        if i == bytes.count { return "" }
        while true {
            // The attribute type, up to "=".
            skipSpaces()
            let typeStart = i
            while i < bytes.count && bytes[i] != 0x3D && bytes[i] != 0x2C && bytes[i] != 0x2B && bytes[i] != 0x3B { i += 1 }
            guard i < bytes.count, bytes[i] == 0x3D else { return nil }
            let type = String(decoding: bytes[typeStart..<i], as: UTF8.self).trimmingSpaces.lowercased()
            guard !type.isEmpty,
                type.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == ".") })
            else { return nil }
            i += 1
            skipSpaces()
            // The value, up to an unescaped "," ";" "+" or the end.
            var value: [UInt8] = []
            var kept = 0  // value's length without trailing unescaped spaces
            if i < bytes.count && bytes[i] == 0x23 {  // #hex: BER, compared as its text
                while i < bytes.count && bytes[i] != 0x2C && bytes[i] != 0x3B && bytes[i] != 0x2B && bytes[i] != 0x20 {
                    value.append(bytes[i])
                    i += 1
                }
                kept = value.count
                skipSpaces()
            } else if i < bytes.count && bytes[i] == 0x22 {  // "quoted" (RFC 1779)
                i += 1
                while i < bytes.count && bytes[i] != 0x22 {
                    if bytes[i] == 0x5C {
                        i += 1
                        guard i < bytes.count else { return nil }
                    }
                    value.append(bytes[i])
                    i += 1
                }
                guard i < bytes.count else { return nil }
                i += 1
                kept = value.count
                skipSpaces()
            } else {
                while i < bytes.count && bytes[i] != 0x2C && bytes[i] != 0x3B && bytes[i] != 0x2B {
                    if bytes[i] == 0x5C {
                        guard i + 1 < bytes.count else { return nil }
                        if i + 2 < bytes.count, let h = hex(bytes[i + 1]), let l = hex(bytes[i + 2]) {
                            value.append(h << 4 | l)
                            i += 3
                        } else {
                            value.append(bytes[i + 1])
                            i += 2
                        }
                        kept = value.count
                    } else {
                        value.append(bytes[i])
                        if bytes[i] != 0x20 { kept = value.count }
                        i += 1
                    }
                }
            }
            guard let text = String(validating: value[0..<kept], as: UTF8.self) else { return nil }
            let folded = text.lowercased().split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            avas.append(type + "=" + escapeNormalized(folded))
            if i == bytes.count || bytes[i] != 0x2B {
                rdns.append(avas.sorted().joined(separator: "+"))
                avas = []
            }
            if i == bytes.count { break }
            i += 1  // the separator
        }
        return rdns.joined(separator: ",")
    }

    /// A value with the characters that separate DN parts as \xx, so the
    /// normalized form is unambiguous.
    static func escapeNormalized(_ value: String) -> String {
        var out = ""
        for u in value.unicodeScalars {
            switch u {
            case "\\", ",", "+", "=", ";", "\"", "<", ">", "#", "\0":
                out += "\\" + String(u.value, radix: 16, uppercase: false).leftPadded(to: 2)
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// For each of `dns`, the index in `entries` (DNs of entries a server
    /// found for them) of the one entry whose DN is the same when
    /// normalized; nil when no entry or more than one is: the caller asks
    /// the server about that DN on its own.
    /// A DN spelt exactly as an entry's (the usual case: the server gives
    /// both in its own form) is that entry's without normalizing either.
    public static func match(_ dns: [String], to entries: [String]) -> [Int?] {
        var exact: [String: Int] = [:]
        for (i, e) in entries.enumerated() { exact[e] = i }
        var normalizedIndex: [String: [Int]]?
        return dns.map { dn in
            if let i = exact[dn] { return i }
            if normalizedIndex == nil {
                var index: [String: [Int]] = [:]
                for (i, e) in entries.enumerated() {
                    if let k = normalized(e) { index[k, default: []].append(i) }
                }
                normalizedIndex = index
            }
            guard let k = normalized(dn), let found = normalizedIndex?[k], found.count == 1 else { return nil }
            return found[0]
        }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }

    fileprivate func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
