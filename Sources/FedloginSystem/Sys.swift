import CFedloginSys
import FedloginCore
import Foundation

/// Calls that touch the operating system, each failing with an error that
/// names the call and the reason.
public enum Sys {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }

    /// A time as ISO 8601 in UTC ("2026-11-25T21:31:33Z"), formatted in
    /// Swift (ISO8601DateFormatter would load ICU's calendar data).
    public static func iso8601(_ date: Date = Date()) -> String {
        date.formatted(.iso8601)
    }

    public static func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }

    public static func readText(_ path: String) throws -> String {
        guard let text = String(validating: try readBytes(path), as: UTF8.self) else {
            throw Failure("cannot read \(path): not UTF-8 text")
        }
        return text
    }

    /// The whole file, with plain read(2) calls.
    public static func readBytes(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure("cannot read \(path): \(errnoText())") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Failure("cannot read \(path): \(errnoText())") }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
    }

    /// A yescrypt hash of `passcode` made by libcrypt.
    public static func hashPasscode(_ passcode: String) throws -> String {
        var buf = [CChar](repeating: 0, count: 512)
        guard fedlogin_hash_passcode(passcode, &buf, buf.count) == 0 else { throw Failure("libcrypt could not hash the passcode") }
        return String(cString: buf)
    }

    /// Whether `password` matches the crypt(3) `hash`; a locked ("!") or empty hash never matches.
    public static func verifyPassword(_ password: String, hash: String) -> Bool {
        guard hash.hasPrefix("$") else { return false }
        return fedlogin_verify_password(password, hash) != 0
    }

    /// A yescrypt hash of a passcode held in a `SecretBytes`: libcrypt reads
    /// it through the buffer's pointer, so no other copy of it is made here.
    public static func hashPasscode(_ passcode: SecretBytes) throws -> String {
        var buf = [CChar](repeating: 0, count: 512)
        guard passcode.withCString({ fedlogin_hash_passcode($0, &buf, buf.count) }) == 0 else {
            throw Failure("libcrypt could not hash the passcode")
        }
        return String(cString: buf)
    }

    /// Whether the password in `password` matches the crypt(3) `hash`; a
    /// locked ("!") or empty hash never matches.
    public static func verifyPassword(_ password: SecretBytes, hash: String) -> Bool {
        guard hash.hasPrefix("$") else { return false }
        return password.withCString { fedlogin_verify_password($0, hash) } != 0
    }

    /// Whether libcrypt on this machine can verify hashes of this scheme.
    public static func hashSupported(_ hash: String) -> Bool {
        fedlogin_hash_supported(hash) != 0
    }

    /// This machine's host name (the kernel's, as hostname(1) prints it).
    public static func hostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "this machine" }
        return String(cString: buf)
    }

    /// The systemd app-specific machine id for fedlogin, if /etc/machine-id exists.
    public static func machineAppID() -> String? {
        var buf = [CChar](repeating: 0, count: 33)
        guard fedlogin_machine_app_id(&buf) == 0 else { return nil }
        return String(cString: buf)
    }

    /// Owner uid and permission bits of a file (following no links).
    public static func ownerAndMode(_ path: String) throws -> (uid: UInt32, mode: UInt32) {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw Failure("cannot stat \(path): \(errnoText())") }
        return (st.st_uid, st.st_mode & 0o7777)
    }

    public struct RunResult: Sendable {
        public var status: Int32
        public var stderr: String
        /// The program was killed by a signal (`status` is its number).
        public var signaled = false

        public init(status: Int32, stderr: String, signaled: Bool = false) {
            self.status = status
            self.stderr = stderr
            self.signaled = signaled
        }
    }

    /// Runs a program (no shell) with `input` on stdin; returns its status
    /// and stderr. posix_spawn and a blocking waitpid: the caller waits for
    /// the program, not for a polling interval. `argv0`: the name the program
    /// sees itself started under (default: `path`).
    public static func run(
        _ path: String, _ args: [String], argv0: String? = nil, input: Data? = nil, environment: [String: String]? = nil
    ) throws -> RunResult {
        var inFDs: [Int32] = [-1, -1]
        var errFDs: [Int32] = [-1, -1]
        guard fedlogin_pipe_cloexec(&inFDs) == 0 else { throw Failure("cannot run \(path): pipe: \(errnoText())") }
        guard fedlogin_pipe_cloexec(&errFDs) == 0 else {
            close(inFDs[0])
            close(inFDs[1])
            throw Failure("cannot run \(path): pipe: \(errnoText())")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inFDs[0], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, errFDs[1], 2)
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = withCStrings([argv0 ?? path] + args) { argv in
            withCStrings(env) { envp in posix_spawn(&pid, path, &actions, nil, argv, envp) }
        }
        close(inFDs[0])
        close(errFDs[1])
        guard rc == 0 else {
            close(inFDs[1])
            close(errFDs[0])
            throw Failure("cannot run \(path): \(errnoText(rc))")
        }
        if let input {
            input.withUnsafeBytes { raw in
                var off = 0
                while off < raw.count {
                    let n = write(inFDs[1], raw.baseAddress! + off, raw.count - off)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    off += n
                }
            }
        }
        close(inFDs[1])
        var err = Data()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(errFDs[0], &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            err.append(buf, count: n)
        }
        close(errFDs[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signaled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
        let code = signaled ? status & 0x7f : (status >> 8) & 0xff
        return RunResult(status: code, stderr: String(decoding: err, as: UTF8.self), signaled: signaled)
    }

    /// Calls `body` with a NULL-terminated C array of the strings.
    static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        ptrs.append(nil)
        defer { for p in ptrs { free(p) } }
        return body(ptrs)
    }
}
