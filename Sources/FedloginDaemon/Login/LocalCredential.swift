import FedloginCore
import FedloginNIO
import Foundation
import Logging

/// The requests about an existing managed account's local credential: a
/// wrong password (lockout, and the offer to reset a forgotten passcode at
/// the IdP), the account check, a password change by password authority,
/// and a user's own passcode reset. A first login is `LoginFlow`'s; both
/// end early with a `LoginFlow.Stop`, mapped to the RESULT in one place
/// (`LoginFlow.result(after:)`, LoginFlow+Ending.swift).
struct LocalCredential: Sendable {
    typealias Stop = LoginFlow.Stop
    let runtime: Runtime
    var config: DaemonConfig { runtime.config }
    var logger: Logger { runtime.logger }
    /// The first-login side: the lock check, the passcode choice and the RESULT mapping it shares.
    var flow: LoginFlow { LoginFlow(runtime: runtime) }

    /// The active managed account of `user`, if it is one that exists locally with its uid.
    func activeAccount(_ user: String) throws -> StateStore.Account? {
        guard user != "root", let rec = try runtime.state.account(user), rec.state == .active,
            let local = try runtime.accounts.lookup(user), local.uid == rec.uid, local.uid != 0
        else { return nil }
        return rec
    }

    // MARK: - authfail: the local password was wrong

    func authFailed(_ request: PAMRequest, conv: any PAMConversation) async -> (ResultStatus, String) {
        var log = logger
        log[metadataKey: "user"] = "\(request.user)"
        log[metadataKey: "service"] = "\(request.service)"
        if SafeText.hasUnsafe(request.user) { return (.userUnknown, "user name with control characters") }
        do {
            guard var rec = try activeAccount(request.user) else { return (.ignore, "not a fedlogin account") }
            let now = runtime.clock.now()
            // `LockoutCounter`: an expired lockout starts a new count.
            let counted = rec.lockout.failed(now: now)
            if counted != .none {
                if case .locked(let until) = counted {
                    log.notice(
                        "account locked after \(rec.failedAttempts) failed attempts",
                        metadata: ["message_id": "\(MessageID.accountLocked)", "until": "\(LoginFlow.clock(until))"])
                }
                try runtime.state.update(rec)
                // The lockout holds in /etc/shadow too (pam_unix refuses the
                // account with fedlogind stopped); an expired one is lifted.
                let locks = AccountLocks(runtime: runtime)
                let current = rec
                try await conv.keepingAlive { try await Blocking.accountChange { try locks.reconcile(current, now: now) } }
            }
            log.notice("local password wrong", metadata: ["message_id": "\(MessageID.loginFailure)", "failed_attempts": "\(rec.failedAttempts)"])
            guard rec.passwordMode == .passcode else {
                if let stop = LoginFlow.lockStop(rec, now: now) { try? await conv.error(stop.userMessage ?? "") }
                return (.authError, "wrong password")
            }
            // The lockout notice goes before the offer: a message with no
            // prompt after it never reaches an SSH client (sshd sends PAM's
            // messages with the next prompt of keyboard-interactive).
            if let stop = LoginFlow.lockStop(rec, now: now) { try await conv.error(stop.userMessage ?? "") }
            let answer = try await conv.ask(
                "Wrong passcode. Forgot it? Type \"reset\" to sign in with your identity provider and choose a new one, or press Enter: ",
                echo: true, timeout: config.signinTimeout(service: request.service))
            guard answer.trimmingCharacters(in: .whitespaces).lowercased() == "reset" else {
                return (.authError, "wrong passcode")
            }
            return try await resetPasscode(rec, service: request.service, conv: conv, log: log)
        } catch {
            return await flow.result(after: error, .failedLogin, conv: conv, log: log)
        }
    }

    /// Signs the account's owner in at the IdP again and sets the new
    /// passcode they choose; ends any lockout.
    func resetPasscode(_ rec: StateStore.Account, service: String, conv: any PAMConversation, log: Logger) async throws -> (ResultStatus, String) {
        // A reset lifts fedlogin's own lockout, never a lock it did not
        // write: the directory's (through sync) or an administrator's on this
        // machine (usermod -L, passwd -l, an expiry date).
        if let reason = rec.lockedReason {
            let why = SyncLock(rawValue: reason)?.userMessage ?? reason
            throw Stop(
                status: .authError,
                userMessage: "The account \(rec.username) is locked: it is \(why). A passcode reset cannot unlock it. Ask your administrator.",
                reason: "reset: the account is locked by directory sync (\(reason))")
        }
        let locks = AccountLocks(runtime: runtime)
        if try await Blocking.accountChange({ try locks.lockedByOthers(rec.username) }) {
            throw Stop(
                status: .authError,
                userMessage:
                    "The account \(rec.username) is locked or expired by an administrator of this machine. A passcode reset cannot unlock it. Ask your administrator.",
                reason: "reset: the account is locked or expired by someone other than fedlogin")
        }
        let policy = try await signInAsOwner(rec, service: service, why: "reset", conv: conv, log: log)
        guard runtime.inFlight.begin(rec.username) else {
            throw Stop(status: .authError, userMessage: "Another change to \(rec.username) is in progress. Try again.", reason: "reset: busy")
        }
        defer { runtime.inFlight.end(rec.username) }
        let hash = try await flow.choosePasscode(
            user: rec.username, policy: policy.passcode, timeout: config.signinTimeout(service: service), conv: conv)
        try await conv.keepingAlive { [runtime] in
            try await Blocking.accountChange {
                try runtime.accounts.setPasswordHash(name: rec.username, hash: hash)
                var updated = try runtime.state.account(rec.username) ?? rec
                updated.failedAttempts = 0
                updated.lockedUntil = nil
                try runtime.state.update(updated)
                try locks.reconcile(updated)
                // The sign-in is the directory's answer, recorded in this turn on the queue.
                runtime.directoryAnsweredNow(rec.username, offlineMax: policy.offlineMax, at: runtime.clock.now(), signedIn: true)
            }
        }
        try await conv.sessionInfo("Your new passcode for \(rec.username) is set.")
        log.notice("passcode reset after signing in at the IdP", metadata: ["message_id": "\(MessageID.passcodeReset)"])
        return (.success, "passcode reset")
    }

    /// Signs the account's owner in at the IdP again (a passcode reset, a
    /// re-authentication): the directory must still let the user use this
    /// device, and the person who signs in must be the account's owner.
    /// Returns the device's policy. `why` prefixes the log reasons.
    func signInAsOwner(_ rec: StateStore.Account, service: String, why: String, conv: any PAMConversation, log: Logger) async throws
        -> DevicePolicy
    {
        let what = why == "reset" ? "passcode reset" : why
        let (user, policy, access): (DirectoryUser?, DevicePolicy?, DeviceAccess?)
        do {
            (user, policy, access) = try await conv.keepingAlive {
                try await runtime.directory.userOnDevice(rec.directoryUsername, device: runtime.deviceID)
            }
        } catch let e as DirectoryClient.Unavailable {
            throw Stop(
                status: .authError,
                userMessage: why == "reset"
                    ? "The directory cannot be reached, so the passcode cannot be reset now. Try again later."
                    : "The directory cannot be reached, so you cannot sign in with your identity provider now. Connect this machine to the network and try again.",
                reason: e.description)
        }
        guard let user, let policy, let access, !user.disabled else {
            throw Stop(
                status: .authError, userMessage: "The account \(rec.username) is not active in the directory.",
                reason: "\(why): user disabled or gone"
            )
        }
        if let refusal = access.refusal {
            throw Stop(
                status: .authError, userMessage: refusal.userMessage(user: rec.username),
                reason: "\(why): the directory does not let the user use this device: \(refusal.rawValue)")
        }
        guard let (idp, idpWhy) = policy.idp(for: user), runtime.idps[idp] != nil else {
            throw Stop(
                status: .authError, userMessage: "No identity provider is set up for \(rec.username) on this machine.", reason: "\(why): no IdP")
        }
        var log = log
        log[metadataKey: "idp"] = "\(idp)"
        log.info("\(what): signing in with \(idp) (\(idpWhy))")
        var plan = FirstLoginPlan(localUsername: rec.username, directoryUser: user, idp: idp, idpReason: idpWhy, uid: rec.uid)
        if why == "reset" { plan.passcodeReset = true } else { plan.reauthentication = true }
        let request = PAMRequest(user: rec.username, service: service, tty: "", rhost: "", ruser: "")
        let identity = try await SignIn(runtime: runtime).run(client: runtime.idps[idp]!, plan: plan, request: request, conv: conv, log: log)
        // The person who signed in must be the account's owner.
        let same: Bool
        if let iss = rec.issuer, let sub = rec.subject, !iss.isEmpty, !sub.isEmpty {
            same = identity.issuer == iss && identity.subject == sub
        } else {
            same = IDTokenValidator.emailsMatch(identity.email, user.email)
        }
        guard same else {
            throw Stop(
                status: .authError, userMessage: "You signed in as \(SafeText.escape(identity.email)), who is not the owner of \(rec.username).",
                reason: "\(why): the identity does not match the account's binding")
        }
        return policy
    }

    // MARK: - account: locks hold whatever the login path

    /// The account phase of every login of a managed account (password,
    /// passcode, SSH key): fedlogin's locks, then the directory's word on
    /// the user (`revalidate`). A refusal the directory's answer causes is
    /// told through `conv` (sshd shows it only after a success, so there the
    /// journal has the reason).
    func accountCheck(user: String, service: String, peer: PeerCredentials, conv: (any PAMConversation)? = nil) async -> (
        ResultStatus, String
    ) {
        do {
            guard let rec = try runtime.state.account(user), user != "root", rec.state != .provisioning else {
                return (.ignore, "no fedlogin account policy applies")
            }
            let now = runtime.clock.now()
            if let stop = LoginFlow.lockStop(rec, now: now) {
                logger.notice(
                    "login refused: \(stop.reason)",
                    metadata: ["message_id": "\(MessageID.loginFailure)", "user": "\(user)", "service": "\(service)"])
                return (stop.status, stop.reason)
            }
            if let stop = try await revalidate(rec, service: service) {
                logger.notice(
                    "login refused: \(stop.reason)",
                    metadata: ["message_id": "\(MessageID.loginRevoked)", "user": "\(user)", "service": "\(service)"])
                if let text = stop.userMessage { try? await conv?.error(text) }
                return (stop.status, stop.reason)
            }
            // The offline window: moved on by an answer just now, if any.
            let current = runtime.state.cachedAccount(user) ?? rec
            if let end = current.offlineEnd, now >= end {
                logger.notice(
                    "login refused: the directory has not answered about the user since \(LoginFlow.clock(current.lastAnswerAt ?? 0)) (offline_max \(current.offlineMax) days)",
                    metadata: ["message_id": "\(MessageID.offlineWindowEnded)", "user": "\(user)", "service": "\(service)"])
                try? await conv?.error(OfflineWindow.userMessage(user: user, days: current.offlineMax))
                return (.accountExpired, "offline window ended")
            }
            if let stop = await reauthenticate(current, service: service, conv: conv, now: now) {
                logger.notice(
                    "login refused: \(stop.reason)",
                    metadata: ["message_id": "\(MessageID.reauthRefused)", "user": "\(user)", "service": "\(service)"])
                if let text = stop.userMessage { try? await conv?.error(text) }
                return (stop.status, stop.reason)
            }
            var r = rec
            if rec.state == .active, case .cleared(let liftMirror) = r.lockout.accountChecked() {
                try runtime.state.update(r)
                // A lapsed lockout's mirror in /etc/shadow is lifted before
                // pam_unix (next in the account stack) reads the expiry.
                if liftMirror {
                    let locks = AccountLocks(runtime: runtime)
                    let cleared = r
                    try await Blocking.accountChange { try locks.reconcile(cleared, now: now) }
                }
            }
            logger.notice(
                "account check passed", metadata: ["message_id": "\(MessageID.localLogin)", "user": "\(user)", "service": "\(service)"])
            return (.success, "managed account, not locked")
        } catch {
            logger.error("account check of \(user) failed: \(ErrorText.describe(error))")
            return (.unavailable, "internal error")
        }
    }

    // MARK: - passwd: by password authority

    /// The preliminary pass of a password change: SUCCESS when the account
    /// is fedlogin's (the update asks for the current password itself), so
    /// pam_unix's own check does not run twice; IGNORE otherwise, and
    /// pam_unix checks the current password as always.
    func passwordCheck(user: String, peer: PeerCredentials) -> (ResultStatus, String) {
        guard user != "root", let rec = try? runtime.state.account(user), rec.state == .active || rec.state == .pending else {
            return (.ignore, "not a fedlogin account")
        }
        return (.success, "fedlogin handles this password change")
    }

    func changePassword(user: String, service: String, peer: PeerCredentials, conv: any PAMConversation) async -> (ResultStatus, String) {
        var log = logger
        log[metadataKey: "user"] = "\(user)"
        log[metadataKey: "service"] = "\(service)"
        do {
            guard let rec = try runtime.state.account(user), user != "root", rec.state != .provisioning else {
                return (.ignore, "not a fedlogin account")
            }
            guard rec.state == .active else {
                throw Stop(
                    status: .authtokError, userMessage: "\(user) has not signed in yet. Log in and sign in with your identity provider first.",
                    reason: "password change for a pending account")
            }
            let timeout = config.signinTimeout(service: service)
            // The caller is the process that runs passwd; its real uid tells a
            // user changing their own password from root changing it for them.
            let byRoot = Self.realUID(of: peer.pid) == 0
            if rec.passwordMode == .synced {
                let dirUser: DirectoryUser?
                do {
                    dirUser = try await conv.keepingAlive { try await runtime.directory.lookup(rec.directoryUsername) }
                } catch let e as DirectoryClient.Unavailable {
                    throw Stop(
                        status: .authtokError,
                        userMessage: "The directory cannot be reached, and your password is kept there. Try again later.", reason: e.description)
                }
                guard let dirUser else {
                    throw Stop(status: .authtokError, userMessage: "\(user) is no longer in the directory.", reason: "user gone from the directory")
                }
                if dirUser.passwordAuthority == .external {
                    let idp = (try? await runtime.directory.policy(device: runtime.deviceID)).flatMap { $0.idp(for: dirUser)?.name }
                    let where_ = idp.flatMap { runtime.idps[$0]?.config.displayName } ?? "your identity provider"
                    throw Stop(
                        status: .authtokError,
                        userMessage: "The password of \(user) is managed by \(where_), not on this machine. Change it there.",
                        reason: "password managed externally")
                }
                if dirUser.passwordAuthority != .directory {
                    throw Stop(
                        status: .authtokError,
                        userMessage:
                            "The password of \(user) comes from the directory and cannot be changed on this machine. Ask your administrator.",
                        reason: "synced password the directory does not take changes for")
                }
                // The directory checks the current password itself (the local
                // copy may be stale), also when root runs passwd: root on this
                // machine cannot change a password the directory holds
                // without it.
                let current = try await conv.askSecret("Current password: ", timeout: timeout)
                defer { current.wipe() }
                let new = try await askNew(what: "password", user: user, policy: nil, conv: conv, timeout: timeout)
                defer { new.wipe() }
                do {
                    try await conv.keepingAlive {
                        try await runtime.directory.changePassword(user: rec.directoryUsername, current: current, new: new)
                    }
                } catch let e as DirectoryClient.Refused {
                    throw Stop(
                        status: .authtokError,
                        userMessage: "The directory did not accept the new password: \(SafeText.escape(e.description)). Your password is unchanged.",
                        reason: "directory refused the password change: \(e.description)")
                } catch let e as DirectoryClient.Unavailable {
                    throw Stop(
                        status: .authtokError, userMessage: "The directory cannot be reached. Your password is unchanged; try again later.",
                        reason: e.description)
                }
                let hash = try await conv.keepingAlive { try await Blocking.compute { try Sys.hashPasscode(new) } }
                // Applied here only once the directory holds it.
                try await Blocking.accountChange { try runtime.accounts.setPasswordHash(name: user, hash: hash) }
                try await conv.info("Password changed in the directory and on this machine.")
                log.notice("password changed through the directory")
                return (.success, "password changed in the directory")
            }
            // A local passcode: the device policy's rules.
            if !byRoot { try await checkCurrent(rec, conv: conv, timeout: timeout, what: "passcode") }
            let policy = (try? await conv.keepingAlive { try await runtime.directory.policy(device: runtime.deviceID) })?.passcode ?? PasscodePolicy()
            let new = try await askNew(what: "passcode", user: user, policy: policy, conv: conv, timeout: timeout)
            defer { new.wipe() }
            try await conv.keepingAlive {
                let hash = try await Blocking.compute { try Sys.hashPasscode(new) }
                try await Blocking.accountChange { try runtime.accounts.setPasswordHash(name: user, hash: hash) }
            }
            try await conv.info("Passcode changed.")
            log.notice("passcode changed")
            return (.success, "passcode changed")
        } catch {
            return await flow.result(after: error, .passwordChange, conv: conv, log: log)
        }
    }

    func checkCurrent(_ rec: StateStore.Account, conv: any PAMConversation, timeout: Double, what: String) async throws {
        let current = try await conv.askSecret("Current \(what): ", timeout: timeout)
        defer { current.wipe() }
        let accounts = runtime.accounts
        let matches = try await conv.keepingAlive {
            try await Blocking.compute { try accounts.shadowHash(rec.username).map { Sys.verifyPassword(current, hash: $0) } ?? false }
        }
        guard matches else {
            throw Stop(status: .authtokError, userMessage: "That is not the current \(what).", reason: "current password wrong")
        }
    }

    /// Asks for the new password twice; returns it in a `SecretBytes` the
    /// caller wipes (the refused and repeated answers are wiped here).
    func askNew(what: String, user: String, policy: PasscodePolicy?, conv: any PAMConversation, timeout: Double) async throws -> SecretBytes {
        guard
            let chosen = try await conv.askNewSecret(
                prompt: "New \(what): ", repeatPrompt: "Repeat the new \(what): ", weak: "That \(what) is too weak",
                mismatch: "The \(what)s do not match.", timeout: timeout,
                problems: { s in policy.map { p in s.withUnsafeBytes { p.problems(withUTF8: $0) } } ?? (s.isEmpty ? ["it is empty"] : []) })
        else {
            throw Stop(status: .authtokError, userMessage: "The \(what) is unchanged.", reason: "no acceptable new \(what) after 3 tries")
        }
        return chosen
    }

    /// The real uid of a process (from /proc), nil when it cannot be read.
    static func realUID(of pid: Int32) -> UInt32? {
        guard pid > 0, let text = try? Sys.readText("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Uid:") {
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { UInt32($0) }
        }
        return nil
    }

    // MARK: - fedloginctl passcode reset: the caller's own account only

    func ownPasscodeReset(peer: PeerCredentials, conv: any PAMConversation) async -> (ResultStatus, String) {
        var log = logger
        do {
            guard let rec = try runtime.state.accounts().first(where: { $0.uid == peer.uid && $0.state == .active }), peer.uid != 0,
                try activeAccount(rec.username) != nil
            else {
                try? await conv.error("Your account is not one fedlogin manages, so it has no fedlogin passcode.")
                return (.ignore, "caller uid \(peer.uid) is not a managed account")
            }
            log[metadataKey: "user"] = "\(rec.username)"
            log[metadataKey: "service"] = "fedloginctl"
            guard rec.passwordMode == .passcode else {
                try? await conv.error("Your password comes from the directory; change it there (or with passwd).")
                return (.authtokError, "not a passcode account")
            }
            return try await resetPasscode(rec, service: "fedloginctl", conv: conv, log: log)
        } catch {
            return await flow.result(after: error, .ownPasscodeReset, conv: conv, log: log)
        }
    }
}
