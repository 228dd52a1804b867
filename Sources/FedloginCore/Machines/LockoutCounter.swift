/// The failed-login lockout of a managed account as a state machine: the
/// count of wrong local passwords and the time a lockout ends. Zero
/// `maxAttempts` turns it off. An expired lockout starts a new count; a
/// successful account check (not locked) clears both.
public struct LockoutCounter: Sendable, Equatable {
    public var maxAttempts: Int
    public var duration: Double
    public var failedAttempts: Int
    public var lockedUntil: Double?

    public init(maxAttempts: Int, duration: Double, failedAttempts: Int, lockedUntil: Double?) {
        self.maxAttempts = maxAttempts
        self.duration = duration
        self.failedAttempts = failedAttempts
        self.lockedUntil = lockedUntil
    }

    public enum FailureAction: Sendable, Equatable {
        /// No lockout applies to the account: nothing to record.
        case none
        /// Counted; still below the limit, or already locked.
        case counted
        /// This attempt reached the limit: locked until the time given.
        case locked(until: Double)
    }

    /// The time the account is locked until, if it is locked at `now`.
    public func locked(now: Double) -> Double? {
        guard maxAttempts > 0, let until = lockedUntil, until > now else { return nil }
        return until
    }

    /// A wrong local password at `now`.
    public mutating func failed(now: Double) -> FailureAction {
        guard maxAttempts > 0 else { return .none }
        if let until = lockedUntil, until <= now {
            lockedUntil = nil
            failedAttempts = 0
        }
        failedAttempts += 1
        if failedAttempts >= maxAttempts && lockedUntil == nil {
            let until = now + duration
            lockedUntil = until
            return .locked(until: until)
        }
        return .counted
    }

    public enum CheckAction: Sendable, Equatable {
        /// Nothing recorded: nothing to clear.
        case none
        /// The count (and a lapsed lockout) was cleared; `liftMirror` when
        /// a lockout's copy in /etc/shadow has to be lifted as well.
        case cleared(liftMirror: Bool)
    }

    /// The account check of an account not locked at `now` (the caller
    /// refuses a locked one first): the count starts again.
    public mutating func accountChecked() -> CheckAction {
        guard failedAttempts != 0 || lockedUntil != nil else { return .none }
        let hadLockout = lockedUntil != nil
        failedAttempts = 0
        lockedUntil = nil
        return .cleared(liftMirror: hadLockout)
    }
}
