#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A secret (a passcode, a password) held in a heap buffer fedlogin owns,
/// so it can be wiped: unlike a `String` or an `Array`, it is never copied
/// behind the code's back, and its bytes are overwritten with zeros
/// (`explicit_bzero`, which the compiler may not leave out) by `wipe()` and
/// when it is released. The bytes are followed by a NUL, so libcrypt can
/// take the buffer's pointer as a C string.
///
/// It never shows its bytes: `description` is a placeholder, so a secret
/// interpolated into a log line by mistake reveals nothing.
public final class SecretBytes: @unchecked Sendable, CustomStringConvertible {
    private let storage: UnsafeMutablePointer<UInt8>
    /// The number of bytes, without the terminating NUL.
    public let count: Int

    /// `count` bytes, all zero, that `fill` writes (the NUL after them stays).
    public init(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        precondition(count >= 0)
        self.count = count
        storage = .allocate(capacity: count + 1)
        storage.initialize(repeating: 0, count: count + 1)
        do {
            try fill(UnsafeMutableRawBufferPointer(start: storage, count: count))
        } catch {
            Self.wipe(UnsafeMutableRawBufferPointer(start: storage, count: count + 1))
            storage.deallocate()
            throw error
        }
        storage[count] = 0
    }

    /// A copy of `bytes`; the caller wipes its own.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count) { $0.copyMemory(from: bytes) }
    }

    deinit {
        Self.wipe(UnsafeMutableRawBufferPointer(start: storage, count: count + 1))
        storage.deallocate()
    }

    public var isEmpty: Bool { count == 0 }

    /// Overwrites the bytes with zeros now; the secret is then `count` NULs.
    public func wipe() {
        Self.wipe(UnsafeMutableRawBufferPointer(start: storage, count: count + 1))
    }

    /// The bytes (without the NUL), valid inside `body` only.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage, count: count))
    }

    /// The bytes as a NUL-terminated C string, valid inside `body` only.
    /// A secret never holds a NUL of its own (wire strings cannot).
    public func withCString<R>(_ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        try storage.withMemoryRebound(to: CChar.self, capacity: count + 1) { try body($0) }
    }

    /// Whether both hold the same bytes, in time that depends on the
    /// lengths only, never on where the bytes first differ.
    public func constantTimeEquals(_ other: SecretBytes) -> Bool {
        var diff: UInt8 = count == other.count ? 0 : 1
        let n = Swift.max(count, other.count)
        for i in 0..<n {
            let a = i < count ? storage[i] : 0
            let b = i < other.count ? other.storage[i] : 0
            diff |= a ^ b
        }
        return diff == 0
    }

    public var description: String { "<secret, \(count) bytes>" }

    /// Overwrites memory with zeros in a way the optimiser keeps, also right
    /// before the memory is freed.
    public static func wipe(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        explicit_bzero(base, bytes.count)
    }
}
