import NIOCore

/// Closes a connection that stays idle too long: no complete frame within
/// `timeout` of the connection's start, or of the last answer written when
/// every request read has been answered. A connection with a request being
/// answered is never idle. Placed after the frame codec, so it counts whole
/// frames (one answer per request, as the directory protocol has it).
public final class IdleGuard: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    let timeout: TimeAmount
    var open = 0
    var timer: Scheduled<Void>?

    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context: context) }
    }

    /// An accepted connection is set up before it is active: the time counts from here.
    public func channelActive(context: ChannelHandlerContext) {
        if open == 0 { arm(context: context) }
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        open += 1
        timer?.cancel()
        timer = nil
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        open = max(0, open - 1)
        if open == 0 { arm(context: context) }
        context.write(data, promise: promise)
    }

    func arm(context: ChannelHandlerContext) {
        timer?.cancel()
        guard context.channel.isActive else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) {
            channel.close(promise: nil)
        }
    }
}
