import FedloginCore
import Foundation
import GRDB
import Synchronization

/// fedlogind's state: the accounts it manages, their bindings, and the outbox
/// of binding reports not yet acked by the directory. SQLite (WAL) via GRDB;
/// every change that must hold together is one transaction. No secret is
/// ever stored here.
public final class StateStore: Sendable {
    let db: DatabaseQueue
    /// Every account row, in memory: read once at start, then set from each
    /// committed write in commit order (the writes are serialized), so the
    /// login steps the event loop answers itself (QuickAnswers) read no file.
    private let rows = Mutex<[String: Account]>([:])

    public struct Account: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
        public static let databaseTableName = "account"
        public var username: String
        public var uid: UInt32
        public var state: AccountState
        public var directoryUsername: String
        public var email: String
        public var issuer: String?
        public var subject: String?
        public var passwordMode: PasswordMode?
        public var createdAt: String
        public var boundAt: String?
        public var lockedReason: String? = nil
        public var failedAttempts: Int = 0
        public var lockedUntil: Double? = nil
        /// Comma-separated local groups fedlogin added the user to.
        public var managedGroups: String = ""
        /// Failed attempts before a lockout; 0: none (no policy, or the user bypasses it).
        public var lockoutMax: Int = 0
        public var lockoutDuration: Double = 900
        /// The directory's `offline_max` (days; 0: no limit) as last seen.
        public var offlineMax: Int = 0
        /// When the directory last answered about the user and allowed them
        /// here (a first login, a login's check, a sync); nil: not recorded.
        public var lastAnswerAt: Double? = nil
        /// When the user last signed in at the IdP for this account (a first
        /// login, a passcode reset); nil: not recorded (see `boundAt`).
        public var lastSigninAt: Double? = nil
        /// The user's re-authentication interval and grace (days; 0: none),
        /// from the directory's policy and the user's groups as last seen.
        public var reauthInterval: Int = 0
        public var reauthGrace: Int = 0

        /// When the next sign-in at the IdP falls due; nil: never. Before a
        /// sign-in time was recorded, the binding's time counts.
        public var reauthDue: Double? {
            guard reauthInterval > 0 else { return nil }
            return Reauthentication.due(
                lastSignIn: lastSigninAt ?? boundAt.flatMap { try? Date($0, strategy: .iso8601).timeIntervalSince1970 }, days: reauthInterval)
        }

        /// The end of the offline window; nil: none.
        public var offlineEnd: Double? { OfflineWindow.end(lastAnswer: lastAnswerAt, days: offlineMax) }

        enum CodingKeys: String, CodingKey {
            case offlineMax = "offline_max"
            case lastAnswerAt = "last_answer_at"
            case lastSigninAt = "last_signin_at"
            case reauthInterval = "reauth_interval"
            case reauthGrace = "reauth_grace"
            case username, uid, state, email, issuer, subject
            case lockedReason = "locked_reason"
            case failedAttempts = "failed_attempts"
            case lockedUntil = "locked_until"
            case managedGroups = "managed_groups"
            case lockoutMax = "lockout_max"
            case lockoutDuration = "lockout_duration"
            case directoryUsername = "directory_username"
            case passwordMode = "password_mode"
            case createdAt = "created_at"
            case boundAt = "bound_at"
        }
    }

    public struct OutboxItem: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
        public static let databaseTableName = "outbox"
        public var key: String
        public var username: String
        public var payload: String
        public var attempts: Int
        public var nextAttempt: Double
        public var lastError: String?
        public var deliveredAt: String?

        enum CodingKeys: String, CodingKey {
            case key, username, payload, attempts
            case nextAttempt = "next_attempt"
            case lastError = "last_error"
            case deliveredAt = "delivered_at"
        }
    }

    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var config = Configuration()
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        db = try DatabaseQueue(path: directory + "/state.sqlite", configuration: config)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "account") { t in
                t.primaryKey("username", .text)
                t.column("uid", .integer).notNull().unique()
                t.column("state", .text).notNull()
                t.column("directory_username", .text).notNull()
                t.column("email", .text).notNull()
                t.column("issuer", .text)
                t.column("subject", .text)
                t.column("password_mode", .text)
                t.column("created_at", .text).notNull()
                t.column("bound_at", .text)
            }
            try db.create(table: "outbox") { t in
                t.primaryKey("key", .text)
                t.column("username", .text).notNull()
                t.column("payload", .text).notNull()
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("next_attempt", .double).notNull()
                t.column("last_error", .text)
                t.column("delivered_at", .text)
            }
        }
        migrator.registerMigration("v2") { db in
            // A uid announced through NSS before the account exists: the
            // account gets exactly this uid (and gid) when it is created.
            try db.create(table: "reservation") { t in
                t.primaryKey("username", .text)
                t.column("uid", .integer).notNull().unique()
                t.column("gecos", .text).notNull()
                t.column("created_at", .text).notNull()
            }
            // Lifecycle: why an account is locked (null: not locked), the
            // lockout counter, and the local groups fedlogin put the user in.
            try db.alter(table: "account") { t in
                t.add(column: "locked_reason", .text)
                t.add(column: "failed_attempts", .integer).notNull().defaults(to: 0)
                t.add(column: "locked_until", .double)
                t.add(column: "managed_groups", .text).notNull().defaults(to: "")
                // The directory's lockout policy for the user, as last seen
                // (kept so lockout holds offline too).
                t.add(column: "lockout_max", .integer).notNull().defaults(to: 0)
                t.add(column: "lockout_duration", .double).notNull().defaults(to: 900)
            }
        }
        migrator.registerMigration("reservation-use") { db in
            // Who a reservation was made for (a reservation made before this
            // counts as root's, kept as it always was) and when a lookup last
            // used it: NSS lookups by non-root callers cannot hold the range.
            try db.alter(table: "reservation") { t in
                t.add(column: "by_root", .boolean).notNull().defaults(to: true)
                t.add(column: "last_used", .double).notNull().defaults(to: 0)
            }
        }
        migrator.registerMigration("offline-window") { db in
            // The directory's offline_max for the user as last seen, and when
            // it last answered about the user (docs/accounts.md, "The offline window").
            try db.alter(table: "account") { t in
                t.add(column: "offline_max", .integer).notNull().defaults(to: 0)
                t.add(column: "last_answer_at", .double)
            }
        }
        migrator.registerMigration("signin-time") { db in
            try db.alter(table: "account") { t in t.add(column: "last_signin_at", .double) }
        }
        migrator.registerMigration("reauth") { db in
            try db.alter(table: "account") { t in
                t.add(column: "reauth_interval", .integer).notNull().defaults(to: 0)
                t.add(column: "reauth_grace", .integer).notNull().defaults(to: 0)
            }
        }
        try migrator.migrate(db)
        let all = try db.read { try Account.fetchAll($0) }
        rows.withLock { r in for a in all { r[a.username] = a } }
    }

    /// The account row of `username` as last committed, from memory.
    public func cachedAccount(_ username: String) -> Account? {
        rows.withLock { $0[username] }
    }

    /// A write that changes the account rows of `usernames`: their rows as
    /// the transaction leaves them replace the ones in memory once it commits.
    func writeAccounts<T>(_ usernames: [String], _ body: (Database) throws -> T) throws -> T {
        try db.write { db in
            let result = try body(db)
            var rowsAfter: [String: Account?] = [:]
            for name in usernames { rowsAfter.updateValue(try Account.fetchOne(db, key: name), forKey: name) }
            let after = rowsAfter
            db.afterNextTransaction(onCommit: { [self] _ in
                rows.withLock { r in for (name, row) in after { r[name] = row } }
            })
            return result
        }
    }

    public struct Reservation: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
        public static let databaseTableName = "reservation"
        public var username: String
        public var uid: UInt32
        public var gecos: String
        public var createdAt: String
        /// Made or used by a lookup of a root caller, or by a login: kept until the account exists.
        public var byRoot: Bool = true
        /// When a lookup last used it (seconds since the epoch).
        public var lastUsed: Double = 0

        enum CodingKeys: String, CodingKey {
            case username, uid, gecos
            case createdAt = "created_at"
            case byRoot = "by_root"
            case lastUsed = "last_used"
        }
    }

    /// A non-root caller's lookup would need a new reservation, and the
    /// reservations made for non-root callers are at their limit with none
    /// unused long enough to give up.
    public struct ReservationLimitReached: Error, CustomStringConvertible {
        public var cap: Int
        public var description: String {
            "\(cap) uids are reserved for lookups by non-root callers and none can be released yet"
        }
    }

    /// Whether a state database error means the disk that holds it is full.
    public static func isDiskFull(_ error: Error) -> Bool {
        (error as? DatabaseError)?.resultCode == .SQLITE_FULL
    }

    public func reservations() throws -> [Reservation] {
        try db.read { try Reservation.fetchAll($0) }
    }

    public func reservation(uid: UInt32) throws -> Reservation? {
        try db.read { try Reservation.filter(Column("uid") == uid).fetchOne($0) }
    }

    /// The uid reserved for `username`: the existing reservation when it is
    /// still usable, else `choose` picks one among the ids not reserved by
    /// anyone else; one transaction, so two lookups never get two uids.
    ///
    /// `byRoot` false (an NSS lookup by a non-root caller) makes a tentative
    /// reservation under `limit` (`ReservationPlanner`): the ones it releases
    /// go in the same transaction, and when none can, it throws
    /// `ReservationLimitReached`. A root caller's lookup or a login keeps the
    /// reservation until the account exists. `busy` names the users with a
    /// sign-in in progress (an account is checked here).
    public func reserve(
        _ username: String, gecos: String, wanted: UInt32?, byRoot: Bool = true, limit: ReservationLimit? = nil,
        busy: @escaping (String) -> Bool = { _ in false }, now: Double = Date().timeIntervalSince1970,
        choose: (Set<UInt32>) throws -> UInt32?
    ) throws -> Reservation? {
        try db.write { db in
            let existing = try Reservation.fetchOne(db, key: username)
            if let existing, wanted == nil || wanted == existing.uid {
                var r = existing
                r.gecos = gecos
                r.byRoot = existing.byRoot || byRoot
                // The time of use is kept to the minute: a lookup every few seconds writes nothing.
                if now - existing.lastUsed >= 60 || now < existing.lastUsed { r.lastUsed = now }
                if r != existing { try r.update(db) }
                return r
            }
            if let limit {
                let accounts = Set(try String.fetchAll(db, sql: "SELECT username FROM account"))
                let held = try Reservation.filter(Column("username") != username).fetchAll(db).map {
                    ReservationPlanner.Held(username: $0.username, byRoot: $0.byRoot, lastUsed: $0.lastUsed)
                }
                let decision = ReservationPlanner.decide(
                    held: held, forRoot: byRoot, now: now, limit: limit, busy: { accounts.contains($0) || busy($0) })
                switch decision {
                case .refuse:
                    throw ReservationLimitReached(cap: limit.cap)
                case .reserve(let release):
                    for name in release { _ = try Reservation.deleteOne(db, key: name) }
                }
            }
            let others = try Self.uidsTaken(db, except: username)
            let uid: UInt32
            if let wanted {
                guard !others.contains(wanted) else { return nil }
                uid = wanted
            } else {
                guard let c = try choose(others) else { return nil }
                uid = c
            }
            let r = Reservation(username: username, uid: uid, gecos: gecos, createdAt: Sys.iso8601(), byRoot: byRoot, lastUsed: now)
            try r.save(db)
            return r
        }
    }

    /// A lookup by root of a name reserved only for non-root callers: the
    /// reservation is root's from now on (kept until the account exists).
    public func promote(_ username: String, now: Double = Date().timeIntervalSince1970) throws {
        try db.write {
            try $0.execute(
                sql: "UPDATE reservation SET by_root = 1, last_used = ? WHERE username = ? AND by_root = 0",
                arguments: [now, username])
        }
    }

    public func account(_ username: String) throws -> Account? {
        try db.read { try Account.fetchOne($0, key: username) }
    }

    public func accounts() throws -> [Account] {
        try db.read { try Account.order(Column("username")).fetchAll($0) }
    }

    /// The uids of fedlogin's accounts and reservations, except `username`'s own reservation.
    public func reservedUIDs(except username: String? = nil) throws -> Set<UInt32> {
        try db.read { try Self.uidsTaken($0, except: username ?? "") }
    }

    static func uidsTaken(_ db: Database, except username: String) throws -> Set<UInt32> {
        Set(try UInt32.fetchAll(db, sql: "SELECT uid FROM account UNION SELECT uid FROM reservation WHERE username != ?", arguments: [username]))
    }

    /// Step 1 of provisioning: the intent, written before useradd runs, so a
    /// crash after it can be undone at the next start.
    public func beginProvisioning(_ a: Account) throws {
        try writeAccounts([a.username]) { try a.insert($0) }
    }

    /// Step 3: the account becomes active, bound, and its report queued, in
    /// one transaction.
    public func commitBinding(username: String, issuer: String, subject: String, passwordMode: PasswordMode, boundAt: String, report: OutboxItem)
        throws
    {
        try writeAccounts([username]) { db in
            guard var a = try Account.fetchOne(db, key: username), a.state == .provisioning || a.state == .pending else {
                throw Sys.Failure("no provisioning record for \(username)")
            }
            a.state = .active
            a.issuer = issuer
            a.subject = subject
            a.passwordMode = passwordMode
            a.boundAt = boundAt
            try a.update(db)
            try report.insert(db)
            try Reservation.deleteOne(db, key: username)
        }
    }

    public func update(_ a: Account) throws {
        try writeAccounts([a.username]) { try a.update($0) }
    }

    /// An account made ahead of its user's first sign-in becomes pending,
    /// with its report queued, in one transaction. `active` (with a password
    /// mode) when the directory's password was applied already.
    public func commitPending(
        username: String, state: AccountState, passwordMode: PasswordMode?, managedGroups: String, boundAt: String, report: OutboxItem
    ) throws {
        try writeAccounts([username]) { db in
            guard var a = try Account.fetchOne(db, key: username), a.state == .provisioning else {
                throw Sys.Failure("no provisioning record for \(username)")
            }
            a.state = state
            a.passwordMode = passwordMode
            a.managedGroups = managedGroups
            a.boundAt = boundAt
            try a.update(db)
            try report.insert(db)
            try Reservation.deleteOne(db, key: username)
        }
    }

    /// Records an account fedlogin did not create as managed (an admin's
    /// `bind --adopt`), with its report, in one transaction.
    public func adopt(_ a: Account, report: OutboxItem) throws {
        try writeAccounts([a.username]) { db in
            try a.insert(db)
            try report.insert(db)
        }
    }

    /// Stops managing an account (the account stays) and queues the unbind report.
    public func release(_ username: String, report: OutboxItem) throws {
        try writeAccounts([username]) { db in
            _ = try Account.deleteOne(db, key: username)
            try report.insert(db)
        }
    }

    public func forget(_ username: String) throws {
        _ = try writeAccounts([username]) { try Account.deleteOne($0, key: username) }
    }

    public func provisioning() throws -> [Account] {
        try db.read { try Account.filter(Column("state") == AccountState.provisioning.rawValue).fetchAll($0) }
    }

    public func dueReports(now: Double) throws -> [OutboxItem] {
        try db.read {
            try OutboxItem.filter(Column("delivered_at") == nil && Column("next_attempt") <= now)
                .order(Column("next_attempt")).fetchAll($0)
        }
    }

    public func pendingReports() throws -> [OutboxItem] {
        try db.read { try OutboxItem.filter(Column("delivered_at") == nil).fetchAll($0) }
    }

    public func nextAttempt() throws -> Double? {
        try db.read { try Double.fetchOne($0, sql: "SELECT MIN(next_attempt) FROM outbox WHERE delivered_at IS NULL") }
    }

    public func markDelivered(_ key: String, at: String) throws {
        try db.write { try $0.execute(sql: "UPDATE outbox SET delivered_at = ?, last_error = NULL WHERE key = ?", arguments: [at, key]) }
    }

    public func markFailed(_ key: String, error: String, nextAttempt: Double) throws {
        try db.write {
            try $0.execute(
                sql: "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ? WHERE key = ?",
                arguments: [error, nextAttempt, key])
        }
    }
}

/// Stored as its name ("provisioning", "pending", "active").
extension AccountState: DatabaseValueConvertible {}

/// Stored as its name ("synced", "passcode").
extension PasswordMode: DatabaseValueConvertible {}
