import FedloginCore
import FedloginSystem
import Foundation
import Logging
import NIOConcurrencyHelpers

/// An IdP failure, with the likely cause in words an admin can act on.
public struct IdPError: Error, CustomStringConvertible {
    public var description: String
    /// Suitable to show the user (no secrets, no internals).
    public var userMessage: String

    init(_ description: String, user: String? = nil) {
        self.description = description
        self.userMessage = user ?? "The sign-in service cannot be used right now. Try again later, or ask your administrator."
    }
}

public struct Discovery: Decodable, Sendable {
    public var issuer: String
    public var authorizationEndpoint: String
    public var tokenEndpoint: String
    public var jwksURI: String
    public var deviceAuthorizationEndpoint: String?

    enum CodingKeys: String, CodingKey {
        case issuer
        case authorizationEndpoint = "authorization_endpoint"
        case tokenEndpoint = "token_endpoint"
        case jwksURI = "jwks_uri"
        case deviceAuthorizationEndpoint = "device_authorization_endpoint"
    }
}

/// Talks to one IdP: discovery, JWKS (cached for an hour, refetched early
/// for an unknown key id, see `jwks`), and the token endpoint.
public final class IdPClient: Sendable {
    public let config: IdPConfig
    let http: any HTTPTransport
    let timeout: Double
    let logger: Logger
    struct Cache {
        var discovery: Discovery?
        var jwks: Data?
        var jwksFetchedAt: Double = 0
        /// Key ids that made fedlogind refetch the JWKS, and when.
        var refetchedFor: [String: Double] = [:]
    }
    let cache = NIOLockedValueBox(Cache())

    /// `transport` nil: libcurl (`HTTPClient`) with `timeout` and the IdP's CA bundle.
    public init(config: IdPConfig, timeout: Double, logger: Logger, transport: (any HTTPTransport)? = nil) {
        self.config = config
        self.timeout = timeout
        self.logger = logger
        http = transport ?? HTTPClient(timeout: timeout, caBundle: config.caBundle)
    }

    func get(_ url: String, what: String) async throws -> Data {
        let response = try await send(what: what, url: url) { try await http.get(url, headers: ["Accept: application/json"]) }
        guard response.status == 200 else {
            throw IdPError("\(config.name): \(what) at \(url) answered HTTP \(response.status); check the issuer URL")
        }
        return response.body
    }

    func send(what: String, url: String, _ body: () async throws -> HTTPClient.Response) async throws -> HTTPClient.Response {
        do {
            return try await body()
        } catch let e as HTTPClient.Failure {
            throw IdPError("\(config.name): \(what) at \(url) failed: \(e.description) (is the IdP reachable from this machine?)")
        }
    }

    public func discovery() async throws -> Discovery {
        if let d = cache.withLockedValue({ $0.discovery }) { return d }
        let data = try await get(config.discoveryBase + "/.well-known/openid-configuration", what: "discovery")
        let d: Discovery
        do {
            d = try JSONDecoder().decode(Discovery.self, from: data)
        } catch {
            throw IdPError("\(config.name): the discovery document is not valid OpenID Connect metadata: \(error)")
        }
        var endpoints = [
            (key: "authorization_endpoint", url: d.authorizationEndpoint), (key: "token_endpoint", url: d.tokenEndpoint),
            (key: "jwks_uri", url: d.jwksURI),
        ]
        if let device = d.deviceAuthorizationEndpoint { endpoints.append((key: "device_authorization_endpoint", url: device)) }
        if let problem = config.discoveryProblem(issuer: d.issuer, endpoints: endpoints) {
            throw IdPError("\(config.name): \(problem)")
        }
        cache.withLockedValue { $0.discovery = d }
        return d
    }

    /// The JWKS: cached for an hour; refetched early for a key id the cache
    /// lacks (a rotation), at most once per key id in 10 minutes and once a
    /// second overall, so unknown key ids cannot make fedlogind hammer the IdP.
    public func jwks(refreshFor kid: String? = nil, now: Double = Date().timeIntervalSince1970) async throws -> Data {
        let fresh: Data? = cache.withLockedValue { c in
            guard let cached = c.jwks, now - c.jwksFetchedAt < 3600 else { return nil }
            guard let kid else { return cached }
            let key = kid.isEmpty ? "(none)" : kid
            if let last = c.refetchedFor[key], now - last < 600 { return cached }
            if now - c.jwksFetchedAt < 1 { return cached }
            c.refetchedFor[key] = now
            return nil
        }
        if let fresh { return fresh }
        let d = try await discovery()
        let data = try await get(d.jwksURI, what: "JWKS")
        cache.withLockedValue {
            $0.jwks = data
            $0.jwksFetchedAt = now
        }
        return data
    }

    public struct TokenResponse: Decodable, Sendable {
        public var idToken: String?
        public var error: String?
        public var errorDescription: String?

        enum CodingKeys: String, CodingKey {
            case idToken = "id_token"
            case error
            case errorDescription = "error_description"
        }
    }

    /// Reads the client secret; the file must be owned by root and private.
    func clientSecret() throws -> String? {
        guard config.clientAuth != .none, let path = config.clientSecretFile else { return nil }
        let (uid, mode) = try Sys.ownerAndMode(path)
        guard uid == 0, mode & 0o077 == 0 else {
            throw IdPError("idp.\(config.name).client_secret_file: \(path) must be owned by root and not readable by others (chmod 600)")
        }
        let s = try Sys.readText(path).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !s.isEmpty else { throw IdPError("idp.\(config.name).client_secret_file: \(path) is empty") }
        return s
    }

    /// The authorization-code exchange (RFC 6749 §4.1.3 with PKCE, RFC 7636).
    public func exchange(code: String, verifier: String, redirectURI: String) async throws -> String {
        let d = try await discovery()
        var form: [(String, String)] = [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("code_verifier", verifier),
        ]
        return try await tokenRequest(endpoint: d.tokenEndpoint, form: &form)
    }

    func tokenRequest(endpoint: String, form: inout [(String, String)]) async throws -> String {
        var headers = ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"]
        try addClientAuth(&form, &headers)
        let body = Data(FormEncoding.encode(form).utf8)
        let response = try await send(what: "token request", url: endpoint) {
            try await http.post(endpoint, headers: headers, body: body)
        }
        let parsed = try? JSONDecoder().decode(TokenResponse.self, from: response.body)
        if response.status == 200, let token = parsed?.idToken { return token }
        throw Self.explain(status: response.status, error: parsed?.error, description: parsed?.errorDescription, idp: config)
    }

    public struct DeviceAuthorization: Decodable, Sendable {
        public var deviceCode: String
        public var userCode: String
        public var verificationURI: String
        public var verificationURIComplete: String?
        /// Seconds, bounded (DeviceTiming).
        public var expiresIn: Double
        /// Seconds between polls, bounded (DeviceTiming); never nil.
        public var interval: Double?
        /// What was clamped or replaced, for the log.
        public var adjusted: [String] = []

        enum CodingKeys: String, CodingKey {
            case deviceCode = "device_code"
            case userCode = "user_code"
            case verificationURI = "verification_uri"
            case verificationURL = "verification_url"  // Google's spelling
            case verificationURIComplete = "verification_uri_complete"
            case expiresIn = "expires_in"
            case interval
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            deviceCode = try c.decode(String.self, forKey: .deviceCode)
            userCode = try c.decode(String.self, forKey: .userCode)
            verificationURI =
                try c.decodeIfPresent(String.self, forKey: .verificationURI)
                ?? c.decode(String.self, forKey: .verificationURL)
            verificationURIComplete = try c.decodeIfPresent(String.self, forKey: .verificationURIComplete)
            // A number the IdP sends is bounded, whatever it is (a value
            // JSON cannot hold as a Double counts as absent).
            let timing = DeviceTiming(
                interval: (try? c.decodeIfPresent(JSONValue.self, forKey: .interval)) ?? nil,
                expiresIn: (try? c.decodeIfPresent(JSONValue.self, forKey: .expiresIn)) ?? nil)
            expiresIn = timing.expiresIn
            interval = timing.interval
            adjusted = timing.adjusted
        }
    }

    /// RFC 8628 §3.1-3.2: asks for a device code and a user code.
    public func startDevice() async throws -> DeviceAuthorization {
        let d = try await discovery()
        guard let endpoint = d.deviceAuthorizationEndpoint else {
            throw IdPError("\(config.name): the IdP offers no device authorization endpoint; remove \"device\" from idp.\(config.name).flows")
        }
        var form: [(String, String)] = [("scope", config.scopes.joined(separator: " "))]
        var headers = ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"]
        try addClientAuth(&form, &headers)
        let body = Data(FormEncoding.encode(form).utf8)
        let response = try await send(what: "device authorization", url: endpoint) {
            try await http.post(endpoint, headers: headers, body: body)
        }
        if response.status == 200 {
            let start: DeviceAuthorization
            do {
                start = try JSONDecoder().decode(DeviceAuthorization.self, from: response.body)
            } catch {
                throw IdPError("\(config.name): the device authorization answer is not RFC 8628 JSON: \(error)")
            }
            if !start.adjusted.isEmpty {
                logger.warning(
                    "\(config.name): the device authorization answer's numbers are out of range; using \(start.adjusted.joined(separator: ", ")) (interval 1-60 s, expires_in 1-3600 s)"
                )
            }
            return start
        }
        let parsed = try? JSONDecoder().decode(TokenResponse.self, from: response.body)
        throw Self.explain(status: response.status, error: parsed?.error, description: parsed?.errorDescription, idp: config)
    }

    public enum DevicePoll: Sendable {
        case token(String)
        case pending
        case slowDown
        case denied
        case expired
    }

    /// RFC 8628 §3.4-3.5: one poll of the token endpoint.
    public func pollDevice(code: String) async throws -> DevicePoll {
        let d = try await discovery()
        var form: [(String, String)] = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", code)]
        var headers = ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"]
        try addClientAuth(&form, &headers)
        let body = Data(FormEncoding.encode(form).utf8)
        let response = try await send(what: "token request", url: d.tokenEndpoint) {
            try await http.post(d.tokenEndpoint, headers: headers, body: body)
        }
        let parsed = try? JSONDecoder().decode(TokenResponse.self, from: response.body)
        if response.status == 200, let token = parsed?.idToken { return .token(token) }
        switch parsed?.error {
        case "authorization_pending": return .pending
        case "slow_down": return .slowDown
        case "access_denied": return .denied
        case "expired_token": return .expired
        default:
            throw Self.explain(status: response.status, error: parsed?.error, description: parsed?.errorDescription, idp: config)
        }
    }

    func addClientAuth(_ form: inout [(String, String)], _ headers: inout [String]) throws {
        let secret = try clientSecret()
        switch config.clientAuth {
        case .clientSecretBasic:
            // RFC 6749 §2.3.1: both parts form-encoded, then base64.
            let pair = FormEncoding.escape(config.clientID) + ":" + FormEncoding.escape(secret ?? "")
            headers.append("Authorization: Basic " + Data(pair.utf8).base64EncodedString())
        case .clientSecretPost:
            form.append(("client_id", config.clientID))
            form.append(("client_secret", secret ?? ""))
        case .none:
            form.append(("client_id", config.clientID))
        }
    }

    public enum ClientProbe: Sendable, Equatable {
        case accepted
        case unknownClient(String)
        case wrongSecret(String)
        case redirectRefused(String)
        case rejected(String)
    }

    /// The redirect URI a sign-in sends: the loopback listener's, on
    /// `redirect_port` when one is set. With no fixed port a sign-in uses an
    /// ephemeral port, which an IdP following RFC 8252 §7.3 matches against
    /// the portless registration this returns.
    public static func signInRedirectURI(_ idp: IdPConfig) -> String {
        idp.redirectPort == 0 ? "http://127.0.0.1/callback" : "http://127.0.0.1:\(idp.redirectPort)/callback"
    }

    /// Checks the client credentials without a user: an authorization-code
    /// request with a made-up code and the redirect URI a sign-in would use.
    /// An IdP that accepts the client refuses the code.
    public func probeClient() async throws -> ClientProbe {
        let d = try await discovery()
        var form: [(String, String)] = [
            ("grant_type", "authorization_code"), ("code", "fedlogin-idp-check"),
            ("redirect_uri", Self.signInRedirectURI(config)), ("code_verifier", String(repeating: "fedlogin-check-", count: 4)),
        ]
        var headers = ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"]
        try addClientAuth(&form, &headers)
        let body = Data(FormEncoding.encode(form).utf8)
        let response = try await send(what: "token request", url: d.tokenEndpoint) {
            try await http.post(d.tokenEndpoint, headers: headers, body: body)
        }
        let parsed = try? JSONDecoder().decode(TokenResponse.self, from: response.body)
        return Self.classifyProbe(status: response.status, error: parsed?.error, description: parsed?.errorDescription)
    }

    /// What a token endpoint's answer to the made-up code says about the
    /// client. Real IdPs refuse an unknown code with `invalid_grant`, and some
    /// with `invalid_code` or `invalid_request` and a description about the
    /// code: each means the client itself was accepted.
    public static func classifyProbe(status: Int, error: String?, description: String?) -> ClientProbe {
        let detail = [error, description].compactMap { $0 }.joined(separator: ": ")
        let text = (description ?? "").lowercased()
        let aboutRedirect = text.contains("redirect")
        let aboutClient = text.contains("client") || text.contains("secret") || text.contains("credential")
        switch error {
        case "invalid_grant", "invalid_code":
            return aboutRedirect ? .redirectRefused(detail) : .accepted
        case "invalid_request":
            if aboutRedirect { return .redirectRefused(detail) }
            if text.contains("code") && !aboutClient && !text.contains("grant_type") { return .accepted }
            return .rejected(detail)
        case "invalid_client", "unauthorized_client":
            if text.contains("secret") || text.contains("credential") { return .wrongSecret(detail) }
            if text.contains("unknown") || text.contains("not found") || text.contains("does not exist") || text.contains("client id")
                || text.contains("client_id")
            {
                return .unknownClient(detail)
            }
            if aboutRedirect { return .redirectRefused(detail) }
            return .rejected(detail)
        default:
            return .rejected(detail.isEmpty ? "HTTP \(status)" : detail)
        }
    }

    /// Turns a token endpoint error into its likely cause.
    static func explain(status: Int, error: String?, description: String?, idp: IdPConfig) -> IdPError {
        let detail = [error, description].compactMap { $0 }.joined(separator: ": ")
        let user = "The sign-in could not be completed. Ask your administrator to check fedlogin's IdP settings."
        switch error {
        case "invalid_client", "unauthorized_client":
            return IdPError(
                "\(idp.name): the IdP rejected fedlogin's client credentials (\(detail)); check idp.\(idp.name).client_id and the secret in client_secret_file, and regenerate the secret at the IdP if it keeps failing",
                user: user)
        case "invalid_grant":
            let d = (description ?? "").lowercased()
            if d.contains("redirect") {
                return IdPError(
                    "\(idp.name): the redirect URI was refused (\(detail)); register http://127.0.0.1/callback (any port) as a redirect URI of the app at the IdP, or set idp.\(idp.name).redirect_port to the port it allows",
                    user: user)
            }
            if d.contains("verifier") || d.contains("pkce") || d.contains("challenge") {
                return IdPError("\(idp.name): PKCE verification failed (\(detail))", user: user)
            }
            return IdPError(
                "\(idp.name): the authorization code was refused (\(detail)); it may have expired or been used already",
                user: "The sign-in took too long or was already used. Please try again.")
        case nil:
            return IdPError("\(idp.name): the token endpoint answered HTTP \(status) without an OAuth error", user: user)
        default:
            return IdPError("\(idp.name): the token endpoint refused the request (\(detail))", user: user)
        }
    }
}
