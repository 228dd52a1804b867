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
