import FedloginCore
import FedloginNIO
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The loopback redirect listener of RFC 8252 §7.3: an HTTP server on
/// 127.0.0.1 that takes the IdP's redirect to `/callback`. Each sign-in
/// registers its `state`; a callback is routed by state, is single use, and a
/// callback with an unknown state gets an error page and ends nobody's login.
public final class CallbackRegistry: Sendable {
    enum Slot: Sendable {
        /// Registered; `waiter` is resumed when the callback arrives.
        case waiting(waiter: CheckedContinuation<Void, Never>?)
        case arrived(AuthorizationResponse)
        case taken
    }

    let slots = NIOLockedValueBox([String: Slot]())

    public init() {}

    public func register(state: String) {
        slots.withLockedValue { $0[state] = .waiting(waiter: nil) }
    }

    /// Forgets `state`; a wait for it ends.
    public func unregister(state: String) {
        let slot = slots.withLockedValue { $0.removeValue(forKey: state) }
        if case .waiting(let waiter?) = slot { waiter.resume() }
    }

    /// Delivers a callback; false when its state is unknown or used already.
    func deliver(_ response: AuthorizationResponse) -> Bool {
        guard let state = response.state else { return false }
        let (delivered, waiter) = slots.withLockedValue { slots -> (Bool, CheckedContinuation<Void, Never>?) in
            guard case .waiting(let waiter) = slots[state] else { return (false, nil) }
            slots[state] = .arrived(response)
            return (true, waiter)
        }
        waiter?.resume()
        return delivered
    }

    /// Takes the callback for `state` if it has arrived (once).
    func take(state: String) -> AuthorizationResponse? {
        slots.withLockedValue { slots in
            guard case .arrived(let r) = slots[state] else { return nil }
            slots[state] = .taken
            return r
        }
    }

    /// Waits up to `seconds` on `clock` for the callback of `state`: woken
    /// by its delivery, not by polling.
    public func wait(state: String, within seconds: Double, clock: any WallClock) async -> AuthorizationResponse? {
        if let r = take(state: state) { return r }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.arrival(state: state) }
            group.addTask { try? await clock.sleep(seconds: seconds) }
            await group.next()
            group.cancelAll()
        }
        return take(state: state)
    }

    /// Returns when the callback of `state` has arrived, `state` is not
    /// (or no longer) waiting, or the task is cancelled.
    func arrival(state: String) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = slots.withLockedValue { slots -> Bool in
                    // Cancelled before the handler below could see the waiter: not installed.
                    guard case .waiting(waiter: .none) = slots[state], !Task.isCancelled else { return true }
                    slots[state] = .waiting(waiter: c)
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            let waiter = slots.withLockedValue { slots -> CheckedContinuation<Void, Never>? in
                guard case .waiting(let waiter?) = slots[state] else { return nil }
                slots[state] = .waiting(waiter: nil)
                return waiter
            }
            waiter?.resume()
        }
    }
}

public final class LoopbackListener: Sendable {
    public let port: Int
    let channel: Channel

    /// Binds 127.0.0.1:`port` (0: a random free port).
    public static func start(port: Int, registry: CallbackRegistry, logger: Logger) async throws -> LoopbackListener {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(CallbackHandler(registry: registry, logger: logger))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        return LoopbackListener(port: channel.localAddress?.port ?? port, channel: channel)
    }

    /// A fixed redirect port that cannot be bound: another process holds it.
    public struct PortUnavailable: Error, CustomStringConvertible {
        public let port: Int
        /// The uid of the process listening there, when /proc/net/tcp says.
        public let owner: UInt32?
        let underlying: String

        public var description: String {
            "127.0.0.1:\(port) cannot be bound (\(underlying))" + (owner.map { "; a process of uid \($0) is listening on it" } ?? "")
        }

        /// What a person at the login prompt reads.
        public var userText: String {
            "the redirect port \(port) of this machine is in use" + (owner.map { " (by uid \($0))" } ?? "")
        }
    }

    /// Binds a fixed redirect port; `PortUnavailable` names who holds it.
    public static func startFixed(port: Int, registry: CallbackRegistry, logger: Logger) async throws -> LoopbackListener {
        do {
            return try await start(port: port, registry: registry, logger: logger)
        } catch {
            throw PortUnavailable(port: port, owner: listenerUID(port: port), underlying: ErrorText.describe(error))
        }
    }

    /// The uid of a process listening on a TCP port of this machine, from
    /// /proc/net/tcp and tcp6 (state 0A is LISTEN).
    static func listenerUID(port: Int) -> UInt32? {
        let suffix = ":" + String(format: "%04X", port)
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? Sys.readText(file) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: " ", omittingEmptySubsequences: true)
                if f.count > 7, f[1].hasSuffix(suffix), f[3] == "0A", let uid = UInt32(f[7]) { return uid }
            }
        }
        return nil
    }

    init(port: Int, channel: Channel) {
        self.port = port
        self.channel = channel
    }

    public var redirectURI: String { "http://127.0.0.1:\(port)/callback" }

    public func close() async {
        try? await channel.close()
    }
}

final class CallbackHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: CallbackRegistry
    let logger: Logger
    var uri: String?
    var method: HTTPMethod = .GET

    init(registry: CallbackRegistry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            uri = head.uri
            method = head.method
        case .body:
            break
        case .end:
            let (status, text) = respond(to: uri ?? "")
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
            headers.add(name: "Cache-Control", value: "no-store")
            headers.add(name: "Connection", value: "close")
            let page = "<!doctype html><html><head><meta charset=\"utf-8\"><title>fedlogin</title></head><body><p>\(text)</p></body></html>"
            headers.add(name: "Content-Length", value: String(page.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: page)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        }
    }

    func respond(to uri: String) -> (HTTPResponseStatus, String) {
        guard method == .GET, uri.hasPrefix("/callback") else { return (.notFound, "Not found.") }
        let response = AuthorizationResponse(target: uri)
        guard registry.deliver(response) else {
            // No secret in the log: the code is never logged.
            logger.warning("loopback callback with an unknown or used state; ignored")
            return (.badRequest, "This sign-in link is not (or no longer) valid. Start the login again on the machine.")
        }
        if let error = response.error {
            return (.ok, "The identity provider did not sign you in (\(htmlEscape(error))). Return to the login prompt.")
        }
        return (.ok, "You are signed in. Return to the login prompt and press Enter.")
    }
}

func htmlEscape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
