/// The replies to CONTROL requests (docs/protocol.md, "CONTROL requests"):
/// one type per op, encoded as a JSON object with sorted keys. The member
/// names below are the wire's.
public enum ControlReply {
    /// `status`.
    public struct Status: Codable, Sendable, Equatable {
        public var version: String
        public var deviceID: String
        public var idps: [String]
        public var managedUsers: Int
        public var pendingReports: Int
        public var socket: String

        public init(version: String, deviceID: String, idps: [String], managedUsers: Int, pendingReports: Int, socket: String) {
            self.version = version
            self.deviceID = deviceID
            self.idps = idps
            self.managedUsers = managedUsers
            self.pendingReports = pendingReports
            self.socket = socket
        }

        enum CodingKeys: String, CodingKey {
            case version, idps, socket
            case deviceID = "device_id"
            case managedUsers = "managed_users"
            case pendingReports = "pending_reports"
        }
    }

    /// `users`.
    public struct Users: Codable, Sendable, Equatable {
        public var users: [User]

        public init(users: [User]) { self.users = users }
    }

    /// One managed account in `users`. Absent values are empty strings.
    public struct User: Codable, Sendable, Equatable {
        public var username: String
        public var uid: UInt32
        public var email: String
        public var state: String
        public var passwordMode: String
        public var issuer: String
        public var subject: String
        public var boundAt: String
        /// False while a report for the account waits in the outbox.
        public var reported: Bool
        /// Why the account is locked; empty when it is not.
        public var locked: String
        public var failedAttempts: Int
        public var groups: [String]
        /// When the user last signed in at the IdP for the account (ISO 8601).
        public var lastSignIn: String
        /// When the directory last answered about the user and allowed them here.
        public var lastDirectoryAnswer: String
        /// When the offline window ends (the directory's `offline_max`); empty: no limit.
        public var offlineUntil: String
        /// When the next sign-in at the IdP falls due (`reauth_interval`); empty: never.
        public var reauthDue: String

        public init(
            username: String, uid: UInt32, email: String, state: String, passwordMode: String, issuer: String, subject: String,
            boundAt: String, reported: Bool, locked: String, failedAttempts: Int, groups: [String], lastSignIn: String = "",
            lastDirectoryAnswer: String = "", offlineUntil: String = "", reauthDue: String = ""
        ) {
            self.reauthDue = reauthDue
            self.lastSignIn = lastSignIn
            self.lastDirectoryAnswer = lastDirectoryAnswer
            self.offlineUntil = offlineUntil
            self.username = username
            self.uid = uid
            self.email = email
            self.state = state
            self.passwordMode = passwordMode
            self.issuer = issuer
            self.subject = subject
            self.boundAt = boundAt
            self.reported = reported
            self.locked = locked
            self.failedAttempts = failedAttempts
            self.groups = groups
        }

        enum CodingKeys: String, CodingKey {
            case username, uid, email, state, reported, locked, groups
            case passwordMode = "password_mode"
            case issuer = "iss"
            case subject = "sub"
            case boundAt = "bound_at"
            case failedAttempts = "failed_attempts"
            case lastSignIn = "last_signin"
            case lastDirectoryAnswer = "last_directory_answer"
            case offlineUntil = "offline_until"
            case reauthDue = "reauth_due"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            username = try c.decode(String.self, forKey: .username)
            uid = try c.decode(UInt32.self, forKey: .uid)
            email = try c.decode(String.self, forKey: .email)
            state = try c.decode(String.self, forKey: .state)
            passwordMode = try c.decode(String.self, forKey: .passwordMode)
            issuer = try c.decode(String.self, forKey: .issuer)
            subject = try c.decode(String.self, forKey: .subject)
            boundAt = try c.decode(String.self, forKey: .boundAt)
            reported = try c.decode(Bool.self, forKey: .reported)
            locked = try c.decode(String.self, forKey: .locked)
            failedAttempts = try c.decode(Int.self, forKey: .failedAttempts)
            groups = try c.decode([String].self, forKey: .groups)
            // Absent from an older fedlogind's reply.
            lastSignIn = try c.decodeIfPresent(String.self, forKey: .lastSignIn) ?? ""
            lastDirectoryAnswer = try c.decodeIfPresent(String.self, forKey: .lastDirectoryAnswer) ?? ""
            offlineUntil = try c.decodeIfPresent(String.self, forKey: .offlineUntil) ?? ""
            reauthDue = try c.decodeIfPresent(String.self, forKey: .reauthDue) ?? ""
        }
    }

    /// `outbox`.
    public struct Outbox: Codable, Sendable, Equatable {
        public var pending: [PendingReport]

        public init(pending: [PendingReport]) { self.pending = pending }
    }

    /// One report in `outbox`; `lastError` is empty before the first failure.
    public struct PendingReport: Codable, Sendable, Equatable {
        public var key: String
        public var username: String
        public var attempts: Int
        public var lastError: String

        public init(key: String, username: String, attempts: Int, lastError: String) {
            self.key = key
            self.username = username
            self.attempts = attempts
            self.lastError = lastError
        }

        enum CodingKeys: String, CodingKey {
            case key, username, attempts
            case lastError = "last_error"
        }
    }

    /// `deliver`: how many reports the directory took.
    public struct Delivered: Codable, Sendable, Equatable {
        public var delivered: Int

        public init(delivered: Int) { self.delivered = delivered }
    }

    /// `sync`.
    public struct Sync: Codable, Sendable, Equatable {
        public var provisioned: [String]
        public var locked: [String]
        public var unlocked: [String]
        public var groupChanges: [String]
        public var skipped: [String]
        public var errors: [String]

        public init(
            provisioned: [String] = [], locked: [String] = [], unlocked: [String] = [], groupChanges: [String] = [],
            skipped: [String] = [], errors: [String] = []
        ) {
            self.provisioned = provisioned
            self.locked = locked
            self.unlocked = unlocked
            self.groupChanges = groupChanges
            self.skipped = skipped
            self.errors = errors
        }

        enum CodingKeys: String, CodingKey {
            case provisioned, locked, unlocked, skipped, errors
            case groupChanges = "group_changes"
        }
    }

    /// `bind`, `unbind`, `unlock`: what was done, for a person.
    public struct Message: Codable, Sendable, Equatable {
        public var message: String

        public init(message: String) { self.message = message }
    }

    /// Any op's reply with `ok` 0.
    public struct Failure: Codable, Sendable, Equatable {
        public var error: String

        public init(error: String) { self.error = error }
    }
}
