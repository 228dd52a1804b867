import FedloginSystem
import Foundation
import Testing

/// The one copy of the atomic and durable file writes both services use.
struct DurableWriteTests {
    static func folder() throws -> String {
        let path = NSTemporaryDirectory() + "fedlogin-system-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    @Test func writeReplacesTheWholeFileAndLeavesNoTemporary() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/state.json"
        try Sys.writeDurably(Data("first, and longer".utf8), to: file)
        try Sys.writeDurably(Data("second".utf8), to: file)
        #expect(try Sys.readText(file) == "second")
        #expect(!FileManager.default.fileExists(atPath: file + ".tmp"))
        #expect(try Sys.ownerAndMode(file).mode == 0o600)
    }

    @Test func appendAddsAndCreatesPrivately() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/reports.jsonl"
        try Sys.appendDurably(Data("a\n".utf8), to: file)
        try Sys.appendDurably(Data("b\n".utf8), to: file)
        #expect(try Sys.readText(file) == "a\nb\n")
        #expect(try Sys.ownerAndMode(file).mode == 0o600)
    }

    @Test func failuresNameThePath() throws {
        #expect {
            try Sys.writeDurably(Data(), to: "/nonexistent-folder/x")
        } throws: { ($0 as? Sys.Failure)?.description == "cannot create /nonexistent-folder/x.tmp: No such file or directory" }
        #expect {
            try Sys.appendDurably(Data(), to: "/nonexistent-folder/y")
        } throws: { ($0 as? Sys.Failure)?.description == "cannot open /nonexistent-folder/y: No such file or directory" }
    }

    @Test func runReportsStatusAndStderr() throws {
        let r = try Sys.run("/bin/sh", ["-c", "cat >&2; exit 3"], input: Data("to stderr".utf8))
        #expect(r.status == 3 && r.stderr == "to stderr" && !r.signaled)
    }
}
