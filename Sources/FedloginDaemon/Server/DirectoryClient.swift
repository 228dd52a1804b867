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

    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    func call(_ request: DirectoryRequest) async throws -> DirectoryResponse {
        let body = try JSONEncoder().encode(request)
        let t = TimeAmount.milliseconds(Int64(timeout * 1000))
        let data: Data
        do {
            // The directory supplies password hashes and routing: it must be root's.
            data = try await FramedClient.with(
                socket: socketPath, connectTimeout: t, maxFrame: directoryMaxFrame, requireRootPeer: true
            ) { session in
                try await session.send(ByteBuffer(bytes: body))
                return Data(try await session.receive(timeout: t).readableBytesView)
            }
        } catch {
            throw Unavailable(description: "directory at \(socketPath): \(error)")
        }
        let response: DirectoryResponse
        do {
            response = try JSONDecoder().decode(DirectoryResponse.self, from: data)
        } catch {
            throw Unavailable(description: "directory at \(socketPath) sent an invalid response: \(error)")
        }
        guard response.ok else { throw Unavailable(description: "directory refused \(request.op.rawValue): \(response.error ?? "no reason")") }
        return response
    }

    public func lookup(_ user: String) async throws -> DirectoryUser? {
        try await call(DirectoryRequest(op: .lookup, user: user)).user
    }

    public func policy(device: String) async throws -> DevicePolicy {
        guard let p = try await call(DirectoryRequest(op: .policy, deviceID: device)).policy else {
            throw Unavailable(description: "directory sent no policy")
        }
        return p
    }

    /// The users the directory associates with a device.
    public func deviceUsers(device: String) async throws -> [String] {
        try await call(DirectoryRequest(op: .deviceUsers, deviceID: device)).users ?? []
    }

    public struct Refused: Error, CustomStringConvertible {
        public var description: String
    }

    /// Sends a new password hash for a user whose password the directory
    /// holds; returns once the directory has stored it. A refusal is `Refused`.
    public func setPassword(user: String, hash: String) async throws {
        do {
            _ = try await call(DirectoryRequest(op: .setPassword, user: user, passwordHash: hash))
        } catch let e as Unavailable where e.description.hasPrefix("directory refused") {
            throw Refused(description: String(e.description.drop(while: { $0 != ":" }).dropFirst(2)))
        }
    }

    /// Reports a binding; returns when the directory has acked it.
    public func report(_ binding: BindingReport) async throws {
        _ = try await call(DirectoryRequest(op: .reportBinding, binding: binding))
    }
}
