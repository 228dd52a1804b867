/// How many uid reservations NSS lookups by non-root callers may hold, and
/// when one is given up (docs/accounts.md, uid reservation).
///
/// A reservation made for root (sshd, login, su run by root, a first login)
/// is kept until the account exists, as before. One made only for non-root
/// callers (`id NAME`, `ls -l`, su run by a user) is tentative: at most
/// `cap` are held; one that no lookup used for `expiry` is released; and when
/// a new one needs room the oldest unused for at least `minAge` goes. Never
/// one whose user has a sign-in in progress or an account.
public struct ReservationLimit: Sendable, Equatable {
    /// Reservations made for non-root callers held at once.
    public var cap: Int
    /// A non-root reservation used more recently than this is never released.
    public var minAge: Double
    /// A non-root reservation unused this long is released.
    public var expiry: Double

    public init(cap: Int, minAge: Double, expiry: Double) {
        self.cap = cap
        self.minAge = minAge
        self.expiry = expiry
    }

    /// For a uid range of `rangeSize` uids and sign-ins that take at most
    /// `longestSignIn` seconds: at most 256 and at most a quarter of the
    /// range; kept for at least an hour and twice the longest sign-in;
    /// released after a day unused (or the minimum age, if longer).
    public static func standard(rangeSize: Int, longestSignIn: Double) -> ReservationLimit {
        let minAge = max(3600, 2 * longestSignIn)
        return ReservationLimit(cap: max(1, min(256, rangeSize / 4)), minAge: minAge, expiry: max(86400, minAge))
    }
}

public enum ReservationPlanner {
    /// A reservation already held.
    public struct Held: Sendable, Equatable {
        public var username: String
        /// Made or used by a root caller (kept until the account exists).
        public var byRoot: Bool
        /// When a lookup last used it (seconds since the epoch).
        public var lastUsed: Double

        public init(username: String, byRoot: Bool, lastUsed: Double) {
            self.username = username
            self.byRoot = byRoot
            self.lastUsed = lastUsed
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Make the new reservation after releasing these (oldest first).
        case reserve(release: [String])
        /// A non-root caller's reservation that does not fit: none is made.
        case refuse
    }

    /// Whether a new reservation may be made, for a root caller or not, and
    /// which held ones to release first. `held` does not include the name
    /// asked for; `busy` says whether a user has a sign-in in progress or an
    /// account (never released).
    public static func decide(
        held: [Held], forRoot: Bool, now: Double, limit: ReservationLimit, busy: (String) -> Bool
    ) -> Decision {
        let tentative = held.filter { !$0.byRoot && !busy($0.username) }
        // Unused too long (a clock set back keeps them longer, never shorter).
        let expired = tentative.filter { now - $0.lastUsed >= limit.expiry }
            .sorted { ($0.lastUsed, $0.username) < ($1.lastUsed, $1.username) }
        if forRoot { return .reserve(release: expired.map(\.username)) }
        let nonRoot = held.filter { !$0.byRoot }.count - expired.count
        if nonRoot < limit.cap { return .reserve(release: expired.map(\.username)) }
        let gone = Set(expired.map(\.username))
        let candidates = tentative.filter { !gone.contains($0.username) && now - $0.lastUsed >= limit.minAge }
            .sorted { ($0.lastUsed, $0.username) < ($1.lastUsed, $1.username) }
        let need = nonRoot - limit.cap + 1
        guard candidates.count >= need else { return .refuse }
        return .reserve(release: expired.map(\.username) + candidates.prefix(need).map(\.username))
    }
}
