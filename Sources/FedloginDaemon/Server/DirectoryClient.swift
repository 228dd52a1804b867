import FedloginCore
import FedloginNIO
import Foundation
import NIOCore

/// Directory answers may be larger than the wire protocol's frames.
let directoryMaxFrame = 16 << 20

/// The directory protocol's client side (docs/directory-protocol.md).
///
/// Requests travel on kept connections (`DirectoryConnectionPool`: each
/// serves one request at a time, up to 16 are kept open between requests;
/// the directory answers any number of requests on a connection, in order).
/// Every new connection checks that the server runs as root. The bounds are
/// per request, as with a connection per request: a new connection within
/// `timeout`, then the answer within `timeout` again; a hung directory fails
/// the request closed. A
/// reused connection that turns out closed by the server (fedlogin-directoryd
/// restarted, say) is dropped and the request sent once more on a new
/// connection, but only a request that may be repeated: every one but
/// `change_password`, which never travels on a reused connection and is
/// never sent twice.
public struct DirectoryClient: Sendable {
    public let socketPath: String
    public let timeout: Double
    let connections: DirectoryConnectionPool

    public init(socketPath: String, timeout: Double) {
        self.init(socketPath: socketPath, timeout: timeout, connections: DirectoryConnectionPool(socketPath: socketPath))
    }

    init(socketPath: String, timeout: Double, connections: DirectoryConnectionPool) {
        self.socketPath = socketPath
        self.timeout = timeout
        self.connections = connections
    }

    /// The directory cannot serve a request now. `kind` is set where the
    /// error arises; `description` is for the log.
    public struct Unavailable: Error, CustomStringConvertible {
        public enum Kind: Sendable, Equatable {
            /// No connection, not root's, or no answer in time.
            case unreachable
            /// An answer that does not parse, or lacks what was asked for.
            case invalidAnswer
            /// `ok: false`: the directory answered that it cannot serve the request.
            case refused
        }
        public var kind: Kind
        public var description: String
        /// `unreachable` because no connection or no answer came within
        /// the client's timeout (rather than a refused or closed connection).
        public var timedOut: Bool

        public init(_ kind: Kind, _ description: String, timedOut: Bool = false) {
            self.kind = kind
            self.description = description
            self.timedOut = timedOut
        }
    }

    /// One request and its answer, whatever `ok` says. Unreachable, not
    /// root's, or an answer that does not parse: `Unavailable`. Every
    /// request sent this way may be repeated (lookups, policy, access,
    /// device_users, and report_binding, which the directory records once
    /// per key).
    func exchange(_ request: DirectoryRequest) async throws -> DirectoryResponse {
        try await exchange(body: ByteBuffer(bytes: try JSONEncoder().encode(request)), repeatable: true)
    }

    /// One request given as its JSON bytes. `repeatable`: it may be sent
    /// again when a reused connection turns out closed; otherwise it goes on
    /// a new connection of its own and is sent once. A request holding
    /// secrets is wiped by the caller once this returns: by then the
    /// directory has read it, or the connection is closed, so no write still
    /// needs it.
    func exchange(body: ByteBuffer, repeatable: Bool) async throws -> DirectoryResponse {
        let t = TimeAmount.milliseconds(Int64(timeout * 1000))
        let data: Data
        do {
            data = Data(try await send(body, repeatable: repeatable, timeout: t).readableBytesView)
        } catch {
            throw Unavailable(.unreachable, "directory at \(socketPath): \(ErrorText.describe(error))", timedOut: Self.isTimeout(error))
        }
        do {
            return try JSONDecoder().decode(DirectoryResponse.self, from: data)
        } catch {
            throw Unavailable(.invalidAnswer, "directory at \(socketPath) sent an invalid response: \(error)")
        }
    }

    static func isTimeout(_ error: any Error) -> Bool {
        switch error {
        case FramedClient.ClientError.timeout: true
        case FramedClient.ClientError.connect(_, ChannelError.connectTimeout): true
        default: false
        }
    }

    func send(_ body: ByteBuffer, repeatable: Bool, timeout t: TimeAmount) async throws -> ByteBuffer {
        guard repeatable else {
            // A new connection, which the server cannot have closed as idle;
            // whatever happens, the request is not sent again.
            let c = try await FramedConnection.connect(
                socket: socketPath, connectTimeout: t, maxFrame: directoryMaxFrame, requireRootPeer: connections.requireRootPeer)
            defer { c.close() }
            return try await c.exchange(body, timeout: t)
        }
        var retried = false
        while true {
            let (c, reused) = try await connections.acquire(connectTimeout: t)
            do {
                let answer = try await c.exchange(body, timeout: t)
                await connections.release(c, reusable: true)
                return answer
            } catch {
                await connections.release(c, reusable: false)
                // A reused connection the server had closed: once more on a
                // new one. A timeout is a directory that does not answer: no.
                guard reused, !retried, Self.foundClosed(error) else { throw error }
                retried = true
            }
        }
    }

    /// The connection was closed under the request (not a timeout).
    static func foundClosed(_ error: any Error) -> Bool {
        if case FramedClient.ClientError.timeout = error { return false }
        return true
    }

    /// A request whose `ok: false` means the directory cannot serve it now.
    func call(_ request: DirectoryRequest) async throws -> DirectoryResponse {
        let response = try await exchange(request)
        guard response.ok else { throw Unavailable(.refused, "directory refused \(request.op.rawValue): \(response.error ?? "no reason")") }
        return response
    }

    public func lookup(_ user: String) async throws -> DirectoryUser? {
        try await call(DirectoryRequest(op: .lookup, user: user)).user
    }

    public func policy(device: String) async throws -> DevicePolicy {
        guard let p = try await call(DirectoryRequest(op: .policy, deviceID: device)).policy else {
            throw Unavailable(.invalidAnswer, "directory sent no policy")
        }
        return p
    }

    /// The users the directory associates with a device.
    public func deviceUsers(device: String) async throws -> [String] {
        try await call(DirectoryRequest(op: .deviceUsers, deviceID: device)).users ?? []
    }

    /// What the directory says about a user on a device; nil: no such user.
    public func access(user: String, device: String) async throws -> DeviceAccess? {
        try await call(DirectoryRequest(op: .access, user: user, deviceID: device)).access
    }

    /// A user, the device's policy and what the directory says about the
    /// user on the device, as a first login and NSS need them; all nil when
    /// there is no such user.
    public func userOnDevice(_ name: String, device: String) async throws -> (DirectoryUser?, DevicePolicy?, DeviceAccess?) {
        guard let user = try await lookup(name) else { return (nil, nil, nil) }
        let policy = try await self.policy(device: device)
        return (user, policy, try await access(user: user.username, device: device))
    }

    /// The directory refused a change; `description` is its reason, for the user.
    public struct Refused: Error, CustomStringConvertible {
        public var description: String
    }

    /// A user's own change of a password the directory holds: the directory
    /// verifies `current` and stores `new` under its own policy. Returns once
    /// it has stored it; a refusal (wrong current password, too weak) is
    /// `Refused`. The passwords travel only on the root-to-root socket.
    /// The request's JSON is written straight into a wiped buffer
    /// (`DirectoryRequest.changePasswordJSON`), sent from one ByteBuffer
    /// the frame codec writes to the socket without copying, and wiped in
    /// place once the directory has answered or the connection is closed.
    public func changePassword(user: String, current: SecretBytes, new: SecretBytes) async throws {
        let json = DirectoryRequest.changePasswordJSON(user: user, current: current, new: new)
        defer { json.wipe() }
        var body = ByteBufferAllocator().buffer(capacity: json.count)
        json.withUnsafeBytes { _ = body.writeBytes($0) }
        // In place, never through a mutating call (that would wipe a copy).
        defer { body.withUnsafeReadableBytes { SecretBytes.wipe(UnsafeMutableRawBufferPointer(mutating: $0)) } }
        let response = try await exchange(body: body, repeatable: false)
        guard response.ok else { throw Refused(description: response.error ?? "no reason given") }
    }

    /// Reports a binding; returns when the directory has acked it.
    public func report(_ binding: BindingReport) async throws {
        _ = try await call(DirectoryRequest(op: .reportBinding, binding: binding))
    }
}
