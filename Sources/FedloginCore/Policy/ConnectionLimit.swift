/// How many connections the peers of a socket open to everyone (fedlogind's
/// and the directory service's, both mode 0666) may hold at once. Root is
/// never refused because of anyone else's load: its connections are counted
/// apart and have no limit here (the process's open-file limit, `LimitNOFILE`
/// in the units, leaves room for them).
public struct ConnectionLimit: Sendable, Equatable {
    /// Connections one non-root uid may hold at once.
    public var perUID: Int
    /// Connections all non-root peers together may hold at once.
    public var nonRoot: Int
    /// The shortest time between two log lines about refusals.
    public var reportEvery: Double

    public init(perUID: Int, nonRoot: Int, reportEvery: Double = 60) {
        self.perUID = perUID
        self.nonRoot = nonRoot
        self.reportEvery = reportEvery
    }

    /// 64 per non-root uid, 512 for all non-root peers together.
    public static let standard = ConnectionLimit(perUID: 64, nonRoot: 512)
}

/// The connections a socket holds, per peer uid. Pure: the caller supplies
/// the clock and does the locking.
public struct ConnectionCounts: Sendable, Equatable {
    public private(set) var byUID: [UInt32: Int] = [:]
    public private(set) var nonRoot = 0
    public private(set) var root = 0
    /// Refusals not yet reported in a log line, per uid.
    public private(set) var unreported: [UInt32: Int] = [:]
    var lastReport: Double?

    public init() {}

    public enum Decision: Sendable, Equatable {
        case admitted
        /// Refused; `report` lists the refusals per uid to log now (nil:
        /// not yet, the next report sums them up).
        case refused(report: [UInt32: Int]?)
    }

    /// Admits a new connection from `uid`, or refuses it when `uid` (not
    /// root) is at its own limit or the non-root peers are at theirs.
    public mutating func admit(uid: UInt32, limit: ConnectionLimit, now: Double) -> Decision {
        if uid == 0 {
            root += 1
            return .admitted
        }
        let mine = byUID[uid, default: 0]
        guard mine < limit.perUID && nonRoot < limit.nonRoot else {
            unreported[uid, default: 0] += 1
            if let last = lastReport, now - last < limit.reportEvery, now >= last { return .refused(report: nil) }
            lastReport = now
            let report = unreported
            unreported = [:]
            return .refused(report: report)
        }
        byUID[uid] = mine + 1
        nonRoot += 1
        return .admitted
    }

    /// A connection `admit` admitted has closed.
    public mutating func release(uid: UInt32) {
        if uid == 0 {
            root = max(0, root - 1)
            return
        }
        guard let mine = byUID[uid] else { return }
        byUID[uid] = mine > 1 ? mine - 1 : nil
        nonRoot = max(0, nonRoot - 1)
    }
}
