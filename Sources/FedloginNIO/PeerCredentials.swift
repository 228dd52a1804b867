import CFedloginSys
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The identity of the process at the other end of a Unix socket, read with
/// SO_PEERCRED before any byte of its request.
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var isRoot: Bool { uid == 0 }

    public var description: String { "pid=\(pid) uid=\(uid)" }

    /// Reads the peer's credentials of a connected Unix-domain channel.
    public static func of(_ channel: Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        let future: EventLoopFuture<fedlogin_ucred> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(fedlogin_so_peercred))
        return future.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }
}

extension fedlogin_ucred: @retroactive @unchecked Sendable {}
