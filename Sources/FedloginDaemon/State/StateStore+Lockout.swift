import FedloginCore

extension StateStore.Account {
    /// The account's failed-login count and lockout as the `LockoutCounter`
    /// state machine; setting it writes the count and the end back.
    var lockout: LockoutCounter {
        get {
            LockoutCounter(maxAttempts: lockoutMax, duration: lockoutDuration, failedAttempts: failedAttempts, lockedUntil: lockedUntil)
        }
        set {
            failedAttempts = newValue.failedAttempts
            lockedUntil = newValue.lockedUntil
        }
    }
}
