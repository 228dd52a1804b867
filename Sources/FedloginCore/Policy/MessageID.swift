/// journald MESSAGE_IDs of the events an admin may want to find
/// (`journalctl MESSAGE_ID=...`). Fixed forever.
public enum MessageID {
    public static let loginSuccess = "5b1f0c9e7d2a4c43a6e1f08d3c2b7a11"
    public static let loginFailure = "c4e8a2d1f9b34e7a8d6c5b4a3f2e1d22"
    public static let accountCreated = "9a3b7c2d1e4f4a5b8c6d7e8f9a0b1c33"
    public static let bindingDelivered = "2e7f6d5c4b3a4918a7b6c5d4e3f2a144"
    public static let configReloaded = "7d1c9b8a6f5e4d3ca2b1908f7e6d5c55"
    public static let accountLocked = "e1f2a3b4c5d64e7f8a9b0c1d2e3f4a66"
    public static let passcodeReset = "3c4d5e6f7a8b4c9d8e0f1a2b3c4d5e77"
    /// A first login or passcode reset showed a device-grant code.
    public static let deviceCodeShown = "7c805ba2c7a14d2b97460dc2869d31df"
    /// The IdP's ID token passed every check.
    public static let tokenVerified = "3b3d68842f744f5f90e4fe31caabbc14"
    /// The signed-in email is the directory user's.
    public static let emailMatched = "3b8b37730e5b472ea5b603ae166d3679"
    /// A later login to a managed account passed the account check.
    public static let localLogin = "2dbe725fbb0b4ef7842b8912bdf87c0b"
    /// The account check could not ask the directory about the user in
    /// time; the login went on from local state.
    /// A login refused at the account check: the directory disabled or
    /// removed the user, or no longer associates them with this device.
    public static let loginRevoked = "241d107adc344fe8932e26540bafd463"
    /// A login went on in the grace period of a sign-in at the IdP that is due.
    public static let reauthDue = "60b2f41fd6fd4bb7a27c4a23185a4af4"
    /// A login refused: the sign-in at the IdP the policy asks for is overdue
    /// and the login did not do it.
    public static let reauthRefused = "d26b37bcd4864c20a9e14cabbb7954ce"
    /// The user signed in at the IdP again in a login's account phase.
    public static let reauthenticated = "a968a9cd05814b68b1b3e7c88a3eb2cd"
    /// A login refused: the directory has not answered about the user for
    /// the policy's `offline_max` days.
    public static let offlineWindowEnded = "6f33555bb6a74a47a4a22c15b4de1110"
    public static let revalidationUnanswered = "ae09b6878fdf49a494cda58a980ddfbc"
}
