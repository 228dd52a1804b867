/// The decisions of a login that need no I/O: whose login this is, which
/// IdP, which password mode. The daemon gathers the facts (local account,
/// directory record, policy) and acts on the plan.

/// What the system's account database says about a name.
public struct LocalAccount: Sendable, Equatable {
    public var name: String
    public var uid: UInt32

    public init(name: String, uid: UInt32) {
        self.name = name
        self.uid = uid
    }
}

public enum PasswordMode: String, Sendable, Equatable, Codable {
    /// The directory's hash is the local password.
    case synced
    /// The user set a local passcode.
    case passcode
}

public enum LoginPlan: Sendable, Equatable {
    /// Not fedlogin's to decide: the next module (pam_unix) handles it.
    case notOurs(reason: String)
    /// A fedlogin account that already exists: the local credential decides.
    case localCredential
    /// Refused, with a message for the user and a status.
    case refuse(ResultStatus, userMessage: String, reason: String)
    /// Run the first sign-in.
    case firstLogin(FirstLoginPlan)
}

public struct FirstLoginPlan: Sendable, Equatable {
    public var localUsername: String
    public var directoryUser: DirectoryUser
    public var idp: String
    public var idpReason: String
    /// The uid the directory assigned, if any.
    public var uid: UInt32?
    /// A sign-in to reset the passcode of an existing account, not to make one.
    public var passcodeReset = false
    /// A sign-in the policy's `reauth_interval` asks of an existing account.
    public var reauthentication = false

    /// What the sign-in is for, as the user reads it after "Sign in with IDP".
    public var purpose: String {
        if reauthentication { return "to confirm that \(localUsername) is still yours (your organization asks for it regularly)" }
        return passcodeReset ? "to choose a new passcode for \(localUsername)" : "to set up \(localUsername) on this machine"
    }

    public init(localUsername: String, directoryUser: DirectoryUser, idp: String, idpReason: String, uid: UInt32?) {
        self.localUsername = localUsername
        self.directoryUser = directoryUser
        self.idp = idp
        self.idpReason = idpReason
        self.uid = uid
    }
}

public enum LoginPlanner {
    /// `uidMin` is the system's UID_MIN: below it are system accounts.
    /// `rules`: the names and directory uids never used (AccountRules).
    public static func plan(
        requested: String, local: LocalAccount?, managed: Bool, directoryUser: DirectoryUser?, policy: DevicePolicy?,
        configuredIdPs: Set<String>, uidMin: UInt32, rules: AccountRules, uidTaken: (UInt32) -> Bool
    ) -> LoginPlan {
        if requested == "root" || local?.uid == 0 {
            return .notOurs(reason: "root is never a fedlogin account")
        }
        if let local {
            if managed { return .localCredential }
            if local.uid < uidMin { return .notOurs(reason: "system account (uid \(local.uid))") }
            return .notOurs(reason: "local account not created by fedlogin")
        }
        guard let user = directoryUser else {
            return .refuse(
                .userUnknown, userMessage: "\(requested) is not known to the directory. Check the username, or ask your administrator.",
                reason: "user unknown to the directory")
        }
        guard !user.disabled else {
            return .refuse(
                .authError, userMessage: "The account \(requested) is disabled in the directory. Ask your administrator.",
                reason: "user disabled in the directory")
        }
        let localName: String
        do {
            localName = try LocalUsername.derive(username: user.username, email: user.email)
        } catch {
            return .refuse(
                .authError, userMessage: "fedlogin cannot make a local account for \(requested): \(error). Ask your administrator.",
                reason: "no valid local username: \(error)")
        }
        guard localName == requested else {
            return .refuse(
                .authError, userMessage: "Your login name on this machine is \(localName). Log in as \(localName).",
                reason: "requested name \(requested) maps to \(localName)")
        }
        if let why = rules.nameProblem(localName) {
            return .refuse(
                .authError, userMessage: "fedlogin never makes an account named \(localName) on this machine. Ask your administrator.",
                reason: "reserved name: \(why)")
        }
        if let uid = user.uid {
            guard uid >= uidMin else {
                return .refuse(
                    .authError, userMessage: "The directory assigns \(localName) a system uid (\(uid)). Ask your administrator.",
                    reason: "directory uid \(uid) below UID_MIN \(uidMin)")
            }
            if let why = rules.uidProblem(uid) {
                return .refuse(
                    .authError,
                    userMessage: "The uid the directory assigns to \(localName) (\(uid)) cannot be used on this machine. Ask your administrator.",
                    reason: "directory uid refused: \(why)")
            }
            guard !uidTaken(uid) else {
                return .refuse(
                    .authError,
                    userMessage: "The uid the directory assigns to \(localName) (\(uid)) is taken on this machine. Ask your administrator.",
                    reason: "directory uid \(uid) already in use")
            }
        }
        guard let policy else {
            return .refuse(.unavailable, userMessage: "The directory gives no device policy.", reason: "no device policy")
        }
        guard let (idp, why) = policy.idp(for: user) else {
            return .refuse(
                .authError, userMessage: "No identity provider is set for \(localName). Ask your administrator.",
                reason: "no IdP routes this user and no default is set")
        }
        guard configuredIdPs.contains(idp) else {
            return .refuse(
                .unavailable, userMessage: "The identity provider \"\(idp)\" is not set up on this machine. Ask your administrator.",
                reason: "IdP \(idp) (\(why)) is not configured")
        }
        return .firstLogin(
            FirstLoginPlan(localUsername: localName, directoryUser: user, idp: idp, idpReason: why, uid: user.uid))
    }

    public enum PasswordDecision: Sendable, Equatable {
        case useDirectoryHash(String)
        case askPasscode(notice: String?)
        case refuse(userMessage: String, reason: String)
    }

    /// Password sync = yes: the directory's hash, as-is, when libcrypt can
    /// verify it; no hash: a local passcode instead. Sync = no: a passcode.
    /// `associated`: an administrator associated the user with this device
    /// (the directory's `access`). An LDAP directory gives a device the hash
    /// of its associated users only (docs/ldap.md), so a self-service user
    /// without a hash is told that, not that the directory syncs no password
    /// (a password kept at the IdP, `external`, is never synced: said so).
    public static func passwordDecision(
        user: DirectoryUser, policy: DevicePolicy, associated: Bool = true, hashSupported: (String) -> Bool
    ) -> PasswordDecision {
        guard policy.passwordSync(for: user) else { return .askPasscode(notice: nil) }
        guard let hash = user.passwordHash, !hash.isEmpty else {
            if !associated && user.passwordAuthority != .external {
                return .askPasscode(
                    notice:
                        "Your directory password is not available on this device (an administrator has not assigned you to it), so you will set a local passcode for this machine."
                )
            }
            return .askPasscode(
                notice: "Your directory password is not synced to devices, so you will set a local passcode for this machine.")
        }
        // DES and NT hashes are refused whatever libcrypt can do: both are
        // cheap to crack and no directory should sync them.
        let weak = !hash.hasPrefix("$") || hash.hasPrefix("$3$")
        guard !weak, hashSupported(hash) else {
            let scheme = hash.hasPrefix("$") ? "$" + (hash.split(separator: "$").first.map(String.init) ?? "?") + "$" : "(no $id$ prefix)"
            return .refuse(
                userMessage: "Your directory password cannot be used on this machine: its hash scheme is not supported here. Ask your administrator.",
                reason: "unsupported password hash scheme \(scheme)")
        }
        return .useDirectoryHash(hash)
    }
}
