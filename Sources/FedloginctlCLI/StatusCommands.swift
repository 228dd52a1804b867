import ArgumentParser
import FedloginCore
import FedloginNIO
import Foundation
import NIOCore

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the daemon's state.")
    @OptionGroup var connection: Connection

    func run() async throws {
        let s = try await connection.call(.status, ControlReply.Status.self)
        guard !connection.json else { return }
        print("fedlogind \(s.version) on device \(s.deviceID)")
        print("  IdPs:            \(s.idps.joined(separator: ", "))")
        print("  managed users:   \(s.managedUsers)")
        print("  pending reports: \(s.pendingReports)")
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the accounts fedlogin manages (root only).")
    @OptionGroup var connection: Connection

    func run() async throws {
        let users = try await connection.call(.users, ControlReply.Users.self).users
        guard !connection.json else { return }
        if users.isEmpty {
            print("no managed users")
            return
        }
        let rows = users.map { u -> [String] in
            [
                u.username, "\(u.uid)", u.email, u.state, u.passwordMode.isEmpty ? "-" : u.passwordMode,
                u.locked.isEmpty ? "no" : u.locked, u.reported ? "reported" : "pending", Self.day(u.lastSignIn), Self.day(u.lastDirectoryAnswer),
                u.offlineUntil.isEmpty ? "-" : Self.day(u.offlineUntil), Self.day(u.reauthDue),
            ]
        }
        printTable(
            ["USER", "UID", "EMAIL", "STATE", "PASSWORD", "LOCKED", "BINDING", "SIGNED-IN", "ANSWERED", "OFFLINE-UNTIL", "REAUTH-DUE"], rows)
    }

    /// An ISO 8601 time to the minute ("2026-03-01T09:00Z"); "-" when empty.
    static func day(_ iso: String) -> String {
        guard iso.count >= 16 else { return iso.isEmpty ? "-" : iso }
        return iso.prefix(10) + "T" + iso.dropFirst(11).prefix(5) + (iso.hasSuffix("Z") ? "Z" : "")
    }
}

struct Outbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show binding reports not yet acked by the directory (root only).",
        subcommands: [Show.self, Deliver.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List pending reports.")
        @OptionGroup var connection: Connection

        func run() async throws {
            let items = try await connection.call(.outbox, ControlReply.Outbox.self).pending
            guard !connection.json else { return }
            if items.isEmpty {
                print("no pending reports")
                return
            }
            for i in items {
                print("\(i.username)\tattempts=\(i.attempts)\t\(i.lastError)")
            }
        }
    }

    struct Deliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Try to deliver pending reports now.")
        @OptionGroup var connection: Connection

        func run() async throws {
            let r = try await connection.call(.deliver, ControlReply.Delivered.self)
            if !connection.json { print("delivered: \(r.delivered)") }
        }
    }
}

/// Columns padded to their widest cell; the last one is not padded.
func printTable(_ header: [String], _ rows: [[String]]) {
    let all = [header] + rows
    let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
    for row in all {
        let cells = row.enumerated().map { i, c in i == row.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
        print(cells.joined(separator: "  "))
    }
}
