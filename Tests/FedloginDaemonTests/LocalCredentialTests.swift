import FedloginCore
import FedloginNIO
import Testing

@testable import FedloginDaemon

/// `LocalCredential`'s requests about an existing account: the password
/// change's preliminary pass, a wrong current passcode, the offer of a
/// reset after a wrong passcode, and fedloginctl's own passcode reset.
struct LocalCredentialTests {
    func managed(_ w: TestWorld, mode: PasswordMode, passcode: String? = nil) throws {
        w.accounts.add("bob", uid: 70001)
        if let passcode { try w.accounts.setPasswordHash(name: "bob", hash: Sys.hashPasscode(passcode)) }
        var a = StateStore.Account(
            username: "bob", uid: 70001, state: .active, directoryUsername: "bob", email: "bob@example.com", createdAt: "2026-01-01T00:00:00Z")
        a.passwordMode = mode
        try w.runtime.state.beginProvisioning(a)
        try w.runtime.state.update(a)
    }

    @Test func thePreliminaryPassIsFedloginsOnlyForItsAccounts() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        try managed(w, mode: .passcode)
        let peer = ScriptedConversation().peer
        #expect(w.credential.passwordCheck(user: "bob", peer: peer) == (.success, "fedlogin handles this password change"))
        #expect(w.credential.passwordCheck(user: "carol", peer: peer) == (.ignore, "not a fedlogin account"))
        #expect(w.credential.passwordCheck(user: "root", peer: peer) == (.ignore, "not a fedlogin account"))
    }

    @Test func aWrongCurrentPasscodeChangesNothing() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        try managed(w, mode: .passcode, passcode: "the-old-passcode-1")
        let before = try w.accounts.shadowHash("bob")
        // passwd run by bob (no process has this pid, so it is not root's): the current passcode is asked.
        let conv = ScriptedConversation(answers: ["not-the-passcode"])
        let peer = PeerCredentials(pid: Int32.max, uid: 0, gid: 0)
        let result = await w.credential.changePassword(user: "bob", service: "passwd", peer: peer, conv: conv)
        #expect(result == (.authtokError, "current password wrong"))
        #expect(conv.prompts == ["Current passcode: "])
        #expect(conv.shown.last == "error: That is not the current passcode.")
        #expect(try w.accounts.shadowHash("bob") == before)
    }

    @Test func aWrongPasscodeOffersAResetThatEnterDeclines() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        try managed(w, mode: .passcode)
        let conv = ScriptedConversation(answers: [""])
        #expect(await w.credential.authFailed(PAMRequest(user: "bob", service: "login"), conv: conv) == (.authError, "wrong passcode"))
        #expect(conv.prompts.count == 1 && conv.prompts[0].hasPrefix("Wrong passcode. Forgot it?"))
        #expect(try w.runtime.state.account("bob")?.failedAttempts == 0)
    }

    @Test func anotherUsersLoginIsNotFedloginsToJudge() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        let conv = ScriptedConversation()
        #expect(await w.credential.authFailed(PAMRequest(user: "carol", service: "login"), conv: conv) == (.ignore, "not a fedlogin account"))
        #expect(
            await w.credential.changePassword(user: "carol", service: "passwd", peer: conv.peer, conv: conv) == (.ignore, "not a fedlogin account"))
        #expect(conv.prompts.isEmpty && conv.shown.isEmpty)
    }

    @Test func anOwnPasscodeResetNeedsTheCallersManagedPasscodeAccount() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        // The caller (uid 1000) has no managed account.
        let stranger = ScriptedConversation(root: false)
        #expect(await w.credential.ownPasscodeReset(peer: stranger.peer, conv: stranger) == (.ignore, "caller uid 1000 is not a managed account"))
        #expect(stranger.shown == ["error: Your account is not one fedlogin manages, so it has no fedlogin passcode."])
        // bob's password comes from the directory.
        try managed(w, mode: .synced)
        let bob = ScriptedConversation(root: false)
        let peer = PeerCredentials(pid: bob.peer.pid, uid: 70001, gid: 70001)
        #expect(await w.credential.ownPasscodeReset(peer: peer, conv: bob) == (.authtokError, "not a passcode account"))
        #expect(bob.shown == ["error: Your password comes from the directory; change it there (or with passwd)."])
    }
}
