import FedloginCore
import Foundation
import Testing

/// fedlogind's NSS cache writer against the files of Tests/fixtures/nsscache,
/// which the C reader (pam/nss_cache.c) decodes in its own tests: the two
/// sides agree byte for byte.
struct NSSCacheFileTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures/nsscache")

    static func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: folder.appendingPathComponent(name)))
    }

    typealias R = NSSCacheFile.Record
    static let forever: Int64 = 4_000_000_000

    static func user(_ n: String, _ uid: UInt32, _ gid: UInt32, _ gecos: String, _ dir: String, _ shell: String, expires: Int64 = forever) -> R {
        R(kind: .user, name: n, uid: uid, gid: gid, expires: expires, gecos: gecos, dir: dir, shell: shell)
    }

    @Test func basic() throws {
        // In another order than the file's: the writer sorts.
        let records = [
            R(kind: .notFound, name: "zed", expires: Self.forever),
            Self.user("bob", 60002, 60002, "", "/home/bob", "/bin/sh"),
            Self.user("dave", 60004, 60004, "Dave", "/home/dave", "/bin/bash", expires: 1_700_000_005),
            R(kind: .ask, name: "carol", uid: 60003, gid: 60003, expires: 0),
            Self.user("alice", 60001, 60001, "Alice Example", "/home/alice", "/bin/bash"),
            R(kind: .notFound, name: "nobody-here", expires: Self.forever),
        ]
        #expect(NSSCacheFile.encode(records: records, generated: 1_700_000_000, idsUntil: 4_000_000_000) == (try Self.fixture("basic.bin")))
    }

    @Test func edge() throws {
        let records = [
            Self.user("a", 70001, 70001, "A", "/home/a", "/bin/sh"),
            R(kind: .notFound, name: "a-", expires: Self.forever),
            Self.user("ab", 70002, 70100, "Gid Differs", "/home/ab", "/bin/sh"),
            Self.user("b", 70003, 70003, "", "/", "/bin/sh"),
            Self.user(
                String(repeating: "x", count: 256), 70004, 70004, String(repeating: "g", count: 4096),
                "/" + String(repeating: "d", count: 4095), "/bin/" + String(repeating: "s", count: 4091)),
            R(kind: .notFound, name: "zoe", expires: Self.forever),
            Self.user("\u{e9}mile", 70005, 70005, "\u{c9}mile Zola", "/home/\u{e9}mile", "/bin/bash"),
        ]
        #expect(NSSCacheFile.encode(records: records, generated: 1_700_000_000, idsUntil: 0) == (try Self.fixture("edge.bin")))
    }

    @Test func empty() throws {
        #expect(NSSCacheFile.encode(records: [], generated: 1_700_000_000, idsUntil: 4_000_000_000) == (try Self.fixture("empty.bin")))
    }

    /// What the reader would refuse is left out rather than written.
    @Test func unreadableRecordsLeftOut() {
        let ok = Self.user("ok", 60010, 60010, "", "/home/ok", "/bin/sh")
        let bad = [
            R(kind: .notFound, name: "", expires: Self.forever),
            R(kind: .notFound, name: String(repeating: "n", count: 257), expires: Self.forever),
        ]
        #expect(
            NSSCacheFile.encode(records: [ok] + bad, generated: 1, idsUntil: 2) == NSSCacheFile.encode(records: [ok], generated: 1, idsUntil: 2))
        // A USER or ASK record left out: no claim about the uids not listed.
        let longUser = Self.user("longgecos", 60011, 60011, String(repeating: "g", count: 4097), "/", "/bin/sh")
        #expect(
            NSSCacheFile.encode(records: [ok, longUser], generated: 1, idsUntil: 2) == NSSCacheFile.encode(records: [ok], generated: 1, idsUntil: 0))
        let many = (0..<(NSSCacheFile.maxEntries + 1)).map {
            R(kind: .ask, name: String(format: "u%06d", $0), uid: UInt32(100_000 + $0), gid: UInt32(100_000 + $0), expires: 0)
        }
        let file = NSSCacheFile.encode(records: many, generated: 1, idsUntil: 2)
        #expect(file[24..<32].allSatisfy { $0 == 0 })
        #expect(Array(file[32..<36]) == [0, 0, 1, 0])  // 65536 names
        // NOTFOUND records left out change nothing about uids.
        let notFounds = (0..<(NSSCacheFile.maxEntries + 1)).map { R(kind: .notFound, name: String(format: "n%06d", $0), expires: 9) }
        #expect(NSSCacheFile.encode(records: notFounds, generated: 1, idsUntil: 2)[24] == 2)
        // A name twice: the first wins.
        let twice = Self.user("ok", 60012, 60012, "", "/home/ok", "/bin/sh")
        #expect(
            NSSCacheFile.encode(records: [ok, twice], generated: 1, idsUntil: 2) == NSSCacheFile.encode(records: [ok], generated: 1, idsUntil: 2))
    }
}
