import FedloginCore
import Testing

struct SyncPlannerTests {
    let policy = DevicePolicy(adminGroups: ["it-admins"])
    let map = ["eng": "developers"]
    let existing: Set<String> = ["sudo", "developers", "docker"]

    func plan(
        _ user: DirectoryUser?, associated: Bool = true, locked: SyncLock? = nil, managed: Set<String> = [], memberOf: Set<String> = []
    ) -> SyncActions {
        SyncPlanner.plan(
            user: user, associated: associated, lockedBySync: locked, managedGroups: managed, memberOf: memberOf,
            existingGroups: existing, policy: policy, groupMap: map, adminGroup: "sudo")
    }

    func user(_ groups: [String], disabled: Bool = false) -> DirectoryUser {
        DirectoryUser(username: "alice", email: "alice@example.test", groups: groups, disabled: disabled)
    }

    @Test func disabledRemovedAndUnassociatedLock() {
        #expect(plan(user([], disabled: true)).lock == .disabled)
        #expect(plan(nil).lock == .removed)
        #expect(plan(user([]), associated: false).lock == .unassociated)
        // Already locked: no second lock, no unlock, groups wait.
        let again = plan(user([], disabled: true), locked: .disabled, managed: ["developers"], memberOf: ["developers"])
        #expect(again.lock == nil && !again.unlock && again.removeGroups.isEmpty && again.managedGroups == ["developers"])
    }

    @Test func allowedAgainUnlocks() {
        let a = plan(user([]), locked: .disabled)
        #expect(a.unlock && a.lock == nil)
    }

    @Test func onlyAllowlistedGroupsAndAdmins() {
        let a = plan(user(["eng", "docker", "sudo", "it-admins"]))
        #expect(a.addGroups == ["developers", "sudo"])
        #expect(a.managedGroups == ["developers", "sudo"])
    }

    @Test func groupsFedloginDidNotAddStay() {
        // In sudo by a local admin's doing: not fedlogin's to remove.
        let a = plan(user([]), managed: ["developers"], memberOf: ["developers", "sudo", "docker"])
        #expect(a.removeGroups == ["developers"] && a.addGroups.isEmpty && a.managedGroups.isEmpty)
    }

    @Test func missingLocalGroupsAreSkipped() {
        let p = SyncPlanner.plan(
            user: user(["eng"]), associated: true, lockedBySync: nil, managedGroups: [], memberOf: [], existingGroups: [],
            policy: policy, groupMap: map, adminGroup: "sudo")
        #expect(p.addGroups.isEmpty)
    }
}
