import FedloginCore
import Foundation
import GRDB

/// What fedlogin wrote to each account's shadow entry (ShadowLocks.Record),
/// so it lifts only its own locks and expiries.
extension StateStore {
    /// Creates the table on first use. Accounts a sync locked before the
    /// table existed were locked by fedlogin ("!" and expiry day 1): they
    /// get a record saying so, so that an unlock still lifts them.
    func migrateShadowWrites() throws {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("shadow-writes") { db in
            try db.create(table: "shadow_write") { t in
                t.primaryKey("username", .text)
                t.column("record", .text).notNull()
            }
            let locked = try String.fetchAll(db, sql: "SELECT username FROM account WHERE locked_reason IS NOT NULL")
            let record = ShadowLocks.Record(written: ShadowLocks.expiredNow, before: nil, passwordLockAdded: true, reasons: [.sync])
            let json = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
            for name in locked {
                try db.execute(sql: "INSERT INTO shadow_write (username, record) VALUES (?, ?)", arguments: [name, json])
            }
        }
        try migrator.migrate(db)
    }

    public func shadowRecord(_ username: String) throws -> ShadowLocks.Record? {
        guard let text = try db.read({ try String.fetchOne($0, sql: "SELECT record FROM shadow_write WHERE username = ?", arguments: [username]) })
        else { return nil }
        return try JSONDecoder().decode(ShadowLocks.Record.self, from: Data(text.utf8))
    }

    public func setShadowRecord(_ username: String, _ record: ShadowLocks.Record?) throws {
        guard let record else {
            try db.write { try $0.execute(sql: "DELETE FROM shadow_write WHERE username = ?", arguments: [username]) }
            return
        }
        let json = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
        try db.write {
            try $0.execute(sql: "INSERT OR REPLACE INTO shadow_write (username, record) VALUES (?, ?)", arguments: [username, json])
        }
    }
}
