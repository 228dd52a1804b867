import FedloginCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Applies a `ConnectionLimit` to the connections a server accepts: each
/// one is admitted by its peer's uid (SO_PEERCRED) before anything is read
/// from it, and its place is given back when it closes. A refused connection
/// is closed at once, with no answer: the C clients then fail closed within
/// their time bounds.
public final class ConnectionLimiter: Sendable {
    public let limit: ConnectionLimit
    let counts = NIOLockedValueBox(ConnectionCounts())
    /// Called with the refusals per uid, at most once per `limit.reportEvery`.
    let report: @Sendable ([UInt32: Int]) -> Void

    public init(limit: ConnectionLimit = .standard, report: @escaping @Sendable ([UInt32: Int]) -> Void) {
        self.limit = limit
        self.report = report
    }

    /// Admits `channel` or closes it. True when admitted.
    public func admit(_ channel: Channel, peer: PeerCredentials) -> Bool {
        let now = Date().timeIntervalSince1970
        let decision = counts.withLockedValue { $0.admit(uid: peer.uid, limit: limit, now: now) }
        switch decision {
        case .admitted:
            // closeFuture completes once, also when the channel closed already.
            channel.closeFuture.whenComplete { [counts] _ in
                counts.withLockedValue { $0.release(uid: peer.uid) }
            }
            return true
        case .refused(let due):
            channel.close(promise: nil)
            if let due { report(due) }
            return false
        }
    }

    /// The connections held now (for tests and status).
    public var current: ConnectionCounts { counts.withLockedValue { $0 } }

    /// The refusals of a report as a log line's text: "uid 65534: 1936".
    public static func describe(_ refusals: [UInt32: Int]) -> String {
        refusals.sorted { $0.key < $1.key }.map { "uid \($0.key): \($0.value)" }.joined(separator: ", ")
    }

    /// A peer's connection was refused by the limits (closed at once).
    public struct Refused: Error, CustomStringConvertible {
        public let peer: PeerCredentials
        public init(peer: PeerCredentials) { self.peer = peer }
        public var description: String { "connection of \(peer) refused: too many connections" }
    }
}
