import FedloginCore
import NIOCore

/// Splits a byte stream into frames of `u32 BE length + body` (docs/protocol.md),
/// refusing lengths outside 2...maxFrame before reading the body.
public struct LengthPrefixedFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer
    let maxFrame: Int

    public init(maxFrame: Int = Wire.maxFrame) {
        self.maxFrame = maxFrame
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard length >= 2 && Int(length) <= maxFrame else { throw WireError.frameLength(Int(length)) }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let body = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(Self.wrapInboundOut(body))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Prefixes each outbound body with its u32 BE length.
public struct LengthPrefixedFrameEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = ByteBuffer

    public init() {}

    public func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        out.writeInteger(UInt32(data.readableBytes))
        out.writeImmutableBuffer(data)
    }
}

/// Prefixes each outbound body with its u32 BE length, written as a buffer
/// of its own ahead of the body: the body goes to the socket as it is (NIO
/// writes both with one writev), never copied into an encoder's buffer, so a
/// body holding a secret (a directory password change) leaves no copy here
/// that its owner cannot wipe.
public final class LengthPrefixedFrameWriter: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let body = Self.unwrapOutboundIn(data)
        var prefix = context.channel.allocator.buffer(capacity: 4)
        prefix.writeInteger(UInt32(body.readableBytes))
        context.write(Self.wrapOutboundOut(prefix), promise: nil)
        context.write(data, promise: promise)
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds the length-prefixed frame codec.
    public func addFrameCodec(maxFrame: Int = Wire.maxFrame) throws {
        try addHandler(ByteToMessageHandler(LengthPrefixedFrameDecoder(maxFrame: maxFrame)))
        try addHandler(LengthPrefixedFrameWriter())
    }
}

extension WireMessage {
    /// The frame body (without the length prefix) as a ByteBuffer, with every
    /// string fitted to the wire first (`fittedToWire()`): fedlogind's replies,
    /// whose text it would rather show shortened than not at all.
    public func body(allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        // Fitted strings are what the encoder accepts: it cannot throw here.
        guard let frame = try? WireCodec.encodeFrame(fittedToWire()) else { preconditionFailure("a fitted message was refused") }
        return allocator.buffer(bytes: frame.dropFirst(4))
    }

    /// The frame body exactly as given; throws `WireError` for a string the
    /// wire does not carry, as the C encoder does (`WireCodec.encodeFrame`).
    /// For requests and answers, which are sent whole or not at all.
    public func exactBody(allocator: ByteBufferAllocator = .init()) throws(WireError) -> ByteBuffer {
        let frame = try WireCodec.encodeFrame(self)
        return allocator.buffer(bytes: frame.dropFirst(4))
    }

    public init(body: ByteBuffer) throws {
        self = try WireCodec.decodeBody(ArraySlice(body.readableBytesView))
    }
}
