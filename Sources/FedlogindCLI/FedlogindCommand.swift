import ArgumentParser
import CFedloginSys
import FedloginCore
import FedloginDaemon
import Foundation
import Logging

/// fedlogind's command line, for the executables that carry it: `fedlogind`
/// and the multi-call `fedlogin` (Sources/fedlogin).
public enum Fedlogind {
    /// Runs the command with `arguments`, the command line without the
    /// program's name; a usage error or a failure exits the process.
    public static func main(arguments: [String]) async {
        await FedlogindCommand.main(arguments)
    }
}

struct FedlogindCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fedlogind",
        abstract: "The fedlogin daemon: first logins with an OIDC identity, local accounts, binding reports.")

    @Option(help: "The configuration file; drop-ins are read from conf.d/ beside it.")
    var config = "/etc/fedlogin/fedlogin.conf"

    @Flag(name: .customLong("check-config"), help: "Check the configuration and exit.")
    var checkConfig = false

    func run() async throws {
        // Passcodes, tokens and the client secrets pass through this process:
        // no core dump (also LimitCORE=0 in the unit), and no ptrace or /proc
        // access by other users.
        guard fedlogin_set_dumpable(0) == 0 else {
            FileHandle.standardError.write(Data("fedlogind: prctl(PR_SET_DUMPABLE, 0) failed\n".utf8))
            throw ExitCode(71)  // EX_OSERR
        }
        // The daemon never resolves names through its own NSS module.
        setenv("FEDLOGIN_NSS_DISABLE", "1", 1)
        JournalLogHandler.bootstrap(label: "fedlogind")
        // Drop-ins are found beside the file: make the path absolute first.
        let config = self.config.hasPrefix("/") ? self.config : FileManager.default.currentDirectoryPath + "/" + self.config
        do {
            if checkConfig {
                let c = try ConfigLoader.load(path: config)
                print("\(config): OK (\(c.idps.count) IdP\(c.idps.count == 1 ? "" : "s"): \(c.idps.keys.sorted().joined(separator: ", ")))")
                return
            }
            try await Daemon.run(configPath: config)
        } catch let e as ConfigError {
            FileHandle.standardError.write(Data("fedlogind: configuration error: \(e)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG
        }
    }
}
