import FedloginCore
import Testing

@testable import FedloginDaemon

/// A first login over the device grant, in-process: fake directory, fake
/// accounts, a fake IdP and a fake clock; every wait takes no time.
struct DeviceGrantTests {
    @Test func pendingWaitsTheIntervalAndSlowDownAddsFiveSeconds() async throws {
        let w = try TestWorld(tokenAnswers: [
            FakeIdP.error("authorization_pending"), FakeIdP.error("authorization_pending"), FakeIdP.error("slow_down"),
            FakeIdP.error("authorization_pending"), FakeIdP.error("access_denied"),
        ])
        defer { w.remove() }
        let conv = ScriptedConversation(answers: [""])
        let (status, reason) = await w.authenticate(conv: conv)
        #expect(status == .authError)
        #expect(reason == "device grant: access_denied")
        #expect(w.clock.sleeps == [5, 5, 10, 10])
        #expect(w.idp.polls == 5)
        #expect(conv.shown.contains { $0.contains("enter the code ABCD-EFGH") })
        #expect(conv.shown.last == "error: The sign-in was cancelled or denied at Test IdP.")
    }

    @Test func anExpiredCodeEndsTheSignIn() async throws {
        let w = try TestWorld(tokenAnswers: [FakeIdP.error("authorization_pending"), FakeIdP.error("expired_token")])
        defer { w.remove() }
        let conv = ScriptedConversation(answers: [""])
        let (status, reason) = await w.authenticate(conv: conv)
        #expect(status == .authError && reason == "device grant: expired_token")
        #expect(conv.shown.last == "error: The code expired before the sign-in finished. Start the login again.")
    }

    @Test func theDeadlineEndsAWaitThatNeverEnds() async throws {
        let w = try TestWorld(tokenAnswers: [FakeIdP.error("authorization_pending")], signinTimeout: 60)
        defer { w.remove() }
        let conv = ScriptedConversation(answers: [""])
        let (status, reason) = await w.authenticate(conv: conv)
        #expect(status == .authError && reason == "sign-in deadline passed")
        // 60 s of sign-in at 5 s a poll: polls at 0, 5, ... 55.
        #expect(w.idp.polls == 12)
        #expect(w.clock.sleeps.reduce(0, +) == 60)
    }

    @Test func theCodeEndsTheWaitFiveSecondsAfterItExpires() async throws {
        let w = try TestWorld(tokenAnswers: [FakeIdP.error("authorization_pending")])
        defer { w.remove() }
        w.idp.state.withLockedValue { $0.deviceStart["expires_in"] = 20 }
        let conv = ScriptedConversation(answers: [""])
        let (_, reason) = await w.authenticate(conv: conv)
        #expect(reason == "sign-in deadline passed")
        #expect(w.clock.sleeps.reduce(0, +) == 25)
        #expect(conv.shown.contains { $0.contains("You have 20 seconds.") })
    }

    @Test func slowDownNeverWaitsMoreThanSixtySeconds() async throws {
        let w = try TestWorld(
            tokenAnswers: Array(repeating: FakeIdP.error("slow_down"), count: 14) + [FakeIdP.error("access_denied")], signinTimeout: 3600)
        defer { w.remove() }
        w.idp.state.withLockedValue { $0.deviceStart["expires_in"] = 3600 }
        _ = await w.authenticate(conv: ScriptedConversation(answers: [""]))
        #expect(w.clock.sleeps.max() == 60)
        #expect(Array(w.clock.sleeps.prefix(3)) == [10, 15, 20])
    }

    @Test func anUnverifiableTokenIsRefused() async throws {
        let w = try TestWorld(tokenAnswers: [FakeIdP.error("authorization_pending"), (200, ["id_token": "not.a.token"])])
        defer { w.remove() }
        let (status, reason) = await w.authenticate(conv: ScriptedConversation(answers: [""]))
        #expect(status == .authError)
        #expect(reason.hasPrefix("ID token rejected") || reason.contains("JWKS"))
        #expect(w.clock.sleeps == [5])
    }
}
