import FedloginCore
import Foundation
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

    @Test func theCheckAtALoginLocksForSyncsReasons() {
        let allowed = DeviceAccess(associated: true, unbound: false, disabled: false, selfService: false)
        #expect(Revalidation.lock(user: user([]), access: allowed, bindingPending: false) == nil)
        #expect(Revalidation.lock(user: user([], disabled: true), access: allowed, bindingPending: false) == .disabled)
        var disabled = allowed
        disabled.disabled = true
        #expect(Revalidation.lock(user: user([]), access: disabled, bindingPending: false) == .disabled)
        #expect(Revalidation.lock(user: nil, access: nil, bindingPending: false) == .removed)
        #expect(Revalidation.lock(user: user([]), access: nil, bindingPending: false) == .removed)
        var away = allowed
        away.associated = false
        away.selfService = true  // self-service lets a first login in, not an account the directory no longer associates
        #expect(Revalidation.lock(user: user([]), access: away, bindingPending: false) == .unassociated)
        // A binding report still on its way counts as associated.
        #expect(Revalidation.lock(user: user([]), access: away, bindingPending: true) == nil)
        var unbound = away
        unbound.unbound = true
        #expect(Revalidation.lock(user: user([]), access: unbound, bindingPending: true) == .unassociated)
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

struct ReauthenticationTests {
    @Test func theStrictestIntervalOfThePolicyAndTheUsersGroupsApplies() throws {
        let policy = DevicePolicy(
            reauthInterval: 30, reauthGroups: [ReauthRule(group: "contractors", interval: 7), ReauthRule(group: "eng", interval: 60)],
            reauthGrace: 2)
        func user(_ groups: [String]) -> DirectoryUser { DirectoryUser(username: "a", email: "a@example.test", groups: groups) }
        #expect(policy.reauthInterval(for: user([])) == 30)
        #expect(policy.reauthInterval(for: user(["eng"])) == 30)  // a longer one does not loosen the policy's
        #expect(policy.reauthInterval(for: user(["eng", "contractors"])) == 7)
        #expect(DevicePolicy(reauthGroups: [ReauthRule(group: "eng", interval: 60)]).reauthInterval(for: user(["eng"])) == 60)
        #expect(DevicePolicy().reauthInterval(for: user(["eng"])) == 0)
        let decoded = try JSONDecoder().decode(
            DevicePolicy.self, from: Data(#"{"reauth_interval":14,"reauth_groups":[{"group":"g","interval":3}],"reauth_grace":-1}"#.utf8))
        #expect(decoded.reauthInterval == 14 && decoded.reauthGroups == [ReauthRule(group: "g", interval: 3)] && decoded.reauthGrace == 0)
    }

    @Test func dueThenGraceThenRequired() {
        let day = 86400.0
        let due = Reauthentication.due(lastSignIn: 1000, days: 7)
        #expect(due == 1000 + 7 * day)
        #expect(Reauthentication.due(lastSignIn: 1000, days: 0) == nil)
        #expect(Reauthentication.due(lastSignIn: nil, days: 7) == nil)
        #expect(Reauthentication.status(now: 1000 + 6 * day, due: due, graceDays: 2) == .notDue)
        #expect(Reauthentication.status(now: 1000 + 8 * day, due: due, graceDays: 2) == .grace(until: 1000 + 9 * day))
        #expect(Reauthentication.status(now: 1000 + 9 * day, due: due, graceDays: 2) == .required)
        #expect(Reauthentication.status(now: 1000 + 7 * day, due: due, graceDays: 0) == .required)
    }
}
