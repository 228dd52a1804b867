import FedloginCore
import Testing

struct DeviceGrantPollTests {
    @Test func pendingWaitsTheIntervalAndSlowDownAddsFiveSeconds() {
        var m = DeviceGrantPoll(interval: 5, expiresIn: 600, deadline: 1000 + 300, now: 1000)
        #expect(m.woke(now: 1000) == .poll)
        #expect(m.received(.pending) == .wait(5))
        #expect(m.woke(now: 1005) == .poll)
        #expect(m.received(.slowDown) == .wait(10))
        #expect(m.received(.pending) == .wait(10))
        #expect(m.received(.slowDown) == .wait(15))
        #expect(m.polls == 2)
    }

    @Test func slowDownStopsAtSixtySeconds() {
        var m = DeviceGrantPoll(interval: 58, expiresIn: 600, deadline: 10_000, now: 0)
        #expect(m.received(.slowDown) == .wait(60))
        #expect(m.received(.slowDown) == .wait(60))
    }

    @Test func deniedAndExpiredEndTheWait() {
        var m = DeviceGrantPoll(interval: 5, expiresIn: 600, deadline: 10_000, now: 0)
        #expect(m.received(.denied) == .fail(.denied))
        #expect(m.received(.expired) == .fail(.expired))
    }

    @Test func theWaitEndsAtTheDeadlineOrFiveSecondsAfterTheCode() {
        var byDeadline = DeviceGrantPoll(interval: 5, expiresIn: 600, deadline: 100, now: 0)
        #expect(byDeadline.end == 100 && byDeadline.shownEnd == 100)
        #expect(byDeadline.woke(now: 99.9) == .poll)
        #expect(byDeadline.woke(now: 100) == .fail(.deadlinePassed))
        var byCode = DeviceGrantPoll(interval: 5, expiresIn: 60, deadline: 1000, now: 0)
        #expect(byCode.end == 65 && byCode.shownEnd == 60)
        #expect(byCode.woke(now: 64) == .poll)
        #expect(byCode.woke(now: 65) == .fail(.deadlinePassed))
    }

    @Test func thePromptWaitsAtLeastOneSecond() {
        let m = DeviceGrantPoll(interval: 5, expiresIn: 60, deadline: 1000, now: 0)
        #expect(m.promptTimeout(now: 0) == 65)
        #expect(m.promptTimeout(now: 70) == 1)
    }
}

struct OutboxScheduleTests {
    @Test func failuresDoubleFromOneSecondUpToTheMaximum() {
        let s = OutboxSchedule(retryMax: 30)
        let delays = (0..<7).map { s.failed(attempts: $0, now: 100).delay }
        #expect(delays == [1, 2, 4, 8, 16, 30, 30])
        #expect(s.failed(attempts: 2, now: 100).nextAttempt == 104)
        #expect(s.failed(attempts: 1000, now: 0).delay == 30)
    }

    @Test func theTimerIsSetForTheEarliestReportAndNeverSpins() {
        let s = OutboxSchedule(retryMax: 300)
        #expect(s.timer(nextAttempt: nil, now: 5) == nil)
        #expect(s.timer(nextAttempt: 9, now: 5) == 4)
        #expect(s.timer(nextAttempt: 1, now: 5) == OutboxSchedule.minimumWait)
    }
}

struct LockoutCounterTests {
    @Test func theLimitLocksForTheDuration() {
        var c = LockoutCounter(maxAttempts: 3, duration: 900, failedAttempts: 0, lockedUntil: nil)
        #expect(c.failed(now: 10) == .counted)
        #expect(c.failed(now: 11) == .counted)
        #expect(c.failed(now: 12) == .locked(until: 912))
        #expect(c.locked(now: 911) == 912)
        #expect(c.locked(now: 912) == nil)
        // While locked, more failures count but do not move the end.
        #expect(c.failed(now: 13) == .counted)
        #expect(c.lockedUntil == 912 && c.failedAttempts == 4)
    }

    @Test func anExpiredLockoutStartsANewCount() {
        var c = LockoutCounter(maxAttempts: 2, duration: 60, failedAttempts: 2, lockedUntil: 100)
        #expect(c.failed(now: 100) == .counted)
        #expect(c.failedAttempts == 1 && c.lockedUntil == nil)
        #expect(c.failed(now: 101) == .locked(until: 161))
    }

    @Test func noPolicyCountsNothing() {
        var c = LockoutCounter(maxAttempts: 0, duration: 60, failedAttempts: 0, lockedUntil: nil)
        #expect(c.failed(now: 1) == .none)
        #expect(c.failedAttempts == 0 && c.locked(now: 1) == nil)
    }

    @Test func anAccountCheckClearsTheCountAndALapsedLockout() {
        var idle = LockoutCounter(maxAttempts: 3, duration: 60, failedAttempts: 0, lockedUntil: nil)
        #expect(idle.accountChecked() == .none)
        var counted = LockoutCounter(maxAttempts: 3, duration: 60, failedAttempts: 2, lockedUntil: nil)
        #expect(counted.accountChecked() == .cleared(liftMirror: false))
        #expect(counted.failedAttempts == 0)
        var lapsed = LockoutCounter(maxAttempts: 3, duration: 60, failedAttempts: 3, lockedUntil: 50)
        #expect(lapsed.accountChecked() == .cleared(liftMirror: true))
        #expect(lapsed.lockedUntil == nil && lapsed.failedAttempts == 0)
    }
}
