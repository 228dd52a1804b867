/// The bookkeeping of fedlogin-directoryd's persistent LDAP connections
/// (docs/ldap.md, "Connections"), without the connections' I/O: which idle
/// connection a request reuses, which are too old to keep, and which
/// libldap results mean the connection itself is lost.
///
/// A request takes an idle connection (the one to the earliest URI in the
/// configured list, then the most recently used) or opens one, and gives it
/// back when its operation got an answer. The pool keeps at most `capacity`
/// idle connections. It closes, instead of reusing:
/// - a connection idle for longer than `idleLimit` seconds (servers and
///   firewalls drop idle connections; a fresh one costs less than a retry);
/// - a connection to any URI but the first older than `fallbackAge` seconds,
///   so that after the first server comes back the requests go to it again
///   within that time.
/// A connection-level failure drops every idle connection (they went to the
/// same servers, and a restarted server has closed them all).
public struct LDAPPoolBook<Handle> {
    public struct Entry {
        public var handle: Handle
        /// Its URI's place in the configured list (0 = the first).
        public var uriIndex: Int
        /// When it was opened and when it was last given back (seconds, any monotonic clock).
        public var opened: Double
        public var lastUsed: Double

        public init(handle: Handle, uriIndex: Int, opened: Double, lastUsed: Double? = nil) {
            self.handle = handle
            self.uriIndex = uriIndex
            self.opened = opened
            self.lastUsed = lastUsed ?? opened
        }
    }

    public let capacity: Int
    public let idleLimit: Double
    public let fallbackAge: Double
    public private(set) var idle: [Entry] = []

    public init(capacity: Int, idleLimit: Double = 60, fallbackAge: Double = 60) {
        self.capacity = max(0, capacity)
        self.idleLimit = idleLimit
        self.fallbackAge = fallbackAge
    }

    /// True when `e` is not to be used (or kept) at `now`.
    public func expired(_ e: Entry, now: Double) -> Bool {
        if now - e.lastUsed > idleLimit { return true }
        return e.uriIndex > 0 && now - e.opened > fallbackAge
    }

    /// An idle connection for a request (nil: open a new one), and the
    /// expired ones, which the caller closes.
    public mutating func checkout(now: Double) -> (reuse: Entry?, close: [Handle]) {
        let close = idle.filter { expired($0, now: now) }.map(\.handle)
        idle = idle.filter { !expired($0, now: now) }
        guard !idle.isEmpty else { return (nil, close) }
        var best = 0
        for i in idle.indices.dropFirst() {
            let a = idle[i]
            let b = idle[best]
            if a.uriIndex < b.uriIndex || (a.uriIndex == b.uriIndex && a.lastUsed > b.lastUsed) { best = i }
        }
        return (idle.remove(at: best), close)
    }

    /// A connection given back after its operation got an answer (any
    /// answer, also a refusal). Returns the handles to close: it, when it
    /// has expired or the pool is full.
    public mutating func checkin(_ e: Entry, now: Double) -> [Handle] {
        var e = e
        e.lastUsed = now
        guard !expired(e, now: now), idle.count < capacity else { return [e.handle] }
        idle.append(e)
        return []
    }

    /// After a connection-level failure: every idle connection, to close.
    public mutating func dropAll() -> [Handle] {
        defer { idle = [] }
        return idle.map(\.handle)
    }
}

/// What a libldap result code means for the connection it came on
/// (OpenLDAP's ldap.h values; the API's numbers do not change).
public enum LDAPResultKind: Equatable, Sendable {
    case success
    /// The connection is lost or the server cannot serve (server down,
    /// connect error, timeout, busy, unavailable, a garbled answer): the
    /// connection is dropped and the request is tried once more on a fresh
    /// one, which tries the URIs in order.
    case connectionLost
    /// The server answered (no such object, insufficient access, ...): the
    /// answer stands, the connection is kept.
    case answer

    public static func of(_ rc: Int32) -> LDAPResultKind {
        switch rc {
        case 0: return .success
        // LDAP_SERVER_DOWN, LDAP_LOCAL_ERROR, LDAP_ENCODING_ERROR,
        // LDAP_DECODING_ERROR, LDAP_TIMEOUT, LDAP_CONNECT_ERROR
        case -1, -2, -3, -4, -5, -11: return .connectionLost
        // LDAP_BUSY, LDAP_UNAVAILABLE
        case 51, 52: return .connectionLost
        default: return .answer
        }
    }
}
