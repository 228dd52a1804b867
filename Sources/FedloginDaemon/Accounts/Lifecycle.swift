import FedloginCore
import FedloginNIO
import Foundation
import Logging

/// The life of managed accounts after their creation (docs/accounts.md):
/// directory sync, pre-provisioning, an admin's bind/unbind/adopt, unlock.
struct Lifecycle: Sendable {
    let runtime: Runtime
    var logger: Logger { runtime.logger }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    static func now() -> String { Sys.iso8601() }

    /// A binding (or unbinding) report for the outbox (`AccountProvisioner.report`).
    func report(
        account: StateStore.Account, action: String = "bind", issuer: String = "", subject: String = "", passwordMode: String
    ) throws -> StateStore.OutboxItem {
        try AccountProvisioner(runtime: runtime).report(
            account: account, action: action, issuer: issuer, subject: subject, passwordMode: passwordMode)
    }

    // MARK: - Sync

    struct SyncResult: Sendable {
        var locked: [String] = []
        var unlocked: [String] = []
        var groupChanges: [String] = []
        var provisioned: [String] = []
        var skipped: [String] = []
        var errors: [String] = []

        var json: [String: Any] {
            [
                "locked": locked, "unlocked": unlocked, "group_changes": groupChanges, "provisioned": provisioned,
                "skipped": skipped, "errors": errors,
            ]
        }
    }

    /// One sync with the directory. A directory that cannot be reached
    /// changes nothing (it throws): an outage never locks anyone.
    func sync() async throws -> SyncResult {
        let directory = runtime.directory
        // In this order: an account listed here has its binding report either
        // still pending at the next read, or recorded by the directory before
        // the device's users are asked for. Either way it counts as associated.
        let managed = try runtime.state.accounts().filter { $0.state == .active || $0.state == .pending }
        let pendingReports = Set(try runtime.state.pendingReports().map(\.username))
        let deviceUsers = Set(try await directory.deviceUsers(device: runtime.deviceID))
        let policy = try await directory.policy(device: runtime.deviceID)
        var result = SyncResult()
        var seen = Set<String>()
        for account in managed {
            seen.insert(account.directoryUsername)
            let user: DirectoryUser?
            do {
                user = try await directory.lookup(account.directoryUsername)
            } catch {
                // Gone mid-sync: what is done stays done, the rest waits for the next sync.
                result.errors.append("the directory stopped answering at \(account.username): \(error)")
                break
            }
            guard runtime.inFlight.begin(account.username) else {
                result.skipped.append("\(account.username): a login is in progress")
                continue
            }
            defer { runtime.inFlight.end(account.username) }
            let associated = deviceUsers.contains(account.directoryUsername) || pendingReports.contains(account.username)
            do {
                result = try await Blocking.accountChange { [result] in
                    var r = result
                    try apply(account: account, user: user, associated: associated, policy: policy, into: &r)
                    return r
                }
            } catch {
                logger.error("sync of \(account.username) failed: \(ErrorText.describe(error))")
                result.errors.append("\(account.username): \(error)")
            }
        }
        // Pre-provisioning: users associated with this device get their account
        // ahead of their first sign-in.
        for name in deviceUsers.sorted() where !seen.contains(name) {
            do {
                guard let user = try await directory.lookup(name), !user.disabled else { continue }
                let localName = try LocalUsername.derive(username: user.username, email: user.email)
                if try runtime.state.account(localName) != nil { continue }
                if try runtime.accounts.lookup(localName) != nil {
                    result.skipped.append("\(localName): a local account fedlogin did not create has this name")
                    continue
                }
                _ = try await Blocking.accountChange {
                    try provisionAhead(user: user, localName: localName, policy: policy, applyDirectoryPassword: nil)
                }
                result.provisioned.append(localName)
            } catch {
                logger.error("pre-provisioning of \(name) failed: \(ErrorText.describe(error))")
                result.errors.append("\(name): \(error)")
            }
        }
        runtime.nssCache.clear()
        if !result.provisioned.isEmpty { runtime.outbox.kick() }
        logger.info(
            "directory sync done",
            metadata: [
                "locked": "\(result.locked)", "unlocked": "\(result.unlocked)", "provisioned": "\(result.provisioned)",
                "group_changes": "\(result.groupChanges.count)", "errors": "\(result.errors.count)",
            ])
        return result
    }

    func apply(account: StateStore.Account, user: DirectoryUser?, associated: Bool, policy: DevicePolicy, into result: inout SyncResult) throws {
        let accounts = runtime.accounts
        guard try accounts.lookup(account.username)?.uid == account.uid else {
            result.skipped.append("\(account.username): the local account is gone or has another uid")
            return
        }
        let lockedBySync = account.lockedReason.flatMap(SyncLock.init(rawValue:))
        let memberOf = accounts.groups(of: account.username)
        let actions = SyncPlanner.plan(
            user: user, associated: associated, lockedBySync: lockedBySync,
            managedGroups: Set(account.managedGroups.split(separator: ",").map(String.init)), memberOf: memberOf,
            existingGroups: accounts.existingGroups(), policy: policy, groupMap: runtime.config.accounts.groupMap,
            adminGroup: runtime.config.accounts.adminGroup)
        var updated = account
        if let lock = actions.lock, account.lockedReason == nil {
            updated.lockedReason = lock.rawValue
            try AccountLocks(runtime: runtime).reconcile(updated)
            result.locked.append(account.username)
            logger.notice(
                "account locked: \(lock.userMessage)", metadata: ["user": "\(account.username)", "message_id": "\(MessageID.accountLocked)"])
        }
        if actions.unlock {
            updated.lockedReason = nil
            try AccountLocks(runtime: runtime).reconcile(updated)
            result.unlocked.append(account.username)
            logger.notice("account unlocked: the directory allows it again", metadata: ["user": "\(account.username)"])
        }
        for g in actions.addGroups {
            try accounts.addToGroup(name: account.username, group: g)
            result.groupChanges.append("\(account.username) +\(g)")
        }
        for g in actions.removeGroups {
            try accounts.removeFromGroup(name: account.username, group: g)
            result.groupChanges.append("\(account.username) -\(g)")
        }
        if !actions.addGroups.isEmpty || !actions.removeGroups.isEmpty {
            logger.notice(
                "local groups changed",
                metadata: ["user": "\(account.username)", "added": "\(actions.addGroups)", "removed": "\(actions.removeGroups)"])
        }
        updated.managedGroups = actions.managedGroups.joined(separator: ",")
        if let user {
            updated.applyLockout(policy.lockout, bypass: user.lockoutBypass)
            updated.applyReauth(policy, user: user)
        }
        // An answer that allows the user restarts the offline window; the
        // policy's offline_max is kept either way.
        updated.offlineMax = policy.offlineMax
        if actions.lock == nil && updated.lockedReason == nil { updated.directoryAnswered(at: runtime.clock.now(), offlineMax: nil) }
        if updated.offlineEnd != account.offlineEnd { try AccountLocks(runtime: runtime).reconcile(updated, now: runtime.clock.now()) }
        if updated != account { try runtime.state.update(updated) }
    }

    /// Creates the account of a directory user before their first sign-in:
    /// no usable password (pending) until they sign in, or, for an admin's
    /// `bind --password-sync yes` with a directory hash, the directory's
    /// password right away. Crash-safe like a first login: the intent is
    /// recorded first and undone at the next start.
    func provisionAhead(user: DirectoryUser, localName: String, policy: DevicePolicy, applyDirectoryPassword: Bool?) throws -> StateStore.Account {
        let state = runtime.state
        let accounts = runtime.accounts
        let config = runtime.config.accounts
        guard runtime.inFlight.begin(localName) else { throw Failure("a login of \(localName) is in progress; try again") }
        defer { runtime.inFlight.end(localName) }
        let uidMin = runtime.uidMin
        let rules = runtime.accountRules
        if let why = rules.nameProblem(localName) { throw Failure("fedlogin never makes an account named \(localName): \(why)") }
        if let uid = user.uid {
            guard uid >= uidMin else { throw Failure("the directory assigns \(localName) a system uid (\(uid))") }
            if let why = rules.uidProblem(uid) { throw Failure("the uid the directory assigns to \(localName) cannot be used: \(why)") }
            guard !(try accounts.uidInUse(uid)), !(try state.reservedUIDs(except: localName).contains(uid)) else {
                throw Failure("the uid the directory assigns to \(localName) (\(uid)) is taken on this machine")
            }
        }
        var hash: String?
        if applyDirectoryPassword ?? policy.passwordSync(for: user),
            case .useDirectoryHash(let h) = LoginPlanner.passwordDecision(
                user: user, policy: DevicePolicy(passwordSync: true), hashSupported: Sys.hashSupported)
        {
            hash = h
        }
        let record: StateStore.Account
        do throws(AccountProvisioner.Failure) {
            record = try AccountProvisioner(runtime: runtime).make(
                AccountProvisioner.Request(
                    localName: localName, user: user, policy: policy, wantedUID: user.uid, hash: hash,
                    groups: {
                        let existing = accounts.existingGroups()
                        return SyncPlanner.desiredGroups(user: user, policy: policy, groupMap: config.groupMap, adminGroup: config.adminGroup)
                            .filter(existing.contains).sorted()
                    }, binding: .ahead),
                log: logger)
        } catch {
            switch error {
            case .noFreeUID:
                throw Failure("no free uid in \(config.uidMin)...\(config.uidMax), or the directory's uid is reserved for someone else")
            case .notStarted(let e), .undone(let e):
                throw e
            }
        }
        let uid = record.uid
        logger.notice(
            hash == nil ? "account created ahead of the first sign-in (pending)" : "account created with the directory's password",
            metadata: ["user": "\(localName)", "uid": "\(uid)", "message_id": "\(MessageID.accountCreated)"])
        return record
    }

    // MARK: - Admin operations

    /// `fedloginctl bind USER [--password-sync yes|no] [--adopt]`.
    func bind(_ name: String, passwordSync: Bool?, adopt: Bool) async throws -> String {
        guard name != "root" else { throw Failure("root is never a fedlogin account") }
        if let rec = try runtime.state.account(name) {
            throw Failure("\(name) is already managed by fedlogin (\(rec.state))")
        }
        guard let user = try await runtime.directory.lookup(name) else { throw Failure("\(name) is not known to the directory") }
        guard !user.disabled else { throw Failure("\(name) is disabled in the directory") }
        let localName = try LocalUsername.derive(username: user.username, email: user.email)
        guard localName == name else { throw Failure("the directory user \(name) has the local name \(localName); bind \(localName)") }
        let policy = try await runtime.directory.policy(device: runtime.deviceID)
        if let local = try runtime.accounts.lookup(name) {
            guard adopt else {
                throw Failure(
                    "a local account \(name) exists that fedlogin did not create; to have fedlogin manage it, run: fedloginctl bind \(name) --adopt")
            }
            guard local.uid >= runtime.uidMin, local.uid != 0 else {
                throw Failure("\(name) is a system account (uid \(local.uid)); fedlogin never manages system accounts")
            }
            return try await Blocking.accountChange { try adoptAccount(user: user, local: local, policy: policy, passwordSync: passwordSync) }
        }
        guard !adopt else { throw Failure("there is no local account \(name) to adopt") }
        let rec = try await Blocking.accountChange {
            try provisionAhead(user: user, localName: name, policy: policy, applyDirectoryPassword: passwordSync)
        }
        return rec.state == .active
            ? "\(name) bound (uid \(rec.uid)); the directory's password is the password on this machine"
            : "\(name) bound (uid \(rec.uid)); the account is locked until \(name) signs in with the identity provider"
    }

    func adoptAccount(user: DirectoryUser, local: LocalAccount, policy: DevicePolicy, passwordSync: Bool?) throws -> String {
        let accounts = runtime.accounts
        var mode = PasswordMode.passcode
        if passwordSync ?? policy.passwordSync(for: user) {
            guard
                case .useDirectoryHash(let h) = LoginPlanner.passwordDecision(
                    user: user, policy: DevicePolicy(passwordSync: true), hashSupported: Sys.hashSupported)
            else { throw Failure("the directory has no usable password hash for \(user.username); bind with --password-sync no") }
            try accounts.setPasswordHash(name: local.name, hash: h)
            mode = .synced
        }
        let now = Self.now()
        var rec = StateStore.Account(
            username: local.name, uid: local.uid, state: .active, directoryUsername: user.username, email: user.email, issuer: nil,
            subject: nil, passwordMode: mode, createdAt: now, boundAt: now)
        rec.applyLockout(policy.lockout, bypass: user.lockoutBypass)
        rec.applyReauth(policy, user: user)
        rec.directoryAnswered(at: runtime.clock.now(), offlineMax: policy.offlineMax)
        try runtime.state.adopt(rec, report: report(account: rec, passwordMode: mode.rawValue))
        if rec.offlineEnd != nil { try AccountLocks(runtime: runtime).reconcile(rec, now: runtime.clock.now()) }
        logger.notice("existing account adopted", metadata: ["user": "\(local.name)", "password_mode": "\(mode.rawValue)"])
        runtime.outbox.kick()
        return mode == .synced
            ? "\(local.name) adopted; the directory's password is now the password on this machine"
            : "\(local.name) adopted; the current local password stays"
    }

    /// `fedloginctl unbind USER`: fedlogin stops managing the account. The
    /// account and its data stay; the directory is told.
    func unbind(_ name: String) throws -> String {
        guard let rec = try runtime.state.account(name), rec.state != .provisioning else {
            throw Failure("\(name) is not managed by fedlogin")
        }
        try runtime.state.release(name, report: report(account: rec, action: "unbind", passwordMode: rec.passwordMode?.rawValue ?? "pending"))
        logger.notice("account unbound (kept, no longer managed)", metadata: ["user": "\(name)"])
        runtime.outbox.kick()
        return "\(name) is no longer managed by fedlogin; the account and its files stay"
    }

    /// `fedloginctl unlock USER`: ends a lockout (failed attempts).
    func unlock(_ name: String) throws -> String {
        guard var rec = try runtime.state.account(name) else { throw Failure("\(name) is not managed by fedlogin") }
        if let reason = rec.lockedReason.flatMap(SyncLock.init(rawValue:)) {
            throw Failure("\(name) is locked because the account is \(reason.userMessage); that lock lifts when the directory allows the user again")
        }
        rec.failedAttempts = 0
        rec.lockedUntil = nil
        try runtime.state.update(rec)
        // The lockout's mirror in /etc/shadow goes with it (an
        // administrator's own lock or expiry stays).
        try AccountLocks(runtime: runtime).reconcile(rec)
        logger.notice("lockout ended by an administrator", metadata: ["user": "\(name)"])
        return "\(name) unlocked"
    }
}

extension StateStore.Account {
    /// The directory answered about the user and allows them here: the
    /// offline window starts again, with the policy's `offline_max` if given.
    mutating func directoryAnswered(at now: Double, offlineMax: Int?) {
        lastAnswerAt = now
        if let offlineMax { self.offlineMax = max(0, offlineMax) }
    }

    /// The user's re-authentication interval (the strictest of the policy's
    /// and the user's groups') and the policy's grace.
    mutating func applyReauth(_ policy: DevicePolicy, user: DirectoryUser) {
        reauthInterval = policy.reauthInterval(for: user)
        reauthGrace = policy.reauthGrace
    }

    mutating func applyLockout(_ policy: LockoutPolicy, bypass: Bool) {
        lockoutMax = bypass ? 0 : max(0, policy.maxAttempts)
        lockoutDuration = policy.duration
    }
}
