/// What the directory's answer about a managed account's user means for a
/// login of the account (docs/accounts.md, "The check at each login"): the
/// same reasons a directory sync locks the account for (`SyncPlanner`), so
/// a lock set at a login is one sync keeps, and lifts, as its own.
public enum Revalidation {
    /// The lock the answer calls for, nil when the login may go on.
    /// - Parameters:
    ///   - user: `lookup`'s answer; nil when the directory has no such user.
    ///   - access: `access`'s answer for the user on this device; nil when it found no such user.
    ///   - bindingPending: a binding report of the account is still in the
    ///     outbox: it counts as associated (the directory has not heard of it yet).
    public static func lock(user: DirectoryUser?, access: DeviceAccess?, bindingPending: Bool) -> SyncLock? {
        guard let user, let access else { return .removed }
        if user.disabled || access.disabled { return .disabled }
        // An administrator removed the user from the device: sync no longer
        // finds the user among the device's users either.
        if access.unbound { return .unassociated }
        if !access.associated && !bindingPending { return .unassociated }
        return nil
    }
}
