/// The daemon's one view of time: the wall clock in seconds since 1970 and
/// a sleep. fedlogind passes `SystemClock` (FedloginDaemon); tests pass a
/// clock whose sleep advances its own time at once, so a timer of minutes
/// runs in microseconds.
public protocol WallClock: Sendable {
    /// Seconds since 1970-01-01 UTC.
    func now() -> Double
    /// Waits `seconds` (at least zero); throws when the task is cancelled.
    func sleep(seconds: Double) async throws
}
