import ArgumentParser
import FedloginCore
import FedloginNIO
import Foundation
import NIOCore

@main
struct Fedloginctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fedloginctl",
        abstract: "Inspect and manage fedlogin on this machine.",
        subcommands: [
            Status.self, Users.self, Sync.self, Bind.self, Unbind.self, Unlock.self, Passcode.self, Outbox.self, IdP.self,
        ])
}

/// An error fedloginctl reports as it is, without the usage text.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

struct Connection: ParsableArguments {
    @Option(help: "fedlogind's socket.")
    var socket = "/run/fedlogin/fedlogind.sock"

    @Flag(help: "Print the daemon's JSON answer.")
    var json = false

    /// Sends one CONTROL request; returns the reply object or exits with the daemon's error.
    /// `wait`: seconds for the daemon's answer (a sync of many accounts takes long).
    func call(_ op: String, _ params: [String: Any] = [:], wait: Int = 30) async throws -> [String: Any] {
        var body = params
        body["op"] = op
        let request = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        let reply: (Bool, String)
        do {
            reply = try await FramedClient.with(socket: socket) { session in
                try await session.send(WireMessage.control(request).body())
                var text = ""
                while true {
                    switch try WireMessage(body: try await session.receive(timeout: .seconds(Int64(wait)))) {
                    case .controlReplyPart(let part): text += part
                    case .controlReply(let ok, let json): return (ok, text + json)
                    default: throw CLIError("fedlogind sent an unexpected answer")
                    }
                }
            }
        } catch let e as FramedClient.ClientError {
            throw CLIError("fedlogind is not reachable at \(socket) (\(e)). Is it running? Try: systemctl status fedlogind")
        }
        let obj = (try? JSONSerialization.jsonObject(with: Data(reply.1.utf8))) as? [String: Any] ?? [:]
        guard reply.0 else { throw CLIError("fedlogind: \(obj["error"] as? String ?? "request refused")") }
        if json { print(reply.1) }
        return obj
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the daemon's state.")
    @OptionGroup var connection: Connection

    func run() async throws {
        let s = try await connection.call("status")
        guard !connection.json else { return }
        print("fedlogind \(s["version"] ?? "?") on device \(s["device_id"] ?? "?")")
        print("  IdPs:            \((s["idps"] as? [String])?.joined(separator: ", ") ?? "")")
        print("  managed users:   \(s["managed_users"] ?? 0)")
        print("  pending reports: \(s["pending_reports"] ?? 0)")
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the accounts fedlogin manages (root only).")
    @OptionGroup var connection: Connection

    func run() async throws {
        let r = try await connection.call("users")
        guard !connection.json else { return }
        let users = r["users"] as? [[String: Any]] ?? []
        if users.isEmpty { print("no managed users"); return }
        let rows = users.map { u -> [String] in
            let locked = u["locked"] as? String ?? ""
            let mode = u["password_mode"] as? String ?? ""
            return [
                u["username"] as? String ?? "?", "\(u["uid"] ?? "?")", u["email"] as? String ?? "", u["state"] as? String ?? "",
                mode.isEmpty ? "-" : mode, locked.isEmpty ? "no" : locked,
                (u["reported"] as? Bool ?? false) ? "reported" : "pending",
            ]
        }
        printTable(["USER", "UID", "EMAIL", "STATE", "PASSWORD", "LOCKED", "BINDING"], rows)
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
            let r = try await connection.call("outbox")
            guard !connection.json else { return }
            let items = r["pending"] as? [[String: Any]] ?? []
            if items.isEmpty { print("no pending reports"); return }
            for i in items {
                print("\(i["username"] ?? "?")\tattempts=\(i["attempts"] ?? 0)\t\(i["last_error"] ?? "")")
            }
        }
    }

    struct Deliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Try to deliver pending reports now.")
        @OptionGroup var connection: Connection

        func run() async throws {
            let r = try await connection.call("deliver")
            if !connection.json { print("delivered: \(r["delivered"] ?? 0)") }
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

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sync the managed accounts with the directory now (root only).",
        discussion: "Locks accounts disabled in or removed from the directory, or no longer associated with this machine (never deletes them), updates local groups, and creates the accounts of users associated with this machine.")
    @OptionGroup var connection: Connection

    func run() async throws {
        let r = try await connection.call("sync", wait: 3600)
        guard !connection.json else { return }
        for (key, label) in [
            ("provisioned", "created"), ("locked", "locked"), ("unlocked", "unlocked"), ("group_changes", "groups"),
            ("skipped", "skipped"), ("errors", "errors"),
        ] {
            let items = r[key] as? [String] ?? []
            if !items.isEmpty { print("\(label): \(items.joined(separator: ", "))") }
        }
        print("sync done")
    }
}

enum YesNo: String, ExpressibleByArgument, CaseIterable {
    case yes, no
}

struct Bind: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bind a directory user to this machine (root only).",
        discussion: "Creates the user's account ahead of the first sign-in and reports the binding to the directory. With --adopt, an existing local account (not root, not a system account) becomes managed by fedlogin instead.")
    @OptionGroup var connection: Connection
    @Argument(help: "The user's local name.") var user: String
    @Option(name: .customLong("password-sync"), help: "yes: the directory's password becomes the password here; no: a local passcode, set at the first sign-in. Default: the directory's policy.")
    var passwordSync: YesNo?
    @Flag(help: "Take over the existing local account USER.") var adopt = false

    func run() async throws {
        var params: [String: Any] = ["user": user, "adopt": adopt]
        if let passwordSync { params["password_sync"] = passwordSync.rawValue }
        let r = try await connection.call("bind", params, wait: 300)
        if !connection.json { print(r["message"] as? String ?? "done") }
    }
}

struct Unbind: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop managing a user's account (root only); the account and its files stay.")
    @OptionGroup var connection: Connection
    @Argument(help: "The user's local name.") var user: String

    func run() async throws {
        let r = try await connection.call("unbind", ["user": user])
        if !connection.json { print(r["message"] as? String ?? "done") }
    }
}

struct Unlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "End a lockout after failed login attempts (root only).")
    @OptionGroup var connection: Connection
    @Argument(help: "The user's local name.") var user: String

    func run() async throws {
        let r = try await connection.call("unlock", ["user": user])
        if !connection.json { print(r["message"] as? String ?? "done") }
    }
}
