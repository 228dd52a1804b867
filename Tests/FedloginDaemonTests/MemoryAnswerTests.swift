import FedloginCore
import Foundation
import Testing

@testable import FedloginDaemon

/// The login steps answered from memory on the event loop give the full
/// path's answer, and leave to it everything that needs more than memory.
struct MemoryAnswerTests {
    func managed(_ w: TestWorld, _ name: String = "bob", uid: UInt32 = 70001, maxAttempts: Int = 3) throws -> StateStore.Account {
        w.accounts.add(name, uid: uid)
        w.directory.state.withLockedValue { $0.users[name] = DirectoryUser(username: name, email: "\(name)@example.com") }
        var a = StateStore.Account(
            username: name, uid: uid, state: .active, directoryUsername: name, email: "\(name)@example.com", createdAt: "2026-01-01T00:00:00Z")
        a.passwordMode = .passcode
        a.lockoutMax = maxAttempts
        try w.runtime.state.beginProvisioning(a)
        try w.runtime.state.update(a)
        return a
    }

    func authenticate(_ user: String) -> WireMessage { .authenticate(PAMRequest(user: user, service: "login")) }
    func acct(_ user: String) -> WireMessage { .acctMgmt(user: user, service: "login") }

    @Test func anActiveAccountIsAnsweredAsTheFullPathAnswersIt() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        _ = try managed(w)
        #expect(w.flow.answerFromMemory(authenticate("bob"))! == (.ignore, "fedlogin account: the local credential decides"))
        #expect(await w.authenticate("bob", conv: ScriptedConversation()) == (.ignore, "fedlogin account: the local credential decides"))
        // The account check asks the directory about the user first
        // (`LocalCredential.revalidate`); its answer, kept in memory, lets
        // the next ones be answered from memory.
        #expect(w.flow.answerFromMemory(acct("bob")) == nil)
        #expect(
            await w.credential.accountCheck(user: "bob", service: "login", peer: ScriptedConversation().peer) == (
                .success, "managed account, not locked"
            ))
        #expect(w.flow.answerFromMemory(acct("bob"))! == (.success, "managed account, not locked"))
        #expect(w.flow.answerFromMemory(authenticate("root"))! == (.ignore, "root is never a fedlogin account"))
        // Local accounts fedlogin does not manage.
        w.accounts.add("admin", uid: 1500)
        w.accounts.add("daemonuser", uid: 12)
        for name in ["admin", "daemonuser"] {
            let full = await w.authenticate(name, conv: ScriptedConversation())
            #expect(full.0 == .ignore)
            #expect(w.flow.answerFromMemory(authenticate(name))! == full)
        }
        #expect(w.flow.answerFromMemory(authenticate("nobody-here")) == nil)  // a first login, perhaps
        #expect(w.flow.answerFromMemory(acct("someone-local"))! == (.ignore, "no fedlogin account policy applies"))
        #expect(await w.credential.accountCheck(user: "someone-local", service: "login", peer: ScriptedConversation().peer).0 == .ignore)
    }

    @Test func everyWriteReachesMemoryAtOnce() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        let request = PAMRequest(user: "bob", service: "login")
        _ = try managed(w)
        // A failed attempt to clear: the account check goes the full way, which clears it.
        _ = await w.credential.authFailed(request, conv: ScriptedConversation())
        #expect(w.flow.answerFromMemory(acct("bob")) == nil)
        #expect(w.flow.answerFromMemory(authenticate("bob")) != nil)
        #expect(await w.credential.accountCheck(user: "bob", service: "login", peer: ScriptedConversation().peer).0 == .success)
        #expect(w.flow.answerFromMemory(acct("bob")) != nil)
        // Locked out: neither step is answered from memory; when it has run out, the full path clears it.
        for _ in 0..<3 { _ = await w.credential.authFailed(request, conv: ScriptedConversation()) }
        #expect(w.flow.answerFromMemory(authenticate("bob")) == nil)
        #expect(w.flow.answerFromMemory(acct("bob")) == nil)
        w.clock.advance(900)
        #expect(w.flow.answerFromMemory(authenticate("bob")) != nil)
        #expect(w.flow.answerFromMemory(acct("bob")) == nil)
        // Locked by sync, then forgotten: the memory follows each write.
        var rec = try #require(try w.runtime.state.account("bob"))
        rec.lockedReason = SyncLock.disabled.rawValue
        try w.runtime.state.update(rec)
        #expect(w.flow.answerFromMemory(authenticate("bob")) == nil)
        try w.runtime.state.forget("bob")
        #expect(w.runtime.state.cachedAccount("bob") == nil)
        #expect(w.flow.answerFromMemory(acct("bob"))! == (.ignore, "no fedlogin account policy applies"))
    }

    @Test func anAccountNotAsFedloginMadeItGoesTheFullWay() throws {
        let w = try TestWorld()
        defer { w.remove() }
        _ = try managed(w)
        try w.accounts.delete(name: "bob")  // removed by hand
        #expect(w.flow.answerFromMemory(authenticate("bob")) == nil)
        w.accounts.add("bob", uid: 5000)  // another account under the name
        #expect(w.flow.answerFromMemory(authenticate("bob")) == nil)
        var pending = try managed(w, "carol", uid: 70002)
        pending.state = .pending
        try w.runtime.state.update(pending)
        #expect(w.flow.answerFromMemory(authenticate("carol")) == nil)
        #expect(w.flow.answerFromMemory(acct("carol")) == nil)
        #expect(w.flow.answerFromMemory(.nssGetpwnam("bob")) == nil)
    }

    @Test func theMemoryIsTheDatabaseAfterARestart() throws {
        let w = try TestWorld()
        defer { w.remove() }
        let a = try managed(w)
        let reopened = try StateStore(directory: w.runtime.config.stateDir)
        #expect(reopened.cachedAccount("bob") == a)
    }

    @Test func thePasswdFileIsReadAgainWhenItChanges() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("passwd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let accounts = ShadowAccounts(root: root)
        let path = root + "/etc/passwd"
        try "bob:x:70001:70001::/home/bob:/bin/bash\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try accounts.lookup("bob")?.uid == 70001)
        // Replaced, as shadow-utils do.
        try "bob:x:70002:70002::/home/bob:/bin/bash\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try accounts.lookup("bob")?.uid == 70002)
        // Edited in place to the same size.
        let h = try #require(FileHandle(forWritingAtPath: path))
        try h.write(contentsOf: Data("ann".utf8))
        try h.close()
        #expect(try accounts.lookup("bob") == nil)
        #expect(try accounts.lookup("ann")?.uid == 70002)
    }
}
