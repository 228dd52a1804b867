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
            return try await firstLogin(plan, policy: policy!, pending: pending, request: request, conv: conv, log: log)
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
        _ plan: FirstLoginPlan, policy: DevicePolicy, pending: StateStore.Account? = nil, request: PAMRequest, conv: any PAMConversation, log: Logger
    ) async throws -> (ResultStatus, String) {
        let client = runtime.idps[plan.idp]!
        let identity = try await signIn(client: client, plan: plan, request: request, conv: conv, log: log)
        guard IDTokenValidator.emailsMatch(identity.email, plan.directoryUser.email) else {
            throw Stop(
                status: .authError,
                userMessage: "You signed in as \(SafeText.escape(identity.email)), but \(plan.localUsername) belongs to another person. Sign in with your own account.",
                reason: "email mismatch: token has a different email than the directory user")
        }
        // The first verified sign-in makes the account; any other is told it exists.
        guard runtime.inFlight.begin(plan.localUsername) else {
            throw Stop(
                status: .authError,
                userMessage: "Another sign-in is setting up \(plan.localUsername) right now. Log in again in a moment, with the password or passcode chosen there.",
                reason: "another first login for this user is making the account")
        }
        defer { runtime.inFlight.end(plan.localUsername) }
        try claimAccount(plan.localUsername, pending: pending)

        let decision = LoginPlanner.passwordDecision(user: plan.directoryUser, policy: policy, hashSupported: Sys.hashSupported)
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
        try await conv.info("Welcome, \(SafeText.escape(identity.name ?? plan.localUsername)). Your account \(plan.localUsername) is ready on this machine.")
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
                userMessage: "The account \(name) now exists on this machine: another sign-in just made it. Log in again with its password or passcode.",
                reason: "account made by another sign-in meanwhile")
        }
    }

    /// Signs the user in at the IdP with the first flow the PAM service and
    /// the IdP allow that can start.
    func signIn(client: IdPClient, plan: FirstLoginPlan, request: PAMRequest, conv: any PAMConversation, log: Logger) async throws
        -> VerifiedIdentity
    {
        let idp = client.config
        let discovery: Discovery
        do {
            discovery = try await conv.keepingAlive { try await client.discovery() }
        } catch let e as IdPError {
            throw Stop(status: .unavailable, userMessage: e.userMessage, reason: e.description)
        }
        let deadline = runtime.clock.now() + config.signinTimeout(service: request.service)
        var flows = config.flows(service: request.service, idp: idp)
        var i = -1
        while i + 1 < flows.count {
            i += 1
            let flow = flows[i]
            switch flow {
            case .device:
                guard discovery.deviceAuthorizationEndpoint != nil else {
                    log.info("device grant skipped: the IdP has no device authorization endpoint")
                    continue
                }
                let start: IdPClient.DeviceAuthorization
                do {
                    start = try await conv.keepingAlive { try await client.startDevice() }
                } catch let e as IdPError {
                    log.warning("device grant could not start: \(e)")
                    if i == flows.count - 1 { throw Stop(status: .authError, userMessage: e.userMessage, reason: e.description) }
                    continue
                }
                log.info("sign-in flow: device grant", metadata: ["flows": "\(flows.map(\.rawValue))"])
                return try await deviceSignIn(client: client, start: start, plan: plan, deadline: deadline, conv: conv)
            case .loopback:
                let listener: (listener: LoopbackListener, temporary: Bool)
                do {
                    listener = try await runtime.listener(for: idp)
                } catch let e as LoopbackListener.PortUnavailable {
                    log.warning("loopback redirect not available: \(e)")
                    guard discovery.deviceAuthorizationEndpoint != nil else {
                        throw Stop(
                            status: .authError,
                            userMessage: "The sign-in cannot come back to this machine: \(e.userText). Ask your administrator.",
                            reason: "loopback redirect: \(e)")
                    }
                    try await conv.info("The sign-in cannot come back to this machine: \(e.userText). Sign in with a code instead.")
                    if !flows[(i + 1)...].contains(.device) { flows.append(.device) }
                    continue
                }
                log.info("sign-in flow: loopback redirect", metadata: ["flows": "\(flows.map(\.rawValue))"])
                defer { if listener.temporary { Task { await listener.listener.close() } } }
                return try await loopbackSignIn(
                    client: client, listener: listener.listener, discovery: discovery, plan: plan, deadline: deadline, conv: conv)
            }
        }
        throw Stop(
            status: .unavailable, userMessage: "No sign-in method is available for this login. Ask your administrator.",
            reason: "no usable flow among \(flows.map(\.rawValue))")
    }

    static func timeLeft(_ deadline: Double, now: Double) -> String {
        let s = max(0, Int(deadline - now))
        return s >= 120 ? "\(s / 60) minutes" : "\(s) seconds"
    }

    /// The device authorization grant (RFC 8628): a code to enter on another
    /// device, with a QR code of the address; polls at the IdP's interval.
    func deviceSignIn(
        client: IdPClient, start: IdPClient.DeviceAuthorization, plan: FirstLoginPlan, deadline: Double, conv: any PAMConversation
    ) async throws -> VerifiedIdentity {
        let idp = client.config
        let clock = runtime.clock
        // The IdP says when the code expires (expired_token); a few seconds of
        // grace let its answer, not a guess, end the wait (`DeviceGrantPoll`).
        let poll = DeviceGrantPoll(interval: start.interval ?? DeviceTiming.defaultInterval, expiresIn: start.expiresIn, deadline: deadline, now: clock.now())
        var text = "Sign in with \(idp.displayName) \(plan.purpose).\n"
        // RFC 8628 §5.4: the person approving on another device must see what
        // they approve, so a code sent to them by someone else stands out.
        text += "This code signs you in to \(plan.localUsername) on the machine \(SafeText.escape(Sys.hostname())); "
        text += "if you did not start this login there yourself, do not enter it.\n"
        text += "On your phone or computer, open this address and enter the code \(SafeText.escape(start.userCode)):\n\(SafeText.escape(start.verificationURI))\n"
        if let complete = start.verificationURIComplete, let qr = QRCode.text(for: complete) {
            text += "Or scan this code, which opens it with the code filled in:\n\(qr)\n\(SafeText.escape(complete))\n"
        }
        text += "You have \(Self.timeLeft(poll.shownEnd, now: clock.now()))."
        try await conv.info(text)
        _ = try await conv.ask("Press Enter once you have signed in: ", echo: true, timeout: poll.promptTimeout(now: clock.now()))
        let token: String = try await conv.keepingAlive {
            try await Self.waitForDeviceToken(poll, clock: clock, idpName: idp.displayName) {
                try await client.pollDevice(code: start.deviceCode)
            }
        }
        return try await verify(token, client: client, nonce: nil, conv: conv)
    }

    /// The shell around `DeviceGrantPoll`: asks the token endpoint, sleeps
    /// on `clock` as the machine says, and turns its failures into `Stop`s.
    static func waitForDeviceToken(
        _ machine: DeviceGrantPoll, clock: any WallClock, idpName: String,
        poll: @Sendable () async throws -> IdPClient.DevicePoll
    ) async throws -> String {
        var machine = machine
        var action = machine.woke(now: clock.now())
        while true {
            switch action {
            case .poll:
                let answer: IdPClient.DevicePoll
                do {
                    answer = try await poll()
                } catch let e as IdPError {
                    throw Stop(status: .authError, userMessage: e.userMessage, reason: e.description)
                }
                switch answer {
                case .token(let t): return t
                case .pending: action = machine.received(.pending)
                case .slowDown: action = machine.received(.slowDown)
                case .denied: action = machine.received(.denied)
                case .expired: action = machine.received(.expired)
                }
            case .wait(let seconds):
                try await clock.sleep(seconds: seconds)
                action = machine.woke(now: clock.now())
            case .fail(.deadlinePassed):
                throw Stop(status: .authError, userMessage: "The sign-in took too long. Start the login again.", reason: "sign-in deadline passed")
            case .fail(.denied):
                throw Stop(status: .authError, userMessage: "The sign-in was cancelled or denied at \(idpName).", reason: "device grant: access_denied")
            case .fail(.expired):
                throw Stop(status: .authError, userMessage: "The code expired before the sign-in finished. Start the login again.", reason: "device grant: expired_token")
            }
        }
    }

    /// Verifies an ID token, mapping rejections to what the user is told.
    func verify(_ token: String, client: IdPClient, nonce: String?, conv: any PAMConversation) async throws -> VerifiedIdentity {
        let idp = client.config
        do {
            return try await conv.keepingAlive {
                let expect = TokenExpectations(
                    issuer: idp.issuerRule, clientID: idp.clientID, nonce: nonce, now: runtime.clock.now(),
                    skew: config.signin.clockSkew, allowedAlgorithms: idp.algorithms, emailClaim: idp.emailClaim,
                    hostedDomain: idp.hostedDomain, emailVerifiedString: idp.emailVerifiedString)
                return try await TokenVerifier.verify(token, client: client, expect: expect)
            }
        } catch let e as IdPError {
            throw Stop(status: .authError, userMessage: e.userMessage, reason: e.description)
        } catch let e as TokenRejection {
            throw Stop(
                status: .authError, userMessage: "The identity provider's answer could not be verified, so you are not signed in. Ask your administrator.",
                reason: "ID token rejected: \(e)")
        }
    }

    /// The authorization code flow with PKCE and a loopback redirect; the
    /// user may paste the address the browser ended on instead.
    func loopbackSignIn(
        client: IdPClient, listener: LoopbackListener, discovery: Discovery, plan: FirstLoginPlan, deadline: Double, conv: any PAMConversation
    ) async throws -> VerifiedIdentity {
        let idp = client.config
        let state = Self.randomToken()
        let nonce = Self.randomToken()
        let verifier = Self.randomToken() + Self.randomToken()
        let challenge = Self.base64url(Data(SHA256.hash(data: Data(verifier.utf8))))

        runtime.callbacks.register(state: state)
        defer { runtime.callbacks.unregister(state: state) }
        let redirectURI = listener.redirectURI

        let query = FormEncoding.encode([
            ("response_type", "code"), ("client_id", idp.clientID), ("redirect_uri", redirectURI),
            ("scope", idp.scopes.joined(separator: " ")), ("state", state), ("nonce", nonce),
            ("code_challenge", challenge), ("code_challenge_method", "S256"),
        ])
        let sep = discovery.authorizationEndpoint.contains("?") ? "&" : "?"
        let url = discovery.authorizationEndpoint + sep + query

        try await conv.info(
            "Sign in with \(idp.displayName) \(plan.purpose).\nOpen this address in a browser on this machine:\n\(url)\nIf the browser cannot come back to this machine, paste the address it ends on at the prompt. You have \(Self.timeLeft(deadline, now: runtime.clock.now())).")
        var response: AuthorizationResponse?
        while response == nil {
            let left = deadline - runtime.clock.now()
            guard left > 0 else {
                throw Stop(status: .authError, userMessage: "The sign-in took too long. Start the login again.", reason: "sign-in timed out")
            }
            let answer = try await conv.ask("Press Enter once you have signed in: ", echo: true, timeout: left)
            if answer.contains("code=") || answer.contains("error=") {
                // Paste-back: the address the browser ended on.
                let pasted = AuthorizationResponse(target: answer.trimmingCharacters(in: .whitespaces))
                guard pasted.state == state else {
                    throw Stop(status: .authError, userMessage: "That address belongs to another sign-in. Start the login again.", reason: "pasted address with a wrong state")
                }
                runtime.callbacks.unregister(state: state)
                response = pasted
                break
            }
            // The redirect may still be on its way: wait a little, with keepalives.
            let callbacks = runtime.callbacks
            response = try await conv.keepingAlive { await callbacks.wait(state: state, within: 3) }
            if response == nil {
                try await conv.error("The sign-in has not finished yet. Finish it in the browser, then press Enter.")
            }
        }
        guard let response else { throw Stop(status: .authError, userMessage: nil, reason: "no callback") }
        if let error = response.error {
            let why = error == "access_denied" ? "The sign-in was cancelled or denied at \(idp.displayName)." : "\(idp.displayName) did not sign you in (\(SafeText.escape(error)))."
            throw Stop(status: .authError, userMessage: why, reason: "authorization error from the IdP: \(SafeText.escape(error))")
        }
        guard let code = response.code, !code.isEmpty else {
            throw Stop(status: .authError, userMessage: "The sign-in did not complete. Start the login again.", reason: "callback without a code")
        }
        let token: String
        do {
            token = try await conv.keepingAlive { try await client.exchange(code: code, verifier: verifier, redirectURI: redirectURI) }
        } catch let e as IdPError {
            throw Stop(status: .authError, userMessage: e.userMessage, reason: e.description)
        }
        return try await verify(token, client: client, nonce: nonce, conv: conv)
    }

    /// Asks for a new passcode twice and checks it against the policy; returns its hash.
    /// Both answers are held in `SecretBytes`, wiped once hashed or refused.
    func choosePasscode(user: String, policy: PasscodePolicy, timeout: Double, conv: any PAMConversation) async throws -> String {
        for _ in 0..<3 {
            let first = try await conv.askSecret("Choose a passcode for \(user) on this machine: ", timeout: timeout)
            defer { first.wipe() }
            let problems = first.withUnsafeBytes { policy.problems(withUTF8: $0) }
            guard problems.isEmpty else {
                try await conv.error("That passcode is too weak: \(problems.joined(separator: "; ")).")
                continue
            }
            let second = try await conv.askSecret("Repeat the passcode: ", timeout: timeout)
            defer { second.wipe() }
            guard first.constantTimeEquals(second) else {
                try await conv.error("The passcodes do not match.")
                continue
            }
            return try await conv.keepingAlive { try await Blocking.compute { try Sys.hashPasscode(first) } }
        }
        throw Stop(status: .authError, userMessage: "No passcode was set. Start the login again to try once more.", reason: "passcode not set after 3 tries")
    }

    /// Creates the account so that a crash at any point leaves either nothing
    /// or a complete, bound account with its report queued.
    func provision(
        plan: FirstLoginPlan, policy: DevicePolicy, pending: StateStore.Account?, identity: VerifiedIdentity, hash: String,
        mode: PasswordMode, log: Logger
    ) async throws {
        try await Blocking.accountChange {
            try provisionNow(plan: plan, policy: policy, pending: pending, identity: identity, hash: hash, mode: mode, log: log)
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
            try provisioner.complete(pending, hash: hash, issuer: identity.issuer, subject: identity.subject, mode: mode)
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

    static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        return base64url(Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }))
    }

    static func base64url(_ d: Data) -> String {
        d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

