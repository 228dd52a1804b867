import NIOPosix

/// Work that blocks a thread, kept off the Swift concurrency pool. That pool
/// has one thread per CPU; a program such as useradd or a password hash
/// running on it would stop every other login's conversation, KEEPALIVE
/// frames included, until it returned.
enum Blocking {
    /// Changes to accounts: shadow-utils and the state records that go with
    /// them, one at a time and in order. shadow-utils lock the account files
    /// (a second useradd while one runs fails), and a serial queue also keeps
    /// a directory sync from interleaving with a first login.
    static let accounts: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()

    /// CPU-bound work (password hashes and checks): one at a time per CPU.
    static let cpu: NIOThreadPool = NIOThreadPool.singleton

    static func accountChange<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await accounts.runIfActive(body)
    }

    static func compute<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await cpu.runIfActive(body)
    }
}
