/// How long fedlogind's NSS answers hold and how many it keeps: one login's
/// dozen lookups ask the directory once, and a lookup of many names cannot
/// grow the daemon. Unavailability is never cached (the daemon's `NSSCache`
/// does not store it). All times are seconds since 1970 from the caller's
/// clock.
public struct NSSCachePolicy: Sendable, Equatable {
    /// How long an answer holds.
    public static let standardTTL: Double = 10
    /// At most this many answers are kept.
    public static let maxEntries = 4096

    public let ttl: Double
    public let maxEntries: Int

    public init(ttl: Double = standardTTL, maxEntries: Int = NSSCachePolicy.maxEntries) {
        self.ttl = ttl
        self.maxEntries = maxEntries
    }

    /// Whether an answer stored at `storedAt` still holds at `now`.
    public func isFresh(storedAt: Double, now: Double) -> Bool { now - storedAt < ttl }

    /// The expiry written in the cache file for an answer stored at `storedAt` (whole seconds).
    public func expires(storedAt: Double) -> Int64 { Int64((storedAt + ttl).rounded(.down)) }

    /// The file's `ids_until` when written at `now`: until then, a uid the
    /// file does not list is not fedlogin's.
    public func idsUntil(now: Double) -> Int64 { Int64((now + ttl).rounded(.down)) }

    /// The names to drop so that one more answer fits (`CacheBound`): none
    /// while there is room; else the expired ones, and if that is not
    /// enough the oldest, down to three quarters of the cap. An answer left
    /// out is asked again (a reservation stays in the state database and in
    /// the file as ASK).
    public func evictions(stored: [String: Double], now: Double) -> [String] {
        CacheBound.evictions(stored: stored, now: now, ttl: ttl, max: maxEntries)
    }
}

/// When fedlogind (re)writes the NSS cache file (`nss.cache`, read by
/// libnss_fedlogin before it connects), as a state machine: it takes the
/// requests to publish and the time and says whether to write now, to
/// schedule a write, or neither; the daemon's `NSSCache` writes the file.
///
/// - `force` (a new passwd entry, and with it a new reservation; a cleared
///   cache; the daemon's start) writes at once, before the request is answered.
/// - A file half its lifetime (`ttl / 2`) old is renewed by any request
///   that reaches the daemon.
/// - New NOTFOUND answers (`changed`) are written at most every
///   `minInterval` (50 ms), and at the latest `minInterval` after they
///   came: a write is scheduled for then, even if no request comes.
public struct NSSCachePublishing: Sendable, Equatable {
    /// The shortest time between two writes that only add NOTFOUND answers.
    public static let minInterval = 0.05

    public enum Decision: Sendable, Equatable {
        /// Write the file now.
        case write
        /// Write when this many seconds have passed: then call
        /// `scheduledWriteWoke()` and `publish(now:)`.
        case schedule(after: Double)
        /// The file is current enough, or a write is scheduled already.
        case none
    }

    /// What to log after a write: only a change between failing and not.
    public enum Report: Sendable, Equatable {
        /// The file could not be written (lookups go through the socket).
        case failing
        /// The file is written again.
        case recovered
    }

    public let ttl: Double
    /// When the file was last written (0: never).
    public private(set) var writtenAt: Double = 0
    /// Answers not yet in the file.
    public private(set) var dirty = true
    /// A write of the dirty answers is scheduled.
    public private(set) var scheduled = false
    /// The last write failed.
    public private(set) var failing = false

    public init(ttl: Double = NSSCachePolicy.standardTTL) {
        self.ttl = ttl
    }

    /// A request to publish at `now`: `force`d, or with `changed` answers
    /// (new NOTFOUND ones), or neither (a request reached the daemon).
    public mutating func publish(now: Double, force: Bool = false, changed: Bool = false) -> Decision {
        if force || now - writtenAt >= ttl / 2 || ((dirty || changed) && now - writtenAt >= Self.minInterval) {
            writtenAt = now
            dirty = false
            return .write
        }
        if changed { dirty = true }
        // Written when the interval is over, even if no request comes then.
        guard dirty, !scheduled else { return .none }
        scheduled = true
        return .schedule(after: writtenAt + Self.minInterval - now)
    }

    /// The scheduled write's time has come (a `publish(now:)` follows).
    public mutating func scheduledWriteWoke() { scheduled = false }

    /// A write ended, `ok` or not: what to log, if anything.
    public mutating func wrote(ok: Bool) -> Report? {
        defer { failing = !ok }
        guard failing == ok else { return nil }
        return ok ? .recovered : .failing
    }
}
