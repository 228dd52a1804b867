/// The device authorization grant's wait (RFC 8628 §3.4-3.5) as a state
/// machine: it takes the IdP's answers and the time and says what to do
/// next; the daemon's shell does the HTTP and the sleeping.
///
/// The wait ends at the sign-in's deadline or a few seconds after the code
/// expires (`expiryGrace`: the IdP's expired_token, not a guess, ends it),
/// whichever is first. Every pending answer waits `interval`; slow_down
/// adds 5 s (`DeviceTiming.slowedDown`, at most 60 s).
public struct DeviceGrantPoll: Sendable, Equatable {
    /// Grace after the code's `expires_in` for the IdP to say expired_token.
    public static let expiryGrace: Double = 5

    /// An answer of the token endpoint other than a token.
    public enum Answer: Sendable, Equatable {
        case pending
        case slowDown
        case denied
        case expired
    }

    /// Why the wait ended without a token.
    public enum Failure: Sendable, Equatable {
        /// The sign-in's deadline (or the code's end and its grace) passed.
        case deadlinePassed
        /// access_denied: the user cancelled or the IdP refused.
        case denied
        /// expired_token: the code ran out.
        case expired
    }

    public enum Action: Sendable, Equatable {
        /// Ask the token endpoint now.
        case poll
        /// Sleep this many seconds, then call `woke(now:)`.
        case wait(Double)
        /// Stop waiting.
        case fail(Failure)
    }

    /// Seconds between polls now.
    public private(set) var interval: Double
    /// When the code expires, as the IdP said.
    public let codeEnd: Double
    /// When the wait ends: `min(deadline, codeEnd + expiryGrace)`.
    public let end: Double
    /// How many times the token endpoint was asked.
    public private(set) var polls = 0

    /// `interval` and `expiresIn` as bounded by `DeviceTiming`; `deadline`
    /// the sign-in's; `now` when the grant started.
    public init(interval: Double, expiresIn: Double, deadline: Double, now: Double) {
        self.interval = interval
        codeEnd = now + expiresIn
        end = min(deadline, codeEnd + Self.expiryGrace)
    }

    /// The end the user is told about (without the grace).
    public var shownEnd: Double { min(end, codeEnd) }

    /// How long the "press Enter" prompt may wait, at least a second.
    public func promptTimeout(now: Double) -> Double { max(1, end - now) }

    /// The user is ready (or a wait is over): poll, or stop at the end.
    public mutating func woke(now: Double) -> Action {
        guard now < end else { return .fail(.deadlinePassed) }
        polls += 1
        return .poll
    }

    /// The token endpoint's answer when it was not a token.
    public mutating func received(_ answer: Answer) -> Action {
        switch answer {
        case .pending: return .wait(interval)
        case .slowDown:
            interval = DeviceTiming.slowedDown(interval)
            return .wait(interval)
        case .denied: return .fail(.denied)
        case .expired: return .fail(.expired)
        }
    }
}
