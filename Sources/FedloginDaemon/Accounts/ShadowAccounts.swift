import FedloginCore
import Foundation
import Synchronization

/// Local accounts through shadow-utils (useradd, chpasswd, userdel), inside a
/// system root (`--prefix`) so the same code serves a real machine and a
/// sandbox. Lookups read the root's passwd file directly: the daemon never
/// resolves names through its own NSS module.
public struct ShadowAccounts: Sendable {
    public let root: String
    let passwdFile: PasswdFile

    public init(root: String) {
        self.root = root
        self.passwdFile = PasswdFile(path: (root == "/" ? "/etc" : root + "/etc") + "/passwd")
    }

    /// The passwd file as last read, kept with what identifies that version
    /// of it (device, inode, size, modification and change times): a lookup
    /// reads it again only when a stat says it changed (shadow-utils and
    /// vipw replace the file; an edit in place changes its times).
    final class PasswdFile: Sendable {
        let path: String
        private let last = Mutex<(version: [Int], lines: [ArraySlice<UInt8>])?>(nil)

        init(path: String) {
            self.path = path
        }

        func lines() throws -> [ArraySlice<UInt8>] {
            var st = stat()
            guard stat(path, &st) == 0 else { return try Self.read(path) }
            let version = [
                Int(st.st_dev), Int(st.st_ino), Int(st.st_size), st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec,
                st.st_ctim.tv_nsec,
            ]
            if let kept = last.withLock({ $0 }), kept.version == version { return kept.lines }
            let lines = try Self.read(path)
            last.withLock { $0 = (version, lines) }
            return lines
        }

        static func read(_ path: String) throws -> [ArraySlice<UInt8>] {
            try Sys.readBytes(path).split(separator: UInt8(ascii: "\n"))
        }
    }

    var etc: String { root == "/" ? "/etc" : root + "/etc" }

    /// shadow-utils run with fedlogin's NSS module switched off, so useradd
    /// does not see a not-yet-created user through it.
    var environment: [String: String] {
        ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "FEDLOGIN_NSS_DISABLE": "1", "LC_ALL": "C"]
    }

    var prefixArgs: [String] { root == "/" ? [] : ["--prefix", root] }

    public struct PasswdLine: Sendable, Equatable {
        public var name: String
        public var uid: UInt32
        public var gid: UInt32
        public var gecos: String
        public var home: String
        public var shell: String
    }

    /// The lines of the passwd file, split as bytes (the file is read on
    /// every login, so no Character-level text processing).
    func passwdLines() throws -> [ArraySlice<UInt8>] {
        try passwdFile.lines()
    }

    static func parse(_ line: ArraySlice<UInt8>) -> PasswdLine? {
        let f = line.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        func text(_ i: Int) -> String { String(decoding: f[i], as: UTF8.self) }
        guard f.count >= 7, let uid = UInt32(text(2)), let gid = UInt32(text(3)) else { return nil }
        return PasswdLine(name: text(0), uid: uid, gid: gid, gecos: text(4), home: text(5), shell: text(6))
    }

    public func passwd() throws -> [PasswdLine] {
        try passwdLines().compactMap(Self.parse)
    }

    public func lookup(_ name: String) throws -> LocalAccount? {
        let key = Array(name.utf8) + [UInt8(ascii: ":")]
        for line in try passwdLines() where line.starts(with: key) {
            if let p = Self.parse(line) { return LocalAccount(name: p.name, uid: p.uid) }
        }
        return nil
    }

    public func uidInUse(_ uid: UInt32) throws -> Bool {
        try passwd().contains { $0.uid == uid } || groupIDs().contains(uid)
    }

    func groupIDs() throws -> Set<UInt32> {
        let text = (try? Sys.readText(etc + "/group")) ?? ""
        return Set(
            text.split(separator: "\n").compactMap { line in
                let f = line.split(separator: ":", omittingEmptySubsequences: false)
                return f.count >= 3 ? UInt32(f[2]) : nil
            })
    }

    /// UID_MIN from login.defs (default 1000): below it are system accounts.
    public func uidMin() -> UInt32 {
        let text = (try? Sys.readText(etc + "/login.defs")) ?? ""
        for line in text.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if f.count >= 2, f[0] == "UID_MIN", let v = UInt32(f[1]) { return v }
        }
        return 1000
    }

    /// The lowest uid in the range that neither a user nor a group uses
    /// (so the user's private group can share the number).
    public func freeUID(in range: ClosedRange<UInt32>, reserved: Set<UInt32>) throws -> UInt32? {
        let used = Set(try passwd().map(\.uid)).union(try groupIDs()).union(reserved)
        return range.first { !used.contains($0) }
    }

    /// Creates the user's private group with gid = uid, then the user in it,
    /// so the ids fedlogin announces before creation are the ones it gets.
    public func create(name: String, uid: UInt32, gecos: String, shell: String, homeRoot: String, groups: [String]) throws {
        let g = try Sys.run("/usr/sbin/groupadd", prefixArgs + ["--gid", String(uid), name], environment: environment)
        guard g.status == 0 else {
            throw Sys.Failure("groupadd \(name) failed (\(g.status)): \(g.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        var args =
            prefixArgs + [
                "--create-home", "--uid", String(uid), "--gid", String(uid), "--shell", shell,
                "--home-dir", homeRoot + "/" + name, "--comment", gecos,
            ]
        let existing = existingGroups()
        let wanted = groups.filter { existing.contains($0) }
        if !wanted.isEmpty { args += ["--groups", wanted.joined(separator: ",")] }
        args.append(name)
        let r = try Sys.run("/usr/sbin/useradd", args, environment: environment)
        guard r.status == 0 else {
            throw Sys.Failure("useradd \(name) failed (\(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    func existingGroups() -> Set<String> {
        let text = (try? Sys.readText(etc + "/group")) ?? ""
        return Set(text.split(separator: "\n").compactMap { $0.split(separator: ":").first.map(String.init) })
    }

    /// Sets a pre-hashed password (chpasswd -e: the hash goes on stdin, never argv).
    public func setPasswordHash(name: String, hash: String) throws {
        let args = root == "/" ? ["-e"] : ["-e", "--root", root]
        let r = try Sys.run("/usr/sbin/chpasswd", args, input: Data("\(name):\(hash)\n".utf8), environment: environment)
        guard r.status == 0 else {
            throw Sys.Failure("chpasswd for \(name) failed (\(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Removes an account and its home (used to undo a provisioning that did
    /// not finish).
    public func delete(name: String) throws {
        let r = try Sys.run("/usr/sbin/userdel", prefixArgs + ["--remove", name], environment: environment)
        // 6: no such user, already gone. 12: home could not be removed (warned, account gone).
        guard r.status == 0 || r.status == 6 || r.status == 12 else {
            throw Sys.Failure("userdel \(name) failed (\(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// The password field of the user's shadow entry.
    public func shadowHash(_ name: String) throws -> String? {
        let text = try Sys.readText(etc + "/shadow")
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            if f.count >= 2, f[0] == name { return String(f[1]) }
        }
        return nil
    }

    func usermod(_ args: [String], _ name: String) throws {
        let r = try Sys.run("/usr/sbin/usermod", prefixArgs + args + [name], environment: environment)
        guard r.status == 0 else {
            throw Sys.Failure(
                "usermod \(args.joined(separator: " ")) \(name) failed (\(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// The local groups that list `name` as a member (one read of the group file).
    public func groups(of name: String) -> Set<String> {
        let text = (try? Sys.readText(etc + "/group")) ?? ""
        var out = Set<String>()
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            if f.count >= 4, f[3].split(separator: ",").contains(where: { $0 == name }) { out.insert(String(f[0])) }
        }
        return out
    }

    public func addToGroup(name: String, group: String) throws {
        try usermod(["--append", "--groups", group], name)
    }

    public func removeFromGroup(name: String, group: String) throws {
        let args = (root == "/" ? [] : ["--root", root]) + ["--delete", name, group]
        let r = try Sys.run("/usr/bin/gpasswd", args, environment: environment)
        guard r.status == 0 else {
            throw Sys.Failure("gpasswd --delete \(name) \(group) failed (\(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// The gid of a local group, if it exists.
    public func groupID(_ name: String) -> UInt32? {
        let text = (try? Sys.readText(etc + "/group")) ?? ""
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            if f.count >= 3, f[0] == name { return UInt32(f[2]) }
        }
        return nil
    }

    public func deleteGroup(name: String) throws {
        let r = try Sys.run("/usr/sbin/groupdel", prefixArgs + [name], environment: environment)
        guard r.status == 0 || r.status == 6 else {
            throw Sys.Failure("groupdel \(name) failed (\(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }
}
