import TOMLKit

/// Parses fedlogin.conf and its drop-ins into a `DaemonConfig`.
///
/// Files are applied in order: later files override the keys they set. Every
/// unknown key, wrong type or invalid value is an error naming the file and
/// the key, so a typo never silently falls back to a default.
public enum ConfigParser {
    /// The line and column of the first control character other than tab,
    /// newline and carriage return, if any.
    static func controlCharacter(in text: String) -> (Int, Int)? {
        var line = 1
        var column = 1
        for u in text.unicodeScalars {
            if u == "\n" {
                line += 1
                column = 1
                continue
            }
            if (u.value < 0x20 && u != "\t" && u != "\r") || u.value == 0x7f { return (line, column) }
            column += 1
        }
        return nil
    }

    /// The line of a table header whose name does not start right after its
    /// bracket(s) on the same line ("[" then the end of the line, say): the
    /// TOML library aborts on those instead of reporting them.
    static func namelessTableHeader(in text: String) -> Int? {
        var inMultiline = false
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let wasInMultiline = inMultiline
            if raw.components(separatedBy: "\"\"\"").count % 2 == 0 || raw.components(separatedBy: "\'\'\'").count % 2 == 0 {
                inMultiline.toggle()
            }
            if wasInMultiline { continue }
            // Scalars, not Characters: "[" and a combining mark are one Character.
            // (A byte order mark may open the file.)
            var rest = Substring.UnicodeScalarView(raw.unicodeScalars.drop(while: { $0 == " " || $0 == "\t" || $0 == "\u{FEFF}" }))
            guard rest.first == "[" else { continue }
            rest = rest.dropFirst()
            if rest.first == "[" { rest = rest.dropFirst() }
            rest = rest.drop(while: { $0 == " " || $0 == "\t" })
            guard let c = rest.first else { return i + 1 }
            let ok = ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || "_-\"']".unicodeScalars.contains(c)
            if !ok { return i + 1 }
        }
        return nil
    }

    /// `files` are (path, contents) pairs: the main file first, then the
    /// drop-ins in lexical order. The parser never touches the filesystem.
    public static func parse(files: [(path: String, text: String)]) throws -> DaemonConfig {
        var config = DaemonConfig()
        var idpSources: [String: String] = [:]
        // Which file set each key last, so an error names the file to fix.
        var keySources: [String: String] = [:]
        for (path, text) in files {
            // TOML allows no control character outside a comment's tab; the
            // TOML library is not handed one at all (it aborts on some).
            if let (line, column) = controlCharacter(in: text) {
                throw ConfigError(
                    file: path, key: "",
                    problem: "not valid TOML at line \(line), column \(column): a control character; remove it (save the file as plain UTF-8 text)")
            }
            if let line = namelessTableHeader(in: text) {
                throw ConfigError(
                    file: path, key: "",
                    problem: "not valid TOML at line \(line): a table header needs a name on the same line, e.g. [daemon] or [idp.NAME]")
            }
            let table: TOMLTable
            do {
                table = try TOMLTable(string: text)
            } catch let e as TOMLParseError {
                throw ConfigError(
                    file: path, key: "",
                    problem: "not valid TOML at line \(e.source.begin.line), column \(e.source.begin.column): \(e.description)")
            }
            var r = Reader(file: path)
            for section in ["daemon", "accounts", "signin"] {
                for key in table[section]?.table?.keys ?? [] { keySources["\(section).\(key)"] = path }
            }
            for key in table.keys {
                guard let value = table[key] else { continue }
                switch key {
                case "daemon": try r.daemon(value, into: &config)
                case "accounts": try r.accounts(value, into: &config.accounts)
                case "signin": try r.signin(value, into: &config.signin)
                case "service":
                    let services = try r.table(value, "service")
                    for name in services.keys {
                        guard let v = services[name] else { continue }
                        config.services[name] = try r.service(name: name, v, existing: config.services[name])
                    }
                case "idp":
                    let idps = try r.table(value, "idp")
                    for name in idps.keys {
                        guard let v = idps[name] else { continue }
                        config.idps[name] = try r.idp(name: name, v, existing: config.idps[name])
                        idpSources[name] = path
                    }
                default:
                    throw ConfigError(
                        file: path, key: key,
                        problem: "unknown section; expected one of [daemon], [accounts], [signin], [service.NAME], [idp.NAME]")
                }
            }
        }
        for (name, idp) in config.idps {
            config.idps[name] = try applyPreset(idp, file: idpSources[name] ?? files.first?.path ?? "fedlogin.conf")
        }
        try validate(config, idpSources: idpSources, keySources: keySources, mainFile: files.first?.path ?? "fedlogin.conf")
        return config
    }

    /// Fills in what a preset implies and checks its own keys.
    static func applyPreset(_ idp: IdPConfig, file: String) throws -> IdPConfig {
        var idp = idp
        let k = "idp.\(idp.name)"
        func fail(_ key: String, _ problem: String) -> ConfigError { ConfigError(file: file, key: key, problem: problem) }
        if idp.preset != .entra && (idp.tenant != nil || !idp.allowedTenants.isEmpty) {
            throw fail("\(k).tenant", "tenant and allowed_tenants belong to preset = \"entra\"")
        }
        if idp.preset != .google && idp.hostedDomain != nil {
            throw fail("\(k).hosted_domain", "hosted_domain belongs to preset = \"google\"")
        }
        switch idp.preset {
        case .generic, .okta, .directoryIdP:
            break
        case .google:
            if idp.issuer.isEmpty { idp.issuer = "https://accounts.google.com" }
        case .entra:
            // Entra's `email` is an attribute admins can set to any address and
            // comes without email_verified; preferred_username is the UPN, in a
            // domain the tenant has verified.
            if !idp.emailClaimSet { idp.emailClaim = "preferred_username" }
            guard let tenant = idp.tenant, !tenant.isEmpty else {
                throw fail(
                    "\(k).tenant", "is required with preset = \"entra\": the directory (tenant) id, or \"organizations\" for a multi-tenant app")
            }
            let multi = ["common", "organizations", "consumers"].contains(tenant.lowercased())
            if idp.issuer.isEmpty {
                idp.issuer = "https://login.microsoftonline.com/\(multi ? "{tenantid}" : tenant)/v2.0"
            }
            if multi && idp.allowedTenants.isEmpty {
                throw fail(
                    "\(k).allowed_tenants",
                    "is required with tenant = \"\(tenant)\": list the tenant ids whose users may sign in (a multi-tenant app would otherwise accept any Microsoft tenant)"
                )
            }
        }
        return idp
    }

    static func validate(_ c: DaemonConfig, idpSources: [String: String], keySources: [String: String] = [:], mainFile: String) throws {
        func fail(_ key: String, _ problem: String, file: String? = nil) -> ConfigError {
            ConfigError(file: file ?? keySources[key] ?? mainFile, key: key, problem: problem)
        }
        for (key, path) in [
            ("daemon.socket", c.socketPath), ("daemon.state_dir", c.stateDir), ("daemon.system_root", c.systemRoot),
            ("daemon.directory_socket", c.directorySocket),
        ] where !path.hasPrefix("/") {
            throw fail(key, "must be an absolute path (got \"\(path)\")")
        }
        guard c.accounts.uidMin >= 1000 else {
            throw fail("accounts.uid_min", "must be at least 1000: fedlogin never creates system accounts (got \(c.accounts.uidMin))")
        }
        guard c.accounts.directoryUIDMin >= 1000 else {
            throw fail(
                "accounts.directory_uid_min", "must be at least 1000: a directory user never gets a system uid (got \(c.accounts.directoryUIDMin))")
        }
        guard c.accounts.directoryUIDMax >= c.accounts.directoryUIDMin else {
            throw fail("accounts.directory_uid_max", "must be at least accounts.directory_uid_min (\(c.accounts.directoryUIDMin))")
        }
        guard c.accounts.directoryUIDMax < c.accounts.uidMin || c.accounts.directoryUIDMin > c.accounts.uidMax else {
            throw fail(
                "accounts.directory_uid_min",
                "the directory's uid range \(c.accounts.directoryUIDMin)-\(c.accounts.directoryUIDMax) overlaps fedlogin's own \(c.accounts.uidMin)-\(c.accounts.uidMax) (uid_min, uid_max); make them separate"
            )
        }
        guard c.accounts.uidMax > c.accounts.uidMin else {
            throw fail("accounts.uid_max", "must be greater than accounts.uid_min (\(c.accounts.uidMin))")
        }
        guard c.signin.timeout >= 10 else { throw fail("signin.timeout", "must be at least 10 seconds") }
        guard c.signin.keepalive > 0 && c.signin.keepalive <= 5 else {
            throw fail("signin.keepalive", "must be more than 0 and at most 5 seconds (the PAM module's reply timeout is 10 s)")
        }
        for (key, value) in [
            ("daemon.directory_timeout", c.directoryTimeout), ("daemon.report_retry_max", c.reportRetryMax),
            ("signin.http_timeout", c.signin.httpTimeout),
        ] where value <= 0 {
            throw fail(key, "must be a positive number of seconds (got \(value))")
        }
        guard c.syncInterval >= 0 else {
            throw fail("daemon.sync_interval", "must be 0 (no periodic sync) or a positive number of seconds (got \(c.syncInterval))")
        }
        guard LocalUsername.isValid(c.accounts.adminGroup) else {
            throw fail("accounts.admin_group", "must name a local group (got \"\(c.accounts.adminGroup)\")")
        }
        guard c.signin.revalidateTimeout > 0 && c.signin.revalidateTimeout <= 5 else {
            throw fail(
                "signin.revalidate_timeout",
                "must be more than 0 and at most 5 seconds: every login of a managed account may wait this long (got \(c.signin.revalidateTimeout))")
        }
        guard c.signin.revalidateCache >= 0 else {
            throw fail("signin.revalidate_cache", "must be 0 (ask at every login) or a positive number of seconds (got \(c.signin.revalidateCache))")
        }
        guard c.signin.clockSkew >= 0 && c.signin.clockSkew <= 300 else {
            throw fail("signin.clock_skew", "must be from 0 to 300 seconds (got \(c.signin.clockSkew))")
        }
        for (name, idp) in c.idps {
            let file = idpSources[name] ?? mainFile
            let k = "idp.\(name)"
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }), !name.isEmpty else {
                throw fail(k, "IdP names may use letters, digits, '-' and '_'", file: file)
            }
            guard !idp.issuer.isEmpty else { throw fail("\(k).issuer", "is required (the IdP's issuer URL)", file: file) }
            guard !idp.clientID.isEmpty else {
                throw fail("\(k).client_id", "is required (the client id of fedlogin's app at the IdP)", file: file)
            }
            guard let url = URLParts(idp.issuer.replacingOccurrences(of: "{tenantid}", with: "t")) else {
                throw fail("\(k).issuer", "is not a URL (got \"\(idp.issuer)\")", file: file)
            }
            if url.scheme == "http" {
                guard url.isLoopback else {
                    throw fail("\(k).issuer", "must use https:// (plain http is allowed only for a loopback test IdP)", file: file)
                }
                guard idp.allowHTTPLoopback else {
                    throw fail(
                        "\(k).issuer", "uses plain http; set allow_http_loopback = true for a loopback test IdP, or use https://",
                        file: file)
                }
            } else if url.scheme != "https" {
                throw fail("\(k).issuer", "must be an https:// URL (got \"\(idp.issuer)\")", file: file)
            }
            switch idp.clientAuth {
            case .none:
                if idp.clientSecretFile != nil {
                    throw fail("\(k).client_secret_file", "is set but client_auth = \"none\" sends no secret; remove one of them", file: file)
                }
            case .clientSecretBasic, .clientSecretPost:
                guard let f = idp.clientSecretFile, f.hasPrefix("/") else {
                    throw fail(
                        "\(k).client_secret_file",
                        "is required with client_auth = \"\(idp.clientAuth.rawValue)\": the absolute path of a root-only file holding the client secret (or set client_auth = \"none\" for a public client)",
                        file: file)
                }
            }
            guard idp.scopes.contains("openid") else { throw fail("\(k).scopes", "must include \"openid\"", file: file) }
            guard !idp.algorithms.isEmpty else { throw fail("\(k).algorithms", "must name at least one algorithm", file: file) }
            for alg in idp.algorithms where !IdPConfig.supportedAlgorithms.contains(alg) {
                throw fail(
                    "\(k).algorithms",
                    "\"\(alg)\" is not accepted; use asymmetric algorithms from: \(IdPConfig.supportedAlgorithms.sorted().joined(separator: ", "))",
                    file: file)
            }
        }
    }

    struct Reader {
        let file: String

        func fail(_ key: String, _ problem: String) -> ConfigError { ConfigError(file: file, key: key, problem: problem) }

        func table(_ v: TOMLValueConvertible, _ key: String) throws -> TOMLTable {
            guard let t = v.table else { throw fail(key, "must be a table ([\(key)])") }
            return t
        }

        func string(_ v: TOMLValueConvertible, _ key: String) throws -> String {
            guard let s = v.string else { throw fail(key, "must be a string (in double quotes)") }
            return s
        }

        func bool(_ v: TOMLValueConvertible, _ key: String) throws -> Bool {
            guard let b = v.bool else { throw fail(key, "must be true or false") }
            return b
        }

        func number(_ v: TOMLValueConvertible, _ key: String) throws -> Double {
            if let i = v.int { return Double(i) }
            if let d = v.double { return d }
            throw fail(key, "must be a number")
        }

        func uint32(_ v: TOMLValueConvertible, _ key: String) throws -> UInt32 {
            guard let i = v.int, i >= 0, i <= Int(UInt32.max) else { throw fail(key, "must be a whole number from 0 to \(UInt32.max)") }
            return UInt32(i)
        }

        func strings(_ v: TOMLValueConvertible, _ key: String) throws -> [String] {
            guard let a = v.array else { throw fail(key, "must be a list of strings, e.g. [\"a\", \"b\"]") }
            return try a.map { try string($0, key) }
        }

        func each(_ t: TOMLTable, section: String, _ body: (String, String, TOMLValueConvertible) throws -> Bool) throws {
            for key in t.keys {
                guard let v = t[key] else { continue }
                let full = "\(section).\(key)"
                guard try body(key, full, v) else { throw fail(full, "unknown key in [\(section)]; see fedlogin.conf(5)") }
            }
        }

        func daemon(_ v: TOMLValueConvertible, into c: inout DaemonConfig) throws {
            try each(try table(v, "daemon"), section: "daemon") { key, full, v in
                switch key {
                case "socket": c.socketPath = try string(v, full)
                case "state_dir": c.stateDir = try string(v, full)
                case "system_root": c.systemRoot = try string(v, full)
                case "device_id": c.deviceID = try string(v, full)
                case "directory_socket": c.directorySocket = try string(v, full)
                case "directory_timeout": c.directoryTimeout = try number(v, full)
                case "report_retry_max": c.reportRetryMax = try number(v, full)
                case "sync_interval": c.syncInterval = try number(v, full)
                case "log_level":
                    let level = try string(v, full)
                    guard ["trace", "debug", "info", "notice", "warning", "error"].contains(level) else {
                        throw fail(full, "must be one of trace, debug, info, notice, warning, error (got \"\(level)\")")
                    }
                    c.logLevel = level
                default: return false
                }
                return true
            }
        }

        func accounts(_ v: TOMLValueConvertible, into a: inout AccountsConfig) throws {
            try each(try table(v, "accounts"), section: "accounts") { key, full, v in
                switch key {
                case "uid_min": a.uidMin = try uint32(v, full)
                case "uid_max": a.uidMax = try uint32(v, full)
                case "directory_uid_min": a.directoryUIDMin = try uint32(v, full)
                case "directory_uid_max": a.directoryUIDMax = try uint32(v, full)
                case "reserved_names":
                    let names = try strings(v, full)
                    for n in names where !LocalUsername.isValid(AccountRules.asciiLowered(n)) {
                        throw fail(full, "must list user names (letters, digits, '_', '-', '.'; got \"\(SafeText.escape(n))\")")
                    }
                    a.reservedNames = names
                case "shell": a.shell = try string(v, full)
                case "home_root": a.homeRoot = try string(v, full)
                case "groups": a.groups = try strings(v, full)
                case "admin_group": a.adminGroup = try string(v, full)
                case "group_map":
                    let t = try table(v, full)
                    var map: [String: String] = [:]
                    for k in t.keys {
                        guard let local = t[k] else { continue }
                        let name = try string(local, "\(full).\(k)")
                        guard LocalUsername.isValid(name) else {
                            throw fail("\(full).\(k)", "must name a local group (letters, digits, '_', '-', '.'; got \"\(name)\")")
                        }
                        map[k] = name
                    }
                    a.groupMap = map
                default: return false
                }
                return true
            }
        }

        func signin(_ v: TOMLValueConvertible, into s: inout SigninConfig) throws {
            try each(try table(v, "signin"), section: "signin") { key, full, v in
                switch key {
                case "timeout": s.timeout = try number(v, full)
                case "keepalive": s.keepalive = try number(v, full)
                case "http_timeout": s.httpTimeout = try number(v, full)
                case "clock_skew": s.clockSkew = try number(v, full)
                case "revalidate_timeout": s.revalidateTimeout = try number(v, full)
                case "revalidate_cache": s.revalidateCache = try number(v, full)
                default: return false
                }
                return true
            }
        }

        func flows(_ v: TOMLValueConvertible, _ key: String) throws -> [SignInFlow] {
            let names = try strings(v, key)
            guard !names.isEmpty else { throw fail(key, "must name at least one flow: \"loopback\", \"device\"") }
            return try names.map { n in
                guard let f = SignInFlow(rawValue: n) else {
                    throw fail(key, "unknown flow \"\(n)\"; use \"loopback\" (browser on this machine) or \"device\" (code on another device)")
                }
                return f
            }
        }

        func service(name: String, _ v: TOMLValueConvertible, existing: ServiceConfig?) throws -> ServiceConfig {
            let section = "service.\(name)"
            var s = existing ?? ServiceConfig()
            try each(try table(v, section), section: section) { key, full, v in
                switch key {
                case "flows": s.flows = try flows(v, full)
                case "timeout":
                    let t = try number(v, full)
                    guard t >= 10 else { throw fail(full, "must be at least 10 seconds") }
                    s.timeout = t
                default: return false
                }
                return true
            }
            return s
        }

        func idp(name: String, _ v: TOMLValueConvertible, existing: IdPConfig?) throws -> IdPConfig {
            let section = "idp.\(name)"
            var idp = existing ?? IdPConfig(name: name, issuer: "", clientID: "")
            try each(try table(v, section), section: section) { key, full, v in
                switch key {
                case "display_name": idp.displayName = try string(v, full)
                case "issuer": idp.issuer = try string(v, full)
                case "client_id": idp.clientID = try string(v, full)
                case "client_secret_file": idp.clientSecretFile = try string(v, full)
                case "client_auth":
                    let s = try string(v, full)
                    guard let auth = ClientAuth(rawValue: s) else {
                        throw fail(full, "must be one of client_secret_basic, client_secret_post, none (got \"\(s)\")")
                    }
                    idp.clientAuth = auth
                case "scopes": idp.scopes = try strings(v, full)
                case "email_claim":
                    idp.emailClaim = try string(v, full)
                    idp.emailClaimSet = true
                case "redirect_port":
                    let p = try uint32(v, full)
                    guard p <= 65535 else { throw fail(full, "must be a port number 0-65535 (0: a random port per sign-in)") }
                    idp.redirectPort = UInt16(p)
                case "allow_http_loopback": idp.allowHTTPLoopback = try bool(v, full)
                case "algorithms": idp.algorithms = try strings(v, full)
                case "ca_bundle": idp.caBundle = try string(v, full)
                case "flows": idp.flows = try flows(v, full)
                case "preset":
                    let n = try string(v, full)
                    guard let p = IdPPreset(rawValue: n) else {
                        throw fail(full, "unknown preset \"\(n)\"; use one of \(IdPPreset.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    idp.preset = p
                case "tenant": idp.tenant = try string(v, full)
                case "allowed_tenants": idp.allowedTenants = try strings(v, full)
                case "hosted_domain": idp.hostedDomain = try string(v, full)
                case "email_verified_string":
                    guard let b = v.bool else {
                        throw fail(full, "must be true (accept email_verified as the string \"true\") or false (only the JSON boolean true)")
                    }
                    idp.emailVerifiedString = b
                default: return false
                }
                return true
            }
            return idp
        }
    }
}
