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
/// one JSON response per frame, any number per connection.
public struct DirectoryServer: Service {
    let socketPath: String
    let store: any DirectoryBackend
    let logger: Logger

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
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true) { channel in
                PeerCredentials.of(channel).flatMapThrowing { peer in
                    guard limiter.admit(channel, peer: peer) else { throw ConnectionLimiter.Refused(peer: peer) }
                    try channel.pipeline.syncOperations.addFrameCodec(maxFrame: directoryMaxFrame)
                    if !peer.isRoot { try channel.pipeline.syncOperations.addHandler(IdleGuard(timeout: Self.idleTimeoutNonRoot)) }
                    return (peer, channel, try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel))
                }.flatMapError { error in
                    // Not served (no credentials, refused, no pipeline): closed at once.
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        // Any local process may ask; password hashes go to uid 0 only.
        chmod(socketPath, 0o666)
        logger.info("serving the directory protocol", metadata: ["socket": "\(socketPath)"])
        try await withGracefulShutdownHandler {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await (peer, channel, connection) in inbound {
                        guard open.add(channel) else {
                            channel.close(promise: nil)
                            continue
                        }
                        group.addTask {
                            await self.serve(connection, peer: peer, channel: channel, open: open)
                            open.remove(channel)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            // No new connections; the kept ones (fedlogind keeps its
            // connections open) end now when idle, or after the answer
            // they are working on: a stop never waits for a client.
            server.channel.close(promise: nil)
            open.closeAll()
        }
    }

    /// A non-root connection with no request for this long is closed.
    static let idleTimeoutNonRoot = TimeAmount.seconds(2)

    func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, peer: PeerCredentials, channel: Channel, open: OpenConnections) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                for try await frame in inbound {
                    // A stop that began before this request: not run (the
                    // client resends it on a new connection), never run
                    // without its answer.
                    guard open.setBusy(channel, true) else { break }
                    let response: DirectoryResponse
                    do {
                        let request = try JSONDecoder().decode(DirectoryRequest.self, from: Data(frame.readableBytesView))
                        response = try await handle(request, peer: peer)
                    } catch let e as DirectoryError {
                        // What made the directory unavailable (or refuse), for the administrator.
                        logger.warning("request failed: \(SafeText.escape(e.description))")
                        response = DirectoryResponse(ok: false, error: e.description)
                    } catch {
                        response = DirectoryResponse(ok: false, error: "bad request: \(error)")
                    }
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys]
                    try await outbound.write(ByteBuffer(bytes: try encoder.encode(response)))
                    // Shutting down: this connection ends after its answer.
                    guard open.setBusy(channel, false) else { break }
                }
            }
        } catch {
            logger.debug("connection ended: \(ErrorText.describe(error))")
        }
    }

    func handle(_ request: DirectoryRequest, peer: PeerCredentials) async throws -> DirectoryResponse {
        switch request.op {
        case .lookup:
            guard let name = request.user else { throw DirectoryError("lookup needs \"user\"") }
            guard var user = try await store.lookup(name) else {
                logger.info("lookup: no such user", metadata: ["user": "\(SafeText.escape(name))", "peer": "\(peer)"])
                return DirectoryResponse(ok: true)
            }
            if !peer.isRoot { user.passwordHash = nil }
            return DirectoryResponse(ok: true, user: user)
        case .policy:
            return DirectoryResponse(ok: true, policy: try await store.currentPolicy(device: request.deviceID))
        case .deviceUsers:
            guard let device = request.deviceID else { throw DirectoryError("device_users needs \"device_id\"") }
            return DirectoryResponse(ok: true, users: try await store.users(of: device))
        case .reportBinding:
            guard peer.isRoot else { throw DirectoryError("only root may report bindings") }
            guard let report = request.binding else { throw DirectoryError("report_binding needs \"binding\"") }
            let duplicate = try await store.record(report)
            logger.notice(
                duplicate ? "binding report repeated (no effect)" : "binding recorded",
                metadata: [
                    "user": "\(SafeText.escape(report.username))", "device": "\(SafeText.escape(report.deviceID))",
                    "key": "\(SafeText.escape(report.key))",
                ])
            return DirectoryResponse(ok: true, duplicate: duplicate)
        case .access:
            guard let name = request.user, let device = request.deviceID else { throw DirectoryError("access needs \"user\" and \"device_id\"") }
            return DirectoryResponse(ok: true, access: try await store.access(user: name, device: device))
        case .changePassword:
            guard peer.isRoot else { throw DirectoryError("only root may change passwords") }
            guard let name = request.user, let current = request.current, let new = request.new else {
                throw DirectoryError("change_password needs \"user\", \"current\" and \"new\"")
            }
            switch try await store.changePassword(user: name, current: current, new: new) {
            case .accepted:
                logger.notice("password changed", metadata: ["user": "\(SafeText.escape(name))"])
                return DirectoryResponse(ok: true)
            case .refused(let why):
                logger.notice("password change refused: \(why)", metadata: ["user": "\(SafeText.escape(name))"])
                return DirectoryResponse(ok: false, error: why)
            }
        case .listReports:
            guard peer.isRoot else { throw DirectoryError("only root may list binding reports") }
            return DirectoryResponse(ok: true, reports: try await store.allReports())
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

    /// Closes every idle connection; busy ones end after their answer.
    func closeAll() {
        let idle: [Channel] = lock.withLock {
            closing = true
            return channels.values.filter { !$0.busy }.map(\.channel)
        }
        for c in idle { c.close(promise: nil) }
    }
}
