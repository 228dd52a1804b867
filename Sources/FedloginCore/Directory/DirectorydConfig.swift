import TOMLKit

/// fedlogin-directoryd's configuration file (`serve --config FILE`, TOML):
/// which backend answers the directory protocol, and how it reaches its data.
///
///     backend = "ldap"            # or "file"
///     socket = "/run/fedlogin-directoryd/directory.sock"
///
///     [file]
///     directory = "/etc/fedlogin-directoryd/directory.json"
///     state_dir = "/var/lib/fedlogin-directoryd"
///
///     [ldap]
///     uris = ["ldapi:///", "ldap://ldap1.example.test"]   # tried in order
///     users_base = "ou=users,dc=example,dc=test"
///     groups_base = "ou=groups,dc=example,dc=test"
///     devices_base = "ou=devices,dc=example,dc=test"
///     policy_dn = "cn=policy,dc=example,dc=test"
///     bind_dn = "cn=dev1,ou=devices,dc=example,dc=test"  # the device; none: SASL EXTERNAL
///     bind_password_file = "/etc/fedlogin-directoryd/ldap.secret"
///     tls = "starttls"            # or "ldaps", "none" (ldapi:// or loopback only)
///     ca_file = "/etc/fedlogin-directoryd/ca.pem"       # default: the system's CAs
///     tls_cert = "/etc/fedlogin-directoryd/device.crt"  # SASL EXTERNAL over TLS
///     tls_key = "/etc/fedlogin-directoryd/device.key"
///     timeout = 2
///     schema = "openldap"         # or "freeipa", "ad"
///
///     [ldap.attributes]             # optional overrides of the schema's names
///     username = "uid"
///     device_users = "fedloginAssociatedUser"
///
/// Every unknown key, wrong type or invalid value is an error naming the
/// file and the key. Parsing touches no file: the password file's mode is
/// checked by the command that reads it.
public struct DirectorydConfig: Sendable, Equatable {
    public enum Backend: String, Sendable, Equatable, CaseIterable {
        case file, ldap
    }

    public var backend: Backend = .file
    public var socketPath: String = "/run/fedlogin-directoryd/directory.sock"
    public var file = FileBackend()
    public var ldap: LDAPBackend?

    public struct FileBackend: Sendable, Equatable {
        public var directory = "/etc/fedlogin-directoryd/directory.json"
        public var stateDir = "/var/lib/fedlogin-directoryd"
        public init() {}
    }

    public struct LDAPBackend: Sendable, Equatable {
        public var uris: [String] = []
        public var usersBase = ""
        public var groupsBase = ""
        public var devicesBase = ""
        public var policyDN = ""
        /// nil: SASL EXTERNAL (over ldapi:// the process's own uid, over TLS
        /// the client certificate tls_cert).
        public var bindDN: String?
        public var bindPasswordFile: String?
        /// The `tls` key; nil: each URI's default (tlsMode(for:)).
        public var tls: LDAPTLSMode?
        /// The CAs a server's certificate must chain to; nil: the system's.
        public var caFile: String?
        /// The device's TLS client certificate and its key (root-only).
        public var tlsCert: String?
        public var tlsKey: String?
        /// Seconds any one LDAP operation (and connect) may take.
        public var timeout: Double = 2
        public var schema = LDAPSchema.openldap
        public var attributes = LDAPAttributes.openldap
        public init() {}

        /// How a connection to `uri` uses TLS: none for ldapi:// (a local
        /// socket); otherwise the `tls` key, or without it ldaps for ldaps://,
        /// none for ldap:// to a loopback address (the traffic never leaves
        /// the machine) and starttls for ldap:// to any other host.
        public func tlsMode(for uri: String) -> LDAPTLSMode {
            guard let u = LDAPURI(uri), u.scheme != "ldapi" else { return .none }
            if let tls { return tls }
            if u.scheme == "ldaps" { return .ldaps }
            return u.isLoopback ? .none : .starttls
        }

        /// The longest a request may take: opening a connection tries each
        /// URI for up to `ldap.timeout`, and a request whose kept
        /// connection is lost (after up to `ldap.timeout`) is tried once
        /// more on a new one: `timeout` × (URIs + 1). fedlogind gives a
        /// directory request `directoryTimeout` seconds
        /// (daemon.directory_timeout in `daemonFile`). An error naming both
        /// keys when the bound is longer.
        public func checkTimeout(against directoryTimeout: Double, file: String, daemonFile: String) throws {
            let attempts = uris.count + 1
            let total = timeout * Double(attempts)
            guard total > directoryTimeout else { return }
            func n(_ d: Double) -> String { d == d.rounded() ? String(Int(d)) : String(d) }
            let most = (directoryTimeout / Double(attempts)).rounded(.down)
            throw ConfigError(
                file: file, key: "ldap.timeout",
                problem:
                    "timeout \(n(timeout)) s × (\(uris.count) URI\(uris.count == 1 ? "" : "s") + 1 retry) = \(n(total)) s is longer than fedlogind's daemon.directory_timeout (\(n(directoryTimeout)) s, \(daemonFile)): fedlogind would give up before the last URI is tried. Lower ldap.timeout\(most >= 1 ? " to \(n(most))" : "") or list fewer URIs, or raise daemon.directory_timeout to \(n(total)) or more"
            )
        }
    }

    public init() {}

    static let sections = ["file", "ldap"]
    static let topKeys = ["backend", "socket"]

    /// Parses the text of `path`.
    public static func parse(path: String, text: String) throws -> DirectorydConfig {
        func fail(_ key: String, _ problem: String) -> ConfigError { ConfigError(file: path, key: key, problem: problem) }
        if let (line, column) = ConfigParser.controlCharacter(in: text) {
            throw fail("", "not valid TOML at line \(line), column \(column): a control character; remove it")
        }
        if let line = ConfigParser.namelessTableHeader(in: text) {
            throw fail("", "not valid TOML at line \(line): a table header needs a name on the same line, e.g. [ldap]")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw fail("", "not valid TOML at line \(e.source.begin.line), column \(e.source.begin.column): \(e.description)")
        }

        func string(_ v: TOMLValueConvertible, _ key: String) throws -> String {
            guard let s = v.string else { throw fail(key, "must be a string") }
            guard !s.isEmpty else { throw fail(key, "must not be empty") }
            return s
        }
        func tableOf(_ v: TOMLValueConvertible, _ key: String) throws -> TOMLTable {
            guard let t = v.table else { throw fail(key, "must be a table, e.g. [\(key)]") }
            return t
        }

        var c = DirectorydConfig()
        var sawFile = false
        for key in table.keys {
            guard let v = table[key] else { continue }
            switch key {
            case "backend":
                c.backend = try choice(string(v, key), key, fail)
            case "socket": c.socketPath = try string(v, key)
            case "file":
                sawFile = true
                let ft = try tableOf(v, key)
                for k in ft.keys {
                    guard let fv = ft[k] else { continue }
                    let full = "file.\(k)"
                    switch k {
                    case "directory": c.file.directory = try string(fv, full)
                    case "state_dir": c.file.stateDir = try string(fv, full)
                    default: throw fail(full, "unknown key in [file]; expected directory, state_dir")
                    }
                }
            case "ldap":
                c.ldap = try ldapSection(try tableOf(v, key), fail: fail, string: string)
            default:
                throw fail(
                    key,
                    table[key]?.table != nil
                        ? "unknown section; expected [file] or [ldap]" : "unknown key; expected backend, socket, [file], [ldap]")
            }
        }
        switch c.backend {
        case .ldap:
            guard c.ldap != nil else { throw fail("ldap", "backend = \"ldap\" needs an [ldap] section") }
        case .file:
            _ = sawFile  // [file] is optional: its keys have defaults.
        }
        return c
    }

    static func ldapSection(
        _ t: TOMLTable, fail: (String, String) -> ConfigError, string: (TOMLValueConvertible, String) throws -> String
    ) throws -> LDAPBackend {
        var l = LDAPBackend()
        var seen = Set<String>()
        for k in t.keys {
            guard let v = t[k] else { continue }
            let full = "ldap.\(k)"
            seen.insert(k)
            switch k {
            case "uris":
                guard let a = v.array, !a.isEmpty else { throw fail(full, "must be a non-empty list of URIs, e.g. [\"ldapi:///\"]") }
                l.uris = try a.map { try string($0, full) }
                for u in l.uris {
                    let lower = u.lowercased()
                    guard lower.hasPrefix("ldap://") || lower.hasPrefix("ldaps://") || lower.hasPrefix("ldapi://") else {
                        throw fail(full, "\"\(SafeText.escape(u))\" is not an ldap://, ldaps:// or ldapi:// URI")
                    }
                    guard !u.contains(" ") else { throw fail(full, "one URI per list element (\"\(SafeText.escape(u))\" has a space)") }
                }
            case "users_base": l.usersBase = try dn(string(v, full), full, fail)
            case "groups_base": l.groupsBase = try dn(string(v, full), full, fail)
            case "devices_base": l.devicesBase = try dn(string(v, full), full, fail)
            case "policy_dn": l.policyDN = try dn(string(v, full), full, fail)
            case "bind_dn": l.bindDN = try dn(string(v, full), full, fail)
            case "bind_password_file", "ca_file", "tls_cert", "tls_key":
                let p = try string(v, full)
                guard p.hasPrefix("/") else { throw fail(full, "must be an absolute path") }
                switch k {
                case "bind_password_file": l.bindPasswordFile = p
                case "ca_file": l.caFile = p
                case "tls_cert": l.tlsCert = p
                default: l.tlsKey = p
                }
            case "tls":
                l.tls = try choice(string(v, full), full, fail)
            case "timeout":
                let d: Double
                if let i = v.int { d = Double(i) } else if let x = v.double { d = x } else { throw fail(full, "must be a number of seconds") }
                guard d >= 1, d <= 300 else { throw fail(full, "must be from 1 to 300 seconds") }
                l.timeout = d
            case "schema":
                l.schema = try choice(string(v, full), full, fail)
            case "attributes":
                guard v.table != nil else { throw fail(full, "must be a table, e.g. [ldap.attributes]") }
            default:
                throw fail(
                    full,
                    "unknown key in [ldap]; expected uris, users_base, groups_base, devices_base, policy_dn, bind_dn, bind_password_file, tls, ca_file, tls_cert, tls_key, timeout, schema, [ldap.attributes]"
                )
            }
        }
        // The preset first, then the overrides, whatever their order in the file.
        l.attributes = l.schema.attributes
        if let at = t["attributes"]?.table {
            for ak in at.keys {
                guard let av = at[ak] else { continue }
                let afull = "ldap.attributes.\(ak)"
                let name = try string(av, afull)
                guard LDAPAttributes.isAttributeName(name) else {
                    throw fail(afull, "\"\(SafeText.escape(name))\" is not an attribute name (letters, digits, '-')")
                }
                guard l.attributes.set(ak, name) else {
                    throw fail(afull, "unknown attribute; expected one of \(LDAPAttributes.keys.joined(separator: ", "))")
                }
            }
        }
        for required in ["uris", "users_base", "groups_base", "devices_base", "policy_dn"] where !seen.contains(required) {
            throw fail("ldap.\(required)", "missing: the LDAP backend needs it")
        }
        if l.bindDN != nil && l.bindPasswordFile == nil {
            throw fail("ldap.bind_password_file", "missing: bind_dn needs a password file (or no bind_dn, for SASL EXTERNAL over ldapi://)")
        }
        if l.bindDN == nil && l.bindPasswordFile != nil {
            throw fail("ldap.bind_dn", "missing: bind_password_file is set without a bind_dn")
        }
        try checkTLS(l, fail: fail)
        return l
    }

    /// The TLS keys against the URIs: `tls` fits every URI's scheme, `none`
    /// only for ldapi:// or loopback, a client certificate needs its key
    /// and a URI with TLS, and SASL EXTERNAL (no bind_dn) needs ldapi:// or
    /// TLS with a client certificate.
    static func checkTLS(_ l: LDAPBackend, fail: (String, String) -> ConfigError) throws {
        for u in l.uris {
            guard let uri = LDAPURI(u) else { continue }
            let shown = SafeText.escape(u)
            switch (l.tls, uri.scheme) {
            case (.ldaps?, "ldap"):
                throw fail(
                    "ldap.tls", "\"ldaps\" needs ldaps:// URIs (got \"\(shown)\"); write ldaps://, or tls = \"starttls\" for ldap://")
            case (.starttls?, "ldaps"):
                throw fail(
                    "ldap.tls",
                    "\"starttls\" needs ldap:// URIs (got \"\(shown)\", which is TLS from the start); write ldap://, or tls = \"ldaps\"")
            case (.none?, "ldaps"):
                throw fail("ldap.tls", "\"none\" does not fit an ldaps:// URI (got \"\(shown)\"); use tls = \"ldaps\"")
            case (.none?, "ldap") where !uri.isLoopback:
                throw fail(
                    "ldap.tls",
                    "\"none\" would send the bind password and the users' password hashes in clear text: it is allowed only for ldapi:// and loopback URIs (got \"\(shown)\"); use tls = \"starttls\" (with ca_file) or an ldaps:// URI with tls = \"ldaps\""
                )
            default: break
            }
        }
        let withTLS = l.uris.filter { l.tlsMode(for: $0) != .none }
        if (l.tlsCert == nil) != (l.tlsKey == nil) {
            throw fail(
                l.tlsCert == nil ? "ldap.tls_cert" : "ldap.tls_key",
                "missing: a client certificate needs both tls_cert and tls_key")
        }
        if l.tlsCert != nil && withTLS.isEmpty {
            throw fail("ldap.tls_cert", "no URI uses TLS, so the client certificate would never be shown; use an ldaps:// or ldap:// URI with TLS")
        }
        if l.caFile != nil && withTLS.isEmpty {
            throw fail("ldap.ca_file", "no URI uses TLS (tls = \"none\" or ldapi:// only); remove ca_file or use TLS")
        }
        if l.bindDN == nil {
            for u in l.uris where LDAPURI(u)?.scheme != "ldapi" {
                guard l.tlsMode(for: u) != .none, l.tlsCert != nil else {
                    throw fail(
                        "ldap.uris",
                        "without bind_dn (SASL EXTERNAL) every URI must be ldapi://, or use TLS with the device's client certificate (tls_cert, tls_key) (got \"\(SafeText.escape(u))\")"
                    )
                }
            }
        }
    }

    /// One of `E`'s values by its name; the error lists them all.
    static func choice<E: RawRepresentable & CaseIterable>(_ s: String, _ key: String, _ fail: (String, String) -> ConfigError) throws -> E
    where E.RawValue == String {
        guard let e = E(rawValue: s) else {
            let names = E.allCases.map { "\"\($0.rawValue)\"" }
            throw fail(key, "must be \(names.dropLast().joined(separator: ", ")) or \(names.last ?? "") (got \"\(SafeText.escape(s))\")")
        }
        return e
    }

    /// A loose check that `s` looks like a DN (attr=value[,attr=value...]);
    /// the server is the judge of the rest.
    static func dn(_ s: String, _ key: String, _ fail: (String, String) -> ConfigError) throws -> String {
        guard s.contains("="), !s.hasPrefix("="), !s.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw fail(key, "\"\(SafeText.escape(s))\" is not a DN (e.g. ou=users,dc=example,dc=org)")
        }
        return s
    }
}

/// How a connection uses TLS (`tls` in [ldap]).
public enum LDAPTLSMode: String, Sendable, Equatable, CaseIterable {
    /// ldap://, then the StartTLS extended operation before anything else.
    case starttls
    /// ldaps://: TLS from the start.
    case ldaps
    /// No TLS: ldapi:// and loopback ldap:// only.
    case none
}

/// The scheme and host of an LDAP URI (RFC 4516), enough to decide about TLS.
public struct LDAPURI: Sendable, Equatable {
    public var scheme: String
    /// Lowercased, without brackets; empty for ldap:/// (libldap's localhost).
    public var host: String

    public init?(_ uri: String) {
        let lower = uri.lowercased()
        guard let r = lower.range(of: "://") else { return nil }
        scheme = String(lower[..<r.lowerBound])
        guard ["ldap", "ldaps", "ldapi"].contains(scheme) else { return nil }
        var rest = lower[r.upperBound...]
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
        } else {
            host = String(rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        }
    }

    /// localhost, 127.0.0.0/8 or ::1 (or no host: libldap's localhost).
    public var isLoopback: Bool {
        if host.isEmpty || host == "localhost" || host == "localhost." || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { p in UInt8(p).map { _ in true } ?? false }
    }
}

/// The schema presets (`schema` in [ldap]): attribute names and how a
/// disabled account is read.
public enum LDAPSchema: String, Sendable, Equatable, CaseIterable {
    case openldap, freeipa, ad

    public var attributes: LDAPAttributes {
        switch self {
        case .openldap: return .openldap
        case .freeipa: return .freeipa
        case .ad: return .activeDirectory
        }
    }
}

/// The attribute and object class names the LDAP backend reads; `openldap`
/// is the base schemas' (core, cosine, inetorgperson, nis), ppolicy's
/// pwdAccountLockedTime and the fedlogin schema (packaging/ldap/fedlogin.ldif).
public struct LDAPAttributes: Sendable, Equatable {
    public var username = "uid"
    public var email = "mail"
    public var displayName = "displayName"
    public var commonName = "cn"
    public var uidNumber = "uidNumber"
    public var password = "userPassword"
    /// shadowAccount's day count: set and not after today = disabled.
    public var expire = "shadowExpire"
    /// ppolicy's lock (operational, asked for by name): any value = disabled.
    public var locked = "pwdAccountLockedTime"
    public var member = "member"
    public var groupName = "cn"
    public var deviceID = "cn"
    /// The object class of device entries.
    public var deviceClass = "device"
    /// On a device entry: the DNs of the users an administrator associated with it.
    public var deviceUsers = "fedloginAssociatedUser"
    /// On a device entry: the DNs of the users an administrator removed from it.
    public var unboundUsers = "fedloginUnboundUser"
    /// On the policy entry (and optionally a device entry, which wins): the policy as JSON.
    public var policy = "fedloginPolicy"
    /// The object class of binding entries under a device's entry.
    public var bindingClass = "fedloginBinding"
    /// On a binding entry: the report as JSON.
    public var bindingReport = "fedloginBindingReport"
    /// An attribute every entry has whose value is its own DN, matched as a
    /// DN (distinguishedNameMatch): a search for several DNs at once.
    /// OpenLDAP's operational entryDN; 389-DS/FreeIPA: entrydn; AD: distinguishedName.
    public var entryDN = "entryDN"
    /// A second email attribute a user is also found by, read when `email`
    /// has no value (AD: userPrincipalName).
    public var principalName: String?
    /// How `expire` (the disabled attribute) is read.
    public var disabledReading = DisabledReading.expiredDay
    /// false: the directory never hands out password hashes (AD); no
    /// password sync, the users' passwords are local passcodes.
    public var passwordHashes = true

    /// How the disabled attribute's value is read.
    public enum DisabledReading: String, Sendable, Equatable {
        /// A day count (days since 1970-01-01): set and not after today (shadowExpire).
        case expiredDay
        /// The boolean TRUE, any case (389-DS/FreeIPA's nsAccountLock).
        case booleanTrue
        /// A number whose ACCOUNTDISABLE bit (0x2) is set (AD's userAccountControl).
        case accountDisableBit
    }

    public static let openldap = LDAPAttributes()

    /// FreeIPA (389-DS): uid, mail, displayName or cn, uidNumber, and
    /// nsAccountLock TRUE for disabled; groups with member.
    public static let freeipa: LDAPAttributes = {
        var a = LDAPAttributes()
        a.expire = "nsAccountLock"
        a.disabledReading = .booleanTrue
        a.entryDN = "entrydn"
        return a
    }()

    /// Active Directory (or Samba AD): sAMAccountName, mail or else
    /// userPrincipalName, displayName, uidNumber (RFC 2307 attributes), and
    /// userAccountControl's ACCOUNTDISABLE bit for disabled; groups with
    /// member. AD never hands out password hashes.
    public static let activeDirectory: LDAPAttributes = {
        var a = LDAPAttributes()
        a.username = "sAMAccountName"
        a.principalName = "userPrincipalName"
        a.expire = "userAccountControl"
        a.disabledReading = .accountDisableBit
        a.passwordHashes = false
        a.entryDN = "distinguishedName"
        return a
    }()

    /// Whether `value` of the disabled attribute says the account is
    /// disabled; `today` is days since 1970-01-01. A value that cannot be
    /// read as the preset's form is not "disabled" here: the caller logs no
    /// secret, and the account is judged by the rest of its entry.
    public func isDisabled(_ value: String?, today: Int) -> Bool {
        guard let value else { return false }
        let v = value.trimmingCharacters(in: .whitespaces)
        switch disabledReading {
        case .expiredDay:
            guard let day = Int(v) else { return false }
            return day >= 0 && day <= today
        case .booleanTrue:
            return v.uppercased() == "TRUE"
        case .accountDisableBit:
            // A signed 32-bit integer in AD's syntax; the bit is tested, not the value compared.
            guard let n = Int64(v) else { return false }
            return n & 0x2 != 0
        }
    }

    static let keys = [
        "username", "email", "principal_name", "display_name", "common_name", "uid_number", "password", "disabled", "expire", "locked",
        "member", "group_name", "device_id", "device_class", "device_users", "unbound_users", "policy", "binding_class", "binding_report",
        "entry_dn",
    ]

    mutating func set(_ key: String, _ name: String) -> Bool {
        switch key {
        case "username": username = name
        case "email": email = name
        case "display_name": displayName = name
        case "common_name": commonName = name
        case "uid_number": uidNumber = name
        case "password": password = name
        case "expire", "disabled": expire = name
        case "locked": locked = name
        case "principal_name": principalName = name
        case "member": member = name
        case "group_name": groupName = name
        case "device_id": deviceID = name
        case "device_class": deviceClass = name
        case "device_users": deviceUsers = name
        case "unbound_users": unboundUsers = name
        case "policy": policy = name
        case "binding_class": bindingClass = name
        case "binding_report": bindingReport = name
        case "entry_dn": entryDN = name
        default: return false
        }
        return true
    }

    static func isAttributeName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, ("a"..."z").contains(f) || ("A"..."Z").contains(f) else { return false }
        return s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }
}

/// LDAP search filter pieces (RFC 4515).
public enum LDAPFilter {
    /// `value` as an assertion value: `*`, `(`, `)`, `\` and NUL become
    /// \2a, \28, \29, \5c and \00, so a value can only ever be matched
    /// literally, never add a wildcard or a clause. Bytes outside ASCII are
    /// kept (UTF-8 is valid in a filter string).
    public static func escape(_ value: String) -> String {
        // Byte by byte: the five are ASCII, and no byte of a multi-byte
        // UTF-8 sequence is ASCII. Most values (names, DNs) have none of them.
        func special(_ b: UInt8) -> Bool { b == 0x2A || b == 0x28 || b == 0x29 || b == 0x5C || b == 0 }
        guard value.utf8.contains(where: special) else { return value }
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count + 12)
        let hex = Array("0123456789abcdef".utf8)
        for b in value.utf8 {
            if special(b) {
                out += [UInt8(ascii: "\\"), hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// (|(a=value)(b=value)) with `value` escaped.
    public static func anyEquals(_ attributes: [String], _ value: String) -> String {
        let v = escape(value)
        let clauses = attributes.map { "(\($0)=\(v))" }
        return clauses.count == 1 ? clauses[0] : "(|" + clauses.joined() + ")"
    }
}

/// LDAP distinguished names (RFC 4514).
public enum LDAPDN {
    /// `value` as an attribute value in a DN: `"`, `+`, `,`, `;`, `<`, `>`,
    /// `=` and `\` escaped with a backslash, NUL as \00, a leading `#` or
    /// space and a trailing space escaped, so a value can never add an RDN.
    public static func escapeValue(_ value: String) -> String {
        var out = ""
        let scalars = Array(value.unicodeScalars)
        for (i, u) in scalars.enumerated() {
            switch u {
            case "\"", "+", ",", ";", "<", ">", "=", "\\": out += "\\" + String(u)
            case "\0": out += "\\00"
            case "#" where i == 0: out += "\\#"
            case " " where i == 0 || i == scalars.count - 1: out += "\\ "
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }
}

/// One LDAP entry as the backend read it: its DN and its attributes' values
/// (attribute names compared case-insensitively, as LDAP does).
public struct LDAPEntry: Sendable, Equatable {
    public var dn: String
    var values: [String: [String]]

    public init(dn: String, attributes: [String: [String]]) {
        self.dn = dn
        var v: [String: [String]] = [:]
        for (k, vals) in attributes { v[k.lowercased(), default: []] += vals }
        values = v
    }

    public subscript(_ attribute: String) -> [String] { values[attribute.lowercased()] ?? [] }
    public func first(_ attribute: String) -> String? { self[attribute].first }
}

extension LDAPAttributes {
    /// The attributes a user search asks for (the lock is operational: by name).
    public var userAttributes: [String] {
        [username, email] + (principalName.map { [$0] } ?? []) + [displayName, commonName, uidNumber] + (passwordHashes ? [password] : [])
            + [expire, locked]
    }

    /// The attributes a user is found by: the username, then the emails.
    public var lookupAttributes: [String] { [username, email] + (principalName.map { [$0] } ?? []) }

    /// The user's email: `email`, or else `principalName` (AD).
    func mail(of e: LDAPEntry) -> String? {
        if let m = e.first(email), !m.isEmpty { return m }
        return principalName.flatMap { e.first($0) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// What makes a user entry unusable, in plain words; nil when it is
    /// fine. One value where the directory protocol has one, text without
    /// control characters (a newline in a name would forge a line in a log
    /// or a passwd field), a decimal uidNumber, a disabled attribute of the
    /// preset's form.
    public func problem(with e: LDAPEntry) -> String? {
        if e[username].isEmpty || e[username].allSatisfy(\.isEmpty) { return "it has no \(username) the bind DN can read" }
        if mail(of: e) == nil { return "it has no \(email)\(principalName.map { " or \($0)" } ?? "") the bind DN can read" }
        for a in [username, email, displayName, uidNumber, expire] + (principalName.map { [$0] } ?? []) where e[a].count > 1 {
            return "it has \(e[a].count) values of \(a), where one is expected"
        }
        for a in [username, email, displayName, commonName] + (principalName.map { [$0] } ?? []) {
            if e[a].contains(where: { $0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f } }) {
                return "its \(a) holds a control character (a newline?)"
            }
        }
        if let n = e.first(uidNumber), UInt32(n) == nil {
            return "its \(uidNumber) \"\(SafeText.escape(n))\" is not a number from 0 to 4294967295"
        }
        if let x = e.first(expire) {
            let v = x.trimmingCharacters(in: .whitespaces)
            switch disabledReading {
            case .expiredDay where Int(v) == nil:
                return "its \(expire) \"\(SafeText.escape(x))\" is not a number of days"
            case .booleanTrue where !["TRUE", "FALSE"].contains(v.uppercased()):
                return "its \(expire) \"\(SafeText.escape(x))\" is not TRUE or FALSE"
            case .accountDisableBit where Int64(v) == nil:
                return "its \(expire) \"\(SafeText.escape(x))\" is not a number"
            default:
                break
            }
        }
        return nil
    }

    /// A user entry as the directory protocol's user, the same shape the file
    /// backend answers; nil when it lacks a username or an email or is
    /// malformed (`problem(with:)` says why).
    /// `today` is days since 1970-01-01 (shadowExpire's unit). Disabled: a
    /// pwdAccountLockedTime of any value, or a shadowExpire not after today. A
    /// `{CRYPT}`-prefixed password is the user's crypt(3) hash, and makes the
    /// directory the password's authority; any other form is not given out.
    public func user(from e: LDAPEntry, groups: [String], today: Int) -> DirectoryUser? {
        guard problem(with: e) == nil, let name = e.first(username), let mail = mail(of: e) else { return nil }
        var u = DirectoryUser(username: name, email: mail, displayName: e.first(displayName) ?? e.first(commonName), groups: groups)
        if let n = e.first(uidNumber), let uid = UInt32(n) { u.uid = uid }
        if isDisabled(e.first(expire), today: today) { u.disabled = true }
        if !e[locked].isEmpty { u.disabled = true }
        if passwordHashes, let hash = e[password].first(where: { $0.lowercased().hasPrefix("{crypt}") }).map({ String($0.dropFirst(7)) }),
            hash.hasPrefix("$")
        {
            u.passwordHash = hash
            u.passwordAuthority = .directory
        }
        return u
    }
}
