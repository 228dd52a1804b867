import FedloginCore
import Foundation
import Testing

@testable import FedloginDaemon

/// Re-authentication in the account phase, on the fake clock: nothing
/// before it falls due, a warning in the grace, then a login that cannot
/// sign in at the IdP is refused.
struct ReauthTests {
    let day = 86400.0

    func managed(_ w: TestWorld, interval: Int, grace: Int) throws {
        w.accounts.add("bob", uid: 70001)
        w.directory.state.withLockedValue { $0.users["bob"] = DirectoryUser(username: "bob", email: "bob@example.com") }
        var a = StateStore.Account(
            username: "bob", uid: 70001, state: .active, directoryUsername: "bob", email: "bob@example.com", createdAt: "2026-01-01T00:00:00Z")
        a.passwordMode = .passcode
        a.lastSigninAt = w.clock.now()
        a.reauthInterval = interval
        a.reauthGrace = grace
        try w.runtime.state.beginProvisioning(a)
        try w.runtime.state.update(a)
    }

    func check(_ w: TestWorld, conv: (any PAMConversation)?) async -> (ResultStatus, String) {
        await w.credential.accountCheck(user: "bob", service: "sshd", peer: ScriptedConversation().peer, conv: conv)
    }

    @Test func dueWarnsInTheGraceThenALoginThatCannotSignInIsRefused() async throws {
        let w = try TestWorld(signin: "revalidate_cache = 0")
        defer { w.remove() }
        try managed(w, interval: 7, grace: 2)
        let acct = WireMessage.acctMgmt(user: "bob", service: "sshd")
        w.clock.advance(6 * day)
        let quiet = ScriptedConversation()
        #expect(await check(w, conv: quiet).0 == .success)
        #expect(quiet.shown.isEmpty)
        // In the grace: the login goes on, told; never from memory.
        w.clock.advance(1.5 * day)
        let told = ScriptedConversation()
        #expect(await check(w, conv: told).0 == .success)
        #expect(told.shown.count == 1 && told.shown[0].contains("every 7 days"))
        #expect(w.flow.answerFromMemory(acct) == nil)
        // Past it: no conversation (as for an SSH key), or one that answers nothing, is refused.
        w.clock.advance(1.5 * day)
        let (status, reason) = await check(w, conv: nil)
        #expect(status == .permissionDenied && reason == "a sign-in at the IdP is due and this login did not do it")
        let silent = ScriptedConversation()
        #expect(await check(w, conv: silent).0 == .permissionDenied)
        #expect(silent.shown.last?.contains("must sign in with the identity provider again (every 7 days)") == true)
        #expect(try w.runtime.state.account("bob")?.lockedReason == nil)  // nothing locked
    }

    @Test func aSyncTakesTheUsersIntervalFromThePolicy() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        try managed(w, interval: 0, grace: 0)
        w.directory.state.withLockedValue {
            $0.users["bob"]?.groups = ["contractors"]
            $0.policy.reauthInterval = 30
            $0.policy.reauthGroups = [ReauthRule(group: "contractors", interval: 5)]
            $0.policy.reauthGrace = 1
        }
        _ = try await Lifecycle(runtime: w.runtime).sync()
        let rec = try #require(try w.runtime.state.account("bob"))
        #expect(rec.reauthInterval == 5 && rec.reauthGrace == 1)
        #expect(rec.reauthDue == rec.lastSigninAt! + 5 * day)
    }
}
