import FedloginNIO
import NIOCore
import NIOPosix

/// The bookkeeping of a pool of persistent connections, without any I/O: who
/// gets which connection, who connects, who waits. `Connection` is whatever
/// the pool holds (a `FramedConnection` in fedlogind, a stand-in in tests).
///
/// `open` counts every connection the pool answers for: idle ones, ones in
/// use and ones being connected; it never exceeds `capacity`. A request
/// takes an idle connection (the most recently used first), or is told to
/// connect a new one while there is room, or waits in line. A connection
/// given back goes to the first in line, or becomes idle; a connection
/// dropped (closed, failed) makes room, and the first in line is told to
/// connect.
struct ConnectionPoolBook<Connection> {
    let capacity: Int
    private(set) var idle: [Connection] = []
    private(set) var open = 0
    /// Waiting requests, first come first served.
    private(set) var waiting: [UInt64] = []

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    enum Turn {
        /// Use this connection.
        case use(Connection)
        /// Connect a new one (counted in `open` already); report a failure with `connectFailed()`.
        case connect
    }

    /// What a request gets now; nil: it must wait (`enqueue`). Idle
    /// connections that `isOpen` says are closed are dropped on the way and
    /// returned, to be closed by the caller.
    mutating func take(isOpen: (Connection) -> Bool) -> (turn: Turn?, dropped: [Connection]) {
        var dropped: [Connection] = []
        while let c = idle.popLast() {
            if isOpen(c) { return (.use(c), dropped) }
            dropped.append(c)
            open -= 1
        }
        if open < capacity {
            open += 1
            return (.connect, dropped)
        }
        return (nil, dropped)
    }

    mutating func enqueue(_ waiter: UInt64) { waiting.append(waiter) }

    /// A waiter that stopped waiting (its deadline passed); false when it was
    /// no longer in line (it was given its turn already).
    mutating func leave(_ waiter: UInt64) -> Bool {
        guard let i = waiting.firstIndex(of: waiter) else { return false }
        waiting.remove(at: i)
        return true
    }

    /// A connection given back after its request: `reusable` when the
    /// exchange completed and the connection is still open. Returns the
    /// waiter that gets the turn (the connection itself, or the room to
    /// connect when it was dropped), if any.
    mutating func giveBack(_ connection: Connection, reusable: Bool) -> (waiter: UInt64, turn: Turn)? {
        if reusable {
            if !waiting.isEmpty { return (waiting.removeFirst(), .use(connection)) }
            idle.append(connection)
            return nil
        }
        return drop()
    }

    /// A connection that could not be made, or one dropped: room for the first in line.
    mutating func connectFailed() -> (waiter: UInt64, turn: Turn)? { drop() }

    private mutating func drop() -> (waiter: UInt64, turn: Turn)? {
        // The room passes to the first in line, who connects: `open` stays.
        if !waiting.isEmpty { return (waiting.removeFirst(), .connect) }
        open -= 1
        return nil
    }

    /// Empties the pool: the idle connections, to be closed by the caller.
    mutating func drain() -> [Connection] {
        defer {
            open -= idle.count
            idle = []
        }
        return idle
    }
}

/// fedlogind's persistent connections to the directory socket: up to
/// `capacity` (16) open at once, each used by one request at a time, so the
/// directory sees at most that many requests at once and a burst of logins
/// waits here instead of in the socket's accept queue. Every new connection
/// checks that the server runs as root. A request waits for a connection and
/// connects within its connect timeout; past that it fails as an
/// unreachable directory, as a connect that takes too long did before.
actor DirectoryConnectionPool {
    let socketPath: String
    let requireRootPeer: Bool
    var book: ConnectionPoolBook<FramedConnection>
    var waiters: [UInt64: (CheckedContinuation<ConnectionPoolBook<FramedConnection>.Turn, any Error>, Scheduled<Void>)] = [:]
    var nextWaiter: UInt64 = 0

    init(socketPath: String, capacity: Int = 16, requireRootPeer: Bool = true) {
        self.socketPath = socketPath
        self.requireRootPeer = requireRootPeer
        book = ConnectionPoolBook(capacity: capacity)
    }

    deinit {
        for c in book.idle { c.close() }
    }

    /// No connection within the connect timeout, all of them busy.
    struct Busy: Error, CustomStringConvertible {
        let path: String
        var description: String { "no connection to \(path) free in time (all in use)" }
    }

    /// A connection for one request, and whether it was used before (a
    /// reused one may turn out closed by the server; a new one may not).
    /// Waits and connects within `connectTimeout` in all.
    func acquire(connectTimeout: TimeAmount) async throws -> (connection: FramedConnection, reused: Bool) {
        let deadline = NIODeadline.now() + connectTimeout
        let (now, dropped) = book.take(isOpen: { $0.isOpen })
        for c in dropped { c.close() }
        let turn: ConnectionPoolBook<FramedConnection>.Turn
        if let now {
            turn = now
        } else {
            turn = try await waitForTurn(until: deadline)
        }
        switch turn {
        case .use(let c):
            return (c, true)
        case .connect:
            do {
                let remaining = max(deadline - NIODeadline.now(), .milliseconds(1))
                let c = try await FramedConnection.connect(
                    socket: socketPath, connectTimeout: remaining, maxFrame: directoryMaxFrame, requireRootPeer: requireRootPeer)
                return (c, false)
            } catch {
                pass(book.connectFailed())
                throw error
            }
        }
    }

    /// Gives a connection back: reusable when its exchange completed.
    func release(_ connection: FramedConnection, reusable: Bool) {
        let keep = reusable && connection.isOpen
        if !keep { connection.close() }
        pass(book.giveBack(connection, reusable: keep))
    }

    private func pass(_ handoff: (waiter: UInt64, turn: ConnectionPoolBook<FramedConnection>.Turn)?) {
        guard let (id, turn) = handoff, let (continuation, timer) = waiters.removeValue(forKey: id) else { return }
        timer.cancel()
        continuation.resume(returning: turn)
    }

    private func waitForTurn(until deadline: NIODeadline) async throws -> ConnectionPoolBook<FramedConnection>.Turn {
        let id = nextWaiter
        nextWaiter += 1
        return try await withCheckedThrowingContinuation { continuation in
            book.enqueue(id)
            let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(deadline: deadline) {
                Task { await self.expire(id) }
                return
            }
            waiters[id] = (continuation, timer)
        }
    }

    private func expire(_ id: UInt64) {
        guard book.leave(id), let (continuation, _) = waiters.removeValue(forKey: id) else { return }
        continuation.resume(throwing: Busy(path: socketPath))
    }

    /// Connections open now (idle, in use or connecting), for tests.
    var openCount: Int { book.open }
}

extension ConnectionPoolBook: Sendable where Connection: Sendable {}
extension ConnectionPoolBook.Turn: Sendable where Connection: Sendable {}
