import FedloginCore
import FedloginNIO
import NIOCore

/// The requests fedlogind answers on the event loop as the frame arrives,
/// with no file read and no task: the login steps of root. pam_fedlogin
/// asks on every login through the stack, root's (su, sudo, the console)
/// included, and root is never fedlogin's. Any other first frame goes on to
/// `SocketServer.serve`, and so do frames from a peer that is not root
/// (which the full path refuses and logs).
final class QuickAnswers: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let peer: PeerCredentials

    init(peer: PeerCredentials) {
        self.peer = peer
    }

    /// The answer to a first frame, if it is one of the quick ones.
    static func answer(to request: WireMessage, peer: PeerCredentials) -> WireMessage? {
        guard peer.isRoot else { return nil }
        switch request {
        case .authenticate(let r) where r.user == "root":
            return .result(.ignore, reason: "root is never a fedlogin account")
        case .acctMgmt(let user, _) where user == "root":
            return .result(.ignore, reason: "no fedlogin account policy applies")
        default:
            return nil
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let body = unwrapInboundIn(data)
        if let request = try? WireMessage(body: body), let reply = Self.answer(to: request, peer: peer) {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(reply.body(allocator: context.channel.allocator))).whenComplete { _ in
                channel.close(promise: nil)
            }
            return
        }
        // Only the first frame is looked at.
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
