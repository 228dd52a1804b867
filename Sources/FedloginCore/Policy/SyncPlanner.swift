/// What a directory sync changes on one managed account (docs/accounts.md,
/// "Directory sync"): no I/O, the daemon applies the result.

/// Why sync locked an account. Other locks (lockout, an admin) are not sync's to lift.
public enum SyncLock: String, Sendable, Equatable, CaseIterable {
    case disabled = "directory-disabled"
    case removed = "directory-removed"
    case unassociated = "unassociated"

    public var userMessage: String {
        switch self {
        case .disabled: "disabled in the directory"
        case .removed: "no longer in the directory"
        case .unassociated: "no longer associated with this machine"
        }
    }
}

public struct SyncActions: Sendable, Equatable {
    /// Lock with this reason (nil: no new lock).
    public var lock: SyncLock?
    /// Lift a lock sync set earlier.
    public var unlock: Bool
    public var addGroups: [String]
    public var removeGroups: [String]
    /// The local groups fedlogin manages for the user afterwards.
    public var managedGroups: [String]
}

public enum SyncPlanner {
    /// The local groups a directory user belongs in: the allowlisted mappings
    /// of their directory groups, and the admin group for the directory's
    /// admin groups. A directory group's own name maps to nothing.
    public static func desiredGroups(user: DirectoryUser, policy: DevicePolicy, groupMap: [String: String], adminGroup: String) -> Set<String> {
        var out = Set(user.groups.compactMap { groupMap[$0] })
        if user.groups.contains(where: policy.adminGroups.contains) { out.insert(adminGroup) }
        return out
    }

    /// - Parameters:
    ///   - user: the directory's record, nil when the directory no longer has the user.
    ///   - associated: the directory associates the user with this device (or a
    ///     binding report is still on its way to it).
    ///   - lockedBySync: the reason of a lock sync set earlier, if any.
    ///   - managedGroups: the groups fedlogin added the user to earlier.
    ///   - memberOf: the user's current local supplementary groups.
    ///   - existingGroups: the local groups that exist.
    public static func plan(
        user: DirectoryUser?, associated: Bool, lockedBySync: SyncLock?, managedGroups: Set<String>, memberOf: Set<String>,
        existingGroups: Set<String>, policy: DevicePolicy, groupMap: [String: String], adminGroup: String
    ) -> SyncActions {
        let reason: SyncLock? =
            if let user {
                user.disabled ? .disabled : (associated ? nil : .unassociated)
            } else {
                .removed
            }
        guard let user, reason == nil else {
            // Locked: the account and its data stay, group changes wait.
            return SyncActions(
                lock: lockedBySync == nil ? reason : nil, unlock: false, addGroups: [], removeGroups: [],
                managedGroups: managedGroups.sorted())
        }
        let desired = desiredGroups(user: user, policy: policy, groupMap: groupMap, adminGroup: adminGroup)
            .filter(existingGroups.contains)
        // Groups the user was in before fedlogin managed them are left alone.
        let add = desired.subtracting(memberOf)
        let remove = managedGroups.subtracting(desired).intersection(memberOf)
        let managed = managedGroups.intersection(desired).union(add)
        return SyncActions(
            lock: nil, unlock: lockedBySync != nil, addGroups: add.sorted(), removeGroups: remove.sorted(),
            managedGroups: managed.sorted())
    }
}
