import CLDAP
import FedloginCore
import Foundation

/// One step of `fedlogin-directoryd check`: what was checked and, when it
/// failed, what is wrong in plain words.
public struct CheckStep: Sendable {
    public var name: String
    public var problem: String?
    public var detail: String?
    public var ok: Bool { problem == nil }

    public init(_ name: String, problem: String? = nil, detail: String? = nil) {
        self.name = name
        self.problem = problem
        self.detail = detail
    }

    /// One line: "ok   <name>: <detail>" or "FAIL <name>: <problem>".
    public var line: String {
        if let problem { return "FAIL \(name): \(problem)" }
        return "ok   \(name)" + (detail.map { ": \($0)" } ?? "")
    }
}

extension LDAPDirectory {
    /// Checks the configuration against the directory, step by step: each
    /// URI connects and binds, the bases and the policy entry can be seen,
    /// the users are not hidden from the bind DN, and the device's entry
    /// and the user (when given) are found. Stops at the first step the
    /// others depend on.
    public func check(user: String?, device: String?) -> [CheckStep] {
        var steps: [CheckStep] = []
        var bound: LDAPConnection?
        let who = config.bindDN ?? (config.tlsCert != nil ? "SASL EXTERNAL (ldapi:// peer or TLS client certificate)" : "SASL EXTERNAL")
        for uri in config.uris {
            let (connection, rc, reason) = connect(uri)
            let mode = config.tlsMode(for: uri)
            let name = "connect and bind to \(uri) as \(who)"
            if let connection {
                var whoami = [CChar](repeating: 0, count: 512)
                let identity = fedlogin_ldap_whoami(connection.ld, &whoami, whoami.count) == LDAP_SUCCESS ? cText(whoami) : ""
                let tls = mode == .none ? "no TLS" : "TLS (\(mode.rawValue)), certificate verified"
                steps.append(CheckStep(name, detail: "bound" + (identity.isEmpty ? "" : " as \(identity)") + ", \(tls)"))
                if bound == nil { bound = connection } else { connection.close() }
                continue
            }
            let problem: String
            switch rc {
            case _ where reason.hasPrefix("TLS"):
                problem = reason
            case LDAP_SERVER_DOWN, LDAP_CONNECT_ERROR, LDAP_TIMEOUT, LDAP_UNAVAILABLE:
                problem = "unreachable (\(reason))"
            case LDAP_INVALID_CREDENTIALS:
                problem = "bind refused: wrong bind_dn or bind password (\(reason))"
            case LDAP_INAPPROPRIATE_AUTH, LDAP_STRONG_AUTH_REQUIRED, LDAP_CONFIDENTIALITY_REQUIRED, LDAP_INSUFFICIENT_ACCESS:
                problem = "bind refused (\(reason))"
            default:
                problem = reason
            }
            steps.append(CheckStep(name, problem: problem))
        }
        guard let c = bound else { return steps }
        defer { c.close() }
        func step(_ name: String, _ body: () throws -> String?) {
            do {
                steps.append(CheckStep(name, detail: try body()))
            } catch let e as CheckFailure {
                steps.append(CheckStep(name, problem: e.problem))
            } catch {
                steps.append(CheckStep(name, problem: "\(error)"))
            }
        }
        func exists(_ dn: String) throws -> Bool {
            guard let e = try c.search(base: dn, scope: LDAP_SCOPE_BASE, filter: "(objectClass=*)", attributes: ["1.1"], sizeLimit: 1) else {
                return false
            }
            return !e.isEmpty
        }
        step("users_base \(config.usersBase)") {
            guard try exists(config.usersBase) else { throw CheckFailure("the entry is missing or hidden from the bind DN") }
            guard
                let some = try c.search(
                    base: config.usersBase, scope: LDAP_SCOPE_SUBTREE, filter: "(\(attrs.username)=*)", attributes: ["1.1"], sizeLimit: 1),
                !some.isEmpty
            else {
                throw CheckFailure("the bind DN sees no user under it: the users are hidden from the bind DN (ACL) or there are none")
            }
            return "users visible"
        }
        step("groups_base \(config.groupsBase)") {
            guard try exists(config.groupsBase) else { throw CheckFailure("the entry is missing or hidden from the bind DN") }
            return nil
        }
        step("devices_base \(config.devicesBase)") {
            guard try exists(config.devicesBase) else { throw CheckFailure("the entry is missing or hidden from the bind DN") }
            return nil
        }
        step("policy_dn \(config.policyDN)") {
            do {
                let p = try policy(on: c)
                return "self_service \(p.selfService)"
            } catch let e as LDAPConnection.Failure { throw CheckFailure(e.description) }
        }
        if let device {
            step("device \(device)") {
                do {
                    guard let e = try deviceEntry(device, on: c) else { throw CheckFailure("no device entry with \(attrs.deviceID)=\(device)") }
                    return e.dn
                } catch let e as LDAPConnection.Failure { throw CheckFailure(e.description) }
            }
        }
        if let user {
            step("user \(user)") {
                do {
                    guard let (u, dn) = try lookupEntry(user, on: c) else { throw CheckFailure("no such user") }
                    let hash =
                        u.passwordHash != nil
                        ? "its {CRYPT} hash readable"
                        : attrs.passwordHashes
                            ? "no {CRYPT} hash readable (no password sync)"
                            : "no password hash (schema \(config.schema.rawValue): the directory hands out none; password sync is not available and the user gets a passcode)"
                    return "\(dn), uid \(u.uid.map(String.init) ?? "none"), \(hash)"
                } catch let e as LDAPConnection.Failure { throw CheckFailure(e.description) }
            }
        }
        return steps
    }
}

struct CheckFailure: Error {
    var problem: String
    init(_ p: String) { problem = p }
}
