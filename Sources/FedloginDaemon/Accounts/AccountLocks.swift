import FedloginCore
import Foundation

/// Keeps an account's shadow entry in line with fedlogin's reasons to lock
/// it (ShadowLocks): the directory-sync lock and the failed-login lockout,
/// mirrored into /etc/shadow so pam_unix refuses the account whatever the
/// login path, also while fedlogind is stopped. Runs on the account-change
/// queue, like every other account change.
struct AccountLocks {
    let accounts: any AccountBackend
    let state: StateStore

    init(runtime: Runtime) {
        accounts = runtime.accounts
        state = runtime.state
    }

    /// fedlogin's reasons for an account, from its state record.
    static func reasons(of a: StateStore.Account, now: Double) -> Set<ShadowLocks.Reason> {
        var r = Set<ShadowLocks.Reason>()
        if a.lockedReason != nil { r.insert(.sync) }
        if a.lockoutMax > 0, let until = a.lockedUntil, until > now { r.insert(.lockout) }
        return r
    }

    /// Today as shadow counts it: whole days since 1970-01-01 (UTC).
    static func today(_ now: Double) -> Int { Int((now / 86400).rounded(.down)) }

    /// Writes what the account's reasons ask for; returns the plan applied.
    @discardableResult
    func reconcile(_ a: StateStore.Account, now: Double = Date().timeIntervalSince1970) throws -> ShadowLocks.Plan {
        guard let entry = try accounts.lockEntry(a.username) else { return ShadowLocks.Plan() }
        let record = try state.shadowRecord(a.username)
        let plan = ShadowLocks.plan(
            entry: entry, record: record, reasons: Self.reasons(of: a, now: now), offlineUntil: a.offlineEnd.map(OfflineWindow.expiryDay))
        if plan.lockPassword { try accounts.lockPassword(name: a.username) }
        if let expire = plan.setExpire { try accounts.setExpiry(name: a.username, day: expire) }
        if plan.unlockPassword { try accounts.unlockPassword(name: a.username) }
        if plan.record != record { try state.setShadowRecord(a.username, plan.record) }
        return plan
    }

    /// Whether someone other than fedlogin (an administrator) locked or
    /// expired the account.
    func lockedByOthers(_ username: String, now: Double = Date().timeIntervalSince1970) throws -> Bool {
        guard let entry = try accounts.lockEntry(username) else { return false }
        return ShadowLocks.lockedByOthers(entry: entry, record: try state.shadowRecord(username), today: Self.today(now))
    }
}

extension ShadowAccounts {
    /// The fields of the user's shadow entry that lock the account.
    func lockEntry(_ name: String) throws -> ShadowLocks.Entry? {
        let text = try Sys.readText(etc + "/shadow")
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count >= 8, f[0] == name else { continue }
            return ShadowLocks.Entry(passwordLocked: f[1].hasPrefix("!"), expire: Int(f[7]).flatMap { $0 < 0 ? nil : $0 })
        }
        return nil
    }

    /// Sets the account's expiry day (days since 1970-01-01); nil: never.
    func setExpiry(name: String, day: Int?) throws {
        try usermod(["--expiredate", day.map(String.init) ?? ""], name)
    }

    func lockPassword(name: String) throws { try usermod(["--lock"], name) }

    /// Removes the "!" before the password hash (a password that was never
    /// set stays unusable: usermod refuses to leave an empty one).
    func unlockPassword(name: String) throws {
        if let h = try shadowHash(name), h.hasPrefix("!"), h.count > 1 { try usermod(["--unlock"], name) }
    }
}
