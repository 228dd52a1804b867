import ArgumentParser
import FedloginCore
import FedloginOIDC
import FedloginSystem
import Foundation

struct IdP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idp", abstract: "Check the IdP configuration.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch each IdP's discovery document and keys, and test its client credentials (root: reads the secret).")

        @Option(help: "The configuration file.")
        var config = "/etc/fedlogin/fedlogin.conf"

        @Argument(help: "The IdP to check (default: all).")
        var name: String?

        func run() async throws {
            let path = config.hasPrefix("/") ? config : FileManager.default.currentDirectoryPath + "/" + config
            let conf: DaemonConfig
            do {
                conf = try ConfigLoader.load(path: path)
            } catch {
                print("configuration: \(error)")
                throw ExitCode(78)
            }
            let names = name.map { [$0] } ?? conf.idps.keys.sorted()
            guard !names.isEmpty else {
                print("no IdP is configured: add an [idp.NAME] section to \(path)")
                throw ExitCode(1)
            }
            var failed = false
            for n in names {
                guard let idp = conf.idps[n] else {
                    print("\(n): no such IdP in \(path) (configured: \(conf.idps.keys.sorted().joined(separator: ", ")))")
                    failed = true
                    continue
                }
                if !(await check(idp, timeout: conf.signin.httpTimeout)) { failed = true }
            }
            if failed { throw ExitCode(1) }
        }

        func check(_ idp: IdPConfig, timeout: Double) async -> Bool {
            print("\(idp.name) (\(idp.displayName), preset \(idp.preset.rawValue))")
            let client = IdPClient(config: idp, timeout: timeout, logger: .init(label: "fedloginctl"))
            do {
                let d = try await client.discovery()
                print("  discovery      ok: issuer \(d.issuer)")
                print("  authorization  \(d.authorizationEndpoint)")
                print("  token          \(d.tokenEndpoint)")
                print("  device grant   \(d.deviceAuthorizationEndpoint ?? "not offered")")
                let jwks = try await client.jwks()
                let obj = (try? JSONSerialization.jsonObject(with: jwks)) as? [String: Any]
                let keys = (obj?["keys"] as? [[String: Any]]) ?? []
                let described = keys.map { "\($0["kid"] as? String ?? "(no kid)") \($0["alg"] as? String ?? $0["kty"] as? String ?? "?")" }
                print("  keys           \(keys.count): \(described.joined(separator: ", "))")
                guard !keys.isEmpty else {
                    print("  PROBLEM: the IdP publishes no signing keys at \(d.jwksURI)")
                    return false
                }
                switch try await client.probeClient() {
                case .accepted:
                    print("  client         ok: the IdP accepts client id \(idp.clientID) (\(idp.clientAuth.rawValue))")
                    return true
                case .unknownClient(let detail):
                    print("  PROBLEM: the IdP does not know client id \(idp.clientID) (\(detail)).")
                    print("  Check idp.\(idp.name).client_id against the app registered at the IdP.")
                case .wrongSecret(let detail):
                    if idp.clientAuth == .none {
                        print(
                            "  PROBLEM: the IdP wants a client secret, but idp.\(idp.name) is a public client (client_auth = \"none\") (\(detail)).")
                        print(
                            "  Register the app at the IdP as a public client (no secret, PKCE), or set idp.\(idp.name).client_auth and client_secret_file to the secret the IdP issued."
                        )
                    } else {
                        print("  PROBLEM: the IdP rejects the client secret (\(detail)).")
                        print(
                            "  Check the secret in \(idp.clientSecretFile ?? "client_secret_file"); regenerate it at the IdP and try again if it keeps failing."
                        )
                    }
                case .redirectRefused(let detail):
                    print("  PROBLEM: the IdP refuses the redirect URI \(IdPClient.signInRedirectURI(idp)) (\(detail)).")
                    print(redirectAdvice(idp))
                case .rejected(let detail):
                    print("  PROBLEM: the IdP rejects fedlogin's client (\(detail)).")
                    if idp.clientAuth == .none {
                        print(
                            "  Check idp.\(idp.name).client_id, that the app at the IdP is a public client (no secret, PKCE) allowed the authorization code grant, and its redirect URIs."
                        )
                    } else {
                        print(
                            "  Check idp.\(idp.name).client_id, client_auth (\(idp.clientAuth.rawValue)) and the secret; regenerate the secret at the IdP if it keeps failing."
                        )
                    }
                    print(redirectAdvice(idp))
                }
            } catch {
                print("  PROBLEM: \(error)")
            }
            return false
        }

        /// Where the redirect URI a sign-in sends must be registered.
        func redirectAdvice(_ idp: IdPConfig) -> String {
            if idp.redirectPort == 0 {
                return
                    "  A sign-in sends http://127.0.0.1:<any port>/callback: register http://127.0.0.1/callback as a redirect URI with any loopback port allowed, or set idp.\(idp.name).redirect_port to the port registered."
            }
            return
                "  A sign-in sends \(IdPClient.signInRedirectURI(idp)) (redirect_port \(idp.redirectPort)): register exactly that redirect URI at the IdP."
        }
    }
}
