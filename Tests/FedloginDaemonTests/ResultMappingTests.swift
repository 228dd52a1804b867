import FedloginCore
import Testing

@testable import FedloginDaemon

/// How each way a login ends becomes the RESULT pam_fedlogin receives.
struct ResultMappingTests {
    struct Boom: Error {}

    @Test func onlyRootMaySendPAMRequests() {
        let user = ScriptedConversation(root: false).peer
        let root = ScriptedConversation().peer
        let pam = PAMRequest(user: "alice", service: "login")
        let refused: [(WireMessage, String)] = [
            (.authenticate(pam), "only root may authenticate users"), (.authFailed(pam), "only root may report failed logins"),
            (.acctMgmt(user: "alice", service: "login"), "only root may ask"), (.chauthtok(user: "alice", service: "passwd"), "only root may ask"),
            (.chauthtokPrelim(user: "alice", service: "passwd"), "only root may ask"),
        ]
        for (request, refusal) in refused {
            #expect(RequestAccess.refusal(of: request, peer: user)?.refusal == refusal)
            #expect(RequestAccess.refusal(of: request, peer: root) == nil)
        }
        for request: WireMessage in [.passcodeReset, .nssGetpwnam("alice"), .nssGetpwuid(70000), .nssGetgrnam("alice"), .nssGetgrgid(70000)] {
            #expect(RequestAccess.refusal(of: request, peer: user) == nil)
        }
        #expect(RequestAccess.of(.result) == .notARequest)
        #expect(RequestAccess.of(.control) == .anyone)
    }

    @Test func aStopIsItsStatusExceptUnavailableAfterAFailedPassword() {
        let stop = LoginFlow.Stop(status: .unavailable, userMessage: nil, reason: "directory down")
        #expect(LoginFlow.result(of: stop, .login) == (.unavailable, "directory down"))
        #expect(LoginFlow.result(of: stop, .failedLogin) == (.authError, "directory down"))
        #expect(LoginFlow.result(of: stop, .passwordChange) == (.unavailable, "directory down"))
        let denied = LoginFlow.Stop(status: .permissionDenied, userMessage: nil, reason: "locked")
        for ending in [LoginFlow.Ending.login, .failedLogin, .passwordChange, .ownPasscodeReset] {
            #expect(LoginFlow.result(of: denied, ending) == (.permissionDenied, "locked"))
        }
    }

    @Test func endedConversationsAndInternalErrorsPerRequestKind() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        let log = w.runtime.logger
        let ended = Conversation.Ended(description: "the PAM client went away")
        let cases: [(LoginFlow.Ending, ResultStatus, ResultStatus, Bool)] = [
            (.login, .authError, .unavailable, true), (.failedLogin, .authError, .authError, false),
            (.passwordChange, .authtokError, .authtokError, true), (.ownPasscodeReset, .authError, .authError, false),
        ]
        for (ending, endedStatus, internalStatus, tellsUser) in cases {
            let conv = ScriptedConversation()
            #expect(await w.flow.result(after: ended, ending, conv: conv, log: log) == (endedStatus, "the PAM client went away"))
            #expect(await w.flow.result(after: Boom(), ending, conv: conv, log: log) == (internalStatus, "internal error"))
            #expect(conv.shown.count == (tellsUser ? 1 : 0))
        }
    }

    @Test func rootIsNotOursUnsafeNamesAndStrangersAreUnknown() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        #expect(await w.authenticate("root", conv: ScriptedConversation()).0 == .ignore)
        #expect(await w.authenticate("al\nice", conv: ScriptedConversation()) == (.userUnknown, "user name with control characters"))
        let conv = ScriptedConversation()
        #expect(await w.authenticate("mallory", conv: conv).0 == .userUnknown)
        #expect(conv.shown == ["error: mallory is not known to the directory. Check the username, or ask your administrator."])
    }

    @Test func anUnreachableDirectoryIsUnavailable() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        w.directory.state.withLockedValue { $0.unreachable = true }
        let conv = ScriptedConversation()
        let (status, reason) = await w.authenticate(conv: conv)
        #expect(status == .unavailable)
        #expect(reason.contains("unreachable"))
        #expect(conv.shown == ["error: The directory cannot be reached, and a first login on this machine needs it. Try again later."])
    }

    @Test func aDeviceTheDirectoryRefusesIsPermissionDenied() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        w.directory.state.withLockedValue { $0.access = DeviceAccess(associated: false, unbound: false, disabled: true, selfService: true) }
        #expect(await w.authenticate(conv: ScriptedConversation()).0 == .permissionDenied)
    }

    @Test func aConversationThatEndsIsAuthError() async throws {
        let w = try TestWorld(tokenAnswers: [FakeIdP.error("authorization_pending")])
        defer { w.remove() }
        // No answer to "press Enter": the conversation ends.
        let (status, reason) = await w.authenticate(conv: ScriptedConversation(answers: []))
        #expect(status == .authError && reason.hasPrefix("no answer within"))
    }

    @Test func anInternalErrorIsUnavailable() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        w.accounts.failure.withLockedValue { $0 = Boom() }
        let conv = ScriptedConversation()
        #expect(await w.authenticate(conv: conv) == (.unavailable, "internal error"))
        #expect(conv.shown.count == 1 && conv.shown[0].hasPrefix("error: The login could not be completed because of an internal error."))
    }
}
