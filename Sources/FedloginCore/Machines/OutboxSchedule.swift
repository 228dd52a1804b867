/// When the outbox delivers a binding report again: a failed attempt waits
/// `Backoff.delay` (1, 2, 4 ... s, at most `retryMax`); the delivery timer
/// is set for the earliest report due, at least `minimumWait` ahead so a
/// report due now never spins the loop.
public struct OutboxSchedule: Sendable, Equatable {
    public static let minimumWait: Double = 0.05

    public let retryMax: Double

    public init(retryMax: Double) {
        self.retryMax = retryMax
    }

    /// A report's delivery failed after `attempts` earlier failures: how long
    /// to wait and when to try it again.
    public func failed(attempts: Int, now: Double) -> (delay: Double, nextAttempt: Double) {
        let delay = Backoff.delay(afterAttempts: attempts, max: retryMax)
        return (delay, now + delay)
    }

    /// After a round: how long until the next one, given the earliest
    /// `nextAttempt` still queued (nil: nothing queued, no timer).
    public func timer(nextAttempt: Double?, now: Double) -> Double? {
        guard let nextAttempt else { return nil }
        return max(Self.minimumWait, nextAttempt - now)
    }
}
