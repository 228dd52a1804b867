import FedloginCore
import Testing

struct ReservationLimitTests {
    let limit = ReservationLimit(cap: 3, minAge: 3600, expiry: 86400)
    let hour = 3600.0

    func held(_ name: String, root: Bool = false, at: Double) -> ReservationPlanner.Held {
        ReservationPlanner.Held(username: name, byRoot: root, lastUsed: at)
    }

    @Test func nonRootReservationsStopAtTheCapWhileTheyAreRecent() {
        let now = 10 * hour
        let h = [held("a", at: now - 10), held("b", at: now - 20), held("c", at: now - 30)]
        #expect(ReservationPlanner.decide(held: h, forRoot: false, now: now, limit: limit, busy: { _ in false }) == .refuse)
        // Root's are not counted against the cap, and root is never refused.
        #expect(ReservationPlanner.decide(held: h, forRoot: true, now: now, limit: limit, busy: { _ in false }) == .reserve(release: []))
        let withRoot = [held("r1", root: true, at: 0), held("r2", root: true, at: 0), held("a", at: now)]
        #expect(ReservationPlanner.decide(held: withRoot, forRoot: false, now: now, limit: limit, busy: { _ in false }) == .reserve(release: []))
    }

    @Test func theOldestUnusedForTheMinimumAgeMakesRoom() {
        let now = 10 * hour
        let h = [held("new", at: now - 10), held("old", at: now - 3 * hour), held("older", at: now - 5 * hour)]
        #expect(
            ReservationPlanner.decide(held: h, forRoot: false, now: now, limit: limit, busy: { _ in false })
                == .reserve(release: ["older"]))
    }

    @Test func neverOneWithASignInInProgressOrAnAccountOrRoots() {
        let now = 10 * hour
        let h = [held("a", at: now - 5 * hour), held("b", at: now - 5 * hour), held("c", at: now - 5 * hour), held("r", root: true, at: 0)]
        #expect(
            ReservationPlanner.decide(held: h, forRoot: false, now: now, limit: limit, busy: { $0 != "b" })
                == .reserve(release: ["b"]))
        #expect(ReservationPlanner.decide(held: h, forRoot: false, now: now, limit: limit, busy: { _ in true }) == .refuse)
    }

    @Test func unusedForADayTheyAreReleasedForAnyone() {
        let now = 100 * hour
        let h = [
            held("stale", at: now - 25 * hour), held("busy", at: now - 30 * hour), held("fresh", at: now - 1),
            held("rootstale", root: true, at: 0),
        ]
        let busy: (String) -> Bool = { $0 == "busy" }
        #expect(ReservationPlanner.decide(held: h, forRoot: true, now: now, limit: limit, busy: busy) == .reserve(release: ["stale"]))
        #expect(ReservationPlanner.decide(held: h, forRoot: false, now: now, limit: limit, busy: busy) == .reserve(release: ["stale"]))
    }

    @Test func aClockSetBackReleasesNothingEarly() {
        let h = [held("a", at: 50 * hour), held("b", at: 50 * hour), held("c", at: 50 * hour)]
        #expect(ReservationPlanner.decide(held: h, forRoot: false, now: 10 * hour, limit: limit, busy: { _ in false }) == .refuse)
    }

    @Test func aWalkOfTheDirectoryNeverHoldsMoreThanTheCap() {
        // A fake clock: a non-root caller looks up a new name every minute for three days.
        var store: [ReservationPlanner.Held] = [held("admin-made", root: true, at: 0)]
        var refused = 0
        for i in 0..<(3 * 24 * 60) {
            let now = Double(i) * 60
            switch ReservationPlanner.decide(held: store, forRoot: false, now: now, limit: limit, busy: { _ in false }) {
            case .refuse: refused += 1
            case .reserve(let release):
                store.removeAll { release.contains($0.username) }
                store.append(held("user\(i)", at: now))
            }
            #expect(store.filter { !$0.byRoot }.count <= limit.cap)
        }
        #expect(refused > 0)
        #expect(store.contains { $0.username == "admin-made" })
        // Each one was held at least the minimum age before it went.
    }

    @Test func theStandardLimit() {
        let l = ReservationLimit.standard(rangeSize: 10000, longestSignIn: 120)
        #expect(l == ReservationLimit(cap: 256, minAge: 3600, expiry: 86400))
        #expect(ReservationLimit.standard(rangeSize: 100, longestSignIn: 7200).cap == 25)
        #expect(ReservationLimit.standard(rangeSize: 100, longestSignIn: 7200).minAge == 14400)
        #expect(ReservationLimit.standard(rangeSize: 1, longestSignIn: 10).cap == 1)
    }

    @Test func theCacheStaysBounded() {
        var stored: [String: Double] = [:]
        for i in 0..<8 { stored["n\(i)"] = Double(i) }
        #expect(CacheBound.evictions(stored: stored, now: 8, ttl: 10, max: 9).isEmpty)
        // Full: the expired go first.
        #expect(Set(CacheBound.evictions(stored: stored, now: 13, ttl: 10, max: 8)) == ["n0", "n1", "n2", "n3"])
        // All fresh: the oldest down to three quarters.
        #expect(CacheBound.evictions(stored: stored, now: 8, ttl: 10, max: 8) == ["n0", "n1"])
        // After a clock set back, answers stored "in the future" are dropped.
        #expect(Set(CacheBound.evictions(stored: stored, now: 4.5, ttl: 10, max: 8)) == ["n5", "n6", "n7"])
    }
}
