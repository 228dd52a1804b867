import FedloginCore
import FedloginNIO
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Directory answers (a list of reports, say) may be larger than the wire
/// protocol's 64 KiB frames.
public let directoryMaxFrame = 16 << 20

/// Serves the directory protocol on a Unix socket: one JSON request per frame,
/// one JSON response per frame, any number per connection, answered in order.
///
/// A request is read on NIO's event loop and runs whole (decode, the
/// backend, encode) on one of the request threads, whose answer the event
/// loop writes: two thread hand-overs per request. The backends block
/// (libldap's calls, the file backend's fsync) and run there, never on an
/// event loop or the concurrency pool. A connection has one request
/// running at a time; requests a client sends without waiting for the
/// answers queue (at most one read's worth) and run in order.
public struct DirectoryServer: Service {
    let socketPath: String
    let store: any DirectoryBackend
    let logger: Logger

    /// Requests running at once, at most: one LDAP connection each.
    public static let requestThreads = 8

    static let requests: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: requestThreads)
        pool.start()
        return pool
    }()

    public init(socketPath: String, store: any DirectoryBackend, logger: Logger) {
        self.socketPath = socketPath
        self.store = store
        self.logger = logger
    }

    public func run() async throws {
        // No local user can starve the directory: connections are admitted
        // by the peer's uid (64 per non-root uid, 512 for all non-root peers,
        // root's always), and a non-root connection idle for 2 s is closed;
        // root's (fedlogind's) stay open as long as it likes.
        let logger = logger
        let socketPath = socketPath
        let open = OpenConnections()
        let limiter = ConnectionLimiter(limit: .standard) { refused in
            logger.warning(
                "connections refused: too many at once from non-root peers (\(ConnectionLimiter.describe(refused)))",
                metadata: ["socket": "\(socketPath)"])
        }
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 4096)
            .childChannelInitializer { [self] channel in
                PeerCredentials.of(channel).flatMapThrowing { peer in
                    guard limiter.admit(channel, peer: peer) else { throw ConnectionLimiter.Refused(peer: peer) }
                    // Shutting down: not served.
                    guard open.add(channel) else { throw ChannelError.ioOnClosedChannel }
                    channel.closeFuture.whenComplete { _ in open.remove(channel) }
                    try channel.pipeline.syncOperations.addFrameCodec(maxFrame: directoryMaxFrame)
                    if !peer.isRoot { try channel.pipeline.syncOperations.addHandler(IdleGuard(timeout: Self.idleTimeoutNonRoot)) }
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(server: self, peer: peer, open: open))
                }.flatMapError { error in
                    // Not served (no credentials, refused, no pipeline): closed at once.
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true).get()
        // Any local process may ask; password hashes go to uid 0 only.
        chmod(socketPath, 0o666)
        logger.info("serving the directory protocol", metadata: ["socket": "\(socketPath)"])
        // No new connections; the kept ones (fedlogind keeps its
        // connections open) end now when idle, or after the answer they are
        // working on: a stop never waits for a client.
        @Sendable func stop() {
            server.close(promise: nil)
            open.closeAll()
        }
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await server.closeFuture.get()
                // Every connection ends: a busy one after the answer it is working on.
                await open.allClosed()
            } onGracefulShutdown: {
                stop()
            }
        } onCancel: {
            stop()
        }
    }

    /// A non-root connection with no request for this long is closed.
    static let idleTimeoutNonRoot = TimeAmount.seconds(2)

    /// One request frame's answer frame. Runs on a request thread.
    func answer(_ frame: ByteBuffer, peer: PeerCredentials) -> ByteBuffer {
        let response: DirectoryResponse
        do {
            let request = try JSONDecoder().decode(DirectoryRequest.self, from: Data(frame.readableBytesView))
            response = try handle(request, peer: peer)
        } catch let e as DirectoryError {
            // What made the directory unavailable (or refuse), for the administrator.
            logger.warning("request failed: \(SafeText.escape(e.description))")
            response = DirectoryResponse(ok: false, error: e.description)
        } catch {
            response = DirectoryResponse(ok: false, error: "bad request: \(error)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return ByteBuffer(bytes: try encoder.encode(response))
        } catch {
            return ByteBuffer(string: #"{"error":"the answer could not be encoded","ok":false}"#)
        }
    }

    /// A connection's requests, one at a time: a frame read is answered on
    /// a request thread, the answer written here; the connection is not
    /// read from while requests wait in the queue. On the event loop.
    final class RequestHandler: ChannelDuplexHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let server: DirectoryServer
        let peer: PeerCredentials
        let open: OpenConnections
        var queued = CircularBuffer<ByteBuffer>()
        var running = false
        var readHeld = false

        init(server: DirectoryServer, peer: PeerCredentials, open: OpenConnections) {
            self.server = server
            self.peer = peer
            self.open = open
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            queued.append(unwrapInboundIn(data))
            startNext(context: context)
        }

        /// More is read while a request runs (a client sends its next
        /// request after the answer, so nothing comes); only frames already
        /// waiting hold the reads back, so that a client sending requests
        /// without waiting fills at most one read's worth of queue.
        func read(context: ChannelHandlerContext) {
            if queued.isEmpty {
                context.read()
            } else {
                readHeld = true
            }
        }

        func startNext(context: ChannelHandlerContext) {
            guard !running, context.channel.isActive, let frame = queued.popFirst() else { return }
            // A stop that began before this request: not run (the client
            // resends it on a new connection), never run without its answer.
            guard open.setBusy(context.channel, true) else {
                context.close(promise: nil)
                return
            }
            running = true
            let server = server
            let peer = peer
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            DirectoryServer.requests.submit { _ in
                let answer = server.answer(frame, peer: peer)
                loop.execute {
                    let (handler, context) = bound.value
                    handler.finished(answer, context: context)
                }
            }
        }

        func finished(_ answer: ByteBuffer, context: ChannelHandlerContext) {
            running = false
            context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
            // Shutting down: this connection ends after its answer.
            guard open.setBusy(context.channel, false) else {
                context.close(promise: nil)
                return
            }
            startNext(context: context)
            if queued.isEmpty && readHeld {
                readHeld = false
                context.read()
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            server.logger.debug("connection ended: \(ErrorText.describe(error))")
            context.close(promise: nil)
        }
    }

    func handle(_ request: DirectoryRequest, peer: PeerCredentials) throws -> DirectoryResponse {
        switch request.op {
        case .lookup:
            guard let name = request.user else { throw DirectoryError("lookup needs \"user\"") }
            guard var user = try store.lookup(name) else {
                logger.info("lookup: no such user", metadata: ["user": "\(SafeText.escape(name))", "peer": "\(peer)"])
                return DirectoryResponse(ok: true)
            }
            if !peer.isRoot { user.passwordHash = nil }
            return DirectoryResponse(ok: true, user: user)
        case .policy:
            return DirectoryResponse(ok: true, policy: try store.currentPolicy(device: request.deviceID))
        case .deviceUsers:
            guard let device = request.deviceID else { throw DirectoryError("device_users needs \"device_id\"") }
            return DirectoryResponse(ok: true, users: try store.users(of: device))
        case .reportBinding:
            guard peer.isRoot else { throw DirectoryError("only root may report bindings") }
            guard let report = request.binding else { throw DirectoryError("report_binding needs \"binding\"") }
            let duplicate = try store.record(report)
            logger.notice(
                duplicate ? "binding report repeated (no effect)" : "binding recorded",
                metadata: [
                    "user": "\(SafeText.escape(report.username))", "device": "\(SafeText.escape(report.deviceID))",
                    "key": "\(SafeText.escape(report.key))",
                ])
            return DirectoryResponse(ok: true, duplicate: duplicate)
        case .access:
            guard let name = request.user, let device = request.deviceID else { throw DirectoryError("access needs \"user\" and \"device_id\"") }
            return DirectoryResponse(ok: true, access: try store.access(user: name, device: device))
        case .changePassword:
            guard peer.isRoot else { throw DirectoryError("only root may change passwords") }
            guard let name = request.user, let current = request.current, let new = request.new else {
                throw DirectoryError("change_password needs \"user\", \"current\" and \"new\"")
            }
            switch try store.changePassword(user: name, current: current, new: new) {
            case .accepted:
                logger.notice("password changed", metadata: ["user": "\(SafeText.escape(name))"])
                return DirectoryResponse(ok: true)
            case .refused(let why):
                logger.notice("password change refused: \(why)", metadata: ["user": "\(SafeText.escape(name))"])
                return DirectoryResponse(ok: false, error: why)
            }
        case .listReports:
            guard peer.isRoot else { throw DirectoryError("only root may list binding reports") }
            return DirectoryResponse(ok: true, reports: try store.allReports())
        }
    }
}

/// The connections being served, so that a graceful shutdown can end them:
/// an idle one is closed at once, a busy one after the answer it is working
/// on (`setBusy(_, false)` then says to stop).
final class OpenConnections: @unchecked Sendable {
    private let lock = NSLock()
    private var channels: [ObjectIdentifier: (channel: Channel, busy: Bool)] = [:]
    private var closing = false

    /// false when shutting down: the connection is not served.
    func add(_ c: Channel) -> Bool {
        lock.withLock {
            guard !closing else { return false }
            channels[ObjectIdentifier(c)] = (c, false)
            return true
        }
    }

    func remove(_ c: Channel) {
        lock.withLock { _ = channels.removeValue(forKey: ObjectIdentifier(c)) }
    }

    /// Marks the connection busy (a request came) or idle (its answer is
    /// written); false when it should end now.
    @discardableResult
    func setBusy(_ c: Channel, _ busy: Bool) -> Bool {
        lock.withLock {
            channels[ObjectIdentifier(c)]?.busy = busy
            return !closing
        }
    }

    /// Returns once every connection has closed (after `closeAll`, idle
    /// ones at once, busy ones after their answer).
    func allClosed() async {
        while let c = lock.withLock({ channels.values.first?.channel }) {
            try? await c.closeFuture.get()
            remove(c)
        }
    }

    /// Closes every idle connection; busy ones end after their answer.
    func closeAll() {
        let idle: [Channel] = lock.withLock {
            closing = true
            return channels.values.filter { !$0.busy }.map(\.channel)
        }
        for c in idle { c.close(promise: nil) }
    }
}
