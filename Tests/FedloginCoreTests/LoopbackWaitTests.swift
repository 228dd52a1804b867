import FedloginCore
import Testing

struct LoopbackWaitTests {
    static let t0 = 1_800_000_000.0

    @Test func theFirstPromptWaitsUntilTheDeadline() {
        var m = LoopbackWait(state: "s1", deadline: Self.t0 + 300)
        #expect(m.started(now: Self.t0) == .prompt(timeout: 300))
        #expect(m.prompts == 1)
    }

    @Test func enterAwaitsTheRedirectForThreeSeconds() {
        var m = LoopbackWait(state: "s1", deadline: Self.t0 + 300)
        _ = m.started(now: Self.t0)
        #expect(m.answered("") == .awaitCallback(within: 3))
        #expect(m.answered("done") == .awaitCallback(within: LoopbackWait.callbackGrace))
    }

    @Test func theRedirectEndsTheWait() {
        var m = LoopbackWait(state: "s1", deadline: Self.t0 + 300)
        _ = m.started(now: Self.t0)
        _ = m.answered("")
        let r = AuthorizationResponse(target: "/callback?code=abc&state=s1")
        #expect(m.callbackWaited(r) == .finish(r))
        #expect(m.reminders == 0)
    }

    @Test func noRedirectRemindsAndAsksAgainWithTheTimeLeft() {
        var m = LoopbackWait(state: "s1", deadline: Self.t0 + 10)
        _ = m.started(now: Self.t0)
        _ = m.answered("")
        #expect(m.callbackWaited(nil) == .remind)
        #expect(m.reminded(now: Self.t0 + 3) == .prompt(timeout: 7))
        #expect(m.reminders == 1 && m.prompts == 2)
    }

    @Test func theDeadlineEndsTheWait() {
        var m = LoopbackWait(state: "s1", deadline: Self.t0 + 10)
        #expect(m.started(now: Self.t0 + 10) == .fail(.deadlinePassed))
        #expect(m.reminded(now: Self.t0 + 12) == .fail(.deadlinePassed))
        #expect(m.reminded(now: Self.t0 + 9.75) == .prompt(timeout: 0.25))
        #expect(m.prompts == 1)
    }

    @Test func aPastedAddressWithThisStateFinishes() {
        var m = LoopbackWait(state: "s1", deadline: Self.t0 + 300)
        let pasted = "  http://127.0.0.1:8400/callback?code=abc&state=s1\t"
        #expect(m.answered(pasted) == .finish(AuthorizationResponse(target: "http://127.0.0.1:8400/callback?code=abc&state=s1")))
        let refused = "http://127.0.0.1:8400/callback?error=access_denied&state=s1"
        #expect(m.answered(refused) == .finish(AuthorizationResponse(target: refused)))
    }

    @Test func aPastedAddressOfAnotherSignInFails() {
        var m = LoopbackWait(state: "s1", deadline: Self.t0 + 300)
        #expect(m.answered("http://127.0.0.1:8400/callback?code=abc&state=s2") == .fail(.wrongState))
        #expect(m.answered("http://127.0.0.1:8400/callback?code=abc") == .fail(.wrongState))
    }

    @Test func onlyAnAnswerWithCodeOrErrorIsAnAddress() {
        #expect(LoopbackWait.isPastedAddress("https://x/cb?code=1"))
        #expect(LoopbackWait.isPastedAddress("error=access_denied"))
        #expect(!LoopbackWait.isPastedAddress("http://127.0.0.1:8400/callback?state=s1"))
        #expect(!LoopbackWait.isPastedAddress(""))
    }
}
