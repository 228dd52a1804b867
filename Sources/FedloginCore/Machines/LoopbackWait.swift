/// The loopback sign-in's wait (RFC 8252 §7.3) as a state machine: after
/// the authorization address is shown, the user is asked to press Enter
/// once signed in, or to paste the address the browser ended on when it
/// cannot come back to this machine. It takes what the user answered, what
/// the redirect listener brought and the time, and says what to do next;
/// the daemon's shell does the prompting, the waiting and the messages.
///
/// - An answer holding `code=` or `error=` is a pasted address: it ends the
///   wait if its `state` is this sign-in's, else the sign-in fails.
/// - Enter (any other answer): the redirect may still be on its way, so it
///   is awaited up to `callbackGrace` seconds (with keepalives to the PAM
///   client); if it does not come, the user is reminded and asked again.
/// - Every prompt waits at most until the sign-in's deadline; at or past
///   it the wait fails.
public struct LoopbackWait: Sendable, Equatable {
    /// How long the redirect is awaited after the user pressed Enter.
    public static let callbackGrace: Double = 3

    public enum Failure: Sendable, Equatable {
        /// The sign-in's deadline passed.
        case deadlinePassed
        /// A pasted address carries another sign-in's `state`.
        case wrongState
    }

    public enum Action: Sendable, Equatable {
        /// Ask the user to press Enter (or paste the address), waiting at
        /// most this many seconds; then `answered(_:)`.
        case prompt(timeout: Double)
        /// Wait up to this many seconds for the redirect of this sign-in,
        /// keeping the client alive; then `callbackWaited(_:)`.
        case awaitCallback(within: Double)
        /// Tell the user the sign-in has not finished yet; then `reminded(now:)`.
        case remind
        /// The authorization response, from the redirect or pasted.
        case finish(AuthorizationResponse)
        /// Stop waiting.
        case fail(Failure)
    }

    /// The sign-in's `state` parameter.
    public let state: String
    /// When the sign-in ends.
    public let deadline: Double
    /// How many times the user was asked.
    public private(set) var prompts = 0
    /// How many times the redirect was awaited in vain.
    public private(set) var reminders = 0

    public init(state: String, deadline: Double) {
        self.state = state
        self.deadline = deadline
    }

    /// The address is shown: ask, or stop at the deadline.
    public mutating func started(now: Double) -> Action { ask(now: now) }

    /// The user answered the prompt.
    public mutating func answered(_ answer: String) -> Action {
        guard Self.isPastedAddress(answer) else { return .awaitCallback(within: Self.callbackGrace) }
        let pasted = AuthorizationResponse(target: Self.trimmed(answer))
        guard pasted.state == state else { return .fail(.wrongState) }
        return .finish(pasted)
    }

    /// The wait for the redirect ended: with it, or without (nil).
    public mutating func callbackWaited(_ response: AuthorizationResponse?) -> Action {
        if let response { return .finish(response) }
        reminders += 1
        return .remind
    }

    /// The user was told the sign-in has not finished: ask again, or stop at the deadline.
    public mutating func reminded(now: Double) -> Action { ask(now: now) }

    mutating func ask(now: Double) -> Action {
        let left = deadline - now
        guard left > 0 else { return .fail(.deadlinePassed) }
        prompts += 1
        return .prompt(timeout: left)
    }

    /// Whether an answer is the address the browser ended on (a
    /// successful or a refused authorization), not just Enter.
    public static func isPastedAddress(_ answer: String) -> Bool {
        answer.contains("code=") || answer.contains("error=")
    }

    /// `s` without leading and trailing blanks (spaces and tabs, not line ends).
    static func trimmed(_ s: String) -> String {
        let blank: (Character) -> Bool = { $0.isWhitespace && !$0.isNewline }
        guard let first = s.firstIndex(where: { !blank($0) }), let last = s.lastIndex(where: { !blank($0) }) else { return "" }
        return String(s[first...last])
    }
}
