import Crypto
import FedloginCore
import Foundation
import Testing

@testable import FedloginDaemon

/// Signs ID tokens with an ES256 key the fake IdP publishes.
struct TestSigner {
    let key = P256.Signing.PrivateKey()

    static func b64(_ d: Data) -> String {
        d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    var jwks: [String: Any] {
        let raw = key.publicKey.rawRepresentation
        return [
            "keys": [
                [
                    "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": Self.b64(raw.prefix(32)),
                    "y": Self.b64(raw.suffix(32)),
                ]
            ]
        ]
    }

    func token(_ claims: [String: Any]) throws -> String {
        let header = Self.b64(try JSONSerialization.data(withJSONObject: ["alg": "ES256", "typ": "JWT", "kid": "k1"]))
        let payload = Self.b64(try JSONSerialization.data(withJSONObject: claims))
        let signature = try key.signature(for: Data("\(header).\(payload)".utf8))
        return "\(header).\(payload).\(Self.b64(signature.rawRepresentation))"
    }
}

/// A whole first login in-process: device grant, a verified ID token, a
/// chosen passcode, the account made through `AccountProvisioner` and its
/// binding report delivered by the outbox.
struct FirstLoginTests {
    /// A world whose IdP answers the device grant's token requests with
    /// `before`, then alice's ID token.
    func aliceSignsIn(after before: [(Int, [String: Any])] = []) throws -> TestWorld {
        let signer = TestSigner()
        let w = try TestWorld(tokenAnswers: [])
        let now = w.clock.now()
        let token = try signer.token([
            "iss": FakeIdP.issuer, "aud": "fedlogin", "sub": "alice-sub", "email": "alice@example.com", "email_verified": true,
            "iat": now, "exp": now + 600, "name": "Alice",
        ])
        w.idp.jwks.withLockedValue { $0 = signer.jwks }
        w.idp.state.withLockedValue { $0.tokenAnswers = before + [(200, ["id_token": token])] }
        return w
    }

    @Test func aDeviceGrantFirstLoginMakesTheAccountAndQueuesItsReport() async throws {
        let w = try aliceSignsIn(after: [FakeIdP.error("authorization_pending")])
        defer { w.remove() }
        let conv = ScriptedConversation(answers: ["", "Correct-Horse9", "Correct-Horse9"])
        let (status, reason) = await w.authenticate(conv: conv)
        #expect(status == .success, "\(reason) \(conv.shown)")
        #expect(reason == "first login: account created")
        let rec = try #require(try w.runtime.state.account("alice"))
        #expect(rec.state == .active && rec.passwordMode == .passcode && rec.subject == "alice-sub")
        #expect(rec.uid == 70000)
        #expect(try w.accounts.lookup("alice")?.uid == 70000)
        #expect(try w.accounts.shadowHash("alice")?.hasPrefix("$y$") == true)
        #expect(conv.shown.last == "session: Welcome, Alice. Your account alice is ready on this machine.")
        #expect(await w.runtime.outbox.deliverDue() == 1)
        let report = try #require(w.directory.state.withLockedValue { $0.reports.first })
        #expect(report.localUsername == "alice" && report.uid == 70000 && report.passwordMode == "passcode" && report.subject == "alice-sub")
        // The account is the local credential's now.
        #expect(await w.authenticate(conv: ScriptedConversation()).0 == .ignore)
    }

    /// Many first logins at once queue their account changes one after
    /// another. A login that took a second turn on the queue after making
    /// its account (to record the sign-in) waited behind every login queued
    /// meanwhile, without a frame to the PAM module, whose per-frame timer
    /// then gave up on it. The sign-in is recorded in the login's own turn.
    @Test func theSignInIsRecordedInTheLoginsOwnTurnOnTheAccountQueue() async throws {
        let w = try aliceSignsIn()
        defer { w.remove() }
        let now = w.clock.now()
        // Another login's account change, queued while this one's account is made.
        let otherLogin = DispatchSemaphore(value: 0)
        w.accounts.whileCreating.withLockedValue { $0 = { Blocking.accounts.submit { _ in otherLogin.wait() } } }
        defer { otherLogin.signal() }
        let conv = ScriptedConversation(answers: ["", "Correct-Horse9", "Correct-Horse9"])
        // A bound on a hang, not a timing: the login must not wait for the other one.
        let result = await LocalCredential.firstOf(within: 30) { await w.authenticate(conv: conv) }
        let (status, reason) = try #require(try result?.get(), "the first login waited for another login's account change")
        #expect(status == .success, "\(reason) \(conv.shown)")
        #expect(try w.runtime.state.account("alice")?.lastSigninAt == now)
    }
}
