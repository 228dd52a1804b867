import FedloginCore
import Testing

struct ShadowLocksTests {
    typealias E = ShadowLocks.Entry

    /// Applies a plan to an entry, as shadow-utils would.
    func apply(_ p: ShadowLocks.Plan, to e: E) -> E {
        var e = e
        if let x = p.setExpire { e.expire = x }
        if p.lockPassword { e.passwordLocked = true }
        if p.unlockPassword { e.passwordLocked = false }
        return e
    }

    @Test func lockoutExpiresTheAccountAndLiftingRestoresIt() {
        let clean = E(passwordLocked: false, expire: nil)
        let lock = ShadowLocks.plan(entry: clean, record: nil, reasons: [.lockout])
        #expect(lock.setExpire == .some(1) && !lock.lockPassword)
        let locked = apply(lock, to: clean)
        let lift = ShadowLocks.plan(entry: locked, record: lock.record, reasons: [])
        #expect(lift.setExpire == .some(nil) && lift.record == nil)
        #expect(apply(lift, to: locked) == clean)
    }

    @Test func theOfflineWindowsEndIsAnExpiryMovedOnAndLiftedAsFedloginsOwn() {
        let clean = E(passwordLocked: false, expire: nil)
        let first = ShadowLocks.plan(entry: clean, record: nil, reasons: [], offlineUntil: 20_010)
        #expect(first.setExpire == .some(20_010) && !first.lockPassword)
        #expect(first.record?.reasons == [.offline] && first.record?.written == 20_010)
        var e = apply(first, to: clean)
        // Moved on after an answer.
        let moved = ShadowLocks.plan(entry: e, record: first.record, reasons: [], offlineUntil: 20_012)
        #expect(moved.setExpire == .some(20_012))
        e = apply(moved, to: e)
        // A lock meanwhile expires the account now; its end brings the window back.
        let locked = ShadowLocks.plan(entry: e, record: moved.record, reasons: [.lockout], offlineUntil: 20_012)
        #expect(locked.setExpire == .some(1))
        let unlocked = ShadowLocks.plan(entry: apply(locked, to: e), record: locked.record, reasons: [], offlineUntil: 20_012)
        #expect(unlocked.setExpire == .some(20_012))
        // offline_max back to 0: fedlogin's expiry goes, nothing else.
        let lifted = ShadowLocks.plan(entry: e, record: moved.record, reasons: [], offlineUntil: nil)
        #expect(lifted.setExpire == .some(nil) && lifted.record == nil)
        // An administrator's earlier expiry wins and stays when the window moves on.
        let admin = E(passwordLocked: false, expire: 20_005)
        let early = ShadowLocks.plan(entry: admin, record: nil, reasons: [], offlineUntil: 20_010)
        #expect(early.setExpire == nil && early.record?.before == 20_005)
        let later = ShadowLocks.plan(entry: admin, record: early.record, reasons: [], offlineUntil: nil)
        #expect(later.setExpire == nil && later.record == nil)
    }

    @Test func syncLocksThePasswordTooAndUnlocksOnlyItsOwn() {
        let clean = E(passwordLocked: false, expire: nil)
        let lock = ShadowLocks.plan(entry: clean, record: nil, reasons: [.sync])
        #expect(lock.lockPassword && lock.record?.passwordLockAdded == true)
        let lift = ShadowLocks.plan(entry: apply(lock, to: clean), record: lock.record, reasons: [])
        #expect(lift.unlockPassword && lift.setExpire == .some(nil))
        // An administrator's "!" from before is never fedlogin's to lift.
        let adminLocked = E(passwordLocked: true, expire: nil)
        let lock2 = ShadowLocks.plan(entry: adminLocked, record: nil, reasons: [.sync])
        #expect(!lock2.lockPassword && lock2.record?.passwordLockAdded == false)
        let lift2 = ShadowLocks.plan(entry: apply(lock2, to: adminLocked), record: lock2.record, reasons: [])
        #expect(!lift2.unlockPassword && apply(lift2, to: apply(lock2, to: adminLocked)) == adminLocked)
    }

    @Test func theAdministratorsExpiryComesBackAndEarliestWins() {
        // An expiry in the future set by the administrator.
        let admin = E(passwordLocked: false, expire: 30000)
        let lock = ShadowLocks.plan(entry: admin, record: nil, reasons: [.lockout])
        #expect(lock.setExpire == .some(1) && lock.record?.before == 30000)
        let lift = ShadowLocks.plan(entry: apply(lock, to: admin), record: lock.record, reasons: [])
        #expect(apply(lift, to: apply(lock, to: admin)) == admin)
    }

    @Test func anExpiryWrittenMeanwhileByTheAdministratorIsLeftAlone() {
        let clean = E(passwordLocked: false, expire: nil)
        let lock = ShadowLocks.plan(entry: clean, record: nil, reasons: [.lockout])
        // The administrator expires the account on a day of their own.
        let changed = E(passwordLocked: false, expire: 20000)
        let lift = ShadowLocks.plan(entry: changed, record: lock.record, reasons: [])
        #expect(lift.setExpire == nil && lift.record == nil)
        #expect(ShadowLocks.othersExpiry(entry: changed, record: lock.record) == 20000)
    }

    @Test func twoReasonsHoldUntilBothAreGone() {
        let clean = E(passwordLocked: false, expire: nil)
        let both = ShadowLocks.plan(entry: clean, record: nil, reasons: [.sync, .lockout])
        let s1 = apply(both, to: clean)
        let onlySync = ShadowLocks.plan(entry: s1, record: both.record, reasons: [.sync])
        #expect(onlySync.setExpire == nil && !onlySync.unlockPassword && onlySync.record?.reasons == [.sync])
        let none = ShadowLocks.plan(entry: apply(onlySync, to: s1), record: onlySync.record, reasons: [])
        #expect(apply(none, to: s1) == clean)
    }

    @Test func lockedByOthersSeesOnlyWritesThatAreNotFedlogins() {
        let today = 20500
        #expect(!ShadowLocks.lockedByOthers(entry: E(passwordLocked: false, expire: nil), record: nil, today: today))
        #expect(ShadowLocks.lockedByOthers(entry: E(passwordLocked: true, expire: nil), record: nil, today: today))
        #expect(ShadowLocks.lockedByOthers(entry: E(passwordLocked: false, expire: 1), record: nil, today: today))
        #expect(ShadowLocks.lockedByOthers(entry: E(passwordLocked: false, expire: today), record: nil, today: today))
        #expect(!ShadowLocks.lockedByOthers(entry: E(passwordLocked: false, expire: today + 1), record: nil, today: today))
        // fedlogin's own lockout is not "someone else's".
        let lock = ShadowLocks.plan(entry: E(passwordLocked: false, expire: nil), record: nil, reasons: [.lockout, .sync])
        #expect(!ShadowLocks.lockedByOthers(entry: E(passwordLocked: true, expire: 1), record: lock.record, today: today))
        // ... unless the administrator's expiry was there before it.
        let over = ShadowLocks.plan(entry: E(passwordLocked: false, expire: 100), record: nil, reasons: [.lockout])
        #expect(ShadowLocks.lockedByOthers(entry: E(passwordLocked: false, expire: 1), record: over.record, today: today))
    }
}
