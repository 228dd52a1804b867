import FedloginCore
import Testing

@testable import FedloginDaemon

/// Failed logins of a managed account, the lockout and its end, on a fake clock.
struct LockoutTests {
    func managed(_ w: TestWorld, maxAttempts: Int) throws {
        w.accounts.add("bob", uid: 70001)
        w.directory.state.withLockedValue { $0.users["bob"] = DirectoryUser(username: "bob", email: "bob@example.com") }
        var a = StateStore.Account(
            username: "bob", uid: 70001, state: .active, directoryUsername: "bob", email: "bob@example.com", createdAt: "2026-01-01T00:00:00Z")
        a.passwordMode = .synced
        a.lockoutMax = maxAttempts
        a.lockoutDuration = 900
        try w.runtime.state.beginProvisioning(a)
        try w.runtime.state.update(a)
    }

    @Test func theLimitLocksUntilTheDurationHasPassed() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        try managed(w, maxAttempts: 3)
        let request = PAMRequest(user: "bob", service: "login")
        for _ in 0..<2 {
            #expect(await w.credential.authFailed(request, conv: ScriptedConversation()) == (.authError, "wrong password"))
            #expect(await w.credential.accountCheck(user: "bob", service: "login", peer: ScriptedConversation().peer).0 == .success)
            // A successful check starts the count again; fail twice in a row below.
        }
        _ = await w.credential.authFailed(request, conv: ScriptedConversation())
        _ = await w.credential.authFailed(request, conv: ScriptedConversation())
        let conv = ScriptedConversation()
        _ = await w.credential.authFailed(request, conv: conv)
        #expect(conv.shown.last?.contains("is locked after too many failed attempts") == true)
        let rec = try #require(try w.runtime.state.account("bob"))
        #expect(rec.failedAttempts == 3 && rec.lockedUntil == w.clock.now() + 900)
        #expect(
            await w.credential.accountCheck(user: "bob", service: "login", peer: conv.peer) == (.permissionDenied, "locked out after failed attempts")
        )
        #expect(await w.authenticate("bob", conv: ScriptedConversation()) == (.permissionDenied, "locked out after failed attempts"))
        w.clock.advance(900)
        #expect(await w.credential.accountCheck(user: "bob", service: "login", peer: conv.peer).0 == .success)
        let cleared = try #require(try w.runtime.state.account("bob"))
        #expect(cleared.failedAttempts == 0 && cleared.lockedUntil == nil)
    }

    @Test func noPolicyNoLockout() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        try managed(w, maxAttempts: 0)
        for _ in 0..<10 { _ = await w.credential.authFailed(PAMRequest(user: "bob", service: "login"), conv: ScriptedConversation()) }
        #expect(try w.runtime.state.account("bob")?.failedAttempts == 0)
        #expect(await w.credential.accountCheck(user: "bob", service: "login", peer: ScriptedConversation().peer).0 == .success)
    }
}
