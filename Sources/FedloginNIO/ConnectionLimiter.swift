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

/// Closes a connection that stays idle too long: no complete frame within
/// `timeout` of the connection's start, or of the last answer written when
/// every request read has been answered. A connection with a request being
/// answered is never idle. Placed after the frame codec, so it counts whole
/// frames (one answer per request, as the directory protocol has it).
public final class IdleGuard: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    let timeout: TimeAmount
    var open = 0
    var timer: Scheduled<Void>?

    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context: context) }
    }

    /// An accepted connection is set up before it is active: the time counts from here.
    public func channelActive(context: ChannelHandlerContext) {
        if open == 0 { arm(context: context) }
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        open += 1
        timer?.cancel()
        timer = nil
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        open = max(0, open - 1)
        if open == 0 { arm(context: context) }
        context.write(data, promise: promise)
    }

    func arm(context: ChannelHandlerContext) {
        timer?.cancel()
        guard context.channel.isActive else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) {
            channel.close(promise: nil)
        }
    }
}
