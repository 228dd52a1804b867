import FedloginCore
import FedloginNIO
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import FedloginDaemon

/// The pool's bookkeeping alone: who connects, who reuses, who waits.
struct ConnectionPoolBookTests {
    final class Conn {
        var open = true
        let n: Int
        init(_ n: Int) { self.n = n }
    }

    func taken(_ book: inout ConnectionPoolBook<Conn>) -> ConnectionPoolBook<Conn>.Turn? {
        book.take(isOpen: { $0.open }).turn
    }

    @Test func connectsUpToCapacityThenWaits() {
        var book = ConnectionPoolBook<Conn>(capacity: 2)
        guard case .connect = taken(&book) else {
            Issue.record("first: connect")
            return
        }
        guard case .connect = taken(&book) else {
            Issue.record("second: connect")
            return
        }
        #expect(taken(&book) == nil)
        #expect(book.open == 2)
    }

    @Test func aGivenBackConnectionIsReusedMostRecentFirst() {
        var book = ConnectionPoolBook<Conn>(capacity: 4)
        _ = taken(&book)
        _ = taken(&book)
        let a = Conn(1)
        let b = Conn(2)
        #expect(book.giveBack(a, reusable: true) == nil)
        #expect(book.giveBack(b, reusable: true) == nil)
        guard case .use(let c) = taken(&book) else {
            Issue.record("reuse")
            return
        }
        #expect(c === b)
        #expect(book.open == 2)
    }

    @Test func closedIdleConnectionsAreDroppedAndReplaced() {
        var book = ConnectionPoolBook<Conn>(capacity: 1)
        _ = taken(&book)
        let a = Conn(1)
        _ = book.giveBack(a, reusable: true)
        a.open = false
        let (turn, dropped) = book.take(isOpen: { $0.open })
        #expect(dropped.count == 1 && dropped[0] === a)
        guard case .connect = turn else {
            Issue.record("connect after drop")
            return
        }
        #expect(book.open == 1)
    }

    @Test func theFirstInLineGetsAGivenBackConnection() {
        var book = ConnectionPoolBook<Conn>(capacity: 1)
        _ = taken(&book)
        #expect(taken(&book) == nil)
        book.enqueue(7)
        #expect(taken(&book) == nil)
        book.enqueue(8)
        let a = Conn(1)
        guard let (w, turn) = book.giveBack(a, reusable: true), case .use(let c) = turn else {
            Issue.record("handoff")
            return
        }
        #expect(w == 7 && c === a)
        #expect(book.waiting == [8])
        #expect(book.idle.isEmpty && book.open == 1)
    }

    @Test func aDroppedConnectionPassesItsRoomToTheFirstInLine() {
        var book = ConnectionPoolBook<Conn>(capacity: 1)
        _ = taken(&book)
        book.enqueue(1)
        guard let (w, turn) = book.giveBack(Conn(1), reusable: false), case .connect = turn else {
            Issue.record("room")
            return
        }
        #expect(w == 1)
        #expect(book.open == 1)
        // That connect fails, nobody waits: the room is free again.
        #expect(book.connectFailed() == nil)
        #expect(book.open == 0)
    }

    @Test func aWaiterWhoseTimePassedLeavesTheLine() {
        var book = ConnectionPoolBook<Conn>(capacity: 1)
        _ = taken(&book)
        book.enqueue(1)
        book.enqueue(2)
        let left = book.leave(1)
        let again = book.leave(1)
        #expect(left && !again)
        guard let (w, _) = book.giveBack(Conn(1), reusable: true) else {
            Issue.record("handoff")
            return
        }
        #expect(w == 2)
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

    @Test func manyAtOnceUseAtMostCapacityConnections() async throws {
        let d = try await ScriptedDirectory()
        let client = d.client(capacity: 4)
        let answers = try await withThrowingTaskGroup(of: [String].self) { group in
            for i in 0..<64 { group.addTask { try await client.deviceUsers(device: "dev\(i)") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.count == 64)
        // Each answer is the one to its own request.
        #expect(Set(answers.map { $0[2] }) == Set((0..<64).map { "dev\($0)" }))
        let s = d.state.withLockedValue { $0 }
        #expect(s.maxOpen <= 4)
        #expect(s.connections <= 4)
        #expect(await client.connections.openCount <= 4)
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

    @Test func aRequestWaitingForABusyConnectionGivesUpWithinTheTimeout() async throws {
        let d = try await ScriptedDirectory()
        d.state.withLockedValue { $0.silent = true }
        let client = d.client(timeout: 0.2, capacity: 1)
        let start = ContinuousClock.now
        let failures = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    do {
                        _ = try await client.lookup("carol")
                        return false
                    } catch {
                        return error is DirectoryClient.Unavailable
                    }
                }
            }
            return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(failures == 2)
        #expect(ContinuousClock.now - start < .seconds(2))
        // The one connection carried one request; the other never got one.
        #expect(d.state.withLockedValue { $0.requests } == ["lookup"])
        #expect(await client.connections.openCount == 0)
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
        await #expect(throws: DirectoryClient.Unavailable.self) { _ = try await client.policy(device: "x") }
        #expect(await client.connections.openCount == 0)
    }
}
