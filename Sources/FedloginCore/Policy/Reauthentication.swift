/// Re-authentication at the IdP every `reauth_interval` days (docs/accounts.md,
/// "Re-authentication"): due that long after the user's last sign-in; for
/// `reauth_grace` days more the logins go on with a warning; then a login
/// needs a sign-in at the IdP in its account phase.
public enum Reauthentication {
    public enum Status: Sendable, Equatable {
        case notDue
        /// Due; logins go on with a warning until `until`.
        case grace(until: Double)
        /// This login needs a sign-in at the IdP.
        case required
    }

    /// When the next sign-in falls due; nil: never (no interval, or no sign-in recorded).
    public static func due(lastSignIn: Double?, days: Int) -> Double? {
        guard days > 0, let lastSignIn else { return nil }
        return lastSignIn + Double(days) * 86400
    }

    public static func status(now: Double, due: Double?, graceDays: Int) -> Status {
        guard let due, now >= due else { return .notDue }
        let end = due + Double(max(0, graceDays)) * 86400
        return now < end ? .grace(until: end) : .required
    }
}
