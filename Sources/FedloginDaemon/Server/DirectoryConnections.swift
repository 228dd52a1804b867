import FedloginNIO
import NIOCore
import NIOPosix

/// The bookkeeping of a pool of kept connections, without any I/O: which
/// connection a request gets, which connection is kept after it.
/// `Connection` is whatever the pool holds (a `FramedConnection` in
/// fedlogind, a stand-in in tests).
///
/// A request takes an idle connection (the most recently used first; ones
/// found closed are dropped on the way), or connects a new one. A request
/// never waits for another's connection: a burst of requests gets a
/// connection each, as many as the directory socket accepts. Afterwards at
/// most `capacity` connections are kept idle for the next requests; the
/// others are closed.
struct ConnectionPoolBook<Connection> {
    let capacity: Int
    private(set) var idle: [Connection] = []
    /// Every connection the pool answers for: idle, in use or being connected.
    private(set) var open = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    enum Turn {
        /// Use this idle connection.
        case use(Connection)
        /// Connect a new one (counted in `open` already); report a failure with `connectFailed()`.
        case connect
    }

    /// What a request gets. Idle connections that `isOpen` says are closed
    /// are dropped on the way and returned, for the caller to close.
    mutating func take(isOpen: (Connection) -> Bool) -> (turn: Turn, dropped: [Connection]) {
        var dropped: [Connection] = []
        while let c = idle.popLast() {
            if isOpen(c) { return (.use(c), dropped) }
            dropped.append(c)
            open -= 1
        }
        open += 1
        return (.connect, dropped)
    }

    /// A connection given back after its request: `reusable` when its
    /// exchange completed and it is still open. True: kept idle; false: the
    /// caller closes it.
    mutating func giveBack(_ connection: Connection, reusable: Bool) -> Bool {
        if reusable && idle.count < capacity {
            idle.append(connection)
            return true
        }
        open -= 1
        return false
    }

    /// A connection that could not be made.
    mutating func connectFailed() { open -= 1 }

    /// Empties the pool: the idle connections, for the caller to close.
    mutating func drain() -> [Connection] {
        defer {
            open -= idle.count
            idle = []
        }
        return idle
    }
}

extension ConnectionPoolBook: Sendable where Connection: Sendable {}
extension ConnectionPoolBook.Turn: Sendable where Connection: Sendable {}

/// fedlogind's kept connections to the directory socket: each used by one
/// request at a time, up to `capacity` (16) kept open between requests, so
/// most requests skip the connect and the peer check. A burst of requests
/// beyond that opens connections of its own (closed after their request),
/// so no request waits for another's. Every new connection checks that the
/// server runs as root.
actor DirectoryConnectionPool {
    let socketPath: String
    let requireRootPeer: Bool
    var book: ConnectionPoolBook<FramedConnection>

    init(socketPath: String, capacity: Int = 16, requireRootPeer: Bool = true) {
        self.socketPath = socketPath
        self.requireRootPeer = requireRootPeer
        book = ConnectionPoolBook(capacity: capacity)
    }

    deinit {
        for c in book.idle { c.close() }
    }

    /// A connection for one request, and whether it was used before (a kept
    /// one may turn out closed by the server; a new one may not). A new
    /// connection is made within `connectTimeout`.
    func acquire(connectTimeout: TimeAmount) async throws -> (connection: FramedConnection, reused: Bool) {
        let (turn, dropped) = book.take(isOpen: { $0.isOpen })
        for c in dropped { c.close() }
        switch turn {
        case .use(let c):
            return (c, true)
        case .connect:
            do {
                let c = try await FramedConnection.connect(
                    socket: socketPath, connectTimeout: connectTimeout, maxFrame: directoryMaxFrame, requireRootPeer: requireRootPeer)
                return (c, false)
            } catch {
                book.connectFailed()
                throw error
            }
        }
    }

    /// Gives a connection back: reusable when its exchange completed.
    func release(_ connection: FramedConnection, reusable: Bool) {
        if !book.giveBack(connection, reusable: reusable && connection.isOpen) { connection.close() }
    }

    /// Connections open now (idle, in use or connecting), for tests.
    var openCount: Int { book.open }
    /// Connections kept idle now, for tests.
    var idleCount: Int { book.idle.count }
}
