import FedloginCore
import FedloginNIO
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Makes a managed account, for a first login and ahead of one (sync's
/// pre-provisioning, `fedloginctl bind`), and reserves the uid an NSS
/// lookup announces (`reserve` alone): reserve the uid, record the
/// intent, create it with shadow-utils, set its password and groups, then
/// commit it with its binding report queued, or undo it. A crash at any
/// point leaves nothing (the intent is undone at the next start,
/// `Runtime.recover`) or a complete account with its report queued.
struct AccountProvisioner {
    let runtime: Runtime

    /// What the new account is bound to when it is committed.
    enum Binding {
        /// A verified sign-in: active and bound to the identity.
        case signedIn(issuer: String, subject: String, mode: PasswordMode)
        /// Ahead of the first sign-in: active with the directory's password
        /// (`hash` given) or pending without one.
        case ahead
    }

    struct Request {
        var localName: String
        var user: DirectoryUser
        var policy: DevicePolicy
        /// The uid to give (the one NSS announced, or the directory's); nil: the first free one.
        var wantedUID: UInt32?
        /// The password hash to set; nil: none yet (pending).
        var hash: String?
        /// Local groups to add besides `accounts.groups`, chosen once the account exists.
        var groups: () -> [String] = { [] }
        var binding: Binding
        /// Test-only crash points of a first login (FEDLOGIN_FAILPOINT).
        var failpoints = false
    }

    /// Why no account was made. Nothing is left behind in either case.
    enum Failure: Error {
        /// No free uid in the range (or the wanted one is reserved for someone else).
        case noFreeUID(ClosedRange<UInt32>)
        /// Before anything changed on the system: the reservation or the intent could not be written.
        case notStarted(any Error)
        /// A step failed; what was made is undone.
        case undone(any Error)

        var cause: (any Error)? {
            switch self {
            case .noFreeUID: nil
            case .notStarted(let e), .undone(let e): e
            }
        }
    }

    /// Step 0, and all an NSS lookup does ahead of a first login
    /// (`NSSResolver.lookUp`): the uid for `name` (`wanted` if it is free,
    /// else the first free one in the range) reserved in one transaction
    /// of the state database; nil when the range has none. A non-root
    /// caller's reservation is tentative and within `limit`
    /// (`StateStore.reserve`); `busy` names the users with a sign-in in progress.
    func reserve(
        _ name: String, gecos: String, wanted: UInt32?, byRoot: Bool = true, limit: ReservationLimit? = nil,
        busy: @escaping (String) -> Bool = { _ in false }
    ) throws -> StateStore.Reservation? {
        let accounts = runtime.accounts
        let config = runtime.config.accounts
        return try runtime.state.reserve(name, gecos: gecos, wanted: wanted, byRoot: byRoot, limit: limit, busy: busy) { others in
            try accounts.freeUID(in: config.uidMin...config.uidMax, reserved: others)
        }
    }

    /// Runs the steps; returns the committed record.
    func make(_ r: Request, log: Logger) throws(Failure) -> StateStore.Account {
        let state = runtime.state
        let accounts = runtime.accounts
        let config = runtime.config.accounts
        let range = config.uidMin...config.uidMax
        let gecos = NSSResolver.gecos(r.user.displayName ?? "")
        let now = Sys.iso8601()
        var record: StateStore.Account
        do {
            // The uid NSS announced for this user, if it did: the account gets
            // exactly that one. Otherwise one is chosen and reserved in one
            // transaction, so two first logins at once never pick the same uid.
            let reservation = try reserve(r.localName, gecos: gecos, wanted: r.wantedUID)
            guard let uid = reservation?.uid else { throw Failure.noFreeUID(range) }
            // 1. The intent, durable before anything changes on the system.
            record = StateStore.Account(
                username: r.localName, uid: uid, state: .provisioning, directoryUsername: r.user.username, email: r.user.email,
                createdAt: now)
            record.applyLockout(r.policy.lockout, bypass: r.user.lockoutBypass)
            record.directoryAnswered(at: runtime.clock.now(), offlineMax: r.policy.offlineMax)
            record.applyReauth(r.policy, user: r.user)
            try state.beginProvisioning(record)
        } catch let f as Failure {
            throw f
        } catch {
            throw .notStarted(error)
        }
        do {
            if r.failpoints { try runtime.failpoint("after-intent") }
            // 2. The account, locked until its password is set.
            try accounts.create(
                name: r.localName, uid: record.uid, gecos: gecos, shell: config.shell, homeRoot: config.homeRoot, groups: config.groups)
            if r.failpoints { try runtime.failpoint("after-useradd") }
            if let hash = r.hash { try accounts.setPasswordHash(name: r.localName, hash: hash) }
            if r.failpoints { try runtime.failpoint("after-password") }
            // The groups a sync would give it, recorded as managed the same way,
            // so the first session has them and the next sync changes nothing.
            let extra = Set(r.groups()).subtracting(accounts.groups(of: r.localName))
            record.managedGroups = try applyGroups(r.localName, user: r.user, policy: r.policy, managed: [], extra: extra)
            try state.update(record)
            // 3. Committed with its report queued, in one transaction.
            switch r.binding {
            case .signedIn(let issuer, let subject, let mode):
                record.state = .active
                record.passwordMode = mode
                try state.commitBinding(
                    username: r.localName, issuer: issuer, subject: subject, passwordMode: mode, boundAt: now,
                    report: report(account: record, issuer: issuer, subject: subject, passwordMode: mode.rawValue, boundAt: now))
            case .ahead:
                record.state = r.hash == nil ? .pending : .active
                record.passwordMode = r.hash == nil ? nil : .synced
                try state.commitPending(
                    username: r.localName, state: record.state, passwordMode: record.passwordMode,
                    managedGroups: record.managedGroups, boundAt: now,
                    report: report(account: record, passwordMode: record.passwordMode?.rawValue ?? "pending", boundAt: now))
            }
        } catch {
            log.error("provisioning failed, undoing: \(ErrorText.describe(error))")
            runtime.undoProvisioning(r.localName)
            throw .undone(error)
        }
        runtime.nssCache.clear()
        runtime.outbox.kick()
        return record
    }

    /// An account made ahead of the first sign-in, completed by it: its
    /// groups brought up to date as a sync would, the password, then active
    /// and bound with its report queued.
    func complete(
        _ pending: StateStore.Account, user: DirectoryUser, policy: DevicePolicy, hash: String, issuer: String, subject: String,
        mode: PasswordMode
    ) throws {
        var updated = pending
        updated.managedGroups = try applyGroups(
            pending.username, user: user, policy: policy, managed: Set(pending.managedGroups.split(separator: ",").map(String.init)))
        if updated != pending { try runtime.state.update(updated) }
        try runtime.accounts.setPasswordHash(name: pending.username, hash: hash)
        let now = Sys.iso8601()
        try runtime.state.commitBinding(
            username: pending.username, issuer: issuer, subject: subject, passwordMode: mode, boundAt: now,
            report: try report(account: pending, issuer: issuer, subject: subject, passwordMode: mode.rawValue, boundAt: now))
        runtime.outbox.kick()
    }

    /// Adds and removes the account's local groups as a sync would
    /// (`SyncPlanner.plan`: the mapped directory groups and the admin group,
    /// those that exist) plus `extra`; returns the managed groups to record.
    func applyGroups(_ name: String, user: DirectoryUser, policy: DevicePolicy, managed: Set<String>, extra: Set<String> = []) throws
        -> String
    {
        let accounts = runtime.accounts
        let config = runtime.config.accounts
        let actions = SyncPlanner.plan(
            user: user, associated: true, lockedBySync: nil, managedGroups: managed, memberOf: accounts.groups(of: name),
            existingGroups: accounts.existingGroups(), policy: policy, groupMap: config.groupMap, adminGroup: config.adminGroup)
        for g in Set(actions.addGroups).union(extra).sorted() { try accounts.addToGroup(name: name, group: g) }
        for g in actions.removeGroups { try accounts.removeFromGroup(name: name, group: g) }
        return Set(actions.managedGroups).union(extra).sorted().joined(separator: ",")
    }

    /// A binding (or unbinding) report for the outbox: the one place a report is built.
    func report(
        account: StateStore.Account, action: String = "bind", issuer: String = "", subject: String = "", passwordMode: String,
        boundAt: String = Sys.iso8601()
    ) throws -> StateStore.OutboxItem {
        let r = BindingReport(
            key: UUID().uuidString.lowercased(), deviceID: runtime.deviceID, username: account.directoryUsername,
            localUsername: account.username, uid: account.uid, email: account.email, issuer: issuer, subject: subject,
            passwordMode: passwordMode, boundAt: boundAt, action: action, seq: ReportSequence.next())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return StateStore.OutboxItem(
            key: r.key, username: account.username, payload: String(decoding: try encoder.encode(r), as: UTF8.self), attempts: 0,
            nextAttempt: 0)
    }
}

/// `seq` of the binding reports: microseconds since 1970, strictly
/// increasing within the process (two reports in one microsecond, or a
/// clock stepped back, still get increasing numbers).
enum ReportSequence {
    private static let last = NIOLockedValueBox<UInt64>(0)

    static func next(now: Date = Date()) -> UInt64 {
        let micros = UInt64(max(0, now.timeIntervalSince1970 * 1_000_000))
        return last.withLockedValue { last in
            last = max(last + 1, micros)
            return last
        }
    }
}
