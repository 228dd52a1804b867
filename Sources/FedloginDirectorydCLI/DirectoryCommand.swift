import ArgumentParser
import CFedloginSys
import FedloginCore
import FedloginDirectory
import FedloginNIO
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// fedlogin-directoryd's command line, for the executables that carry it:
/// `fedlogin-directoryd` and the multi-call `fedlogin` (Sources/fedlogin).
public enum FedloginDirectoryd {
    /// Runs the command with `arguments`, the command line without the
    /// program's name; a usage error or a failure exits the process.
    public static func main(arguments: [String]) async {
        await DirectoryCommand.main(arguments)
    }
}

/// fedlogin-directoryd: the reference directory service.
struct DirectoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fedlogin-directoryd",
        abstract: "The reference fedlogin directory service (file-backed).",
        subcommands: [Serve.self, Reports.self],
        defaultSubcommand: Serve.self)

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Serve the directory protocol on a Unix socket.")

        @Option(help: "The Unix socket to listen on.")
        var socket = "/run/fedlogin-directoryd/directory.sock"
        @Option(help: "The directory file (JSON: policy, users, devices).")
        var directory = "/etc/fedlogin-directoryd/directory.json"
        @Option(name: .customLong("state-dir"), help: "Where received binding reports are kept.")
        var stateDir = "/var/lib/fedlogin-directoryd"

        func run() async throws {
            // Password hashes and passwords pass through this process: no
            // core dump, and no ptrace or /proc access by other users.
            guard fedlogin_set_dumpable(0) == 0 else {
                FileHandle.standardError.write(Data("fedlogin-directoryd: prctl(PR_SET_DUMPABLE, 0) failed\n".utf8))
                throw ExitCode(71)  // EX_OSERR
            }
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = .info
                return h
            }
            let logger = Logger(label: "fedlogin-directoryd")
            let store: DirectoryStore
            do {
                store = try DirectoryStore(directoryPath: directory, stateDir: stateDir)
            } catch {
                logger.error("\(ErrorText.describe(error))")
                throw ExitCode(78)
            }
            let server = DirectoryServer(socketPath: socket, store: store, logger: logger)
            let group = ServiceGroup(
                configuration: .init(services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }

    struct Reports: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the binding reports the directory has received.")

        @Option(help: "The directory's Unix socket.")
        var socket = "/run/fedlogin-directoryd/directory.sock"
        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let request = DirectoryRequest(op: .listReports)
            let body = try JSONEncoder().encode(request)
            let reply = try await FramedClient.with(socket: socket, maxFrame: directoryMaxFrame) { session in
                try await session.send(ByteBuffer(bytes: body))
                return Data(try await session.receive(timeout: .seconds(5)).readableBytesView)
            }
            let response = try JSONDecoder().decode(DirectoryResponse.self, from: reply)
            guard response.ok else {
                FileHandle.standardError.write(Data("fedlogin-directoryd: \(response.error ?? "request refused")\n".utf8))
                throw ExitCode(1)
            }
            let reports = response.reports ?? []
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.sortedKeys, .prettyPrinted]
                print(String(decoding: try e.encode(reports), as: UTF8.self))
                return
            }
            if reports.isEmpty {
                print("no binding reports")
                return
            }
            for r in reports {
                print(
                    "\(r.username) <-> \(r.deviceID)  local=\(r.localUsername) uid=\(r.uid) email=\(r.email) password=\(r.passwordMode) iss=\(r.issuer) sub=\(r.subject) at=\(r.boundAt) key=\(r.key)"
                )
            }
        }
    }
}
