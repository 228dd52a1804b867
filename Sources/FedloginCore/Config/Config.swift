/// fedlogind's configuration, as read from /etc/fedlogin/fedlogin.conf and
/// its conf.d drop-ins. Every key is documented in docs/configuration.md.
public struct DaemonConfig: Sendable, Equatable {
    /// The Unix socket the PAM/NSS shims and fedloginctl connect to.
    public var socketPath = "/run/fedlogin/fedlogind.sock"
    /// Where the state database lives.
    public var stateDir = "/var/lib/fedlogin"
    /// The root of the system whose accounts fedlogin manages (shadow-utils `--prefix`).
    public var systemRoot = "/"
    /// A fixed device id; when empty the systemd app-specific machine id is used.
    public var deviceID = ""
    /// The directory service's Unix socket.
    public var directorySocket = "/run/fedlogin-directoryd/directory.sock"
    /// Seconds before a directory request is given up.
    public var directoryTimeout = 5.0
    /// The longest pause between two delivery attempts of a binding report, in seconds.
    public var reportRetryMax = 60.0
    /// Seconds between two syncs with the directory (0: only `fedloginctl sync`).
    public var syncInterval = 900.0
    public var logLevel = "info"
    public var accounts = AccountsConfig()
    public var signin = SigninConfig()
    public var idps: [String: IdPConfig] = [:]
    /// Per PAM service settings ([service.NAME]).
    public var services: [String: ServiceConfig] = [:]

    public init() {}

    /// The sign-in flows to try for a PAM service with an IdP, in order.
    public func flows(service: String, idp: IdPConfig) -> [SignInFlow] {
        let wanted = services[service]?.flows ?? ServiceConfig.builtInFlows[service] ?? idp.flows
        let allowed = wanted.filter { idp.flows.contains($0) }
        return allowed.isEmpty ? idp.flows : allowed
    }

    /// Seconds the sign-in may take for a PAM service.
    public func signinTimeout(service: String) -> Double {
        services[service]?.timeout ?? signin.timeout
    }
}

/// Known providers and their quirks.
public enum IdPPreset: String, Sendable, Equatable, CaseIterable {
    case generic
    case okta
    case entra
    case google
    case directoryIdP = "directory-idp"
}

/// What an ID token's issuer may be.
public enum IssuerRule: Sendable, Equatable {
    case oneOf([String])
    /// Entra multi-tenant: the template with `{tenantid}` replaced by the
    /// token's `tid`, which must be an allowed tenant.
    case tenantTemplate(String, allowed: [String])

    /// The issuer a discovery document must state.
    public var discoveryIssuer: String {
        switch self {
        case .oneOf(let list): list[0]
        case .tenantTemplate(let t, _): t
        }
    }
}

/// How the user signs in at the IdP.
public enum SignInFlow: String, Sendable, Equatable, CaseIterable {
    /// Authorization code + PKCE with a loopback redirect (RFC 8252); the user
    /// may also paste the address the browser ended on.
    case loopback
    /// Device authorization grant (RFC 8628) with a QR code.
    case device
}

public struct ServiceConfig: Sendable, Equatable {
    public var flows: [SignInFlow]?
    public var timeout: Double?

    public init(flows: [SignInFlow]? = nil, timeout: Double? = nil) {
        self.flows = flows
        self.timeout = timeout
    }

    /// Where no browser can reach this machine's loopback (SSH), the device
    /// grant comes first.
    public static let builtInFlows: [String: [SignInFlow]] = ["sshd": [.device, .loopback]]
}

public struct AccountsConfig: Sendable, Equatable {
    /// The range uids are taken from when the directory assigns none.
    public var uidMin: UInt32 = 70000
    public var uidMax: UInt32 = 79999
    /// The range a directory-assigned uid must lie in; separate from
    /// uid_min...uid_max, and below the subordinate ids useradd hands out
    /// from 100000.
    public var directoryUIDMin: UInt32 = 80000
    public var directoryUIDMax: UInt32 = 99999
    /// Names never announced or provisioned, beyond the built-in list (AccountRules).
    public var reservedNames: [String] = []
    public var shell = "/bin/bash"
    /// Home directories are made under this folder (inside the system root).
    public var homeRoot = "/home"
    /// Local groups every account fedlogin creates joins.
    public var groups: [String] = []
    /// The local group of administrators: members of the directory's admin groups join it.
    public var adminGroup = "sudo"
    /// Directory group -> local group. Only these directory groups give local
    /// group memberships; a directory group's own name grants nothing.
    public var groupMap: [String: String] = [:]

    public init() {}
}

public struct SigninConfig: Sendable, Equatable {
    /// Seconds a sign-in at the IdP may take before the login gives up.
    public var timeout = 120.0
    /// Seconds between KEEPALIVE frames while the daemon waits.
    public var keepalive = 2.0
    /// Seconds a single IdP HTTP request may take.
    public var httpTimeout = 10.0
    /// Clock skew tolerated on exp/iat/nbf, in seconds.
    public var clockSkew = 60.0
    /// Seconds the account check of a managed account waits for the
    /// directory's answer about the user before the login goes on from
    /// local state.
    public var revalidateTimeout = 0.3
    /// Seconds an answer of the directory about a user (or its silence)
    /// counts for later account checks of the user; 0: every check asks.
    public var revalidateCache = 300.0

    public init() {}
}

public enum ClientAuth: String, Sendable, Equatable, CaseIterable {
    case clientSecretBasic = "client_secret_basic"
    case clientSecretPost = "client_secret_post"
    case none
}

public struct IdPConfig: Sendable, Equatable {
    public var name: String
    public var displayName: String
    public var issuer: String
    public var clientID: String
    public var clientSecretFile: String?
    public var clientAuth: ClientAuth
    public var scopes: [String]
    /// The ID token claim that carries the user's company email.
    public var emailClaim: String
    /// 0: a random loopback port per sign-in; otherwise one fixed port.
    public var redirectPort: UInt16
    /// Allows an http:// issuer on a loopback address (demo and tests only).
    public var allowHTTPLoopback: Bool
    /// Accepted ID token signature algorithms.
    public var algorithms: [String]
    /// An extra CA bundle (PEM) for this IdP's HTTPS requests.
    public var caBundle: String?
    /// The flows this IdP allows, in the order fedlogin prefers them.
    public var flows: [SignInFlow] = [.loopback, .device]
    /// Provider defaults and quirks (docs/idp-presets.md).
    public var preset: IdPPreset = .generic
    /// entra: the tenant id, or "organizations" / "common" for a multi-tenant app.
    public var tenant: String?
    /// entra, multi-tenant: the tenant ids (`tid`) whose users may sign in.
    public var allowedTenants: [String] = []
    /// google: the Workspace domain the `hd` claim must name.
    public var hostedDomain: String?
    /// Whether the configuration names `email_claim` (else the preset's default applies).
    public var emailClaimSet = false
    /// Accept `email_verified` as the JSON string "true" (for IdPs known to
    /// send a string); otherwise only the JSON boolean true is accepted.
    public var emailVerifiedString = false

    /// Where the discovery document is (`/.well-known/openid-configuration` is appended).
    public var discoveryBase: String {
        if preset == .entra, let tenant, issuer.contains("{tenantid}") {
            return "https://login.microsoftonline.com/\(tenant)/v2.0"
        }
        return issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer
    }

    /// The rule the ID token's `iss` must follow.
    public var issuerRule: IssuerRule {
        switch preset {
        case .google:
            return .oneOf([issuer, issuer.replacingOccurrences(of: "https://", with: "")])
        case .entra where issuer.contains("{tenantid}"):
            return .tenantTemplate(issuer, allowed: allowedTenants)
        default:
            return .oneOf([issuer])
        }
    }

    public init(
        name: String, displayName: String? = nil, issuer: String, clientID: String,
        clientSecretFile: String? = nil, clientAuth: ClientAuth = .clientSecretBasic,
        scopes: [String] = ["openid", "email", "profile"], emailClaim: String = "email",
        redirectPort: UInt16 = 0, allowHTTPLoopback: Bool = false,
        algorithms: [String] = IdPConfig.defaultAlgorithms, caBundle: String? = nil
    ) {
        self.name = name
        self.displayName = displayName ?? name
        self.issuer = issuer
        self.clientID = clientID
        self.clientSecretFile = clientSecretFile
        self.clientAuth = clientAuth
        self.scopes = scopes
        self.emailClaim = emailClaim
        self.redirectPort = redirectPort
        self.allowHTTPLoopback = allowHTTPLoopback
        self.algorithms = algorithms
        self.caBundle = caBundle
    }

    public static let defaultAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
    /// What fedlogin can verify at all; `algorithms` must be a subset.
    public static let supportedAlgorithms = Set(defaultAlgorithms + ["EdDSA"])
}
