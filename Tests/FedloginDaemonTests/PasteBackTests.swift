import FedloginCore
import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import FedloginDaemon

/// The loopback sign-in when the browser cannot come back: the user pastes
/// the address it ended on. The listener is a real one on 127.0.0.1 (no root).
struct PasteBackTests {
    /// The `state` of the authorization address the conversation showed.
    static func state(in shown: [String]) -> String? {
        guard let text = shown.last(where: { $0.contains("Open this address") }),
            let range = text.range(of: #"[?&]state=[^&\s]+"#, options: .regularExpression)
        else { return nil }
        return String(text[range].split(separator: "=", maxSplits: 1)[1])
    }

    func world() throws -> TestWorld {
        try TestWorld(tokenAnswers: [(200, ["id_token": "not.a.token"])], flows: "\"loopback\"")
    }

    @Test func aPastedAddressWithTheRightStateIsExchanged() async throws {
        let w = try world()
        defer { w.remove() }
        let conv = ScriptedConversation()
        conv.reply = { shown in Self.state(in: shown).map { "http://127.0.0.1:1/callback?code=abc&state=\($0)" } }
        let (status, reason) = await w.authenticate(service: "login", conv: conv)
        // The code went to the token endpoint; its answer is not a valid ID token.
        #expect(w.idp.polls == 1)
        #expect(status == .authError && reason.hasPrefix("ID token rejected"))
    }

    @Test func aPastedAddressOfAnotherSignInIsRefused() async throws {
        let w = try world()
        defer { w.remove() }
        let conv = ScriptedConversation(answers: ["http://127.0.0.1:1/callback?code=abc&state=someone-else"])
        let (status, reason) = await w.authenticate(service: "login", conv: conv)
        #expect(status == .authError && reason == "pasted address with a wrong state")
        #expect(w.idp.polls == 0)
    }

    @Test func aPastedErrorIsTheIdPsRefusal() async throws {
        let w = try world()
        defer { w.remove() }
        let conv = ScriptedConversation()
        conv.reply = { shown in Self.state(in: shown).map { "http://127.0.0.1:1/callback?error=access_denied&state=\($0)" } }
        let (status, reason) = await w.authenticate(service: "login", conv: conv)
        #expect(status == .authError && reason == "authorization error from the IdP: access_denied")
        #expect(conv.shown.last == "error: The sign-in was cancelled or denied at Test IdP.")
    }
}

/// The loopback wait after the address is shown (`LoopbackWait` and its
/// shell `SignIn.waitForResponse`): Enter, the redirect, reminders and the
/// deadline, on the fake clock. The redirect is delivered to the runtime's
/// callback registry as the listener's handler does.
struct LoopbackWaitShellTests {
    func world(signinTimeout: Int = 300) throws -> TestWorld {
        try TestWorld(tokenAnswers: [(200, ["id_token": "not.a.token"])], signinTimeout: signinTimeout, flows: "\"loopback\"")
    }

    static let reminder = "error: The sign-in has not finished yet. Finish it in the browser, then press Enter."

    /// Delivers the redirect of the sign-in the conversation shows.
    static func redirect(_ w: TestWorld, _ shown: [String], query: String = "code=abc") -> Bool {
        guard let state = PasteBackTests.state(in: shown) else { return false }
        return w.runtime.callbacks.deliver(AuthorizationResponse(target: "/callback?\(query)&state=\(state)"))
    }

    @Test func enterWithoutARedirectRemindsUntilTheDeadline() async throws {
        let w = try world(signinTimeout: 10)
        defer { w.remove() }
        let conv = ScriptedConversation()
        conv.reply = { _ in "" }
        let (status, reason) = await w.authenticate(service: "login", conv: conv)
        #expect(status == .authError && reason == "sign-in timed out")
        // Each Enter waits 3 s for the redirect; each prompt waits what is left of the 10 s.
        #expect(w.clock.sleeps == [3, 3, 3, 3])
        #expect(conv.timeouts == [10, 7, 4, 1])
        #expect(conv.shown.filter { $0 == Self.reminder }.count == 4)
        #expect(conv.shown.last == "error: The sign-in took too long. Start the login again.")
        #expect(w.idp.polls == 0)
    }

    @Test func aRedirectBeforeEnterIsTakenWithoutWaiting() async throws {
        let w = try world()
        defer { w.remove() }
        let conv = ScriptedConversation()
        conv.reply = { shown in Self.redirect(w, shown) ? "" : nil }
        let (status, reason) = await w.authenticate(service: "login", conv: conv)
        // The code went to the token endpoint; its answer is not a valid ID token.
        #expect(status == .authError && reason.hasPrefix("ID token rejected"))
        #expect(w.idp.polls == 1)
        #expect(w.clock.sleeps.isEmpty)
        #expect(!conv.shown.contains(Self.reminder))
    }

    @Test func aRedirectAfterAReminderEndsTheWait() async throws {
        let w = try world()
        defer { w.remove() }
        let conv = ScriptedConversation()
        conv.reply = { shown in
            guard shown.contains(Self.reminder) else { return "" }
            return Self.redirect(w, shown, query: "error=access_denied") ? "" : nil
        }
        let (status, reason) = await w.authenticate(service: "login", conv: conv)
        #expect(status == .authError && reason == "authorization error from the IdP: access_denied")
        #expect(w.clock.sleeps == [3])
        #expect(conv.timeouts == [300, 297])
        #expect(conv.shown.filter { $0 == Self.reminder }.count == 1)
        #expect(w.idp.polls == 0)
    }

    @Test func anAddressPastedAfterAReminderIsExchanged() async throws {
        let w = try world()
        defer { w.remove() }
        let conv = ScriptedConversation()
        conv.reply = { shown in
            guard shown.contains(Self.reminder), let state = PasteBackTests.state(in: shown) else { return "" }
            return " http://127.0.0.1:1/callback?code=abc&state=\(state) "
        }
        let (status, reason) = await w.authenticate(service: "login", conv: conv)
        #expect(status == .authError && reason.hasPrefix("ID token rejected"))
        #expect(w.idp.polls == 1)
        #expect(w.clock.sleeps == [3])
    }

    @Test func theStateIsForgottenOnceTheSignInHasItsResponse() async throws {
        let w = try world()
        defer { w.remove() }
        let conv = ScriptedConversation()
        let stateBox = NIOLockedValueBox<String?>(nil)
        conv.reply = { shown in
            guard let state = PasteBackTests.state(in: shown) else { return nil }
            stateBox.withLockedValue { $0 = state }
            return "http://127.0.0.1:1/callback?code=abc&state=\(state)"
        }
        _ = await w.authenticate(service: "login", conv: conv)
        let state = try #require(stateBox.withLockedValue { $0 })
        // A redirect after the pasted address gets the listener's error page.
        #expect(!w.runtime.callbacks.deliver(AuthorizationResponse(target: "/callback?code=late&state=\(state)")))
    }
}

/// `CallbackRegistry.wait`: woken by the redirect's delivery, not by polling.
struct CallbackRegistryTests {
    /// A clock whose sleep lasts an hour of real time (until cancelled).
    struct SlowClock: WallClock {
        func now() -> Double { 0 }
        func sleep(seconds: Double) async throws { try await Task.sleep(for: .seconds(3600)) }
    }

    @Test func aDeliveryWakesTheWaitAtOnce() async throws {
        let registry = CallbackRegistry()
        registry.register(state: "s1")
        let started = ContinuousClock.now
        async let got = registry.wait(state: "s1", within: 3600, clock: SlowClock())
        try await Task.sleep(for: .milliseconds(20))
        #expect(registry.deliver(AuthorizationResponse(target: "/callback?code=abc&state=s1")))
        #expect(await got?.code == "abc")
        #expect(ContinuousClock.now - started < .seconds(5))
        // Single use.
        #expect(!registry.deliver(AuthorizationResponse(target: "/callback?code=again&state=s1")))
        #expect(registry.take(state: "s1") == nil)
    }

    @Test func aCallbackThatCameFirstIsTakenWithoutWaiting() async {
        let registry = CallbackRegistry()
        registry.register(state: "s1")
        #expect(registry.deliver(AuthorizationResponse(target: "/callback?code=abc&state=s1")))
        #expect(await registry.wait(state: "s1", within: 3600, clock: SlowClock())?.code == "abc")
    }

    @Test func theWaitEndsOnItsClock() async {
        let registry = CallbackRegistry()
        registry.register(state: "s1")
        let clock = FakeClock()
        #expect(await registry.wait(state: "s1", within: 3, clock: clock) == nil)
        #expect(clock.sleeps == [3])
        // A redirect after the wait is still taken by the next one.
        #expect(registry.deliver(AuthorizationResponse(target: "/callback?code=abc&state=s1")))
        #expect(await registry.wait(state: "s1", within: 3, clock: clock)?.code == "abc")
    }

    @Test func unregisteringOrCancellingEndsTheWait() async throws {
        let registry = CallbackRegistry()
        registry.register(state: "s1")
        async let ended = registry.wait(state: "s1", within: 3600, clock: SlowClock())
        try await Task.sleep(for: .milliseconds(20))
        registry.unregister(state: "s1")
        #expect(await ended == nil)
        registry.register(state: "s2")
        let waiting = Task { await registry.wait(state: "s2", within: 3600, clock: SlowClock()) }
        try await Task.sleep(for: .milliseconds(20))
        waiting.cancel()
        #expect(await waiting.value == nil)
        // The state still waits for its redirect.
        #expect(registry.deliver(AuthorizationResponse(target: "/callback?code=abc&state=s2")))
    }

    @Test func anUnknownStateIsRefused() {
        let registry = CallbackRegistry()
        #expect(!registry.deliver(AuthorizationResponse(target: "/callback?code=abc&state=nobody")))
        #expect(!registry.deliver(AuthorizationResponse(target: "/callback?code=abc")))
    }
}
