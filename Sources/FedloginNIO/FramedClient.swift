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
        // The server's credentials exist once connected; no credentials, no trust.
        if requireRootPeer {
            let uid = (try? await PeerCredentials.of(channel.channel).get())?.uid ?? UInt32.max
            guard uid == 0 else {
                try? await channel.channel.close()
                throw ClientError.untrustedPeer(path, uid)
            }
        }
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
