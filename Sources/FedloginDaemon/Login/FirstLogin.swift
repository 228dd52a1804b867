import Crypto
import FedloginCore
import Foundation
import Logging

/// One login request from pam_fedlogin: decide whose it is and, for a
/// directory user with no local account, run the first sign-in, create the
/// account, and queue the binding report.
struct LoginFlow: Sendable {
    let runtime: Runtime
    var config: DaemonConfig { runtime.config }
    var logger: Logger { runtime.logger }

    /// What ends a login early: a status, what the user is told, what the log says.
    struct Stop: Error {
        var status: ResultStatus
        var userMessage: String?
        var reason: String
    }

    func authenticate(_ request: PAMRequest, conv: any PAMConversation) async -> (ResultStatus, String) {
        var log = logger
        log[metadataKey: "user"] = "\(request.user)"
        log[metadataKey: "service"] = "\(request.service)"
        // No account name holds a control character: refuse it before any lookup
        // (the log handler shows it escaped).
        if SafeText.hasUnsafe(request.user) {
            log.notice("login refused: the user name holds control characters", metadata: ["message_id": "\(MessageID.loginFailure)"])
            return (.userUnknown, "user name with control characters")
        }
        do {
            return try await run(request, conv: conv, log: log)
        } catch {
            return await result(after: error, .login, conv: conv, log: log)
        }
    }

    func run(_ request: PAMRequest, conv: any PAMConversation, log: Logger) async throws -> (ResultStatus, String) {
        // root is never fedlogin's: answer before touching any file.
        if request.user == "root" { return (.ignore, "root is never a fedlogin account") }
        let accounts = runtime.accounts
        var local = try accounts.lookup(request.user)
        let record = try runtime.state.account(request.user)
        var pending: StateStore.Account?
        if let record, let l = local, l.uid == record.uid {
            if let stop = Self.lockStop(record, now: runtime.clock.now()) { throw stop }
            if record.state == .pending {
                // Made ahead of the first sign-in: the sign-in completes it.
                pending = record
                local = nil
            }
        }
        let managed = record?.state == .active
        var directoryUser: DirectoryUser?
        var policy: DevicePolicy?
        var access: DeviceAccess?
        if local == nil && request.user != "root" {
            do {
                (directoryUser, policy, access) = try await conv.keepingAlive {
                    try await runtime.directory.userOnDevice(request.user, device: runtime.deviceID)
                }
            } catch let e as DirectoryClient.Unavailable {
                throw Stop(
                    status: .unavailable,
                    userMessage: "The directory cannot be reached, and a first login on this machine needs it. Try again later.",
                    reason: e.description)
            }
        }
        let uidMin = runtime.uidMin
        let plan = LoginPlanner.plan(
            requested: request.user, local: local, managed: managed, directoryUser: directoryUser, policy: policy,
            configuredIdPs: Set(runtime.idps.keys), uidMin: uidMin, rules: runtime.accountRules,
            uidTaken: { [pending] uid in
                if let pending { return pending.uid != uid }
                return (try? accounts.uidInUse(uid)) ?? true
                    || ((try? runtime.state.reservedUIDs(except: request.user).contains(uid)) ?? true)
            })
        switch plan {
        case .notOurs(let reason):
            log.debug("not a fedlogin login: \(reason)")
            return (.ignore, reason)
        case .localCredential:
            return (.ignore, "fedlogin account: the local credential decides")
        case .refuse(let status, let message, let reason):
            throw Stop(status: status, userMessage: message, reason: reason)
        case .firstLogin(let plan):
            // Who may use this device is the directory's `access` answer.
            guard let access else {
                throw Stop(status: .userUnknown, userMessage: nil, reason: "the directory no longer knows the user")
            }
            if let refusal = access.refusal {
                throw Stop(
                    status: .permissionDenied, userMessage: refusal.userMessage(user: plan.localUsername),
                    reason: "the directory does not let the user use this device: \(refusal.rawValue)")
            }
            // Sign-ins for one user may run side by side (a client that
            // opened a login and never signs in blocks nobody); the first
            // verified one makes the account (`claimAccount`).
            var log = log
            log[metadataKey: "idp"] = "\(plan.idp)"
            log.info("first login: signing in with \(plan.idp) (\(plan.idpReason))")
            return try await firstLogin(
                plan, policy: policy!, associated: access.associated, pending: pending, request: request, conv: conv, log: log)
        }
    }

    /// A managed account that is locked: by sync (disabled, removed,
    /// unassociated) or by failed attempts until a time.
    static func lockStop(_ a: StateStore.Account, now: Double) -> Stop? {
        if let r = a.lockedReason {
            let why = SyncLock(rawValue: r)?.userMessage ?? r
            return Stop(
                status: .permissionDenied, userMessage: "The account \(a.username) is locked: it is \(why). Ask your administrator.",
                reason: "account locked: \(r)")
        }
        if let until = a.lockout.locked(now: now) {
            return Stop(
                status: .permissionDenied,
                userMessage:
                    "The account \(a.username) is locked after too many failed attempts until \(Self.clock(until)). Try again then, or ask an administrator to unlock it.",
                reason: "locked out after failed attempts")
        }
        return nil
    }

    /// A time as the user reads it: local time with its zone.
    static func clock(_ t: Double) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss zzz"
        return f.string(from: Date(timeIntervalSince1970: t))
    }

    func firstLogin(
        _ plan: FirstLoginPlan, policy: DevicePolicy, associated: Bool = true, pending: StateStore.Account? = nil, request: PAMRequest,
        conv: any PAMConversation, log: Logger
    ) async throws -> (ResultStatus, String) {
        let client = runtime.idps[plan.idp]!
        let identity = try await SignIn(runtime: runtime).run(client: client, plan: plan, request: request, conv: conv, log: log)
        log.notice(
            "ID token verified", metadata: ["message_id": "\(MessageID.tokenVerified)", "issuer": "\(identity.issuer)", "sub": "\(identity.subject)"])
        guard IDTokenValidator.emailsMatch(identity.email, plan.directoryUser.email) else {
            throw Stop(
                status: .authError,
                userMessage:
                    "You signed in as \(SafeText.escape(identity.email)), but \(plan.localUsername) belongs to another person. Sign in with your own account.",
                reason: "email mismatch: token has a different email than the directory user")
        }
        log.notice(
            "the signed-in email matches the directory user",
            metadata: ["message_id": "\(MessageID.emailMatched)", "email": "\(identity.email)"])
        // The first verified sign-in makes the account; any other is told it exists.
        guard runtime.inFlight.begin(plan.localUsername) else {
            throw Stop(
                status: .authError,
                userMessage:
                    "Another sign-in is setting up \(plan.localUsername) right now. Log in again in a moment, with the password or passcode chosen there.",
                reason: "another first login for this user is making the account")
        }
        defer { runtime.inFlight.end(plan.localUsername) }
        try claimAccount(plan.localUsername, pending: pending)

        let decision = LoginPlanner.passwordDecision(
            user: plan.directoryUser, policy: policy, associated: associated, hashSupported: Sys.hashSupported)
        let hash: String
        let mode: PasswordMode
        switch decision {
        case .refuse(let message, let reason):
            throw Stop(status: .authError, userMessage: message, reason: reason)
        case .useDirectoryHash(let h):
            hash = h
            mode = .synced
            try await conv.info("Your directory password is your password on this machine.")
        case .askPasscode(let notice):
            if let notice { try await conv.info(notice) }
            hash = try await choosePasscode(
                user: plan.localUsername, policy: policy.passcode, timeout: config.signinTimeout(service: request.service), conv: conv)
            mode = .passcode
        }
        try await conv.keepingAlive {
            try await provision(plan: plan, policy: policy, pending: pending, identity: identity, hash: hash, mode: mode, log: log)
        }
        // Greeted by the directory's display name, the account's GECOS (not the IdP's name claim),
        // as the session opens.
        let gecos = NSSResolver.gecos(plan.directoryUser.displayName ?? "").trimmingCharacters(in: .whitespaces)
        try await conv.sessionInfo(
            "Welcome, \(gecos.isEmpty ? plan.localUsername : gecos). Your account \(plan.localUsername) is ready on this machine.")
        // The directory let the user in at the start of this login: the
        // account check that follows need not ask again.
        runtime.revalidations.record(plan.localUsername, .allowed, at: runtime.clock.now())
        log.notice(
            "first login complete: account created and bound",
            metadata: ["message_id": "\(MessageID.loginSuccess)", "password_mode": "\(mode.rawValue)"])
        return (.success, "first login: account created")
    }

    /// After a verified sign-in, with the user's in-flight mark held: the
    /// account must still be the one this login set out to make (another
    /// sign-in, a crash or a second daemon may have made it meanwhile).
    func claimAccount(_ name: String, pending: StateStore.Account?) throws {
        let record = try runtime.state.account(name)
        let stillOurs =
            pending == nil
            ? try runtime.accounts.lookup(name) == nil && record?.state != .active && record?.state != .pending
            : record?.state == .pending
        guard stillOurs else {
            throw Stop(
                status: .authError,
                userMessage:
                    "The account \(name) now exists on this machine: another sign-in just made it. Log in again with its password or passcode.",
                reason: "account made by another sign-in meanwhile")
        }
    }

    /// Asks for a new passcode twice and checks it against the policy; returns its hash.
    /// Both answers are held in `SecretBytes`, wiped once hashed or refused.
    func choosePasscode(user: String, policy: PasscodePolicy, timeout: Double, conv: any PAMConversation) async throws -> String {
        guard
            let chosen = try await conv.askNewSecret(
                prompt: "Choose a passcode for \(user) on this machine: ", repeatPrompt: "Repeat the passcode: ",
                weak: "That passcode is too weak", mismatch: "The passcodes do not match.", timeout: timeout,
                problems: { s in s.withUnsafeBytes { policy.problems(withUTF8: $0) } })
        else {
            throw Stop(
                status: .authError, userMessage: "No passcode was set. Start the login again to try once more.",
                reason: "passcode not set after 3 tries")
        }
        defer { chosen.wipe() }
        return try await conv.keepingAlive { try await Blocking.compute { try Sys.hashPasscode(chosen) } }
    }

    /// Creates the account so that a crash at any point leaves either nothing
    /// or a complete, bound account with its report queued.
    func provision(
        plan: FirstLoginPlan, policy: DevicePolicy, pending: StateStore.Account?, identity: VerifiedIdentity, hash: String,
        mode: PasswordMode, log: Logger
    ) async throws {
        try await Blocking.accountChange {
            try provisionNow(plan: plan, policy: policy, pending: pending, identity: identity, hash: hash, mode: mode, log: log)
            // The sign-in is the directory's answer: recorded in this turn
            // on the queue, not in a second one behind other logins'.
            runtime.directoryAnsweredNow(plan.localUsername, offlineMax: policy.offlineMax, at: runtime.clock.now(), signedIn: true)
        }
    }

    /// `provision`'s work, on the account-change queue.
    func provisionNow(
        plan: FirstLoginPlan, policy: DevicePolicy, pending: StateStore.Account?, identity: VerifiedIdentity, hash: String,
        mode: PasswordMode, log: Logger
    ) throws {
        let provisioner = AccountProvisioner(runtime: runtime)
        if let pending {
            // Made ahead of this sign-in: the password and the binding complete it.
            try provisioner.complete(
                pending, user: plan.directoryUser, policy: policy, hash: hash, issuer: identity.issuer, subject: identity.subject, mode: mode)
            log.notice("pending account completed by the first sign-in", metadata: ["uid": "\(pending.uid)"])
            return
        }
        let made: StateStore.Account
        do throws(AccountProvisioner.Failure) {
            made = try provisioner.make(
                AccountProvisioner.Request(
                    localName: plan.localUsername, user: plan.directoryUser, policy: policy, wantedUID: plan.uid, hash: hash,
                    binding: .signedIn(issuer: identity.issuer, subject: identity.subject, mode: mode), failpoints: true),
                log: log)
        } catch {
            switch error {
            case .noFreeUID(let range):
                throw Stop(
                    status: .authError, userMessage: "This machine has no free user id for a new account. Ask your administrator.",
                    reason: "uid range \(range) exhausted")
            case .notStarted(let e):
                if StateStore.isDiskFull(e) { throw Self.diskFull(e) }
                throw e
            case .undone(let e):
                if StateStore.isDiskFull(e) { throw Self.diskFull(e) }
                throw Stop(
                    status: .authError, userMessage: "Your account could not be created on this machine. Ask your administrator.",
                    reason: "provisioning failed: \(e)")
            }
        }
        log.notice("account created", metadata: ["message_id": "\(MessageID.accountCreated)", "uid": "\(made.uid)"])
    }

    /// The state database cannot be written: nothing was created.
    static func diskFull(_ error: Error) -> Stop {
        Stop(
            status: .authError,
            userMessage: "Your account could not be created on this machine: the disk that holds fedlogin's state is full. Ask your administrator.",
            reason: "state database: the disk is full (\(error))")
    }
}
