import FedloginCore
import Foundation
import Testing

@testable import FedloginDaemon

/// The bounded offline window: the directory's `offline_max` days from the
/// last answer about the user; past it the local credential alone no longer
/// logs in. Its end is mirrored into the shadow expiry and moved on by each
/// answer. Days pass on the fake clock.
struct OfflineWindowTests {
    let day = 86400.0

    func managed(_ w: TestWorld, offlineMax: Int) throws -> StateStore.Account {
        w.accounts.add("bob", uid: 70001)
        w.accounts.shadow.withLockedValue { $0["bob"] = ShadowLocks.Entry(passwordLocked: false, expire: nil) }
        w.directory.state.withLockedValue {
            $0.users["bob"] = DirectoryUser(username: "bob", email: "bob@example.com")
            $0.policy.offlineMax = offlineMax
        }
        var a = StateStore.Account(
            username: "bob", uid: 70001, state: .active, directoryUsername: "bob", email: "bob@example.com", createdAt: "2026-01-01T00:00:00Z")
        a.passwordMode = .passcode
        a.directoryAnswered(at: w.clock.now(), offlineMax: offlineMax)
        try w.runtime.state.beginProvisioning(a)
        try w.runtime.state.update(a)
        return a
    }

    func check(_ w: TestWorld, conv: ScriptedConversation = ScriptedConversation()) async -> (ResultStatus, String) {
        await w.credential.accountCheck(user: "bob", service: "sshd", peer: conv.peer, conv: conv)
    }

    func expiry(_ w: TestWorld) -> Int? { w.accounts.shadow.withLockedValue { $0["bob"]?.expire } }

    @Test func pastOfflineMaxWithoutAnAnswerTheLocalCredentialNoLongerLogsIn() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        _ = try managed(w, offlineMax: 3)
        let start = w.clock.now()
        // An answer: the window runs 3 days from now, mirrored as the day after its end.
        #expect(await check(w).0 == .success)
        #expect(expiry(w) == OfflineWindow.expiryDay(start + 3 * day))
        // Offline for two days: the logins go on from local state.
        w.directory.state.withLockedValue { $0.unreachable = true }
        w.clock.advance(2 * day)
        #expect(await check(w).0 == .success)
        #expect(w.flow.answerFromMemory(.acctMgmt(user: "bob", service: "sshd")) != nil)  // the kept silence
        // Past the third day: refused and told to connect; nothing is locked.
        w.clock.advance(1 * day)
        #expect(w.flow.answerFromMemory(.acctMgmt(user: "bob", service: "sshd")) == nil)
        let conv = ScriptedConversation()
        #expect(await check(w, conv: conv) == (.accountExpired, "offline window ended"))
        #expect(conv.shown.count == 1 && conv.shown[0].contains("has not confirmed bob for 3 days"))
        #expect(conv.shown[0].contains("Connect it to the network"))
        #expect(try w.runtime.state.account("bob")?.lockedReason == nil)
        #expect(expiry(w) == OfflineWindow.expiryDay(start + 3 * day))
        // Connected again: the next login's answer moves the window on, in the shadow expiry too.
        w.directory.state.withLockedValue { $0.unreachable = false }
        w.clock.advance(301)  // the kept silence is revalidate_cache old
        #expect(await check(w).0 == .success)
        #expect(try w.runtime.state.account("bob")?.lastAnswerAt == w.clock.now())
        #expect(expiry(w) == OfflineWindow.expiryDay(w.clock.now() + 3 * day))
    }

    @Test func aSyncIsAnAnswerAndCarriesThePolicy() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        _ = try managed(w, offlineMax: 3)
        w.clock.advance(2 * day)
        w.directory.state.withLockedValue { $0.policy.offlineMax = 7 }
        _ = try await Lifecycle(runtime: w.runtime).sync()
        let rec = try #require(try w.runtime.state.account("bob"))
        #expect(rec.offlineMax == 7 && rec.lastAnswerAt == w.clock.now())
        #expect(expiry(w) == OfflineWindow.expiryDay(w.clock.now() + 7 * day))
        // offline_max back to 0: no window, fedlogin's expiry lifted.
        w.directory.state.withLockedValue { $0.policy.offlineMax = 0 }
        _ = try await Lifecycle(runtime: w.runtime).sync()
        #expect(try w.runtime.state.account("bob")?.offlineEnd == nil)
        #expect(expiry(w) == nil)
        w.clock.advance(400 * day)
        w.directory.state.withLockedValue { $0.unreachable = true }
        #expect(await check(w).0 == .success)
    }

    @Test func aUserTheDirectoryRefusesDoesNotMoveTheWindow() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        let a = try managed(w, offlineMax: 3)
        w.directory.state.withLockedValue { $0.users["bob"]?.disabled = true }
        w.clock.advance(day)
        #expect(await check(w).0 == .permissionDenied)
        #expect(try w.runtime.state.account("bob")?.lastAnswerAt == a.lastAnswerAt)
    }
}
