import FedloginCore
import Foundation

/// Reads fedlogin.conf and the `conf.d/*.conf` drop-ins beside it, in lexical order.
public enum ConfigLoader {
    public static func load(path: String) throws -> DaemonConfig {
        var files: [(path: String, text: String)] = []
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigError(file: path, key: "", problem: "no such file; create it (see fedlogin.conf(5)) or pass --config")
        }
        files.append((path, try Sys.readText(path)))
        let dropins = (path as NSString).deletingLastPathComponent + "/conf.d"
        if let names = try? FileManager.default.contentsOfDirectory(atPath: dropins) {
            for name in names.sorted() where name.hasSuffix(".conf") {
                files.append((dropins + "/" + name, try Sys.readText(dropins + "/" + name)))
            }
        }
        let config = try ConfigParser.parse(files: files)
        for (name, idp) in config.idps {
            if let secret = idp.clientSecretFile {
                guard FileManager.default.fileExists(atPath: secret) else {
                    throw ConfigError(file: path, key: "idp.\(name).client_secret_file", problem: "\(secret) does not exist; put the client secret there (chmod 600, owned by root)")
                }
                let (uid, mode) = try Sys.ownerAndMode(secret)
                guard uid == 0, mode & 0o077 == 0 else {
                    throw ConfigError(file: path, key: "idp.\(name).client_secret_file", problem: "\(secret) must be owned by root and readable by root only (chown root: \(secret); chmod 600 \(secret))")
                }
            }
        }
        return config
    }
}
