import FedloginCore
import FedloginNIO
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// fedlogind's Unix socket: one request per connection, authorized by the
/// peer's SO_PEERCRED uid before its request is read. Connections are
/// limited per non-root uid and for all non-root peers together, never for
/// root (`limit`).
public struct SocketServer: Service {
    let holder: RuntimeHolder

    public func run() async throws {
        let runtime = holder.current
        let path = runtime.config.socketPath
        // No local user can starve the daemon: connections are admitted by
        // the peer's uid before anything is read (Self.limit), root's always.
        let limiter = ConnectionLimiter(limit: Self.limit) { refused in
            holder.current.logger.warning(
                "connections refused: too many at once from non-root peers (\(ConnectionLimiter.describe(refused)))",
                metadata: ["socket": "\(path)"])
        }
        @Sendable func initialize(_ channel: Channel) -> EventLoopFuture<(PeerCredentials, NIOAsyncChannel<ByteBuffer, ByteBuffer>)> {
            PeerCredentials.of(channel).flatMapThrowing { peer in
                guard limiter.admit(channel, peer: peer) else { throw ConnectionLimiter.Refused(peer: peer) }
                if peer.isRoot {
                    // A whole ANSWER frame fits in one read, so the frame
                    // decoder hands it over as a slice of the read buffer,
                    // which Conversation.askSecret wipes in place; a frame
                    // split across reads would be merged into a new buffer,
                    // leaving the read buffers out of the wipe's reach.
                    try channel.syncOptions?.setOption(.recvAllocator, value: Self.rootReceiveBuffers)
                }
                try channel.pipeline.syncOperations.addFrameCodec()
                try channel.pipeline.syncOperations.addHandler(QuickAnswers(peer: peer, holder: holder))
                return (peer, try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel))
            }.flatMapError { error in
                // Not served (no credentials, refused, no pipeline): closed at once.
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
        // Many logins can start at once (a fleet's morning, a lab session):
        // connections wait in a listen queue as long as systemd's socket unit
        // gives (SOMAXCONN), and the daemon keeps accepting while earlier
        // requests are still being served, so a connect never waits on them.
        // One event loop accepts and serves every connection: a request then
        // never waits for another thread to wake up before it is read (the
        // work that takes time runs elsewhere, see Blocking).
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let bootstrap = ServerBootstrap(group: loop, childGroup: loop)
            .serverChannelOption(.backlog, value: 4096)
        let accepting = NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark(lowWatermark: 256, highWatermark: 1024)
        let server: NIOAsyncChannel<(PeerCredentials, NIOAsyncChannel<ByteBuffer, ByteBuffer>), Never>
        if let fd = Systemd.listenFD() {
            // Socket activation: systemd made and bound the socket (fedlogind.socket).
            server = try await bootstrap.bind(fd, serverBackPressureStrategy: accepting, childChannelInitializer: initialize)
        } else {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o755])
            server = try await bootstrap.bind(
                unixDomainSocketPath: path, cleanupExistingSocketFile: true, serverBackPressureStrategy: accepting,
                childChannelInitializer: initialize)
            // Anyone may connect (NSS lookups, fedloginctl); each request is authorized by uid.
            chmod(path, 0o666)
        }
        runtime.logger.notice(
            "fedlogind ready", metadata: ["socket": "\(path)", "device": "\(runtime.deviceID)", "idps": "\(runtime.idps.keys.sorted())"])
        // The NSS cache file of an earlier run is replaced before the first
        // request, and removed when the daemon stops serving.
        runtime.nssCache.publish(force: true)
        defer { holder.current.nssCache.remove() }
        Systemd.notify("READY=1")
        Task { Systemd.status(await Daemon.statusLine(runtime)) }
        try await withGracefulShutdownHandler {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await (peer, connection) in inbound {
                        group.addTask { await serve(connection, peer: peer) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    /// Receive buffers for root's connections (pam_fedlogin, fedloginctl):
    /// never smaller than the largest ANSWER frame (4 + 4 + Wire.maxString
    /// bytes), where NIO's default starts at 2 KiB and may shrink to 64 bytes.
    static let rootReceiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 8192, initial: 8192, maximum: 65536)

    /// Connections held at once: 64 per non-root uid, 512 for all non-root
    /// peers together; root's are not counted against these.
    static let limit = ConnectionLimit.standard
    /// The time to send a complete first frame: root's (pam_fedlogin,
    /// fedloginctl) 10 s, anyone else's 2 s (the NSS module and fedloginctl
    /// send theirs as soon as they are connected).
    static let firstFrameTimeout = TimeAmount.seconds(10)
    static let firstFrameTimeoutNonRoot = TimeAmount.seconds(2)

    func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, peer: PeerCredentials) async {
        let channel = connection.channel
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                let timer = ReadTimer(channel: channel, timeout: peer.isRoot ? Self.firstFrameTimeout : Self.firstFrameTimeoutNonRoot)
                let first = try await iterator.next()
                timer.cancel()
                guard let first else { return }
                let request = try WireMessage(body: first)
                let runtime = holder.current
                let conv = Conversation(
                    channel: channel, outbound: outbound, inbound: iterator, keepalive: runtime.config.signin.keepalive, peer: peer)
                try await dispatch(request, conv: conv, runtime: runtime)
            }
        } catch {
            holder.current.logger.debug("connection ended: \(ErrorText.describe(error))", metadata: ["peer": "\(peer)"])
        }
    }

    /// `text` cut into pieces of at most `max` UTF-8 bytes, never inside a character's encoding.
    static func pieces(of text: String, max: Int) -> [String] {
        var out: [String] = []
        var current = ""
        var size = 0
        for u in text.unicodeScalars {
            let n = String(u).utf8.count
            if size + n > max {
                out.append(current)
                current = ""
                size = 0
            }
            current.unicodeScalars.append(u)
            size += n
        }
        out.append(current)
        return out
    }

    func answerNSS(_ answer: NSSResolver.Answer, conv: Conversation) async throws {
        switch answer {
        case .passwd(let p): try await conv.send(.nssPasswd(p))
        case .notFound: try await conv.send(.nssNotFound)
        case .unavailable(let why): await conv.finish(.unavailable, reason: "directory unavailable: \(why)")
        }
    }

    func answerNSS(_ group: WireMessage?, conv: Conversation) async throws {
        if let group { try await conv.send(group) } else { await conv.finish(.unavailable, reason: "directory unavailable") }
    }

    func dispatch(_ request: WireMessage, conv: Conversation, runtime: Runtime) async throws {
        if let (refusal, what) = RequestAccess.refusal(of: request, peer: conv.peer) {
            runtime.logger.warning("\(what) request from a non-root peer refused", metadata: ["peer": "\(conv.peer)"])
            await conv.finish(.permissionDenied, reason: refusal)
            return
        }
        switch request {
        case .authenticate(let r):
            let (status, reason) = await LoginFlow(runtime: runtime).authenticate(r, conv: conv)
            await conv.finish(status, reason: reason)
        case .authFailed(let r):
            let (status, reason) = await LocalCredential(runtime: runtime).authFailed(r, conv: conv)
            await conv.finish(status, reason: reason)
        case .acctMgmt(let user, let service):
            let (status, reason) = await LocalCredential(runtime: runtime).accountCheck(user: user, service: service, peer: conv.peer, conv: conv)
            await conv.finish(status, reason: reason)
        case .chauthtok(let user, let service):
            let (status, reason) = await LocalCredential(runtime: runtime).changePassword(user: user, service: service, peer: conv.peer, conv: conv)
            await conv.finish(status, reason: reason)
        case .chauthtokPrelim(let user, _):
            let (status, reason) = LocalCredential(runtime: runtime).passwordCheck(user: user, peer: conv.peer)
            await conv.finish(status, reason: reason)
        case .passcodeReset:
            let (status, reason) = await LocalCredential(runtime: runtime).ownPasscodeReset(peer: conv.peer, conv: conv)
            await conv.finish(status, reason: reason)
        case .nssGetpwnam(let name):
            try await answerNSS(await NSSResolver(runtime: runtime, caller: conv.peer).passwd(name: name), conv: conv)
        case .nssGetpwuid(let uid):
            try await answerNSS(await NSSResolver(runtime: runtime, caller: conv.peer).passwd(uid: uid), conv: conv)
        case .nssGetgrnam(let name):
            try await answerNSS(await NSSResolver(runtime: runtime, caller: conv.peer).group(name: name), conv: conv)
        case .nssGetgrgid(let gid):
            try await answerNSS(await NSSResolver(runtime: runtime, caller: conv.peer).group(gid: gid), conv: conv)
        case .control(let json):
            let (ok, reply) = await Control(runtime: runtime).handle(json, peer: conv.peer)
            // A string holds 4096 bytes: a longer reply goes in leading parts.
            var pieces = Self.pieces(of: reply, max: Wire.maxString)
            let last = pieces.removeLast()
            for p in pieces { try await conv.send(.controlReplyPart(p)) }
            try await conv.send(.controlReply(ok: ok, json: last))
        default:
            runtime.logger.warning("unexpected first frame \(request.logDescription)", metadata: ["peer": "\(conv.peer)"])
        }
    }
}
