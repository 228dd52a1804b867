import ArgumentParser
import CFedloginSys
import FedloginCore
import FedloginDirectory
import FedloginNIO
import FedloginSystem
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
        abstract: "The reference fedlogin directory service (a JSON file or an LDAP directory).",
        subcommands: [Serve.self, Reports.self, Check.self, ProbeTOML.self],
        defaultSubcommand: Serve.self)

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Serve the directory protocol on a Unix socket.")

        @Option(help: "The Unix socket to listen on (default: /run/fedlogin-directoryd/directory.sock).")
        var socket: String?
        @Option(help: "The directory file (JSON: policy, users, devices) of the file backend (default: /etc/fedlogin-directoryd/directory.json).")
        var directory: String?
        @Option(
            name: .customLong("state-dir"), help: "Where the file backend keeps received binding reports (default: /var/lib/fedlogin-directoryd).")
        var stateDir: String?
        @Option(help: "A configuration file (TOML): the backend, file or ldap, and its settings. The options above win over it.")
        var config: String?
        @Flag(name: .customLong("check-config"), help: "Check the configuration and exit: 0 when valid, 78 with the problem otherwise.")
        var checkConfig = false
        @Option(
            name: .customLong("fedlogin-config"),
            help:
                "fedlogind's configuration, whose daemon.directory_timeout --check-config compares with the LDAP timeouts (default: /etc/fedlogin/fedlogin.conf)."
        )
        var fedloginConfig: String?

        /// The configuration file's settings with the command line's over them.
        func settings() throws -> DirectorydConfig {
            var c = DirectorydConfig()
            if let config { c = try TOMLProbe.loadDirectorydConfig(config) }
            if let socket { c.socketPath = socket }
            if let directory { c.file.directory = directory }
            if let stateDir { c.file.stateDir = stateDir }
            return c
        }

        /// The backend the settings name, ready to serve.
        func backend(_ c: DirectorydConfig) throws -> any DirectoryBackend {
            switch c.backend {
            case .file:
                return try DirectoryStore(directoryPath: c.file.directory, stateDir: c.file.stateDir)
            case .ldap:
                return try Self.ldapDirectory(c)
            }
        }

        /// The LDAP backend of settings whose backend is "ldap", with its bind
        /// password read and its TLS files checked (ca_file and tls_cert
        /// exist, tls_key is root-only).
        static func ldapDirectory(_ c: DirectorydConfig) throws -> LDAPDirectory {
            guard let l = c.ldap else { throw DirectoryError("backend = \"ldap\" needs an [ldap] section") }
            let password = try l.bindPasswordFile.map { try Self.readSecret($0, key: "ldap.bind_password_file") }
            for (key, path) in [("ldap.ca_file", l.caFile), ("ldap.tls_cert", l.tlsCert)] {
                guard let path else { continue }
                guard FileManager.default.isReadableFile(atPath: path) else {
                    throw DirectoryError("\(key): \(path) does not exist or cannot be read; put the PEM file there (or remove the key)")
                }
            }
            if let key = l.tlsKey { try Self.checkPrivate(key, key: "ldap.tls_key") }
            return LDAPDirectory(config: l, password: password)
        }

        /// fedlogind's daemon.directory_timeout (from `path`, or the default
        /// file; fedlogind's default when that file does not exist) and where
        /// it came from.
        static func directoryTimeout(_ path: String?) throws -> (seconds: Double, source: String) {
            let file = path ?? "/etc/fedlogin/fedlogin.conf"
            guard FileManager.default.fileExists(atPath: file) else {
                if path != nil { throw DirectoryError("--fedlogin-config: \(file) does not exist") }
                return (DaemonConfig().directoryTimeout, "its default; \(file) does not exist")
            }
            let files = try ConfigLoader.files(path: file)
            try TOMLProbe.check(files.map(\.path), kind: .fedlogin)
            return (try ConfigParser.parse(files: files).directoryTimeout, "in \(file)")
        }

        /// A private file: regular, owned by root or by this process's user,
        /// readable by no group or other user.
        static func checkPrivate(_ path: String, key: String) throws {
            var st = stat()
            guard stat(path, &st) == 0 else {
                throw DirectoryError("\(key): \(path): \(String(validatingCString: strerror(errno)) ?? "cannot stat")")
            }
            guard st.st_mode & S_IFMT == S_IFREG else { throw DirectoryError("\(key): \(path) is not a regular file") }
            guard st.st_mode & 0o077 == 0 else {
                throw DirectoryError(
                    "\(key): \(path) may be read by others (mode \(String(st.st_mode & 0o777, radix: 8))); make it readable by its owner alone (chmod 600)"
                )
            }
            guard st.st_uid == 0 || st.st_uid == geteuid() else { throw DirectoryError("\(key): \(path) is owned by uid \(st.st_uid), not root") }
        }

        /// The bind password: a private file (checkPrivate); one trailing newline dropped.
        static func readSecret(_ path: String, key: String) throws -> String {
            try checkPrivate(path, key: key)
            guard var text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }) else {
                throw DirectoryError("\(key): \(path) cannot be read")
            }
            if text.hasSuffix("\n") { text.removeLast() }
            guard !text.isEmpty else { throw DirectoryError("\(key): \(path) is empty") }
            return text
        }

        func run() async throws {
            if checkConfig {
                do {
                    let c = try settings()
                    if c.backend == .ldap, let l = c.ldap {
                        _ = try Self.ldapDirectory(c)
                        let (seconds, source) = try Self.directoryTimeout(fedloginConfig)
                        try l.checkTimeout(against: seconds, file: config ?? "directoryd.conf", daemonFile: source)
                    }
                    print("fedlogin-directoryd: the configuration is valid (backend \(c.backend.rawValue))")
                    return
                } catch {
                    FileHandle.standardError.write(Data("fedlogin-directoryd: \(ErrorText.describe(error))\n".utf8))
                    throw ExitCode(78)  // EX_CONFIG
                }
            }
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
            let store: any DirectoryBackend
            let socket: String
            do {
                let c = try settings()
                store = try backend(c)
                socket = c.socketPath
                logger.info("backend: \(c.backend.rawValue)", metadata: c.ldap.map { ["uris": "\($0.uris.joined(separator: " "))"] } ?? [:])
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

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the backend the configuration names against the directory, one line per step; exit 0 when all is ok, 1 otherwise.")

        @Option(help: "The configuration file (TOML).")
        var config: String
        @Option(help: "A user to look up (a username or an email).")
        var user: String?
        @Option(help: "A device id whose entry to find (LDAP backend).")
        var device: String?

        func run() async throws {
            var steps: [CheckStep] = []
            do {
                let c = try TOMLProbe.loadDirectorydConfig(config)
                switch c.backend {
                case .file:
                    let store = try DirectoryStore(directoryPath: c.file.directory, stateDir: c.file.stateDir)
                    steps.append(CheckStep("configuration", detail: "backend file"))
                    steps.append(CheckStep("directory file \(c.file.directory)", detail: "loads"))
                    if let user {
                        let found = store.lookup(user)
                        steps.append(CheckStep("user \(user)", problem: found == nil ? "no such user" : nil, detail: found?.username))
                    }
                case .ldap:
                    let directory = try Serve.ldapDirectory(c)
                    steps.append(CheckStep("configuration", detail: "backend ldap"))
                    steps += directory.check(user: user, device: device)
                }
            } catch {
                steps.append(CheckStep("configuration", problem: ErrorText.describe(error)))
            }
            for s in steps { print(s.line) }
            if !steps.allSatisfy(\.ok) { throw ExitCode(1) }
        }
    }
}

/// The TOML library aborts the process on some malformed input instead of
/// throwing. Before a configuration file is parsed here, this executable
/// parses it in a child (`probe-toml`); a child that dies of a signal is a
/// clear configuration error, never a crash of the service or of
/// `--check-config`.
enum TOMLProbe {
    enum Kind: String, ExpressibleByArgument {
        /// fedlogin-directoryd's own configuration file.
        case directoryd
        /// fedlogind's fedlogin.conf and its drop-ins, read together.
        case fedlogin
    }

    /// fedlogin-directoryd's configuration file, read, probed, parsed.
    static func loadDirectorydConfig(_ path: String) throws -> DirectorydConfig {
        let text: String
        do {
            text = try Sys.readText(path)
        } catch {
            throw DirectoryError("\(path): cannot be read: \(ErrorText.describe(error))")
        }
        try check([path], kind: .directoryd)
        return try DirectorydConfig.parse(path: path, text: text)
    }

    static func check(_ files: [String], kind: Kind) throws {
        // The running executable itself, even if an upgrade replaced its file.
        let exe = "/proc/self/exe"
        guard FileManager.default.fileExists(atPath: exe) else { return }
        // Started as fedlogin-directoryd: the executable may be the
        // multi-call fedlogin, which picks its command by that name.
        guard
            let r = try? Sys.run(
                exe, ["probe-toml", "--kind", kind.rawValue, "--"] + files, argv0: "fedlogin-directoryd", environment: ["LC_ALL": "C"])
        else { return }  // no child: the parse itself still runs
        // Parsed, or an error the parse itself reports; or killed from
        // outside (SIGTERM, SIGKILL at shutdown, the OOM killer), which says
        // nothing about the file: only a crash of the parser is its fault.
        guard r.signaled, [SIGABRT, SIGILL, SIGTRAP, SIGSEGV, SIGBUS].contains(r.status) else { return }
        throw DirectoryError(
            "\(files.joined(separator: ", ")): malformed TOML: the parser stopped. Check the brackets, braces, quotes and commas near what you changed"
        )
    }

    /// Parses the files and exits 0 whatever they hold: only an abort matters.
    struct Command: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "probe-toml", abstract: "Parse configuration files (used by the service itself).", shouldDisplay: false)

        @Option var kind: Kind
        @Argument var files: [String]

        func run() throws {
            let texts = files.map { (path: $0, text: (try? String(contentsOfFile: $0, encoding: .utf8)) ?? "") }
            switch kind {
            case .fedlogin: _ = try? ConfigParser.parse(files: texts)
            case .directoryd: for t in texts { _ = try? DirectorydConfig.parse(path: t.path, text: t.text) }
            }
        }
    }
}

typealias ProbeTOML = TOMLProbe.Command
