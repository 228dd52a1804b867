import FedloginCore
import FedloginNIO
import NIOCore

/// The requests fedlogind answers on the event loop as the frame arrives,
/// with no task and no database read: the login steps of root, and of a
/// managed account that is not locked and whose local credential decides
/// (`LoginFlow.answerFromMemory`). pam_fedlogin asks on every login through
/// the stack, so these are most of its requests. Any other first frame goes
/// on to `SocketServer.serve`, and so do frames from a peer that is not root
/// (which the full path refuses and logs).
final class QuickAnswers: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let peer: PeerCredentials
    let holder: RuntimeHolder

    init(peer: PeerCredentials, holder: RuntimeHolder) {
        self.peer = peer
        self.holder = holder
    }

    /// The answer to a first frame, if it is one of the quick ones.
    static func answer(to request: WireMessage, peer: PeerCredentials, runtime: Runtime) -> WireMessage? {
        guard peer.isRoot else { return nil }
        switch request {
        case .authenticate, .acctMgmt:
            guard let (status, reason) = LoginFlow(runtime: runtime).answerFromMemory(request) else { return nil }
            return .result(status, reason: reason)
        default:
            return nil
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let body = unwrapInboundIn(data)
        if let request = try? WireMessage(body: body), let reply = Self.answer(to: request, peer: peer, runtime: holder.current) {
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
