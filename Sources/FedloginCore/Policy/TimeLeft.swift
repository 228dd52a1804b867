/// How a sign-in screen says the time left, the same way everywhere:
/// under a minute in whole seconds ("45 seconds"), from a minute on
/// rounded to the nearest whole minute ("2 minutes" for 119 or 150 s,
/// "1 minute" for 60 to 89 s), so a 120-second deadline reads "2 minutes"
/// a moment after it was set.
public enum TimeLeft {
    /// The text for the seconds left; negative or non-finite is "0 seconds".
    public static func text(seconds: Double) -> String {
        let s = seconds.isFinite ? max(0, Int(seconds.rounded(.down))) : 0
        if s < 60 { return s == 1 ? "1 second" : "\(s) seconds" }
        let m = (s + 30) / 60
        return m == 1 ? "1 minute" : "\(m) minutes"
    }

    /// The text for the time from `now` until `deadline` (seconds on one clock).
    public static func text(until deadline: Double, now: Double) -> String {
        text(seconds: deadline - now)
    }
}
