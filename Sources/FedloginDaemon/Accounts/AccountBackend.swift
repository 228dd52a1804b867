import FedloginCore

/// What fedlogind does to local accounts: `ShadowAccounts` (the passwd and
/// shadow files, shadow-utils) in production; an in-memory table in the
/// daemon's in-process tests.
protocol AccountBackend: Sendable {
    func passwd() throws -> [ShadowAccounts.PasswdLine]
    func lookup(_ name: String) throws -> LocalAccount?
    func uidInUse(_ uid: UInt32) throws -> Bool
    /// UID_MIN of the system (login.defs).
    func uidMin() -> UInt32
    func freeUID(in range: ClosedRange<UInt32>, reserved: Set<UInt32>) throws -> UInt32?
    func create(name: String, uid: UInt32, gecos: String, shell: String, homeRoot: String, groups: [String]) throws
    func existingGroups() -> Set<String>
    func setPasswordHash(name: String, hash: String) throws
    func delete(name: String) throws
    func shadowHash(_ name: String) throws -> String?
    func groups(of name: String) -> Set<String>
    func addToGroup(name: String, group: String) throws
    func removeFromGroup(name: String, group: String) throws
    func groupID(_ name: String) -> UInt32?
    func deleteGroup(name: String) throws
    /// The fields of the user's shadow entry that lock the account.
    func lockEntry(_ name: String) throws -> ShadowLocks.Entry?
    /// Sets the account's expiry day (days since 1970-01-01); nil: never.
    func setExpiry(name: String, day: Int?) throws
    func lockPassword(name: String) throws
    func unlockPassword(name: String) throws
}

extension ShadowAccounts: AccountBackend {}
