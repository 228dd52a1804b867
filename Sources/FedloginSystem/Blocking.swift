import NIOPosix

/// Work that blocks a thread, kept off the Swift concurrency pool. That pool
/// has one thread per CPU; a program such as useradd or a password hash
/// running on it would stop every other login's conversation, KEEPALIVE
/// frames included, until it returned.
public enum Blocking {
    /// Changes to accounts: shadow-utils and the state records that go with
    /// them, one at a time and in order. shadow-utils lock the account files
    /// (a second useradd while one runs fails), and a serial queue also keeps
    /// a directory sync from interleaving with a first login.
    public static let accounts: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()

    /// CPU-bound work (password hashes and checks): one at a time per CPU.
    public static let cpu: NIOThreadPool = NIOThreadPool.singleton

    /// IdP requests (libcurl, each bounded by `signin.http_timeout`): up to
    /// 16 at once, the rest wait their turn. A fixed set of threads keeps
    /// the memory of many logins at once bounded: each thread's stack stays
    /// resident once touched, and a thread per request grew the daemon by
    /// about 1 MB per request in flight.
    public static let http: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    public static func accountChange<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await accounts.runIfActive(body)
    }

    public static func compute<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await cpu.runIfActive(body)
    }
}
