import FedloginCore
import Testing

@testable import FedloginDaemon

/// How each way a login ends becomes the RESULT pam_fedlogin receives.
struct ResultMappingTests {
    struct Boom: Error {}

    @Test func onlyRootMayAuthenticate() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        let (status, reason) = await w.authenticate(conv: ScriptedConversation(root: false))
        #expect(status == .permissionDenied && reason == "only root may authenticate users")
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
