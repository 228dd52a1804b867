import FedloginCore
import Foundation
import GRDB

/// fedlogind's state: the accounts it manages, their bindings, and the outbox
/// of binding reports not yet acked by the directory. SQLite (WAL) via GRDB;
/// every change that must hold together is one transaction. No secret is
/// ever stored here.
public final class StateStore: Sendable {
    let db: DatabaseQueue

    public struct Account: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
        public static let databaseTableName = "account"
        public var username: String
        public var uid: UInt32
        /// "provisioning" while the account is being made; "active" once bound.
        public var state: String
        public var directoryUsername: String
        public var email: String
        public var issuer: String?
        public var subject: String?
        public var passwordMode: String?
        public var createdAt: String
        public var boundAt: String?

        enum CodingKeys: String, CodingKey {
            case username, uid, state, email, issuer, subject
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
        try migrator.migrate(db)
    }

    public func account(_ username: String) throws -> Account? {
        try db.read { try Account.fetchOne($0, key: username) }
    }

    public func accounts() throws -> [Account] {
        try db.read { try Account.order(Column("username")).fetchAll($0) }
    }

    public func reservedUIDs() throws -> Set<UInt32> {
        Set(try db.read { try UInt32.fetchAll($0, sql: "SELECT uid FROM account") })
    }

    /// Step 1 of provisioning: the intent, written before useradd runs, so a
    /// crash after it can be undone at the next start.
    public func beginProvisioning(_ a: Account) throws {
        try db.write { try a.insert($0) }
    }

    /// Step 3: the account becomes active, bound, and its report queued, in
    /// one transaction.
    public func commitBinding(username: String, issuer: String, subject: String, passwordMode: String, boundAt: String, report: OutboxItem) throws {
        try db.write { db in
            guard var a = try Account.fetchOne(db, key: username), a.state == "provisioning" else {
                throw Sys.Failure("no provisioning record for \(username)")
            }
            a.state = "active"
            a.issuer = issuer
            a.subject = subject
            a.passwordMode = passwordMode
            a.boundAt = boundAt
            try a.update(db)
            try report.insert(db)
        }
    }

    public func forget(_ username: String) throws {
        _ = try db.write { try Account.deleteOne($0, key: username) }
    }

    public func provisioning() throws -> [Account] {
        try db.read { try Account.filter(Column("state") == "provisioning").fetchAll($0) }
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
