import FedloginCore
import Foundation
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
