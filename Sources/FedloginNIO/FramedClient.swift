import FedloginCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A client connection speaking length-prefixed frames over a Unix socket,
/// with a deadline on every read.
public enum FramedClient {
    public enum ClientError: Error, CustomStringConvertible {
        case timeout(String)
        case closed(String)
        case connect(String, any Error)
        case untrustedPeer(String, UInt32)

        public var description: String {
            switch self {
            case .untrustedPeer(let path, let uid): "\(path) is served by uid \(uid), not root: refusing to use it"
            case .timeout(let what): "no answer from \(what) in time"
            case .closed(let what): "\(what) closed the connection before answering"
            case .connect(let path, let e): "cannot connect to \(path): \(ErrorText.reason(e))"
            }
        }
    }

    /// Refuses (`untrustedPeer`) and closes a connection whose server does
    /// not run as root. The server's credentials exist once connected; no
    /// credentials, no trust.
    static func requireRoot(_ channel: Channel, _ path: String) async throws {
        let uid = (try? await PeerCredentials.of(channel).get())?.uid ?? UInt32.max
        guard uid == 0 else {
            try? await channel.close()
            throw ClientError.untrustedPeer(path, uid)
        }
    }

    /// Connects, runs `body` with the connection, closes it.
    public static func with<T: Sendable>(
        socket path: String, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: TimeAmount = .seconds(2), maxFrame: Int = Wire.maxFrame, requireRootPeer: Bool = false,
        _ body: (FramedSession) async throws -> T
    ) async throws -> T {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addFrameCodec(maxFrame: maxFrame)
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw ClientError.connect(path, error)
        }
        if requireRootPeer { try await requireRoot(channel.channel, path) }
        let raw = channel.channel
        return try await channel.executeThenClose { inbound, outbound in
            let session = FramedSession(
                channel: raw, outbound: outbound, iterator: inbound.makeAsyncIterator(), peer: path)
            return try await body(session)
        }
    }
}

/// One open framed connection (valid inside `FramedClient.with`); used by one
/// task at a time.
public final class FramedSession {
    let channel: Channel
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let peer: String

    init(
        channel: Channel, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, peer: String
    ) {
        self.channel = channel
        self.outbound = outbound
        self.iterator = iterator
        self.peer = peer
    }

    public func send(_ body: ByteBuffer) async throws {
        try await outbound.write(body)
    }

    /// The next frame body. A read that takes longer than `timeout` closes the
    /// connection and throws `ClientError.timeout`.
    public func receive(timeout: TimeAmount) async throws -> ByteBuffer {
        let timer = ReadTimer(channel: channel, timeout: timeout)
        defer { timer.cancel() }
        let next: ByteBuffer?
        do {
            next = try await iterator.next()
        } catch {
            if timer.fired { throw FramedClient.ClientError.timeout(peer) }
            throw error
        }
        guard let body = next else {
            if timer.fired { throw FramedClient.ClientError.timeout(peer) }
            throw FramedClient.ClientError.closed(peer)
        }
        return body
    }
}

/// Closes a channel when a read takes too long, so the pending read ends.
public final class ReadTimer: Sendable {
    let scheduled: Scheduled<Void>
    let state: NIOLockedValueBox<Bool>

    public init(channel: Channel, timeout: TimeAmount) {
        let state = NIOLockedValueBox(false)
        self.state = state
        scheduled = channel.eventLoop.scheduleTask(in: timeout) {
            state.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
    }

    public var fired: Bool { state.withLockedValue { $0 } }

    public func cancel() { scheduled.cancel() }
}

/// A framed client connection kept open for many exchanges: one request
/// frame, then its answer frame, one exchange at a time (the caller keeps
/// that order; a connection pool hands it to one request at a time). A
/// connection the server closed is no longer `isOpen`; one whose exchange
/// failed or timed out is closed, so a late answer is never taken for the
/// next request's.
public final class FramedConnection: Sendable {
    let channel: Channel
    let handler: NIOLoopBound<FramedExchangeHandler>
    let peer: String

    init(channel: Channel, handler: FramedExchangeHandler, peer: String) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        self.peer = peer
    }

    /// Connects within `connectTimeout`; with `requireRootPeer`, a server not
    /// running as root is refused (`ClientError.untrustedPeer`) and the
    /// connection closed.
    public static func connect(
        socket path: String, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: TimeAmount = .seconds(2), maxFrame: Int = Wire.maxFrame, requireRootPeer: Bool = false
    ) async throws -> FramedConnection {
        let connection: FramedConnection
        do {
            connection = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addFrameCodec(maxFrame: maxFrame)
                        let handler = FramedExchangeHandler(peer: path)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        return FramedConnection(channel: channel, handler: handler, peer: path)
                    }
                }
        } catch {
            throw ClientError.connect(path, error)
        }
        if requireRootPeer { try await FramedClient.requireRoot(connection.channel, path) }
        return connection
    }

    public typealias ClientError = FramedClient.ClientError

    /// Still open: the server has not closed it, and no exchange failed on it.
    public var isOpen: Bool { channel.isActive }

    public func close() { channel.close(promise: nil) }

    /// Sends `body` and returns the answer frame. No answer within
    /// `timeout` after the send: the connection is closed and
    /// `ClientError.timeout` thrown. The server closing the connection
    /// first: `ClientError.closed`. Any failure leaves the connection closed.
    public func exchange(_ body: ByteBuffer, timeout: TimeAmount) async throws -> ByteBuffer {
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let handler = handler
        let channel = channel
        channel.eventLoop.execute {
            handler.value.start(promise, body: body, timeout: timeout)
        }
        do {
            return try await promise.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }
}

/// The event-loop side of a `FramedConnection`: at most one exchange in
/// flight; the answer frame completes it, a close or an error fails it.
final class FramedExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let peer: String
    var context: ChannelHandlerContext?
    var pending: EventLoopPromise<ByteBuffer>?
    var timer: Scheduled<Void>?

    init(peer: String) { self.peer = peer }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(FramedClient.ClientError.closed(peer))
        self.context = nil
    }

    /// On the event loop.
    func start(_ promise: EventLoopPromise<ByteBuffer>, body: ByteBuffer, timeout: TimeAmount) {
        guard let context, context.channel.isActive else {
            promise.fail(FramedClient.ClientError.closed(peer))
            return
        }
        guard pending == nil else {
            promise.fail(FramedClient.ClientError.closed(peer))
            context.close(promise: nil)
            return
        }
        pending = promise
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let peer = peer
        timer = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.fail(FramedClient.ClientError.timeout(peer))
            loopBound.value.context?.close(promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(body)).whenFailure { [loopBound] error in
            loopBound.value.fail(error)
            loopBound.value.context?.close(promise: nil)
        }
    }

    func fail(_ error: any Error) {
        timer?.cancel()
        timer = nil
        let p = pending
        pending = nil
        p?.fail(error)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let p = pending else {
            // An answer nobody asked for: the order is lost, so is the connection.
            context.close(promise: nil)
            return
        }
        timer?.cancel()
        timer = nil
        pending = nil
        p.succeed(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(FramedClient.ClientError.closed(peer))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }
}
