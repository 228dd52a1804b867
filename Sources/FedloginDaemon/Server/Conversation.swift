import FedloginCore
import FedloginNIO
import NIOCore

/// What a request handler needs of the PAM conversation: messages, prompts
/// with a timeout, keepalives while slow work runs, and who is asking.
/// `Conversation` speaks the wire protocol; the daemon's in-process tests
/// pass a scripted one. Every way a conversation ends early is
/// `Conversation.Ended`.
protocol PAMConversation: AnyObject, Sendable {
    var peer: PeerCredentials { get }
    func info(_ text: String) async throws
    func error(_ text: String) async throws
    /// Text for the start of the session: the PAM module shows it when the
    /// session opens (sshd would show text after the last prompt twice).
    func sessionInfo(_ text: String) async throws
    func ask(_ prompt: String, echo: Bool, timeout: Double) async throws -> String
    func askSecret(_ prompt: String, timeout: Double) async throws -> SecretBytes
    func keepingAlive<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T
}

/// The daemon's side of one PAM conversation over the wire protocol: show
/// messages, ask and read answers, keep the shim's timer alive while slow work
/// runs, and send the one final RESULT.
public final class Conversation: PAMConversation, @unchecked Sendable {
    let channel: Channel
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let keepaliveInterval: Double
    public let peer: PeerCredentials

    public struct Ended: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    init(
        channel: Channel, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, keepalive: Double, peer: PeerCredentials
    ) {
        self.channel = channel
        self.outbound = outbound
        self.inbound = inbound
        self.keepaliveInterval = keepalive
        self.peer = peer
    }

    func send(_ m: WireMessage) async throws {
        do {
            try await outbound.write(m.body())
        } catch {
            throw Ended(description: "the PAM client went away")
        }
    }

    public func info(_ text: String) async throws { try await send(.info(text)) }
    public func error(_ text: String) async throws { try await send(.error(text)) }
    public func sessionInfo(_ text: String) async throws { try await send(.sessionInfo(text)) }

    /// Asks and returns the answer. The answer may be a secret: callers must
    /// not log it. When no answer comes within `timeout` it throws `Ended`
    /// and stops reading, but leaves the connection open: the handler still
    /// sends its RESULT (a password change's AUTHTOK_ERR) before the
    /// connection closes, so the PAM module learns the outcome instead of
    /// finding the connection gone.
    public func ask(_ prompt: String, echo: Bool, timeout: Double) async throws -> String {
        try await send(echo ? .promptEchoOn(prompt) : .promptEchoOff(prompt))
        let outcome: ReadOutcome
        do {
            outcome = try await nextFrame(within: timeout)
        } catch {
            throw Ended(description: "the PAM client went away")
        }
        let frame: ByteBuffer
        switch outcome {
        case .timedOut: throw Ended(description: "no answer within \(Int(timeout)) s")
        case .frame(nil): throw Ended(description: "the PAM client went away")
        case .frame(let f?): frame = f
        }
        guard case .answer(let text) = try WireMessage(body: frame) else {
            throw Ended(description: "the PAM client sent something other than an answer")
        }
        return text
    }

    /// Asks for a secret (a passcode, a password) and returns it in a buffer
    /// the caller's last reference wipes. The answer's bytes go from the
    /// frame straight into it, never into a `String`, and are then wiped
    /// from the frame: the frame is a slice of the buffer the socket was
    /// read into (the frame decoder hands a frame that arrived in one read
    /// over without copying it), so the wipe reaches that buffer too, also
    /// where NIO keeps it for its next read. The same timeouts and endings
    /// as `ask`.
    public func askSecret(_ prompt: String, timeout: Double) async throws -> SecretBytes {
        try await send(.promptEchoOff(prompt))
        let outcome: ReadOutcome
        do {
            outcome = try await nextFrame(within: timeout)
        } catch {
            throw Ended(description: "the PAM client went away")
        }
        let frame: ByteBuffer
        switch outcome {
        case .timedOut: throw Ended(description: "no answer within \(Int(timeout)) s")
        case .frame(nil): throw Ended(description: "the PAM client went away")
        case .frame(let f?): frame = f
        }
        // Wiped in place: a mutating ByteBuffer call would copy the storage
        // first (the socket's read buffer shares it) and wipe the copy only.
        defer { frame.withUnsafeReadableBytes { SecretBytes.wipe(UnsafeMutableRawBufferPointer(mutating: $0)) } }
        let secret = try frame.withUnsafeReadableBytes { body -> SecretBytes? in
            guard let range = try WireCodec.answerRange(inBody: body) else { return nil }
            return SecretBytes(copying: UnsafeRawBufferPointer(rebasing: body[range]))
        }
        guard let secret else {
            throw Ended(description: "the PAM client sent something other than an answer")
        }
        return secret
    }

    enum ReadOutcome: Sendable {
        case frame(ByteBuffer?)
        case timedOut
    }

    /// The next frame, or `.timedOut` after `timeout` seconds. On a timeout
    /// the pending read is cancelled, which ends the inbound stream for good
    /// (later reads see its end) while the channel stays open for writing.
    func nextFrame(within timeout: Double) async throws -> ReadOutcome {
        try await withThrowingTaskGroup(of: ReadOutcome.self) { group in
            group.addTask { .frame(try await self.inbound.next()) }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(max(timeout, 0) * 1e9))
                return .timedOut
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { return .timedOut }
            return first
        }
    }

    public func finish(_ status: ResultStatus, reason: String) async {
        try? await send(.result(status, reason: reason))
    }

    /// Runs slow work while sending KEEPALIVE frames, so the shim's per-frame
    /// timer only fires when the daemon itself is stuck.
    public func keepingAlive<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        let interval = keepaliveInterval
        let out = outbound
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                    if Task.isCancelled { break }
                    try? await out.write(WireMessage.keepalive.body())
                }
                return nil
            }
            let value = try await body()
            group.cancelAll()
            return value
        }
    }
}
