import CFedloginSys
import Foundation

/// Calls that touch the operating system, each failing with an error that
/// names the call and the reason.
public enum Sys {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }

    public static func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }

    public static func readText(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure("cannot read \(path): \(errnoText())") }
        close(fd)
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Failure("cannot read \(path): not UTF-8 text")
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

    /// Whether libcrypt on this machine can verify hashes of this scheme.
    public static func hashSupported(_ hash: String) -> Bool {
        fedlogin_hash_supported(hash) != 0
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
    }

    /// Runs a program (no shell) with `input` on stdin; returns its status and stderr.
    public static func run(_ path: String, _ args: [String], input: Data? = nil, environment: [String: String]? = nil) throws -> RunResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        if let environment { p.environment = environment }
        let errPipe = Pipe()
        let inPipe = Pipe()
        p.standardError = errPipe
        p.standardOutput = FileHandle.nullDevice
        p.standardInput = inPipe
        do {
            try p.run()
        } catch {
            throw Failure("cannot run \(path): \(error)")
        }
        if let input { inPipe.fileHandleForWriting.write(input) }
        try? inPipe.fileHandleForWriting.close()
        let err = errPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return RunResult(
            status: p.terminationStatus, stderr: String(decoding: err, as: UTF8.self), signaled: p.terminationReason == .uncaughtSignal)
    }
}
