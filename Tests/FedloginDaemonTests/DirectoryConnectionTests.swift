import FedloginCore
import FedloginNIO
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import FedloginDaemon

/// The pool's bookkeeping alone: which connection a request gets, which are kept.
struct ConnectionPoolBookTests {
    final class Conn {
        var open = true
        let n: Int
        init(_ n: Int) { self.n = n }
    }

    func taken(_ book: inout ConnectionPoolBook<Conn>) -> ConnectionPoolBook<Conn>.Turn {
        book.take(isOpen: { $0.open }).turn
    }

    @Test func withNothingIdleEveryRequestConnects() {
        var book = ConnectionPoolBook<Conn>(capacity: 2)
        for _ in 0..<5 {
            let turn = taken(&book)
            #expect(turn == .connect)
        }
        #expect(book.open == 5)
    }

    @Test func aGivenBackConnectionIsReusedMostRecentFirst() {
        var book = ConnectionPoolBook<Conn>(capacity: 4)
        _ = taken(&book)
        _ = taken(&book)
        let a = Conn(1)
        let b = Conn(2)
        let keptA = book.giveBack(a, reusable: true)
        let keptB = book.giveBack(b, reusable: true)
        #expect(keptA && keptB)
        let turns = [taken(&book), taken(&book), taken(&book)]
        #expect(turns == [.use(b), .use(a), .connect])
        #expect(book.open == 3)
    }

    @Test func atMostCapacityAreKeptAfterABurst() {
        var book = ConnectionPoolBook<Conn>(capacity: 2)
        let conns = (0..<5).map { Conn($0) }
        for _ in conns { _ = taken(&book) }
        let kept = conns.map { book.giveBack($0, reusable: true) }
        #expect(kept == [true, true, false, false, false])
        #expect(book.idle.count == 2 && book.open == 2)
    }

    @Test func aFailedOrClosedConnectionIsNotKept() {
        var book = ConnectionPoolBook<Conn>(capacity: 2)
        _ = taken(&book)
        let kept = book.giveBack(Conn(1), reusable: false)
        #expect(!kept)
        #expect(book.open == 0 && book.idle.isEmpty)
    }

    @Test func closedIdleConnectionsAreDroppedOnTheWay() {
        var book = ConnectionPoolBook<Conn>(capacity: 3)
        let (a, b) = (Conn(1), Conn(2))
        _ = taken(&book)
        _ = taken(&book)
        _ = book.giveBack(a, reusable: true)
        _ = book.giveBack(b, reusable: true)
        b.open = false
        let (turn, dropped) = book.take(isOpen: { $0.open })
        #expect(dropped.count == 1 && dropped[0] === b)
        #expect(turn == .use(a))
        #expect(book.open == 1)
        a.open = false
        _ = book.giveBack(a, reusable: true)
        let (turn2, dropped2) = book.take(isOpen: { $0.open })
        #expect(dropped2.count == 1 && turn2 == .connect)
        #expect(book.open == 1)
    }

    @Test func aFailedConnectIsNotCounted() {
        var book = ConnectionPoolBook<Conn>(capacity: 1)
        _ = taken(&book)
        book.connectFailed()
        #expect(book.open == 0)
    }

    @Test func drainEmptiesTheIdleConnections() {
        var book = ConnectionPoolBook<Conn>(capacity: 3)
        _ = taken(&book)
        _ = taken(&book)
        _ = book.giveBack(Conn(1), reusable: true)
        #expect(book.drain().count == 1)
        #expect(book.open == 1)
    }
}

extension ConnectionPoolBook.Turn: Equatable where Connection: AnyObject {
    public static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case (.connect, .connect): true
        case (.use(let x), .use(let y)): x === y
        default: false
        }
    }
}

/// A directory socket served in-process: answers each request frame with a
/// `device_users` answer naming the connection and the request's number on
/// it, so a test sees which connection carried what. It can close every
/// open connection, or stop answering.
final class ScriptedDirectory: Sendable {
    struct State {
        var connections = 0
        var open = 0
        var maxOpen = 0
        var requests: [String] = []
        var silent = false
        /// The next this many requests: the connection is closed instead of answered.
        var hangUp = 0
        var channels: [ObjectIdentifier: Channel] = [:]
    }
    let state = NIOLockedValueBox(State())
    let path: String
    let folder: URL
    let server: Channel

    init() async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("fedlogin-dirconn-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("d.sock").path
        self.path = path
        let state = state
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let n = state.withLockedValue { s in
                        s.connections += 1
                        s.open += 1
                        s.maxOpen = max(s.maxOpen, s.open)
                        s.channels[ObjectIdentifier(channel)] = channel
                        return s.connections
                    }
                    try channel.pipeline.syncOperations.addFrameCodec(maxFrame: 1 << 20)
                    try channel.pipeline.syncOperations.addHandler(Answerer(connection: n, state: state))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
    }

    final class Answerer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let connection: Int
        let state: NIOLockedValueBox<State>
        var served = 0

        init(connection: Int, state: NIOLockedValueBox<State>) {
            self.connection = connection
            self.state = state
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let body = unwrapInboundIn(data)
            let request = (try? JSONDecoder().decode(DirectoryRequest.self, from: Data(body.readableBytesView)))
            served += 1
            let (silent, hangUp) = state.withLockedValue { s in
                s.requests.append(request?.op.rawValue ?? "?")
                defer { s.hangUp = max(0, s.hangUp - 1) }
                return (s.silent, s.hangUp > 0)
            }
            if hangUp {
                context.close(promise: nil)
                return
            }
            if silent { return }
            let json = #"{"ok":true,"users":["c\#(connection)","r\#(served)","\#(request?.deviceID ?? "")"]}"#
            // A little later, as a directory that does some work.
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(2)) {
                loopBound.value.writeAndFlush(NIOAny(ByteBuffer(string: json)), promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            let id = ObjectIdentifier(context.channel)
            state.withLockedValue { s in
                s.open -= 1
                s.channels[id] = nil
            }
        }
    }

    /// Closes every open connection, as a restarted directory does.
    func closeAll() async {
        let channels = state.withLockedValue { Array($0.channels.values) }
        for c in channels { try? await c.close() }
    }

    func stop() async {
        try? await server.close()
        await closeAll()
        try? FileManager.default.removeItem(at: folder)
    }

    func client(timeout: Double = 2, capacity: Int = 16) -> DirectoryClient {
        DirectoryClient(
            socketPath: path, timeout: timeout, connections: DirectoryConnectionPool(socketPath: path, capacity: capacity, requireRootPeer: false))
    }
}

/// DirectoryClient on persistent connections, against a directory socket in-process.
@Suite(.serialized) struct DirectoryClientConnectionTests {
    @Test func requestsOneAfterAnotherShareOneConnection() async throws {
        let d = try await ScriptedDirectory()
        let client = d.client()
        for i in 1...5 {
            let users = try await client.deviceUsers(device: "dev\(i)")
            // Answers in order: request i gets its own answer, on connection 1.
            #expect(users == ["c1", "r\(i)", "dev\(i)"])
        }
        #expect(d.state.withLockedValue { $0.connections } == 1)
        await d.stop()
    }

    @Test func aBurstGetsAConnectionEachAndAtMostCapacityAreKept() async throws {
        let d = try await ScriptedDirectory()
        let client = d.client(capacity: 4)
        let answers = try await withThrowingTaskGroup(of: [String].self) { group in
            for i in 0..<64 { group.addTask { try await client.deviceUsers(device: "dev\(i)") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.count == 64)
        // Each answer is the one to its own request.
        #expect(Set(answers.map { $0[2] }) == Set((0..<64).map { "dev\($0)" }))
        #expect(await client.connections.idleCount <= 4)
        #expect(await client.connections.openCount == client.connections.idleCount)
        // The next requests reuse the kept ones: no new connection.
        let before = d.state.withLockedValue { $0.connections }
        for i in 0..<8 { _ = try await client.deviceUsers(device: "again\(i)") }
        #expect(d.state.withLockedValue { $0.connections } == before)
        await d.stop()
    }

    @Test func aRequestOnAConnectionTheDirectoryClosedGoesOnANewOne() async throws {
        let d = try await ScriptedDirectory()
        let client = d.client()
        _ = try await client.deviceUsers(device: "a")
        await d.closeAll()
        // Whether the close is seen before or during the next request, it is answered.
        let users = try await client.deviceUsers(device: "b")
        #expect(users[0] == "c2")
        #expect(d.state.withLockedValue { $0.connections } == 2)
        await d.stop()
    }

    @Test func aRequestWhoseKeptConnectionClosesUnderItIsSentOnceMore() async throws {
        let d = try await ScriptedDirectory()
        let client = d.client()
        _ = try await client.deviceUsers(device: "a")
        d.state.withLockedValue { $0.hangUp = 1 }
        let users = try await client.deviceUsers(device: "b")
        #expect(users == ["c2", "r1", "b"])
        #expect(d.state.withLockedValue { $0.requests } == ["device_users", "device_users", "device_users"])
        await d.stop()
    }

    @Test func aNewConnectionClosedUnderTheRequestIsNotTriedAgain() async throws {
        let d = try await ScriptedDirectory()
        let client = d.client()
        d.state.withLockedValue { $0.hangUp = 1 }
        await #expect(throws: DirectoryClient.Unavailable.self) { _ = try await client.lookup("carol") }
        #expect(d.state.withLockedValue { $0.requests } == ["lookup"])
        await d.stop()
    }

    @Test func aPasswordChangeIsNeverSentTwice() async throws {
        let d = try await ScriptedDirectory()
        let client = d.client()
        _ = try await client.deviceUsers(device: "a")
        d.state.withLockedValue { $0.hangUp = 1 }
        let current = Array("old".utf8).withUnsafeBytes { SecretBytes(copying: $0) }
        let new = Array("new".utf8).withUnsafeBytes { SecretBytes(copying: $0) }
        await #expect(throws: DirectoryClient.Unavailable.self) {
            try await client.changePassword(user: "carol", current: current, new: new)
        }
        #expect(d.state.withLockedValue { $0.requests } == ["device_users", "change_password"])
        await d.stop()
    }

    @Test func aPasswordChangeGoesOnANewConnectionAndIsSentOnce() async throws {
        let d = try await ScriptedDirectory()
        let client = d.client()
        _ = try await client.deviceUsers(device: "a")
        let current = Array("old".utf8).withUnsafeBytes { SecretBytes(copying: $0) }
        let new = Array("new".utf8).withUnsafeBytes { SecretBytes(copying: $0) }
        try await client.changePassword(user: "carol", current: current, new: new)
        let s = d.state.withLockedValue { $0 }
        #expect(s.connections == 2)
        #expect(s.requests == ["device_users", "change_password"])
        await d.stop()
    }

    @Test func aDirectoryThatDoesNotAnswerFailsClosedWithinTheTimeout() async throws {
        let d = try await ScriptedDirectory()
        let client = d.client(timeout: 0.2)
        _ = try await client.deviceUsers(device: "a")
        d.state.withLockedValue { $0.silent = true }
        let start = ContinuousClock.now
        do {
            _ = try await client.lookup("carol")
            Issue.record("a silent directory answered")
        } catch let e as DirectoryClient.Unavailable {
            #expect(e.kind == .unreachable)
            #expect(e.timedOut)
        }
        #expect(ContinuousClock.now - start < .seconds(2))
        // Sent once: a timeout is not retried.
        #expect(d.state.withLockedValue { $0.requests } == ["device_users", "lookup"])
        // The timed-out connection is not used again.
        d.state.withLockedValue { $0.silent = false }
        let users = try await client.deviceUsers(device: "b")
        #expect(users[0] == "c2")
        await d.stop()
    }

    @Test func noDirectoryIsUnreachable() async throws {
        let client = DirectoryClient(
            socketPath: "/nonexistent/d.sock", timeout: 0.2,
            connections: DirectoryConnectionPool(socketPath: "/nonexistent/d.sock", requireRootPeer: false))
        let e = await #expect(throws: DirectoryClient.Unavailable.self) { _ = try await client.policy(device: "x") }
        #expect(e?.timedOut == false)  // refused at once, not silent
        #expect(await client.connections.openCount == 0)
    }
}
