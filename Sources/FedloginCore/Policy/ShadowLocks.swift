/// /etc/shadow has several writers: fedlogin's directory-sync lock, its
/// mirror of the failed-login lockout (so pam_unix refuses a locked account
/// while fedlogind is stopped), and the administrator (`usermod -L`,
/// `passwd -l`, `chage -E`, `usermod -e`). fedlogin records exactly what it
/// wrote, lets the earliest expiry win, and lifts only its own writes.
///
/// An account is refused by pam_unix's account check from its expiry day on
/// (whatever the login path, SSH keys included); a "!" before the password
/// hash makes every password fail. fedlogin expires the account for each of
/// its reasons and, for the sync lock, also locks the password.
public enum ShadowLocks {
    /// Why fedlogin keeps an account expired.
    public enum Reason: String, Codable, Sendable, CaseIterable {
        /// The directory disabled or removed the user, or no longer associates them with the device.
        case sync
        /// Too many failed local logins (the directory's lockout policy).
        case lockout
        /// The end of the offline window (the directory's `offline_max`):
        /// an expiry day in the future, moved on after each answer.
        case offline
    }

    /// The day fedlogin writes for "expired now": 1970-01-02. Day 0 is read
    /// as "never" by some tools (shadow(5)), so it is never used.
    public static let expiredNow = 1

    /// The fields of a shadow entry that lock an account.
    public struct Entry: Sendable, Equatable {
        /// The password field starts with "!".
        public var passwordLocked: Bool
        /// The account expiry, in days since 1970-01-01; nil: never.
        public var expire: Int?

        public init(passwordLocked: Bool, expire: Int?) {
            self.passwordLocked = passwordLocked
            self.expire = expire
        }
    }

    /// What fedlogin wrote to one account's shadow entry; kept in its state.
    public struct Record: Codable, Sendable, Equatable {
        /// The expiry fedlogin last wrote (nil: it cleared the field).
        public var written: Int?
        /// The expiry someone else had set when fedlogin wrote (nil: none).
        public var before: Int?
        /// fedlogin put the "!" before the password hash.
        public var passwordLockAdded: Bool
        /// fedlogin's reasons in force when it last wrote.
        public var reasons: [Reason]

        public init(written: Int?, before: Int?, passwordLockAdded: Bool, reasons: [Reason]) {
            self.written = written
            self.before = before
            self.passwordLockAdded = passwordLockAdded
            self.reasons = reasons
        }
    }

    /// The changes that bring an entry in line with fedlogin's reasons.
    public struct Plan: Sendable, Equatable {
        /// Write this expiry (nil: clear the field); absent: leave the field.
        public var setExpire: Int??
        public var lockPassword = false
        public var unlockPassword = false
        /// What to record; nil: fedlogin has nothing of its own in the entry.
        public var record: Record?

        public init() {}
    }

    /// The expiry anyone but fedlogin set: the entry's, unless the entry
    /// still holds what fedlogin last wrote, in which case what was there
    /// before that write.
    public static func othersExpiry(entry: Entry, record: Record?) -> Int? {
        guard let record, record.written == entry.expire else { return entry.expire }
        return record.before
    }

    /// Whether someone other than fedlogin locked or expired the account as
    /// of `today` (days since 1970-01-01). A passcode reset refuses such an
    /// account: only its administrator may lift their lock.
    public static func lockedByOthers(entry: Entry, record: Record?, today: Int) -> Bool {
        if entry.passwordLocked && !(record?.passwordLockAdded ?? false) { return true }
        if let day = othersExpiry(entry: entry, record: record), day >= expiredNow, today >= day { return true }
        return false
    }

    /// The writes for `reasons` (`.sync` and `.lockout` expire the account
    /// now; `.sync` also locks the password) and for `offlineUntil`, the
    /// expiry day of the offline window (nil: none). The earliest expiry
    /// wins: one that someone else set stays in force, and comes back when
    /// fedlogin lifts its own.
    public static func plan(entry: Entry, record: Record?, reasons: Set<Reason>, offlineUntil: Int? = nil) -> Plan {
        var plan = Plan()
        let others = othersExpiry(entry: entry, record: record)
        var written = record?.written
        var ours = false
        var reasons = reasons.subtracting([.offline])
        if let day = offlineUntil, reasons.isEmpty {
            let target = min(others ?? Int.max, max(day, expiredNow))
            if entry.expire != target { plan.setExpire = .some(target) }
            written = target
            ours = true
            reasons.insert(.offline)
        } else if reasons.isEmpty {
            // Lift only what fedlogin wrote and is still there.
            if let record, record.written == entry.expire {
                if entry.expire != others { plan.setExpire = .some(others) }
            }
        } else {
            let target = min(others ?? Int.max, expiredNow)
            if entry.expire != target { plan.setExpire = .some(target) }
            written = target
            ours = true
        }
        var lockAdded = record?.passwordLockAdded ?? false
        if reasons.contains(.sync) {
            if !entry.passwordLocked {
                plan.lockPassword = true
                lockAdded = true
            }
        } else if lockAdded {
            if entry.passwordLocked { plan.unlockPassword = true }
            lockAdded = false
        }
        if ours || lockAdded {
            plan.record = Record(
                written: written, before: others, passwordLockAdded: lockAdded, reasons: Reason.allCases.filter(reasons.contains))
        }
        return plan
    }
}
