/// The bounded offline window (docs/accounts.md, "The offline window"): the
/// directory's `offline_max` days counted from fedlogind's last answer of
/// the directory about a user. Past its end the local credential alone no
/// longer logs in; the end is mirrored into /etc/shadow's account expiry so
/// pam_unix enforces it with fedlogind stopped.
public enum OfflineWindow {
    /// When the window ends; nil: no limit (`offline_max` 0, or no answer recorded yet).
    public static func end(lastAnswer: Double?, days: Int) -> Double? {
        guard days > 0, let lastAnswer else { return nil }
        return lastAnswer + Double(days) * 86400
    }

    /// The shadow expiry day that mirrors an end: the day after the end's
    /// day (UTC), as pam_unix refuses an account from its expiry day on.
    public static func expiryDay(_ end: Double) -> Int { Int((end / 86400).rounded(.down)) + 1 }

    /// What the person at the login prompt is told once the window has ended.
    public static func userMessage(user: String, days: Int) -> String {
        "The directory has not confirmed \(user) for \(days) day\(days == 1 ? "" : "s"), the longest this machine may stay offline. Connect it to the network (the company network or its VPN) and log in again."
    }
}
