import FedloginCore
import Foundation
import Testing

@testable import FedloginDaemon

/// The NSS answers' cache and its file (`NSSCache` with `NSSCachePolicy`
/// and `NSSCachePublishing`) on the fake clock: expiry at 10 s, when the
/// file is written, the cap.
struct NSSCacheTests {
    /// The file's header: `generated`, `ids_until` and the number of records.
    static func header(_ path: String) -> (generated: Int64, idsUntil: Int64, count: UInt32)? {
        guard let d = FileManager.default.contents(atPath: path), d.count >= NSSCacheFile.headerSize else { return nil }
        let b = [UInt8](d)
        func int<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            var v: T = 0
            for i in (0..<MemoryLayout<T>.size).reversed() { v = v << 8 | T(b[at + i]) }
            return v
        }
        return (int(16, Int64.self), int(24, Int64.self), int(32, UInt32.self))
    }

    static func entry(_ name: String, uid: UInt32) -> NSSResolver.Answer {
        .passwd(PasswdEntry(name: name, uid: uid, gid: uid, gecos: "", dir: "/home/\(name)", shell: "/bin/bash"))
    }

    func cache(_ clock: FakeClock) -> (NSSCache, String, String) {
        let dir = NSTemporaryDirectory() + "fedlogin-nss-cache-test-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let file = dir + "/nss.cache"
        return (NSSCache(file: file, clock: clock), file, dir)
    }

    @Test func anAnswerExpiresAfterTenSeconds() {
        let clock = FakeClock()
        let cache = NSSCache(clock: clock)
        cache.put("alice", Self.entry("alice", uid: 70000))
        cache.put("nobody-here", .notFound)
        clock.advance(9.75)
        #expect(cache.get("alice") == Self.entry("alice", uid: 70000))
        #expect(cache.get("nobody-here") == .notFound)
        clock.advance(0.25)
        #expect(cache.get("alice") == nil)
        #expect(cache.get("nobody-here") == nil)
    }

    @Test func aNewEntryIsWrittenBeforeItIsAnswered() throws {
        let clock = FakeClock()
        let (cache, file, dir) = cache(clock)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        cache.publish(force: true)
        let start = Int64(clock.now())
        #expect(Self.header(file)?.count == 0)
        clock.advance(0.001)
        cache.put("alice", Self.entry("alice", uid: 70000))
        let h = try #require(Self.header(file))
        #expect(h.count == 1 && h.generated == start && h.idsUntil == start + 10)
        #expect(
            cache.records(now: clock.now()) == [
                .user(PasswdEntry(name: "alice", uid: 70000, gid: 70000, gecos: "", dir: "/home/alice", shell: "/bin/bash"), expires: start + 10)
            ])
        // Expired answers are not in the file.
        clock.advance(10)
        #expect(cache.records(now: clock.now()).isEmpty)
    }

    @Test func newNotFoundAnswersWaitForTheIntervalAndAnyRequestRenewsAnOldFile() async throws {
        let clock = FakeClock()
        let (cache, file, dir) = cache(clock)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        cache.publish(force: true)
        clock.advance(0.01)
        cache.put("nobody-here", .notFound)
        // Not yet: written 50 ms after the last write, by a scheduled write
        // (whose sleep moves the fake clock on).
        let written = await Self.eventually { Self.header(file)?.count == 1 }
        #expect(written)
        #expect(cache.published.withLockedValue { !$0.dirty && !$0.scheduled })
        // Half the lifetime later, any request writes the file again.
        let before = try #require(Self.header(file))
        clock.advance(5.01)
        cache.publish()
        #expect(Self.header(file)!.generated == before.generated + 5)
    }

    /// Waits (in real time, at most 5 s) until `condition` holds.
    static func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<500 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test func atMost4096AnswersAreKept() {
        let clock = FakeClock()
        let cache = NSSCache(clock: clock)
        for i in 0..<4096 {
            cache.put("u\(i)", .notFound)
            clock.advance(0.001)
        }
        #expect(cache.entries.withLockedValue { $0.count } == 4096)
        // One more: the oldest quarter goes (none has expired yet).
        cache.put("u4096", .notFound)
        #expect(cache.entries.withLockedValue { $0.count } == 3072 + 1)
        #expect(cache.get("u0") == nil && cache.get("u1024") == .notFound && cache.get("u4096") == .notFound)
    }

    @Test func expiredAnswersGoFirstWhenTheCacheIsFull() {
        let clock = FakeClock()
        let cache = NSSCache(clock: clock)
        for i in 0..<4095 { cache.put("u\(i)", .notFound) }
        clock.advance(10)
        cache.put("fresh", .notFound)
        #expect(cache.entries.withLockedValue { $0.count } == 4096)
        // Full: the 4095 expired answers go, the fresh one stays.
        cache.put("new", .notFound)
        #expect(cache.entries.withLockedValue { Set($0.keys) } == ["fresh", "new"])
    }

    @Test func theResolverAnswersFromTheCacheUntilItExpires() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        let resolver = NSSResolver(runtime: w.runtime, caller: nil)
        guard case .passwd(let p) = await resolver.passwd(name: "alice") else {
            Issue.record("no entry for alice")
            return
        }
        #expect(p.uid == 70000)
        // The uid is reserved through the provisioner, in the state database.
        #expect(try w.runtime.state.reservation(uid: 70000)?.username == "alice")
        w.directory.state.withLockedValue { $0.unreachable = true }
        w.clock.advance(9.75)
        #expect(await resolver.passwd(name: "alice") == .passwd(p))
        w.clock.advance(0.25)
        guard case .unavailable = await resolver.passwd(name: "alice") else {
            Issue.record("answered after 10 s without the directory")
            return
        }
    }
}
