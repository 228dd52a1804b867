import FedloginCore
import Foundation

/// The real clock: `Date()` and `Task.sleep`.
public struct SystemClock: WallClock {
    public init() {}

    public func now() -> Double { Date().timeIntervalSince1970 }

    public func sleep(seconds: Double) async throws {
        guard seconds.isFinite, seconds > 0 else { return try Task.checkCancellation() }
        try await Task.sleep(nanoseconds: UInt64(min(seconds, 1e9) * 1e9))
    }
}
