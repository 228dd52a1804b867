import CLDAP
import FedloginCore
import Foundation
import Logging
import NIOPosix
import Synchronization

/// The directory protocol answered from an LDAP directory (docs/ldap.md):
/// lookup, access, policy, device_users, report_binding, list_reports and
/// change_password (a Password Modify bound as the user).
///
/// Each request takes a persistent connection from a small pool or opens
/// one (the configured URIs in order, the first that binds wins); a
/// connection lost during a request is dropped and the request tried once
/// more on a new one (`withConnection`). Every network wait is bounded by
/// the configured timeout. The calls block, on a pool of threads of their
/// own; each connection is used by one of them at a time.
///
/// It never mistakes an error for "no such user": a failed search throws
/// (the protocol's unavailable answer), and before it answers "no such user"
/// it checks that it can see the users subtree (its base, and at least one
/// entry under it) and the policy entry. A missing base, a refused search or
/// an ACL that hides the users from its bind DN make the directory
/// unavailable.
public final class LDAPDirectory: DirectoryBackend {
    let config: DirectorydConfig.LDAPBackend
    let password: String?
    var attrs: LDAPAttributes { config.attributes }
    static let logger = Logger(label: "fedlogin-directoryd")

    /// `password` is the bind DN's (read from bind_password_file), nil for SASL EXTERNAL.
    public init(config: DirectorydConfig.LDAPBackend, password: String?) {
        self.config = config
        self.password = password
        connections = LDAPConnections(capacity: DirectoryServer.requestThreads)
        // libldap writes with write(2): a server that closed the connection
        // must give EPIPE (a lost connection), not end the process.
        signal(SIGPIPE, SIG_IGN)
    }

    func unavailable(_ why: String) -> DirectoryError { DirectoryError("the LDAP directory is unavailable: \(why)") }

    var timeoutSeconds: Int32 { Int32(max(1, config.timeout.rounded(.up))) }

    /// The system's CA bundle, for TLS without a ca_file: the first of the
    /// distributions' usual paths that exists (nil: libldap's default).
    static let systemCAFile: String? = [
        "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem",
    ].first { FileManager.default.fileExists(atPath: $0) }

    /// The CA file a server's certificate is checked against.
    var caFile: String? { config.caFile ?? Self.systemCAFile }

    func cMode(_ uri: String) -> Int32 {
        switch config.tlsMode(for: uri) {
        case .none: return Int32(FEDLOGIN_LDAP_TLS_NONE)
        case .starttls: return Int32(FEDLOGIN_LDAP_TLS_STARTTLS)
        case .ldaps: return Int32(FEDLOGIN_LDAP_TLS_LDAPS)
        }
    }

    /// A connection to `uri` bound with the configured credentials (TLS as
    /// `tls` says for it), or libldap's result code and the reason: a TLS
    /// failure's reason starts with "TLS" and says what is wrong. Blocks.
    func connect(_ uri: String) -> (connection: LDAPConnection?, rc: Int32, reason: String) {
        var ld: OpaquePointer?
        var stage: Int32 = 0
        var err = [CChar](repeating: 0, count: 512)
        let rc = fedlogin_ldap_connect(
            uri, timeoutSeconds, cMode(uri), caFile, config.tlsCert, config.tlsKey, config.bindDN, password, &ld, &stage, &err, err.count)
        guard rc == 0, let ld else { return (nil, rc, describeFailure(uri, rc: rc, stage: stage, reason: cText(err))) }
        return (LDAPConnection(ld: ld, uri: uri, timeout: timeoutSeconds), rc, "")
    }

    /// A failed connect's reason in plain words. A TLS failure is looked
    /// into: a second handshake that requests the server's certificate
    /// without verifying it (no bind, nothing sent) tells a certificate
    /// that is not trusted from one issued for another host, and an ldaps://
    /// server that speaks no TLS from one that cannot be reached.
    func describeFailure(_ uri: String, rc: Int32, stage: Int32, reason: String) -> String {
        let mode = config.tlsMode(for: uri)
        guard mode != .none else { return reason }
        switch stage {
        case Int32(FEDLOGIN_LDAP_STAGE_SETUP) where rc == LDAP_LOCAL_ERROR:
            return
                "TLS: \(reason.replacingOccurrences(of: "TLS settings: ", with: "")) (a file is missing, unreadable or not PEM, or tls_key does not belong to tls_cert)"
        case Int32(FEDLOGIN_LDAP_STAGE_STARTTLS) where rc > 0:
            return "TLS: the server refused STARTTLS (\(reason)); it may not be set up for TLS (olcTLSCertificateFile) or want ldaps://"
        case Int32(FEDLOGIN_LDAP_STAGE_STARTTLS), Int32(FEDLOGIN_LDAP_STAGE_CONNECT):
            break
        default:
            return reason
        }
        var names = [CChar](repeating: 0, count: 1024)
        let probe = fedlogin_ldap_tls_names(uri, timeoutSeconds, cMode(uri), caFile, config.tlsCert, config.tlsKey, &names, names.count)
        if probe != 0 {
            // Not even an unverified handshake: unreachable, or no TLS there.
            // (libldap names GnuTLS's reason when the handshake itself broke.)
            if stage == Int32(FEDLOGIN_LDAP_STAGE_CONNECT) && mode == .ldaps && rc == LDAP_SERVER_DOWN && probe == LDAP_SERVER_DOWN
                && !reason.contains("TLS")
            {
                return reason
            }
            return "TLS: the handshake failed (\(reason)); is the server set up for TLS on this port?"
        }
        let cert = cText(names)
        let host = LDAPURI(uri)?.host ?? ""
        let ca = config.caFile.map { "ca_file \($0)" } ?? "the system's CAs (no ca_file)"
        if !TLSNames.matches(host: host, names: cert) {
            return
                "TLS: hostname mismatch: the server's certificate (\(cert)) is not issued for \(host.isEmpty ? "localhost" : host); use a URI with a name the certificate lists"
        }
        return "TLS: the server's certificate is not trusted: it does not chain to \(ca), or it has expired (\(cert))"
    }

    /// The persistent connections (docs/ldap.md, "Connections"): at most
    /// one per request thread (DirectoryServer), each used by one request
    /// at a time.
    let connections: LDAPConnections

    /// Runs `body` with a bound connection (blocking: on a request
    /// thread): an idle one from the pool, or a new one (the URIs in order, the first
    /// that binds wins). When the connection is lost during `body`
    /// (`LDAPResultKind.connectionLost`) it is dropped, with every idle one,
    /// and `body` runs once more on a new connection, which tries the URIs
    /// in order again: a restarted or lost server costs a retry, not an
    /// error. Any answer of the server stands and keeps the connection.
    func withConnection<T>(_ body: (LDAPConnection) throws -> T) throws -> T {
        var lost: [String] = []
        for attempt in 0..<2 {
            let entry: LDAPConnections.Entry
            if attempt == 0, let idle = connections.checkout() {
                entry = idle
            } else {
                entry = try open(after: lost)
            }
            do {
                let result = try body(entry.handle)
                connections.checkin(entry)
                return result
            } catch let e as LDAPConnection.Failure where e.kind == .connectionLost {
                entry.handle.close()
                connections.dropAll()
                lost.append(e.description)
                Self.logger.notice(
                    attempt == 0 ? "LDAP connection lost; trying once more on a new connection" : "LDAP connection lost again",
                    metadata: ["reason": "\(SafeText.escape(e.description))"])
            } catch let e as LDAPConnection.Failure {
                connections.checkin(entry)
                throw unavailable(e.description)
            } catch {
                connections.checkin(entry)
                throw error
            }
        }
        throw unavailable(lost.joined(separator: "; then "))
    }

    /// A new connection: the URIs in order, the first that binds. Throws
    /// unavailable, with each URI's reason, when none does.
    func open(after lost: [String]) throws -> LDAPConnections.Entry {
        var problems = lost
        for (i, uri) in config.uris.enumerated() {
            let (connection, _, reason) = connect(uri)
            guard let c = connection else {
                problems.append("\(uri): \(reason)")
                continue
            }
            return connections.opened(c, uriIndex: i)
        }
        throw unavailable(problems.joined(separator: "; "))
    }

    // MARK: the operations

    public func lookup(_ nameOrEmail: String) throws -> DirectoryUser? {
        try withConnection { c in try self.lookup(nameOrEmail, on: c) }
    }

    func lookup(_ nameOrEmail: String, on c: LDAPConnection) throws -> DirectoryUser? {
        try lookupEntry(nameOrEmail, on: c)?.user
    }

    /// The user and the DN of their entry.
    func lookupEntry(_ nameOrEmail: String, on c: LDAPConnection) throws -> (user: DirectoryUser, dn: String)? {
        let filter = LDAPFilter.anyEquals(attrs.lookupAttributes, nameOrEmail)
        guard
            let entries = try c.search(
                base: config.usersBase, scope: LDAP_SCOPE_SUBTREE, filter: filter, attributes: attrs.userAttributes, sizeLimit: 16)
        else {
            throw LDAPConnection.Failure("users_base \(config.usersBase) does not exist or is hidden from the bind DN")
        }
        // By username first, then by email, as the file backend.
        let lowered = nameOrEmail.lowercased()
        let entry =
            entries.first(where: { $0[attrs.username].contains { $0.lowercased() == lowered } })
            ?? entries.first(where: { $0[attrs.email].contains { $0.lowercased() == lowered } })
            ?? attrs.principalName.flatMap { p in entries.first(where: { $0[p].contains { $0.lowercased() == lowered } }) }
        guard let entry else {
            try checkVisible(on: c)
            return nil
        }
        let groupFilter = "(\(attrs.member)=\(LDAPFilter.escape(entry.dn)))"
        guard
            let groups = try c.search(
                base: config.groupsBase, scope: LDAP_SCOPE_SUBTREE, filter: groupFilter, attributes: [attrs.groupName], sizeLimit: 0)
        else {
            throw LDAPConnection.Failure("groups_base \(config.groupsBase) does not exist or is hidden from the bind DN")
        }
        let names = groups.compactMap { $0.first(attrs.groupName) }
        if let problem = attrs.problem(with: entry) {
            // Neither "no such user" (a sync would lock the account) nor a guess.
            throw LDAPConnection.Failure("the user entry \(SafeText.escape(entry.dn)) is malformed: \(problem)")
        }
        guard let user = attrs.user(from: entry, groups: names, today: Int(Date().timeIntervalSince1970 / 86400)) else {
            throw LDAPConnection.Failure("the entry \(entry.dn) has no \(attrs.username) or no \(attrs.email) the bind DN can read")
        }
        return (user, entry.dn)
    }

    /// Before "no such user": the users subtree and the policy entry can be
    /// seen. Throws otherwise.
    func checkVisible(on c: LDAPConnection) throws {
        try checkUsersVisible(on: c)
        _ = try policy(on: c)
    }

    /// The users subtree can be seen: its base, and at least one user in it.
    func checkUsersVisible(on c: LDAPConnection) throws {
        guard let base = try c.search(base: config.usersBase, scope: LDAP_SCOPE_BASE, filter: "(objectClass=*)", attributes: ["1.1"], sizeLimit: 1),
            !base.isEmpty
        else {
            throw LDAPConnection.Failure("users_base \(config.usersBase) does not exist or is hidden from the bind DN")
        }
        guard
            let some = try c.search(
                base: config.usersBase, scope: LDAP_SCOPE_SUBTREE, filter: "(\(attrs.username)=*)", attributes: ["1.1"], sizeLimit: 1), !some.isEmpty
        else {
            throw LDAPConnection.Failure("the bind DN sees no user under users_base \(config.usersBase)")
        }
    }

    public func currentPolicy(device: String?) throws -> DevicePolicy {
        try withConnection { c in try self.policy(on: c, device: device) }
    }

    /// The policy entry's policy; for `device`, a policy on its own entry
    /// (the same attribute) replaces the policy entry's keys it has.
    func policy(on c: LDAPConnection, device: String? = nil, deviceEntry: LDAPEntry? = nil) throws -> DevicePolicy {
        guard
            let entries = try c.search(
                base: config.policyDN, scope: LDAP_SCOPE_BASE, filter: "(objectClass=*)", attributes: [attrs.policy], sizeLimit: 1),
            let e = entries.first
        else {
            throw LDAPConnection.Failure("policy_dn \(config.policyDN) does not exist or is hidden from the bind DN")
        }
        var own: LDAPEntry? = deviceEntry
        if own == nil, let device { own = try self.deviceEntry(device, attributes: [attrs.policy], on: c) }
        // The same texts as a policy decoded before: that policy. (Values
        // never hold NUL, so it separates the two lists.)
        let texts = e[attrs.policy] + ["\0"] + (own?[attrs.policy] ?? [])
        if let known = decodedPolicies.withLock({ $0[texts] }) { return known }
        var object = try policyObject(e, what: "the policy entry \(config.policyDN)", required: true)
        if let own {
            for (k, v) in try policyObject(own, what: "the device entry \(SafeText.escape(own.dn))", required: false) { object[k] = v }
        }
        do {
            let policy = try JSONDecoder().decode(DevicePolicy.self, from: JSONSerialization.data(withJSONObject: object))
            decodedPolicies.withLock { known in
                if known.count >= Self.decodedPoliciesKept { known.removeAll() }
                known[texts] = policy
            }
            return policy
        } catch {
            let whose = own.map { "\(config.policyDN) with the device entry \(SafeText.escape($0.dn))'s" } ?? config.policyDN
            throw LDAPConnection.Failure("the \(attrs.policy) of \(whose) is not a valid policy (JSON): \(error)")
        }
    }

    /// Policies decoded, by their texts (the policy entry's values, NUL, the
    /// device entry's): a policy changes seldom, and decoding its JSON costs
    /// more than the searches that read it. Only valid policies are kept;
    /// any change of a text is a new key.
    let decodedPolicies = Mutex<[[String]: DevicePolicy]>([:])
    static let decodedPoliciesKept = 16

    /// The JSON object in `e`'s policy attribute ([:] when it has none and
    /// none is required).
    func policyObject(_ e: LDAPEntry, what: String, required: Bool) throws -> [String: Any] {
        let values = e[attrs.policy]
        guard values.count <= 1 else { throw LDAPConnection.Failure("\(what) has \(values.count) values of \(attrs.policy), where one is expected") }
        guard let json = values.first else {
            if required { throw LDAPConnection.Failure("\(what) has no \(attrs.policy) the bind DN can read") }
            return [:]
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw LDAPConnection.Failure("the \(attrs.policy) of \(what) is not a valid policy (a JSON object)")
        }
        return object
    }

    public func users(of device: String) throws -> [String] {
        try withConnection { c in try self.users(of: device, on: c) }
    }

    /// The device's entry, with `attributes` (by default the ones
    /// device_users and policy read); nil when there is none (and the
    /// devices can be seen).
    func deviceEntry(_ device: String, attributes: [String]? = nil, on c: LDAPConnection) throws -> LDAPEntry? {
        let found = try findDevice(device, attributes: attributes ?? [attrs.deviceUsers, attrs.unboundUsers, attrs.policy], on: c)
        if found == nil {
            // An unknown device has no users, if the devices can be seen at
            // all: an ACL hiding them is no answer (a sync would take it as
            // "nobody is associated").
            guard
                let some = try c.search(
                    base: config.devicesBase, scope: LDAP_SCOPE_SUBTREE, filter: "(objectClass=\(attrs.deviceClass))", attributes: ["1.1"],
                    sizeLimit: 1),
                !some.isEmpty
            else {
                throw LDAPConnection.Failure("the bind DN sees no device under devices_base \(config.devicesBase)")
            }
        }
        return found
    }

    /// The device's entry if it also matches `condition` (filter
    /// components, "" for none), with `attributes`; nil when no entry
    /// matches. More than one device entry with the ID is an error.
    func findDevice(_ device: String, where condition: String = "", attributes: [String], on c: LDAPConnection) throws -> LDAPEntry? {
        let filter = "(&(objectClass=\(attrs.deviceClass))(\(attrs.deviceID)=\(LDAPFilter.escape(device)))\(condition))"
        guard
            let devices = try c.search(
                base: config.devicesBase, scope: LDAP_SCOPE_SUBTREE, filter: filter, attributes: attributes, sizeLimit: 2)
        else {
            throw LDAPConnection.Failure("devices_base \(config.devicesBase) does not exist or is hidden from the bind DN")
        }
        guard devices.count <= 1 else { throw LDAPConnection.Failure("more than one device entry has \(attrs.deviceID) \(device)") }
        return devices.first
    }

    /// The usernames of the user entries under users_base that `dns` name,
    /// by DN: a DN that names no entry there (one removed since, or one
    /// outside users_base) has none. One search for up to
    /// `LDAPFilter.valuesPerSearch` DNs (the entry DN attribute, matched
    /// by the server as a DN); which entry answers which DN is read from
    /// their normalized forms, and a DN that leaves in doubt is asked on
    /// its own. When a DN names no user, the users must be visible (an ACL
    /// that hides them is no answer).
    func usernames(of dns: [String], on c: LDAPConnection) throws -> [String: String] {
        var names: [String: String] = [:]
        var unanswered: [String] = []
        func users(_ filter: String) throws -> [LDAPEntry] {
            guard
                let found = try c.search(
                    base: config.usersBase, scope: LDAP_SCOPE_SUBTREE, filter: filter, attributes: [attrs.username], sizeLimit: 0)
            else {
                throw LDAPConnection.Failure("users_base \(config.usersBase) does not exist or is hidden from the bind DN")
            }
            return found
        }
        for chunk in LDAPFilter.chunked(dns) {
            guard let filter = LDAPFilter.anyOf(attrs.entryDN, chunk) else { continue }
            let found = try users(filter)
            for (dn, i) in zip(chunk, LDAPDN.match(chunk, to: found.map(\.dn))) {
                if let i {
                    if let name = found[i].first(attrs.username) { names[dn] = name }
                } else {
                    unanswered.append(dn)
                }
            }
        }
        // Each DN the searches left unanswered, by a base search of the DN
        // itself (which needs no access to the entry DN attribute): a DN
        // that names no entry, or one outside users_base, has no user; an
        // entry there whose username cannot be read is an error, never a
        // user fewer (a sync would lock the account).
        var missing = false
        let base = LDAPDN.normalized(config.usersBase)
        for dn in unanswered {
            guard let found = try c.search(base: dn, scope: LDAP_SCOPE_BASE, filter: "(objectClass=*)", attributes: [attrs.username], sizeLimit: 1),
                let e = found.first
            else {
                missing = true
                continue
            }
            guard let b = base, let d = LDAPDN.normalized(e.dn), d.hasSuffix("," + b) else { continue }
            guard let name = e.first(attrs.username) else {
                throw LDAPConnection.Failure("the user entry \(SafeText.escape(e.dn)) has no \(attrs.username) the bind DN can read")
            }
            names[dn] = name
        }
        if missing { try checkUsersVisible(on: c) }
        return names
    }

    func users(of device: String, on c: LDAPConnection) throws -> [String] {
        guard let entry = try deviceEntry(device, on: c) else { return [] }
        return try users(of: device, entry: entry, selfService: policy(on: c, deviceEntry: entry).selfService, on: c)
    }

    /// As the file backend: the administrators' list (in its order), and
    /// with self-service the users of reported bindings (the last report
    /// per user wins, an unbind ends it); without those the administrators
    /// removed. The DNs of both lists are resolved together.
    func users(of device: String, entry: LDAPEntry, selfService: Bool, on c: LDAPConnection) throws -> [String] {
        let listedDNs = entry[attrs.deviceUsers]
        let unboundDNs = entry[attrs.unboundUsers]
        let resolved = try usernames(of: listedDNs + unboundDNs, on: c)
        var names: [String] = []
        for dn in listedDNs { if let name = resolved[dn], !names.contains(name) { names.append(name) } }
        let listed = names
        if selfService {
            var reported: [String: Bool] = [:]
            for r in try reports(under: entry.dn, scope: LDAP_SCOPE_ONELEVEL, on: c) where r.deviceID == device {
                reported[r.username] = r.action != "unbind"
            }
            for (name, bound) in reported.sorted(by: { $0.key < $1.key }) {
                if bound && !names.contains(name) { names.append(name) }
                if !bound && !listed.contains(name) { names.removeAll { $0 == name } }
            }
        }
        let removed = Set(unboundDNs.compactMap { resolved[$0] })
        return names.filter { !removed.contains($0) }
    }

    /// The binding reports kept under `base`, in the order they were bound.
    func reports(under base: String, scope: Int32, on c: LDAPConnection) throws -> [BindingReport] {
        guard
            let entries = try c.search(
                base: base, scope: scope, filter: "(objectClass=\(attrs.bindingClass))", attributes: [attrs.bindingReport], sizeLimit: 0)
        else { return [] }
        let decoder = JSONDecoder()
        let found = entries.compactMap { e in e.first(attrs.bindingReport).flatMap { try? decoder.decode(BindingReport.self, from: Data($0.utf8)) } }
        return found.sorted(by: BindingReport.inOrder)
    }

    public func access(user: String, device: String) throws -> DeviceAccess? {
        try withConnection { c in try self.access(user: user, device: device, on: c) }
    }

    /// As the file backend's access, without listing the device's users:
    /// the device entry is searched for with the user's DN in the filter,
    /// so the server matches it against each administrators' list
    /// (distinguishedNameMatch). Only positive tests: an attribute the bind
    /// DN may not search, or one the server does not know, makes a filter
    /// Undefined, which then reads as "not in that list" (as device_users
    /// reads an unreadable list), never as its opposite. The binding
    /// reports are read only with self-service, for a user neither list
    /// holds.
    func access(user: String, device: String, on c: LDAPConnection) throws -> DeviceAccess? {
        guard let (u, dn) = try lookupEntry(user, on: c) else { return nil }
        let v = LDAPFilter.escape(dn)
        var entry = try findDevice(device, where: "(\(attrs.deviceUsers)=\(v))", attributes: [attrs.policy], on: c)
        let isListed = entry != nil
        if entry == nil { entry = try deviceEntry(device, attributes: [attrs.policy], on: c) }
        let isUnbound = try entry != nil && findDevice(device, where: "(\(attrs.unboundUsers)=\(v))", attributes: ["1.1"], on: c) != nil
        guard let entry else {
            let policy = try policy(on: c)
            return DeviceAccess(associated: false, unbound: false, disabled: u.disabled, selfService: policy.selfService)
        }
        let policy = try policy(on: c, deviceEntry: entry)
        var associated = isListed && !isUnbound
        if !isListed && !isUnbound && policy.selfService {
            let last = try reports(under: entry.dn, scope: LDAP_SCOPE_ONELEVEL, on: c).last { $0.deviceID == device && $0.username == u.username }
            associated = last.map { $0.action != "unbind" } ?? false
        }
        return DeviceAccess(associated: associated, unbound: isUnbound, disabled: u.disabled, selfService: policy.selfService)
    }

    /// The user's entry is found as for lookup; then, on a fresh connection
    /// bound as the user with `current`, a Password Modify (RFC 3062) from
    /// `current` to `new`: the directory checks `current`, hashes `new` and
    /// applies its own password policy. The passwords are never logged.
    public func changePassword(user: String, current: String, new: String) throws -> PasswordChange {
        guard let (u, dn) = try withConnection({ c in try self.lookupEntry(user, on: c) }) else { return .refused("no such user") }
        guard !u.passwordLocked else { return .refused("the directory does not allow \(u.username) to change the password") }
        // An empty password would be an unauthenticated bind, which succeeds.
        guard !current.isEmpty, !current.contains("\0") else { return .refused("the current password is wrong") }
        guard !new.isEmpty, !new.contains("\0") else { return .refused("the new password is empty") }
        var problems: [String] = []
        for uri in config.uris {
            var err = [CChar](repeating: 0, count: 512)
            var stage: Int32 = 0
            var connectStage: Int32 = 0
            let rc = fedlogin_ldap_passwd(
                uri, timeoutSeconds, cMode(uri), caFile, config.tlsCert, config.tlsKey, dn, current, new, &stage, &connectStage, &err,
                err.count)
            if rc == LDAP_SUCCESS { return .accepted }
            if stage == 0 && rc == LDAP_INVALID_CREDENTIALS { return .refused("the current password is wrong") }
            if stage == 0 {
                problems.append("\(uri): \(describeFailure(uri, rc: rc, stage: connectStage, reason: cText(err)))")
                continue
            }
            if stage == 1 {
                if rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR || rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY {
                    throw unavailable("\(uri): \(cText(err))")
                }
                return .refused("the directory refused the new password: \(cText(err))")
            }
            problems.append("\(uri): \(cText(err))")
        }
        throw unavailable(problems.joined(separator: "; "))
    }

    /// A binding report is an entry under its device's entry: a
    /// fedloginBinding whose cn is the report's key and whose
    /// fedloginBindingReport is the report as JSON (docs/ldap.md). An add
    /// that finds the key there is a duplicate. A device with no entry is an
    /// error: the directory's administrators register devices.
    public func record(_ report: BindingReport) throws -> Bool {
        try withConnection { c in
            guard let device = try self.deviceEntry(report.deviceID, attributes: ["1.1"], on: c) else {
                throw DirectoryError("no device entry with \(self.attrs.deviceID)=\(report.deviceID) under \(self.config.devicesBase)")
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let json = String(decoding: try encoder.encode(report), as: UTF8.self)
            let dn = "cn=\(LDAPDN.escapeValue(report.key)),\(device.dn)"
            return try c.add(dn: dn, [("objectClass", self.attrs.bindingClass), ("cn", report.key), (self.attrs.bindingReport, json)])
        }
    }

    public func allReports() throws -> [BindingReport] {
        try withConnection { c in
            guard
                try c.search(base: self.config.devicesBase, scope: LDAP_SCOPE_BASE, filter: "(objectClass=*)", attributes: ["1.1"], sizeLimit: 1)
                    != nil
            else {
                throw LDAPConnection.Failure("devices_base \(self.config.devicesBase) does not exist or is hidden from the bind DN")
            }
            return try self.reports(under: self.config.devicesBase, scope: LDAP_SCOPE_SUBTREE, on: c)
        }
    }
}

/// One bound libldap handle, used by one thread at a time.
final class LDAPConnection {
    let ld: OpaquePointer
    let uri: String
    let timeout: Int32

    /// A failed operation; `kind` says whether the connection is lost
    /// (libldap's result code) or the directory answered.
    struct Failure: Error, CustomStringConvertible {
        var description: String
        var kind: LDAPResultKind
        init(_ d: String, rc: Int32? = nil) {
            description = d
            kind = rc.map { LDAPResultKind.of($0) } ?? .answer
        }
    }

    init(ld: OpaquePointer, uri: String, timeout: Int32) {
        self.ld = ld
        self.uri = uri
        self.timeout = timeout
    }

    func close() { fedlogin_ldap_close(ld) }

    /// Adds an entry; true when it was there already.
    func add(dn: String, _ attributes: [(String, String)]) throws -> Bool {
        let types: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0.0) }
        let values: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0.1) }
        defer { for p in types + values { free(p) } }
        var err = [CChar](repeating: 0, count: 512)
        var t = types
        var v = values
        let rc = t.withUnsafeMutableBufferPointer { tp in
            v.withUnsafeMutableBufferPointer { vp in
                fedlogin_ldap_add(ld, dn, Int32(attributes.count), tp.baseAddress, vp.baseAddress, &err, err.count)
            }
        }
        if rc == LDAP_ALREADY_EXISTS { return true }
        guard rc == LDAP_SUCCESS else { throw Failure("\(uri): add of \(dn): \(cText(err))", rc: rc) }
        return false
    }

    /// The entries found; nil when `base` does not exist (or is hidden: slapd
    /// answers noSuchObject for what an ACL hides). Any other failure throws.
    func search(base: String, scope: Int32, filter: String, attributes: [String], sizeLimit: Int32) throws -> [LDAPEntry]? {
        var cAttrs: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0) } + [nil]
        defer { for a in cAttrs { free(a) } }
        var err = [CChar](repeating: 0, count: 512)
        guard sizeLimit == 0 else {
            var res: OpaquePointer?
            let rc = cAttrs.withUnsafeMutableBufferPointer { a in
                fedlogin_ldap_search(ld, base, scope, filter, a.baseAddress, sizeLimit, timeout, &res, &err, err.count)
            }
            defer { if let res { ldap_msgfree(res) } }
            if rc == LDAP_NO_SUCH_OBJECT { return nil }
            guard rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED, let res else {
                throw Failure("\(uri): search of \(base): \(cText(err))", rc: rc)
            }
            return entries(of: res)
        }
        // Every entry: page by page (RFC 2696), so the server's size limit
        // for the bind DN never cuts the answer short.
        var cookie = berval(bv_len: 0, bv_val: nil)
        defer { if let v = cookie.bv_val { ber_memfree(v) } }
        var all: [LDAPEntry] = []
        repeat {
            var res: OpaquePointer?
            let rc = cAttrs.withUnsafeMutableBufferPointer { a in
                fedlogin_ldap_search_page(ld, base, scope, filter, a.baseAddress, Self.pageSize, timeout, &cookie, &res, &err, err.count)
            }
            defer { if let res { ldap_msgfree(res) } }
            if rc == LDAP_NO_SUCH_OBJECT { return nil }
            guard rc == LDAP_SUCCESS, let res else {
                throw Failure("\(uri): search of \(base): \(cText(err))", rc: rc)
            }
            all += entries(of: res)
        } while cookie.bv_len > 0
        return all
    }

    /// Entries per page of a search for every entry.
    static let pageSize: Int32 = 250

    /// The entries of a search result, every value read as text.
    func entries(of res: OpaquePointer) -> [LDAPEntry] {
        var entries: [LDAPEntry] = []
        var e = ldap_first_entry(ld, res)
        while let entry = e {
            var dn = ""
            if let d = ldap_get_dn(ld, entry) {
                dn = String(cString: d)
                ldap_memfree(d)
            }
            var values: [String: [String]] = [:]
            var ber: OpaquePointer?
            var a = ldap_first_attribute(ld, entry, &ber)
            while let attr = a {
                let name = String(cString: attr)
                if let vals = ldap_get_values_len(ld, entry, attr) {
                    var i = 0
                    while let bv = vals[i] {
                        let bytes = UnsafeRawBufferPointer(start: bv.pointee.bv_val, count: Int(bv.pointee.bv_len))
                        // A value that is not UTF-8 text is not one this backend reads.
                        if !bytes.contains(0), let s = String(validating: bytes, as: UTF8.self) { values[name, default: []].append(s) }
                        i += 1
                    }
                    ldap_value_free_len(vals)
                }
                ldap_memfree(attr)
                a = ldap_next_attribute(ld, entry, ber)
            }
            if let ber { ber_free(ber, 0) }
            entries.append(LDAPEntry(dn: dn, attributes: values))
            e = ldap_next_entry(ld, entry)
        }
        return entries
    }
}

/// Whether a certificate's names (fedlogin_ldap_cert_names: "subject
/// ..., DNS:a, IP:b") include `host`, as RFC 6125 matches them: an IP
/// address only an IP name, a host name a DNS name exactly or a wildcard
/// for its first label. The subject's CN is not read when there are DNS
/// names (as libldap).
enum TLSNames {
    static func matches(host: String, names: String) -> Bool {
        let h = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        let items = names.components(separatedBy: ", ")
        let isIP = h.contains(":") || h.split(separator: ".").allSatisfy { UInt8($0) != nil } && h.split(separator: ".").count == 4
        if isIP { return items.contains { $0 == "IP:\(h)" } }
        let dns = items.filter { $0.hasPrefix("DNS:") }.map { String($0.dropFirst(4)).lowercased() }
        for d in dns {
            if d == h { return true }
            if d.hasPrefix("*."), let dot = h.firstIndex(of: "."), h[dot...] == d.dropFirst(1) { return true }
        }
        return false
    }
}

/// fedlogin-directoryd's persistent LDAP connections: `LDAPPoolBook`'s
/// bookkeeping under a lock, on a monotonic clock; connections are closed
/// outside the lock.
final class LDAPConnections: @unchecked Sendable {
    typealias Entry = LDAPPoolBook<LDAPConnection>.Entry
    private var book: LDAPPoolBook<LDAPConnection>
    private let lock = NSLock()

    init(capacity: Int) {
        book = LDAPPoolBook(capacity: capacity)
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    func opened(_ c: LDAPConnection, uriIndex: Int) -> Entry {
        Entry(handle: c, uriIndex: uriIndex, opened: Self.now())
    }

    func checkout() -> Entry? {
        let now = Self.now()
        let (reuse, close) = lock.withLock { book.checkout(now: now) }
        for c in close { c.close() }
        return reuse
    }

    func checkin(_ e: Entry) {
        let now = Self.now()
        for c in lock.withLock({ book.checkin(e, now: now) }) { c.close() }
    }

    func dropAll() {
        for c in lock.withLock({ book.dropAll() }) { c.close() }
    }
}

/// The text of a NUL-terminated buffer a C function filled.
func cText(_ buf: [CChar]) -> String {
    String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
