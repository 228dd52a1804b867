import FedloginCore
import Foundation

/// Reads fedlogin.conf and the `conf.d/*.conf` drop-ins beside it, in lexical order.
public enum ConfigLoader {
    /// `probe`: parse the files in a child process first (`fedlogind
    /// --check-config`). The TOML library aborts on some malformed input
    /// instead of reporting it; a child that dies that way becomes a
    /// configuration error here, and a running daemon keeps its configuration.
    public static func load(path: String, probe: Bool = false) throws -> DaemonConfig {
        if probe { try probeInChild(path: path) }
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigError(file: path, key: "", problem: "no such file; create it (see fedlogin.conf(5)) or pass --config")
        }
        let config = try ConfigParser.parse(files: files(path: path))
        for (name, idp) in config.idps {
            if let secret = idp.clientSecretFile {
                guard FileManager.default.fileExists(atPath: secret) else {
                    throw ConfigError(
                        file: path, key: "idp.\(name).client_secret_file",
                        problem: "\(secret) does not exist; put the client secret there (chmod 600, owned by root)")
                }
                let (uid, mode) = try Sys.ownerAndMode(secret)
                guard uid == 0, mode & 0o077 == 0 else {
                    throw ConfigError(
                        file: path, key: "idp.\(name).client_secret_file",
                        problem: "\(secret) must be owned by root and readable by root only (chown root: \(secret); chmod 600 \(secret))")
                }
            }
        }
        return config
    }

    /// The text of `path` and of the drop-ins in `conf.d` beside it, in the
    /// order they apply (lexical).
    public static func files(path: String) throws -> [(path: String, text: String)] {
        var files = [(path: path, text: try Sys.readText(path))]
        let dropins = (path as NSString).deletingLastPathComponent + "/conf.d"
        if let names = try? FileManager.default.contentsOfDirectory(atPath: dropins) {
            for name in names.sorted() where name.hasSuffix(".conf") {
                files.append((dropins + "/" + name, try Sys.readText(dropins + "/" + name)))
            }
        }
        return files
    }

    static func probeInChild(path: String) throws {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return }
        let r: Sys.RunResult
        do {
            // Started as fedlogind: the executable may be the multi-call
            // fedlogin, which picks its command by that name.
            r = try Sys.run(
                exe, ["--config", path, "--check-config"], argv0: "fedlogind", environment: ["FEDLOGIN_NSS_DISABLE": "1", "LC_ALL": "C"])
        } catch {
            return  // no child: the parse below still runs
        }
        guard r.signaled else { return }  // parsed, or a configuration error the parse below reports
        let detail = r.stderr.split(separator: "\n").first { $0.contains("Assertion") }.map { " (\($0.suffix(120)))" } ?? ""
        throw ConfigError(
            file: path, key: "",
            problem:
                "malformed TOML in this file or a drop-in in conf.d: the parser stopped\(detail). Check the brackets, braces, quotes and commas near what you changed (fedlogind --config \(path) --check-config prints the parser's own message)"
        )
    }
}
