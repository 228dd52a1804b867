import ArgumentParser
import FedloginCore
import FedloginNIO
import Foundation
import NIOCore

/// fedloginctl's command line, for the executables that carry it:
/// `fedloginctl` and the multi-call `fedlogin` (Sources/fedlogin).
public enum Fedloginctl {
    /// Runs the command with `arguments`, the command line without the
    /// program's name; a usage error or a failure exits the process.
    public static func main(arguments: [String]) async {
        await FedloginctlCommand.main(arguments)
    }
}

struct FedloginctlCommand: AsyncParsableCommand {
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

    /// Sends one CONTROL request; returns the reply or exits with the daemon's error.
    /// `wait`: seconds for the daemon's answer (a sync of many accounts takes long).
    func call<Reply: Decodable>(_ request: ControlRequest, _ reply: Reply.Type, wait: Int = 30) async throws -> Reply {
        let body = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
        let answer: (ok: Bool, json: String)
        do {
            answer = try await FramedClient.with(socket: socket) { session in
                try await session.send(WireMessage.control(body).exactBody())
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
            throw CLIError("fedlogind is not reachable: \(e). Is it running? Try: systemctl status fedlogind")
        }
        let data = Data(answer.json.utf8)
        guard answer.ok else {
            let failure = try? JSONDecoder().decode(ControlReply.Failure.self, from: data)
            throw CLIError("fedlogind: \(failure?.error ?? "request refused")")
        }
        if json { print(answer.json) }
        do {
            return try JSONDecoder().decode(Reply.self, from: data)
        } catch {
            throw CLIError("fedlogind sent a reply fedloginctl cannot read (\(error))")
        }
    }
}

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
                u.locked.isEmpty ? "no" : u.locked, u.reported ? "reported" : "pending",
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

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sync the managed accounts with the directory now (root only).",
        discussion:
            "Locks accounts disabled in or removed from the directory, or no longer associated with this machine (never deletes them), updates local groups, and creates the accounts of users associated with this machine."
    )
    @OptionGroup var connection: Connection

    func run() async throws {
        let r = try await connection.call(.sync, ControlReply.Sync.self, wait: 3600)
        guard !connection.json else { return }
        for (items, label) in [
            (r.provisioned, "created"), (r.locked, "locked"), (r.unlocked, "unlocked"), (r.groupChanges, "groups"),
            (r.skipped, "skipped"), (r.errors, "errors"),
        ] where !items.isEmpty {
            print("\(label): \(items.joined(separator: ", "))")
        }
        print("sync done")
    }
}

extension PasswordSyncChoice: ExpressibleByArgument {}

struct Bind: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bind a directory user to this machine (root only).",
        discussion:
            "Creates the user's account ahead of the first sign-in and reports the binding to the directory. With --adopt, an existing local account (not root, not a system account) becomes managed by fedlogin instead."
    )
    @OptionGroup var connection: Connection
    @Argument(help: "The user's local name.") var user: String
    @Option(
        name: .customLong("password-sync"),
        help:
            "yes: the directory's password becomes the password here; no: a local passcode, set at the first sign-in. Default: the directory's policy."
    )
    var passwordSync: PasswordSyncChoice?
    @Flag(help: "Take over the existing local account USER.") var adopt = false

    func run() async throws {
        let request = ControlRequest.bind(user: user, passwordSync: passwordSync.map { $0 == .yes }, adopt: adopt)
        let r = try await connection.call(request, ControlReply.Message.self, wait: 300)
        if !connection.json { print(r.message) }
    }
}

struct Unbind: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop managing a user's account (root only); the account and its files stay.")
    @OptionGroup var connection: Connection
    @Argument(help: "The user's local name.") var user: String

    func run() async throws {
        let r = try await connection.call(.unbind(user: user), ControlReply.Message.self)
        if !connection.json { print(r.message) }
    }
}

struct Unlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "End a lockout after failed login attempts (root only).")
    @OptionGroup var connection: Connection
    @Argument(help: "The user's local name.") var user: String

    func run() async throws {
        let r = try await connection.call(.unlock(user: user), ControlReply.Message.self)
        if !connection.json { print(r.message) }
    }
}
