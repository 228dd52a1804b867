/// Types of the directory protocol (docs/directory-protocol.md), shared by
/// fedlogind and fedlogin-directoryd.

import Foundation

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
    /// Any directory user may make a first login on a device and becomes
    /// associated with it by the binding (true, the default); false: only
    /// users an administrator associated with the device.
    public var selfService: Bool
    /// Days a device may go without an answer of the directory about a user
    /// before the user's local credential alone no longer logs in; 0: no limit.
    public var offlineMax: Int
    /// Days between two sign-ins at the IdP a user's logins need; 0: never again.
    public var reauthInterval: Int
    /// Per directory group, a `reauth_interval` of its own; the strictest
    /// (shortest) of the policy's and those of the user's groups applies.
    public var reauthGroups: [ReauthRule]
    /// Days after a sign-in falls due during which logins still go on with a warning.
    public var reauthGrace: Int

    public init(
        passwordSync: Bool = false, defaultIdP: String? = nil, routing: [RoutingRule] = [], passcode: PasscodePolicy = .init(),
        lockout: LockoutPolicy = .init(), adminGroups: [String] = [], selfService: Bool = true, offlineMax: Int = 0,
        reauthInterval: Int = 0, reauthGroups: [ReauthRule] = [], reauthGrace: Int = 0
    ) {
        self.reauthInterval = max(0, reauthInterval)
        self.reauthGroups = reauthGroups
        self.reauthGrace = max(0, reauthGrace)
        self.selfService = selfService
        self.offlineMax = max(0, offlineMax)
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
        case selfService = "self_service"
        case offlineMax = "offline_max"
        case reauthInterval = "reauth_interval"
        case reauthGroups = "reauth_groups"
        case reauthGrace = "reauth_grace"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        selfService = try c.decodeIfPresent(Bool.self, forKey: .selfService) ?? true
        offlineMax = max(0, try c.decodeIfPresent(Int.self, forKey: .offlineMax) ?? 0)
        reauthInterval = max(0, try c.decodeIfPresent(Int.self, forKey: .reauthInterval) ?? 0)
        reauthGroups = try c.decodeIfPresent([ReauthRule].self, forKey: .reauthGroups) ?? []
        reauthGrace = max(0, try c.decodeIfPresent(Int.self, forKey: .reauthGrace) ?? 0)
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

    /// The user's re-authentication interval in days (0: none): the
    /// shortest positive one of the policy's and of the user's groups' rules.
    public func reauthInterval(for user: DirectoryUser) -> Int {
        let rules = reauthGroups.filter { user.groups.contains($0.group) }.map(\.interval)
        return ([reauthInterval] + rules).filter { $0 > 0 }.min() ?? 0
    }

    /// Password sync for this user: the per-user override wins.
    public func passwordSync(for user: DirectoryUser) -> Bool {
        user.passwordSync ?? passwordSync
    }
}

/// A directory group's own re-authentication interval (days).
public struct ReauthRule: Codable, Sendable, Equatable {
    public var group: String
    public var interval: Int

    public init(group: String, interval: Int) {
        self.group = group
        self.interval = interval
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
    /// Orders the reports of one device made within one second of
    /// `boundAt` (a bind and its unbind): increasing per device; nil in
    /// reports that do not carry it.
    public var seq: UInt64?

    public init(
        key: String, deviceID: String, username: String, localUsername: String, uid: UInt32, email: String,
        issuer: String, subject: String, passwordMode: String, boundAt: String, action: String = "bind", seq: UInt64? = nil
    ) {
        self.action = action
        self.seq = seq
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
        case key, username, uid, email, issuer, subject, action, seq
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
        seq = try c.decodeIfPresent(UInt64.self, forKey: .seq)
    }

    /// The order the reports of one device were made in: by `seq` (the
    /// microseconds fedlogind counted, kept increasing even when its clock
    /// stepped back), or for a report without one by `boundAt` in
    /// microseconds; then by `key`.
    public static func inOrder(_ a: BindingReport, _ b: BindingReport) -> Bool {
        (a.orderKey, a.key) < (b.orderKey, b.key)
    }

    /// `seq`, or `boundAt` in microseconds since 1970 (0 when it does not parse).
    var orderKey: UInt64 {
        if let seq { return seq }
        guard let date = try? Date(boundAt, strategy: .iso8601) else { return 0 }
        return UInt64(max(0, date.timeIntervalSince1970 * 1_000_000))
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
        case changePassword = "change_password"
        case access
    }

    public var op: Op
    /// lookup, access: a username or a company email; change_password: a username.
    public var user: String?
    public var deviceID: String?
    public var binding: BindingReport?
    /// change_password: the user's current password, which the directory
    /// verifies itself. A secret: never logged.
    public var current: String?
    /// change_password: the new password; the directory hashes it under its
    /// own policy. A secret: never logged.
    public var new: String?

    public init(
        op: Op, user: String? = nil, deviceID: String? = nil, binding: BindingReport? = nil, current: String? = nil, new: String? = nil
    ) {
        self.op = op
        self.user = user
        self.deviceID = deviceID
        self.binding = binding
        self.current = current
        self.new = new
    }

    enum CodingKeys: String, CodingKey {
        case op, user, binding, current, new
        case deviceID = "device_id"
    }
}

/// What the directory says about one user on one device (`access`): the one
/// answer a first login, NSS and pre-provisioning decide by.
public struct DeviceAccess: Codable, Sendable, Equatable {
    /// An administrator associated the user with the device, or (with
    /// self-service) a binding the device reported did.
    public var associated: Bool
    /// An administrator removed the user's association with the device: no
    /// login there, whatever else says so.
    public var unbound: Bool
    public var disabled: Bool
    /// The policy lets any directory user make a first login on the device.
    public var selfService: Bool

    public init(associated: Bool, unbound: Bool, disabled: Bool, selfService: Bool) {
        self.associated = associated
        self.unbound = unbound
        self.disabled = disabled
        self.selfService = selfService
    }

    enum CodingKeys: String, CodingKey {
        case associated, unbound, disabled
        case selfService = "self_service"
    }

    /// Why the user may not log in on the device, or nil when they may.
    public var refusal: Refusal? {
        if disabled { return .disabled }
        if unbound { return .unbound }
        if !associated && !selfService { return .notAssociated }
        return nil
    }

    public enum Refusal: String, Sendable, Equatable {
        case disabled
        case unbound
        case notAssociated = "not associated"

        /// What the person at the login prompt is told.
        public func userMessage(user: String) -> String {
            switch self {
            case .disabled: return "The account \(user) is disabled in the directory. Ask your administrator."
            case .unbound: return "An administrator removed \(user) from this machine. Ask your administrator."
            case .notAssociated:
                return "\(user) is not allowed to use this machine: an administrator has to assign it to you first."
            }
        }
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
    /// access: absent when there is no such user.
    public var access: DeviceAccess?

    public init(
        ok: Bool, error: String? = nil, user: DirectoryUser? = nil, policy: DevicePolicy? = nil, duplicate: Bool? = nil,
        reports: [BindingReport]? = nil, users: [String]? = nil, access: DeviceAccess? = nil
    ) {
        self.access = access
        self.ok = ok
        self.error = error
        self.user = user
        self.policy = policy
        self.duplicate = duplicate
        self.reports = reports
        self.users = users
    }
}
