import CFedloginSys
import FedloginCore
import FedloginSystem
import Foundation

/// The reference directory: users, groups, policy and device associations from
/// a JSON file (docs/directory-protocol.md), and the binding reports it has
/// received, kept durably in `reports.jsonl` in its state folder.
///
/// Its root is the directory's administrator: whoever can write the file can
/// set any user's password hash, so `change_password` protects users from a
/// device, not from the host that serves this file.
///
/// One request at a time: every operation holds `lock` (recursive: `access`
/// is a `lookup` and `users(of:)`).
public final class DirectoryStore: DirectoryBackend, @unchecked Sendable {
    let lock = NSRecursiveLock()

    public struct DirectoryFile: Codable, Sendable {
        public var policy: DevicePolicy
        public var users: [DirectoryUser]
        /// device id -> usernames associated with it.
        public var devices: [String: [String]]
        /// device id -> usernames whose association the admin removed
        /// (a reported binding no longer counts).
        public var unbound: [String: [String]]

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            policy = try c.decodeIfPresent(DevicePolicy.self, forKey: .policy) ?? DevicePolicy()
            users = try c.decodeIfPresent([DirectoryUser].self, forKey: .users) ?? []
            devices = try c.decodeIfPresent([String: [String]].self, forKey: .devices) ?? [:]
            unbound = try c.decodeIfPresent([String: [String]].self, forKey: .unbound) ?? [:]
        }
    }

    var file: DirectoryFile
    let directoryPath: String
    /// The file's change time when it was read: an edited file is read again
    /// at the next request (an invalid edit keeps the last good one).
    var fileStamp: timespec
    let reportsPath: String
    let passwordsPath: String
    /// Passwords changed through the protocol (username -> hash); they win
    /// over the file's `password_hash`.
    var passwords: [String: String] = [:]
    var reports: [BindingReport] = []
    var reportKeys: Set<String> = []

    static func read(_ directoryPath: String) throws -> DirectoryFile {
        let data = try Data(contentsOf: URL(fileURLWithPath: directoryPath))
        do {
            return try JSONDecoder().decode(DirectoryFile.self, from: data)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw DirectoryError(
                "\(directoryPath): missing key \"\(key.stringValue)\" at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw DirectoryError(
                "\(directoryPath): wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)")
        } catch {
            throw DirectoryError("\(directoryPath): not a valid directory file: \(error)")
        }
    }

    static func stamp(_ path: String) -> timespec {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mtim : timespec()
    }

    /// Reads the directory file again if it changed since it was read.
    func refresh() {
        let now = Self.stamp(directoryPath)
        guard now.tv_sec != fileStamp.tv_sec || now.tv_nsec != fileStamp.tv_nsec else { return }
        if let f = try? Self.read(directoryPath) {
            file = f
            fileStamp = now
        }
    }

    public init(directoryPath: String, stateDir: String) throws {
        self.directoryPath = directoryPath
        fileStamp = Self.stamp(directoryPath)
        file = try Self.read(directoryPath)
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        reportsPath = stateDir + "/reports.jsonl"
        passwordsPath = stateDir + "/passwords.json"
        if let data = FileManager.default.contents(atPath: passwordsPath) {
            passwords = (try? JSONDecoder().decode([String: String].self, from: data)) ?? [:]
        }
        if let text = try? String(contentsOfFile: reportsPath, encoding: .utf8) {
            var kept = ""
            for line in text.split(separator: "\n") {
                // A torn last line (crash mid-write) is dropped: it was never acked.
                guard let r = try? JSONDecoder().decode(BindingReport.self, from: Data(line.utf8)) else { continue }
                kept += line + "\n"
                if reportKeys.insert(r.key).inserted { reports.append(r) }
            }
            if kept != text {
                // Rewrite without the torn tail, so the next append starts on a line of its own.
                try writeDurably(Data(kept.utf8), to: reportsPath)
            }
        }
    }

    /// A user by username or company email, both compared case-insensitively.
    public func lookup(_ nameOrEmail: String) -> DirectoryUser? {
        lock.withLock {
            refresh()
            let lowered = nameOrEmail.lowercased()
            guard
                var user = file.users.first(where: { $0.username.lowercased() == lowered })
                    ?? file.users.first(where: { $0.email.lowercased() == lowered })
            else { return nil }
            if let h = passwords[user.username] { user.passwordHash = h }
            return user
        }
    }

    public var policy: DevicePolicy {
        lock.withLock {
            refresh()
            return file.policy
        }
    }

    /// One policy for every device (the file has no per-device policy).
    public func currentPolicy(device: String?) -> DevicePolicy { policy }

    /// Users associated with a device: by the directory file, or by a binding
    /// the device reported (until it reports an unbind or the admin lists the
    /// user under `unbound`).
    public func users(of device: String) -> [String] {
        lock.withLock {
            refresh()
            var names = file.devices[device] ?? []
            var reported: [String: Bool] = [:]
            // Without self-service only the administrators' list associates users.
            for r in reports where r.deviceID == device && file.policy.selfService { reported[r.username] = r.action != "unbind" }
            for (name, bound) in reported.sorted(by: { $0.key < $1.key }) {
                if bound && !names.contains(name) { names.append(name) }
                if !bound && !(file.devices[device] ?? []).contains(name) { names.removeAll { $0 == name } }
            }
            let removed = Set(file.unbound[device] ?? [])
            return names.filter { !removed.contains($0) }
        }
    }

    /// What the directory says about `name` on `device`; nil when there is no such user.
    public func access(user name: String, device: String) -> DeviceAccess? {
        lock.withLock {
            guard let user = lookup(name) else { return nil }
            return DeviceAccess(
                associated: users(of: device).contains(user.username),
                unbound: (file.unbound[device] ?? []).contains(user.username), disabled: user.disabled,
                selfService: file.policy.selfService)
        }
    }

    /// A user's own password change: the directory verifies `current`
    /// against the hash it holds, checks `new` against its password policy
    /// (the policy's `passcode` rules), hashes it with yescrypt, and keeps the
    /// hash durably before the change is acked. Neither password is logged
    /// or kept.
    public func changePassword(user name: String, current: String, new: String) throws -> PasswordChange {
        try lock.withLock {
            guard let user = lookup(name) else { return .refused("no such user") }
            guard user.passwordAuthority == .directory else {
                return .refused("the password of \(user.username) is not held by the directory (\(user.passwordAuthority.rawValue))")
            }
            guard !user.passwordLocked else { return .refused("the directory does not allow \(user.username) to change the password") }
            guard let stored = user.passwordHash, stored.hasPrefix("$"), fedlogin_verify_password(current, stored) != 0 else {
                return .refused("the current password is wrong")
            }
            let problems = file.policy.passcode.problems(with: new)
            guard problems.isEmpty else { return .refused("the new password is too weak: \(problems.joined(separator: "; "))") }
            var buf = [CChar](repeating: 0, count: 512)
            guard fedlogin_hash_passcode(new, &buf, buf.count) == 0 else { throw DirectoryError("libcrypt could not hash the new password") }
            var next = passwords
            next[user.username] = cText(buf)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try writeDurably(try encoder.encode(next), to: passwordsPath)
            passwords = next
            return .accepted
        }
    }

    /// Records a report durably before it is acked; a known key is a duplicate
    /// and has no second effect.
    public func record(_ report: BindingReport) throws -> Bool {
        try lock.withLock {
            if reportKeys.contains(report.key) { return true }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var line = try encoder.encode(report)
            line.append(UInt8(ascii: "\n"))
            try appendDurably(line, to: reportsPath)
            reportKeys.insert(report.key)
            reports.append(report)
            return false
        }
    }

    public func allReports() -> [BindingReport] { lock.withLock { reports } }
}

/// What answers the directory protocol's operations: the file (DirectoryStore)
/// or an LDAP directory (LDAPDirectory). A thrown error is the protocol's
/// `ok: false`, which fedlogind takes as "the directory is unavailable":
/// a backend that cannot tell whether a user exists throws, and never
/// answers "no such user" (nil). The operations are called on
/// DirectoryServer's request threads, several at once: they may block
/// (that is what those threads are for) and must be safe to call
/// concurrently.
public protocol DirectoryBackend: Sendable {
    /// A user by username or company email; nil when there is no such user.
    func lookup(_ nameOrEmail: String) throws -> DirectoryUser?
    /// The policy; for `device`, when given, its own where the backend keeps one.
    func currentPolicy(device: String?) throws -> DevicePolicy
    /// The usernames associated with a device.
    func users(of device: String) throws -> [String]
    /// What the directory says about `user` on `device`; nil when there is no such user.
    func access(user: String, device: String) throws -> DeviceAccess?
    func changePassword(user: String, current: String, new: String) throws -> PasswordChange
    /// Records a binding report; true when its key was known (no second effect).
    func record(_ report: BindingReport) throws -> Bool
    func allReports() throws -> [BindingReport]
}

public enum PasswordChange: Equatable, Sendable {
    case accepted
    case refused(String)
}

public struct DirectoryError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Sys.writeDurably with its failure as a DirectoryError, which a reply carries.
func writeDurably(_ data: Data, to path: String) throws {
    do { try Sys.writeDurably(data, to: path) } catch let e as Sys.Failure { throw DirectoryError(e.description) }
}

/// Sys.appendDurably with its failure as a DirectoryError, which a reply carries.
func appendDurably(_ data: Data, to path: String) throws {
    do { try Sys.appendDurably(data, to: path) } catch let e as Sys.Failure { throw DirectoryError(e.description) }
}
