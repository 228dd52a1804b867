import FedloginCore
import FedloginNIO
import Foundation
import NIOCore

/// Directory answers may be larger than the wire protocol's frames.
let directoryMaxFrame = 16 << 20

/// The directory protocol's client side (docs/directory-protocol.md).
public struct DirectoryClient: Sendable {
    public let socketPath: String
    public let timeout: Double

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

        public init(_ kind: Kind, _ description: String) {
            self.kind = kind
            self.description = description
        }
    }

    /// One request and its answer, whatever `ok` says. Unreachable, not
    /// root's, or an answer that does not parse: `Unavailable`.
    func exchange(_ request: DirectoryRequest) async throws -> DirectoryResponse {
        try await exchange(body: ByteBuffer(bytes: try JSONEncoder().encode(request)))
    }

    /// One request given as its JSON bytes. A request holding secrets is
    /// wiped by the caller once this returns: by then the directory has
    /// read it, or the connection is closed, so no write still needs it.
    func exchange(body: ByteBuffer) async throws -> DirectoryResponse {
        let t = TimeAmount.milliseconds(Int64(timeout * 1000))
        let data: Data
        do {
            // The directory supplies password hashes and routing: it must be root's.
            data = try await FramedClient.with(
                socket: socketPath, connectTimeout: t, maxFrame: directoryMaxFrame, requireRootPeer: true
            ) { session in
                try await session.send(body)
                return Data(try await session.receive(timeout: t).readableBytesView)
            }
        } catch {
            throw Unavailable(.unreachable, "directory at \(socketPath): \(ErrorText.describe(error))")
        }
        do {
            return try JSONDecoder().decode(DirectoryResponse.self, from: data)
        } catch {
            throw Unavailable(.invalidAnswer, "directory at \(socketPath) sent an invalid response: \(error)")
        }
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
        let response = try await exchange(body: body)
        guard response.ok else { throw Refused(description: response.error ?? "no reason given") }
    }

    /// Reports a binding; returns when the directory has acked it.
    public func report(_ binding: BindingReport) async throws {
        _ = try await call(DirectoryRequest(op: .reportBinding, binding: binding))
    }
}
