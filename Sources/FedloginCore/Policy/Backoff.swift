/// Retry spacing for binding reports: doubling from one second, capped.
public enum Backoff {
    public static func delay(afterAttempts attempts: Int, max: Double) -> Double {
        let d = 1.0 * Double(1 << Swift.min(attempts, 16))
        return Swift.min(d, max)
    }
}
