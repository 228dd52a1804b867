import FedloginCore
import Foundation
import Testing

@testable import FedloginDaemon

/// The check at each login of a managed account: the directory's word on
/// the user, asked within `signin.revalidate_timeout` and kept for
/// `signin.revalidate_cache`; a refusal locks the account as sync does.
struct RevalidationTests {
    func managed(_ w: TestWorld, _ name: String = "bob", uid: UInt32 = 70001) throws -> StateStore.Account {
        w.accounts.add(name, uid: uid)
        w.accounts.shadow.withLockedValue { $0[name] = ShadowLocks.Entry(passwordLocked: false, expire: nil) }
        w.directory.state.withLockedValue { $0.users[name] = DirectoryUser(username: name, email: "\(name)@example.com") }
        var a = StateStore.Account(
            username: name, uid: uid, state: .active, directoryUsername: name, email: "\(name)@example.com", createdAt: "2026-01-01T00:00:00Z")
        a.passwordMode = .passcode
        try w.runtime.state.beginProvisioning(a)
        try w.runtime.state.update(a)
        return a
    }

    func check(_ w: TestWorld, _ user: String = "bob", conv: ScriptedConversation = ScriptedConversation()) async -> (ResultStatus, String) {
        await w.credential.accountCheck(user: user, service: "sshd", peer: conv.peer, conv: conv)
    }

    func acct(_ user: String = "bob") -> WireMessage { .acctMgmt(user: user, service: "sshd") }

    func lookups(_ w: TestWorld) -> Int { w.directory.state.withLockedValue { $0.lookups } }

    @Test func aDisabledUserIsRefusedAndLockedAtOnceAsSyncLocks() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        _ = try managed(w)
        w.directory.state.withLockedValue { $0.users["bob"]?.disabled = true }
        let conv = ScriptedConversation()
        let (status, reason) = await check(w, conv: conv)
        #expect(status == .permissionDenied)
        #expect(reason.contains("disabled in the directory"))
        #expect(conv.shown == ["error: The account bob is locked: it is disabled in the directory. Ask your administrator."])
        let rec = try #require(try w.runtime.state.account("bob"))
        #expect(rec.lockedReason == SyncLock.disabled.rawValue)
        // Mirrored into /etc/shadow: password locked, account expired.
        #expect(w.accounts.shadow.withLockedValue { $0["bob"] } == ShadowLocks.Entry(passwordLocked: true, expire: 1))
        #expect(try w.runtime.state.shadowRecord("bob")?.passwordLockAdded == true)
        // The next login is refused from the lock, without asking.
        let asked = lookups(w)
        #expect(w.flow.answerFromMemory(acct()) == nil)
        #expect(await check(w).0 == .permissionDenied)
        #expect(lookups(w) == asked)
        // Sync sees its own lock and lifts it when the directory allows the user again.
        w.directory.state.withLockedValue { $0.users["bob"]?.disabled = false }
        #expect(try await Lifecycle(runtime: w.runtime).sync().unlocked == ["bob"])
        #expect(w.accounts.shadow.withLockedValue { $0["bob"] } == ShadowLocks.Entry(passwordLocked: false, expire: nil))
        #expect(await check(w).0 == .success)
    }

    @Test func aLockThatCannotBeWrittenStillRefusesTheLogin() async throws {
        struct UsermodFailed: Error {}
        let w = try TestWorld()
        defer { w.remove() }
        _ = try managed(w)
        w.accounts.lockFailure.withLockedValue { $0 = UsermodFailed() }
        w.directory.state.withLockedValue { $0.users["bob"]?.disabled = true }
        let conv = ScriptedConversation()
        #expect(await check(w, conv: conv).0 == .permissionDenied)
        #expect(conv.shown == ["error: The account bob is locked: it is disabled in the directory. Ask your administrator."])
        #expect(w.flow.answerFromMemory(acct()) == nil)
    }

    @Test func removedUnassociatedAndUnboundUsersAreRefused() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        _ = try managed(w, "gone", uid: 70002)
        w.directory.state.withLockedValue { _ = $0.users.removeValue(forKey: "gone") }
        #expect(await check(w, "gone").0 == .permissionDenied)
        #expect(try w.runtime.state.account("gone")?.lockedReason == SyncLock.removed.rawValue)

        _ = try managed(w, "far", uid: 70003)
        w.directory.state.withLockedValue { $0.access = DeviceAccess(associated: false, unbound: false, disabled: false, selfService: true) }
        let conv = ScriptedConversation()
        #expect(await check(w, "far", conv: conv).0 == .permissionDenied)
        #expect(try w.runtime.state.account("far")?.lockedReason == SyncLock.unassociated.rawValue)
        #expect(conv.shown == ["error: The account far is locked: it is no longer associated with this machine. Ask your administrator."])

        _ = try managed(w, "cut", uid: 70004)
        w.directory.state.withLockedValue { $0.access = DeviceAccess(associated: false, unbound: true, disabled: false, selfService: true) }
        let cut = ScriptedConversation()
        #expect(await check(w, "cut", conv: cut).0 == .permissionDenied)
        #expect(try w.runtime.state.account("cut")?.lockedReason == SyncLock.unassociated.rawValue)
        #expect(cut.shown == ["error: An administrator removed cut from this machine. Ask your administrator."])
    }

    @Test func aBindingStillInTheOutboxCountsAsAssociated() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        w.accounts.add("new", uid: 70005)
        w.directory.state.withLockedValue {
            $0.users["new"] = DirectoryUser(username: "new", email: "new@example.com")
            $0.access = DeviceAccess(associated: false, unbound: false, disabled: false, selfService: true)
        }
        var a = StateStore.Account(
            username: "new", uid: 70005, state: .active, directoryUsername: "new", email: "new@example.com", createdAt: "2026-01-01T00:00:00Z")
        a.passwordMode = .passcode
        try w.runtime.state.adopt(
            a, report: StateStore.OutboxItem(key: "k1", username: "new", payload: "{}", attempts: 0, nextAttempt: 0, lastError: nil, deliveredAt: nil)
        )
        #expect(await check(w, "new") == (.success, "managed account, not locked"))
        #expect(try w.runtime.state.account("new")?.lockedReason == nil)
        // Delivered, and still not associated: now it is locked.
        try w.runtime.state.markDelivered("k1", at: "2026-01-01T00:00:01Z")
        w.clock.advance(301)
        #expect(await check(w, "new").0 == .permissionDenied)
    }

    @Test func aReportDeliveredWhileTheDirectoryAnswersStillCountsAsPending() async throws {
        // The first login's binding report reaches the directory while it
        // answers `access` from what it knew before: not associated. The
        // report was pending when the directory was asked, so the login
        // goes on; the next check, asked after the delivery, decides.
        let w = try TestWorld()
        defer { w.remove() }
        w.accounts.add("new", uid: 70005)
        var a = StateStore.Account(
            username: "new", uid: 70005, state: .active, directoryUsername: "new", email: "new@example.com", createdAt: "2026-01-01T00:00:00Z")
        a.passwordMode = .passcode
        try w.runtime.state.adopt(
            a, report: StateStore.OutboxItem(key: "k1", username: "new", payload: "{}", attempts: 0, nextAttempt: 0, lastError: nil, deliveredAt: nil)
        )
        let state = w.runtime.state
        w.directory.state.withLockedValue {
            $0.users["new"] = DirectoryUser(username: "new", email: "new@example.com")
            $0.access = DeviceAccess(associated: false, unbound: false, disabled: false, selfService: true)
            $0.whileAnsweringAccess = { try state.markDelivered("k1", at: "2026-01-01T00:00:01Z") }
        }
        #expect(await check(w, "new") == (.success, "managed account, not locked"))
        #expect(try w.runtime.state.account("new")?.lockedReason == nil)
    }

    @Test func anAnswerIsKeptForRevalidateCacheAndAnsweredFromMemory() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        _ = try managed(w)
        // No answer in memory yet: the full path asks.
        #expect(w.flow.answerFromMemory(acct()) == nil)
        #expect(await check(w) == (.success, "managed account, not locked"))
        #expect(lookups(w) == 1)
        // Fresh: answered from memory with the full path's answer, the directory not asked.
        #expect(w.flow.answerFromMemory(acct())! == (.success, "managed account, not locked"))
        #expect(await check(w).0 == .success)
        #expect(lookups(w) == 1)
        // Disabled meanwhile: the kept answer holds until it is revalidate_cache old.
        w.directory.state.withLockedValue { $0.users["bob"]?.disabled = true }
        w.clock.advance(299)
        #expect(w.flow.answerFromMemory(acct()) != nil)
        w.clock.advance(1)
        #expect(w.flow.answerFromMemory(acct()) == nil)
        #expect(await check(w).0 == .permissionDenied)
        #expect(lookups(w) == 2)
    }

    @Test func aSilentDirectoryCostsTheBoundOnceAndTheLoginGoesOn() async throws {
        // The bound is real time: long enough that an answering directory
        // is never taken for a silent one on a loaded machine.
        let w = try TestWorld(signin: "revalidate_timeout = 1")
        defer { w.remove() }
        _ = try managed(w)
        w.directory.state.withLockedValue { $0.silent = true }
        // The directory never answers: the login goes on once the bound has
        // passed (without the bound this call would not return).
        #expect(await check(w) == (.success, "managed account, not locked"))
        #expect(lookups(w) == 1)
        // The silence is kept too: the next logins are answered from memory
        // and do not ask the directory again.
        #expect(w.flow.answerFromMemory(acct())! == (.success, "managed account, not locked"))
        #expect(await check(w).0 == .success)
        #expect(lookups(w) == 1)
        // revalidate_cache later it is asked again.
        w.clock.advance(300)
        #expect(w.flow.answerFromMemory(acct()) == nil)
        w.directory.state.withLockedValue {
            $0.silent = false
            $0.users["bob"]?.disabled = true
        }
        #expect(await check(w).0 == .permissionDenied)
    }

    @Test func anAnswerWithNothingToRecordTakesNoTurnOnTheAccountQueue() async throws {
        // Account changes (first logins, a sync) run one at a time; an
        // account check whose answer changes nothing (the last one less
        // than a minute ago) does not wait behind them.
        let w = try TestWorld(signin: "revalidate_cache = 0")
        defer { w.remove() }
        _ = try managed(w)
        #expect(await check(w).0 == .success)  // the first answer is recorded
        let otherLogin = DispatchSemaphore(value: 0)
        Blocking.accounts.submit { _ in otherLogin.wait() }
        defer { otherLogin.signal() }
        w.clock.advance(30)
        // A bound on a hang, not a timing.
        let result = await LocalCredential.firstOf(within: 30) { await self.check(w) }
        let (status, _) = try #require(try result?.get(), "the account check waited for another login's account change")
        #expect(status == .success)
        #expect(lookups(w) == 2)
    }

    @Test func theClientsOwnTimeoutIsReportedAsTheBound() async throws {
        // The directory client's timeout is the same bound as the wait:
        // whichever fires first, the login's log says the same.
        let w = try TestWorld(signin: "revalidate_timeout = 0.3")
        defer { w.remove() }
        let rec = try managed(w)
        w.directory.state.withLockedValue { $0.timesOut = true }
        guard case .none(let why) = await w.credential.askDirectory(about: rec) else {
            Issue.record("a directory that timed out answered")
            return
        }
        #expect(why == "no answer within 300 ms")
        w.directory.state.withLockedValue {
            $0.timesOut = false
            $0.unreachable = true
        }
        guard case .none(let refused) = await w.credential.askDirectory(about: rec) else { return }
        #expect(refused == "directory at /fake: unreachable")
    }

    @Test func anUnreachableDirectoryLetsTheLoginGoOnFromLocalState() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        _ = try managed(w)
        w.directory.state.withLockedValue {
            $0.unreachable = true
            $0.users["bob"]?.disabled = true  // it cannot say so
        }
        #expect(await check(w) == (.success, "managed account, not locked"))
        #expect(try w.runtime.state.account("bob")?.lockedReason == nil)
    }

    @Test func withNoCacheEveryLoginAsks() async throws {
        let w = try TestWorld(signin: "revalidate_cache = 0")
        defer { w.remove() }
        _ = try managed(w)
        for n in 1...3 {
            #expect(w.flow.answerFromMemory(acct()) == nil)
            #expect(await check(w).0 == .success)
            #expect(lookups(w) == n)
        }
    }

    @Test func theBoundedWaitGivesTheAnswerOrNothing() async throws {
        let answered = await LocalCredential.firstOf(within: 5) { 42 }
        #expect(try answered?.get() == 42)
        // A body that would take a minute: the bound gives up on it (the
        // call returns at all only because of the bound).
        let silent = await LocalCredential.firstOf(within: 0.02) { () async throws -> Int in
            try await Task.sleep(nanoseconds: 60_000_000_000)
            return 1
        }
        #expect(silent == nil)
    }
}
