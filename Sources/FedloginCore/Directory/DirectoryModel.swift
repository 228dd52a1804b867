/// Types of the directory protocol (docs/directory-protocol.md), shared by
/// fedlogind and fedlogin-directoryd.

/// Who owns a user's password.
public enum PasswordAuthority: String, Codable, Sendable, Equatable {
    /// The directory holds the password and may sync its hash to devices.
    case directory
    /// The password lives at an upstream IdP; nobody changes it here.
    case external
    /// No directory password: the device keeps a local passcode.
    case local
}

public struct DirectoryUser: Codable, Sendable, Equatable {
    public var username: String
    public var email: String
    public var displayName: String?
    public var groups: [String]
    public var disabled: Bool
    public var passwordAuthority: PasswordAuthority
    /// A crypt(3) hash; given only to uid-0 peers.
    public var passwordHash: String?
    /// A uid the directory assigned, if any.
    public var uid: UInt32?
    /// A per-user override of the device policy's `password_sync`.
    public var passwordSync: Bool?
    /// The lockout policy does not apply to this user on devices.
    public var lockoutBypass: Bool = false
    /// The directory refuses password changes for this user.
    public var passwordLocked: Bool = false

    public init(
        username: String, email: String, displayName: String? = nil, groups: [String] = [], disabled: Bool = false,
        passwordAuthority: PasswordAuthority = .local, passwordHash: String? = nil, uid: UInt32? = nil,
        passwordSync: Bool? = nil
    ) {
        self.username = username
        self.email = email
        self.displayName = displayName
        self.groups = groups
        self.disabled = disabled
        self.passwordAuthority = passwordAuthority
        self.passwordHash = passwordHash
        self.uid = uid
        self.passwordSync = passwordSync
    }

    enum CodingKeys: String, CodingKey {
        case username, email, groups, disabled, uid
        case displayName = "display_name"
        case passwordAuthority = "password_authority"
        case passwordHash = "password_hash"
        case passwordSync = "password_sync"
        case lockoutBypass = "lockout_bypass"
        case passwordLocked = "password_locked"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lockoutBypass = try c.decodeIfPresent(Bool.self, forKey: .lockoutBypass) ?? false
        passwordLocked = try c.decodeIfPresent(Bool.self, forKey: .passwordLocked) ?? false
        username = try c.decode(String.self, forKey: .username)
        email = try c.decode(String.self, forKey: .email)
        displayName = try c.decodeIfPresent(String.self, forKey: .displayName)
        groups = try c.decodeIfPresent([String].self, forKey: .groups) ?? []
        disabled = try c.decodeIfPresent(Bool.self, forKey: .disabled) ?? false
        passwordAuthority = try c.decodeIfPresent(PasswordAuthority.self, forKey: .passwordAuthority) ?? .local
        passwordHash = try c.decodeIfPresent(String.self, forKey: .passwordHash)
        uid = try c.decodeIfPresent(UInt32.self, forKey: .uid)
        passwordSync = try c.decodeIfPresent(Bool.self, forKey: .passwordSync)
    }
}

public struct RoutingRule: Codable, Sendable, Equatable {
    public var group: String
    public var idp: String

    public init(group: String, idp: String) {
        self.group = group
        self.idp = idp
    }
}

public struct DevicePolicy: Codable, Sendable, Equatable {
    /// Whether the directory's password hash becomes the device password.
    public var passwordSync: Bool
    public var defaultIdP: String?
    /// First matching group wins.
    public var routing: [RoutingRule]
    public var passcode: PasscodePolicy
    public var lockout: LockoutPolicy
    /// Members of these directory groups are administrators on devices (the local sudo group).
    public var adminGroups: [String]

    public init(
        passwordSync: Bool = false, defaultIdP: String? = nil, routing: [RoutingRule] = [], passcode: PasscodePolicy = .init(),
        lockout: LockoutPolicy = .init(), adminGroups: [String] = []
    ) {
        self.passwordSync = passwordSync
        self.defaultIdP = defaultIdP
        self.routing = routing
        self.passcode = passcode
        self.lockout = lockout
        self.adminGroups = adminGroups
    }

    enum CodingKeys: String, CodingKey {
        case routing, passcode, lockout
        case passwordSync = "password_sync"
        case defaultIdP = "default_idp"
        case adminGroups = "admin_groups"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        passwordSync = try c.decodeIfPresent(Bool.self, forKey: .passwordSync) ?? false
        defaultIdP = try c.decodeIfPresent(String.self, forKey: .defaultIdP)
        routing = try c.decodeIfPresent([RoutingRule].self, forKey: .routing) ?? []
        passcode = try c.decodeIfPresent(PasscodePolicy.self, forKey: .passcode) ?? .init()
        lockout = try c.decodeIfPresent(LockoutPolicy.self, forKey: .lockout) ?? .init()
        adminGroups = try c.decodeIfPresent([String].self, forKey: .adminGroups) ?? []
    }

    /// The IdP for a user: the first routing rule whose group the user is in,
    /// else the default. Returns the IdP name and the reason, for the log.
    public func idp(for user: DirectoryUser) -> (name: String, reason: String)? {
        for rule in routing where user.groups.contains(rule.group) {
            return (rule.idp, "routing policy: group \(rule.group)")
        }
        return defaultIdP.map { ($0, "default IdP") }
    }

    /// Password sync for this user: the per-user override wins.
    public func passwordSync(for user: DirectoryUser) -> Bool {
        user.passwordSync ?? passwordSync
    }
}

/// Failed local logins before a device account is locked, and for how long.
public struct LockoutPolicy: Codable, Sendable, Equatable {
    /// 0: no lockout.
    public var maxAttempts: Int
    /// Seconds the account stays locked.
    public var duration: Double

    public init(maxAttempts: Int = 0, duration: Double = 900) {
        self.maxAttempts = maxAttempts
        self.duration = duration
    }

    enum CodingKeys: String, CodingKey {
        case duration
        case maxAttempts = "max_attempts"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? 0
        duration = try c.decodeIfPresent(Double.self, forKey: .duration) ?? 900
    }
}

/// The binding a device reports once a user's account exists on it.
public struct BindingReport: Codable, Sendable, Equatable {
    /// Unique per binding; a repeated delivery with the same key has no second effect.
    public var key: String
    public var deviceID: String
    public var username: String
    public var localUsername: String
    public var uid: UInt32
    public var email: String
    public var issuer: String
    public var subject: String
    public var passwordMode: String
    public var boundAt: String
    /// "bind" (a user's account exists on the device) or "unbind" (no longer managed there).
    public var action: String = "bind"

    public init(
        key: String, deviceID: String, username: String, localUsername: String, uid: UInt32, email: String,
        issuer: String, subject: String, passwordMode: String, boundAt: String, action: String = "bind"
    ) {
        self.action = action
        self.key = key
        self.deviceID = deviceID
        self.username = username
        self.localUsername = localUsername
        self.uid = uid
        self.email = email
        self.issuer = issuer
        self.subject = subject
        self.passwordMode = passwordMode
        self.boundAt = boundAt
    }

    enum CodingKeys: String, CodingKey {
        case key, username, uid, email, issuer, subject, action
        case deviceID = "device_id"
        case localUsername = "local_username"
        case passwordMode = "password_mode"
        case boundAt = "bound_at"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decode(String.self, forKey: .key)
        deviceID = try c.decode(String.self, forKey: .deviceID)
        username = try c.decode(String.self, forKey: .username)
        localUsername = try c.decode(String.self, forKey: .localUsername)
        uid = try c.decode(UInt32.self, forKey: .uid)
        email = try c.decode(String.self, forKey: .email)
        issuer = try c.decode(String.self, forKey: .issuer)
        subject = try c.decode(String.self, forKey: .subject)
        passwordMode = try c.decode(String.self, forKey: .passwordMode)
        boundAt = try c.decode(String.self, forKey: .boundAt)
        action = try c.decodeIfPresent(String.self, forKey: .action) ?? "bind"
    }
}

/// One request of the directory protocol.
public struct DirectoryRequest: Codable, Sendable, Equatable {
    public enum Op: String, Codable, Sendable {
        case lookup
        case policy
        case reportBinding = "report_binding"
        case listReports = "list_reports"
        case deviceUsers = "device_users"
        case setPassword = "set_password"
    }

    public var op: Op
    /// lookup: a username or a company email.
    public var user: String?
    public var deviceID: String?
    public var binding: BindingReport?
    /// set_password: the new password's crypt(3) hash (never the password itself).
    public var passwordHash: String?

    public init(op: Op, user: String? = nil, deviceID: String? = nil, binding: BindingReport? = nil, passwordHash: String? = nil) {
        self.passwordHash = passwordHash
        self.op = op
        self.user = user
        self.deviceID = deviceID
        self.binding = binding
    }

    enum CodingKeys: String, CodingKey {
        case op, user, binding
        case deviceID = "device_id"
        case passwordHash = "password_hash"
    }
}

public struct DirectoryResponse: Codable, Sendable, Equatable {
    public var ok: Bool
    public var error: String?
    public var user: DirectoryUser?
    public var policy: DevicePolicy?
    /// report_binding: true when this key had been received before.
    public var duplicate: Bool?
    public var reports: [BindingReport]?
    public var users: [String]?

    public init(
        ok: Bool, error: String? = nil, user: DirectoryUser? = nil, policy: DevicePolicy? = nil, duplicate: Bool? = nil,
        reports: [BindingReport]? = nil, users: [String]? = nil
    ) {
        self.ok = ok
        self.error = error
        self.user = user
        self.policy = policy
        self.duplicate = duplicate
        self.reports = reports
        self.users = users
    }
}
