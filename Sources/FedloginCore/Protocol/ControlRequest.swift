/// A CONTROL request: what `fedloginctl` asks of fedlogind (docs/protocol.md,
/// "CONTROL requests"). On the wire a JSON object with a string member `op`
/// and the op's own members.
public enum ControlRequest: Sendable, Equatable {
    case status
    case users
    case outbox
    case deliver
    case sync
    /// `passwordSync`: true for the directory's password, false for a local
    /// passcode, nil for the directory's policy.
    case bind(user: String, passwordSync: Bool?, adopt: Bool)
    case unbind(user: String)
    case unlock(user: String)

    public var op: ControlOp {
        switch self {
        case .status: .status
        case .users: .users
        case .outbox: .outbox
        case .deliver: .deliver
        case .sync: .sync
        case .bind: .bind
        case .unbind: .unbind
        case .unlock: .unlock
        }
    }
}

/// The `op` member of a CONTROL request.
public enum ControlOp: String, Codable, Sendable, CaseIterable {
    case status, users, outbox, deliver, sync, bind, unbind, unlock

    /// Whether only uid 0 may send it.
    public var rootOnly: Bool { self != .status }
}

/// Why a CONTROL request's JSON is not a request; `description` is the
/// reply's `error`.
public enum ControlRequestError: Error, Equatable, CustomStringConvertible {
    /// Not a JSON object, or no string member `op`.
    case notARequest
    case unknownOp(String)
    /// `bind`, `unbind` and `unlock` need a non-empty `user`.
    case needsUser(ControlOp)

    public var description: String {
        switch self {
        case .notARequest: "the request is not a JSON object with \"op\""
        case .unknownOp(let op): "unknown op \"\(op)\""
        case .needsUser(let op): "\(op.rawValue) needs \"user\""
        }
    }
}

/// A request's `op` alone, read before the rest so that a peer is refused
/// (or the op is found unknown) before its members are looked at.
public struct ControlRequestHead: Decodable, Sendable, Equatable {
    public var op: ControlOp

    public init(op: ControlOp) { self.op = op }

    public init(from decoder: any Decoder) throws {
        let c: KeyedDecodingContainer<ControlKey>
        let name: String
        do {
            c = try decoder.container(keyedBy: ControlKey.self)
            name = try c.decode(String.self, forKey: .op)
        } catch {
            throw ControlRequestError.notARequest
        }
        guard let op = ControlOp(rawValue: name) else { throw ControlRequestError.unknownOp(name) }
        self.op = op
    }
}

/// The members of every CONTROL request.
enum ControlKey: String, CodingKey {
    case op, user, adopt
    case passwordSync = "password_sync"
}

extension ControlRequest: Codable {
    public init(from decoder: any Decoder) throws {
        let op = try ControlRequestHead(from: decoder).op
        let c = try decoder.container(keyedBy: ControlKey.self)
        func user() throws -> String {
            guard let u = try? c.decodeIfPresent(String.self, forKey: .user), !u.isEmpty else {
                throw ControlRequestError.needsUser(op)
            }
            return u
        }
        switch op {
        case .status: self = .status
        case .users: self = .users
        case .outbox: self = .outbox
        case .deliver: self = .deliver
        case .sync: self = .sync
        case .bind:
            // Lenient as before: a password_sync other than "yes" means a
            // passcode, a non-string one the directory's policy; adopt is
            // false unless it is the boolean true.
            let sync = (try? c.decodeIfPresent(String.self, forKey: .passwordSync))?.map { $0 == PasswordSyncChoice.yes.rawValue }
            let adopt = (try? c.decodeIfPresent(Bool.self, forKey: .adopt)) ?? false
            self = .bind(user: try user(), passwordSync: sync, adopt: adopt)
        case .unbind: self = .unbind(user: try user())
        case .unlock: self = .unlock(user: try user())
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: ControlKey.self)
        try c.encode(op, forKey: .op)
        switch self {
        case .status, .users, .outbox, .deliver, .sync: break
        case .bind(let user, let passwordSync, let adopt):
            try c.encode(user, forKey: .user)
            try c.encode(adopt, forKey: .adopt)
            if let passwordSync {
                try c.encode(passwordSync ? PasswordSyncChoice.yes : PasswordSyncChoice.no, forKey: .passwordSync)
            }
        case .unbind(let user), .unlock(let user):
            try c.encode(user, forKey: .user)
        }
    }
}

/// `password_sync` of a `bind` request.
public enum PasswordSyncChoice: String, Codable, Sendable, CaseIterable {
    case yes, no
}
