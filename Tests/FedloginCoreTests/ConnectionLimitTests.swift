import FedloginCore
import Testing

struct ConnectionLimitTests {
    let limit = ConnectionLimit(perUID: 3, nonRoot: 5, reportEvery: 60)

    @Test func aUidIsLimitedAndRootNeverIs() {
        var c = ConnectionCounts()
        for _ in 0..<3 { #expect(c.admit(uid: 1000, limit: limit, now: 0) == .admitted) }
        #expect(c.admit(uid: 1000, limit: limit, now: 0) == .refused(report: [1000: 1]))
        // Another user still gets in, and root always does.
        #expect(c.admit(uid: 1001, limit: limit, now: 0) == .admitted)
        for _ in 0..<10_000 { #expect(c.admit(uid: 0, limit: limit, now: 0) == .admitted) }
        #expect(c.nonRoot == 4 && c.root == 10_000)
        // A closed connection gives its place back.
        c.release(uid: 1000)
        #expect(c.admit(uid: 1000, limit: limit, now: 1) == .admitted)
    }

    @Test func allNonRootPeersTogetherAreLimitedButRootIsNot() {
        var c = ConnectionCounts()
        for uid in UInt32(1000)..<1005 { #expect(c.admit(uid: uid, limit: limit, now: 0) == .admitted) }
        guard case .refused = c.admit(uid: 2000, limit: limit, now: 0) else {
            Issue.record("over the non-root limit")
            return
        }
        #expect(c.admit(uid: 0, limit: limit, now: 0) == .admitted)
        c.release(uid: 1003)
        #expect(c.byUID[1003] == nil)
        #expect(c.admit(uid: 2000, limit: limit, now: 0) == .admitted)
    }

    @Test func releasesNeverGoBelowZeroOrFreeAnotherUidsPlace() {
        var c = ConnectionCounts()
        #expect(c.admit(uid: 1000, limit: limit, now: 0) == .admitted)
        c.release(uid: 1001)  // never admitted
        c.release(uid: 0)
        #expect(c.nonRoot == 1 && c.root == 0 && c.byUID == [1000: 1])
        c.release(uid: 1000)
        c.release(uid: 1000)
        #expect(c.nonRoot == 0 && c.byUID.isEmpty)
    }

    @Test func refusalsAreReportedAtMostOncePerInterval() {
        var c = ConnectionCounts()
        for _ in 0..<3 { _ = c.admit(uid: 1000, limit: limit, now: 0) }
        #expect(c.admit(uid: 1000, limit: limit, now: 10) == .refused(report: [1000: 1]))
        for t in 11..<20 { #expect(c.admit(uid: 1000, limit: limit, now: Double(t)) == .refused(report: nil)) }
        // The next report sums up what was not reported.
        #expect(c.admit(uid: 1000, limit: limit, now: 70) == .refused(report: [1000: 10]))
        // A clock that went back does not silence the reports.
        #expect(c.admit(uid: 1000, limit: limit, now: 5) == .refused(report: [1000: 1]))
    }

    @Test func theStandardNumbers() {
        #expect(ConnectionLimit.standard.perUID == 64)
        #expect(ConnectionLimit.standard.nonRoot == 512)
    }
}
