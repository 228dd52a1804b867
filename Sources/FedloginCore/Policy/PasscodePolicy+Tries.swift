extension PasscodePolicy {
    /// How many times a new passcode (or password) may be chosen in one login.
    public static let choiceTries = 3

    /// What follows a refused choice: " 2 tries left.", " 1 try left.", or
    /// nothing after the last (the login's end says what happens next).
    public static func triesLeftText(_ left: Int) -> String {
        left <= 0 ? "" : left == 1 ? " 1 try left." : " \(left) tries left."
    }
}
