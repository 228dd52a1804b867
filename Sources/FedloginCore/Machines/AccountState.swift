/// Where a managed account is in its life, as fedlogind's state records it.
public enum AccountState: String, Sendable, Equatable, Codable, CaseIterable {
    /// Being made: the intent is recorded, the system account may be half
    /// made; a restart undoes it.
    case provisioning
    /// Made ahead of the first sign-in (sync, `bind`), with no password
    /// yet; the first sign-in completes it.
    case pending
    /// Bound to the user's identity and in use.
    case active

    /// Whether fedlogind answers for the account's local credential
    /// (password changes, lockouts): it exists on the system and is bound
    /// or about to be.
    public var isManaged: Bool { self != .provisioning }
}
