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
        subcommands: [Status.self, Users.self, Outbox.self, IdP.self])
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
    func call(_ op: String) async throws -> [String: Any] {
        let request = String(decoding: try JSONSerialization.data(withJSONObject: ["op": op]), as: UTF8.self)
        let reply: (Bool, String)
        do {
            reply = try await FramedClient.with(socket: socket) { session in
                try await session.send(WireMessage.control(request).body())
                guard case .controlReply(let ok, let json) = try WireMessage(body: try await session.receive(timeout: .seconds(30))) else {
                    throw CLIError("fedlogind sent an unexpected answer")
                }
                return (ok, json)
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
        for u in users {
            let reported = (u["reported"] as? Bool ?? false) ? "reported" : "report pending"
            print("\(u["username"] ?? "?")\tuid=\(u["uid"] ?? "?")\t\(u["email"] ?? "")\tpassword=\(u["password_mode"] ?? "")\t\(u["state"] ?? "")\t\(reported)")
        }
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
