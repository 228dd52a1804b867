import Foundation

extension Sys {
    /// Replaces a file atomically: a temporary file beside it (`PATH.tmp`,
    /// mode 0600), written whole and fsynced, renamed over `path`, then the
    /// folder fsynced. A reader sees the old file or the new one, never a
    /// part; after a crash the new one is there or the old one is.
    public static func writeDurably(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure("cannot create \(tmp): \(errnoText())") }
        let ok = writeAll(fd, data) && fsync(fd) == 0
        let saved = errno
        close(fd)
        guard ok else {
            unlink(tmp)
            throw Failure("cannot write \(path): \(errnoText(saved))")
        }
        guard rename(tmp, path) == 0 else { throw Failure("cannot write \(path): \(errnoText())") }
        syncFolder(of: path)
    }

    /// Appends bytes to a file (mode 0600 when new) and fsyncs it, and its
    /// folder when the file is new, before returning.
    public static func appendDurably(_ data: Data, to path: String) throws {
        let isNew = access(path, F_OK) != 0
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure("cannot open \(path): \(errnoText())") }
        defer {
            close(fd)
            if isNew { syncFolder(of: path) }
        }
        guard writeAll(fd, data) else { throw Failure("cannot write \(path): \(errnoText())") }
        guard fsync(fd) == 0 else { throw Failure("cannot fsync \(path): \(errnoText())") }
    }

    /// fsyncs the folder holding `path`, so a rename or a new file in it
    /// survives a crash. Best effort: a folder that cannot be opened is left.
    public static func syncFolder(of path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// Writes all of `data` to `fd`, retrying after EINTR and short writes;
    /// false (errno set) when a write fails.
    public static func writeAll(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                off += n
            }
            return true
        }
    }
}
