import FedloginCore
import Testing

struct NSSCachePolicyTests {
    static let t0 = 1_800_000_000.0

    @Test func anAnswerHoldsTenSeconds() {
        let p = NSSCachePolicy()
        #expect(p.ttl == 10)
        #expect(p.isFresh(storedAt: Self.t0, now: Self.t0))
        #expect(p.isFresh(storedAt: Self.t0, now: Self.t0 + 9.999))
        #expect(!p.isFresh(storedAt: Self.t0, now: Self.t0 + 10))
        #expect(p.expires(storedAt: Self.t0 + 0.7) == Int64(Self.t0) + 10)
        #expect(p.idsUntil(now: Self.t0 + 0.7) == Int64(Self.t0) + 10)
    }

    @Test func atMost4096AnswersAreKept() {
        let p = NSSCachePolicy()
        #expect(p.maxEntries == 4096)
        var stored: [String: Double] = [:]
        for i in 0..<4095 { stored["u\(i)"] = Self.t0 + Double(i) / 1000 }
        #expect(p.evictions(stored: stored, now: Self.t0 + 5).isEmpty)
        stored["u4095"] = Self.t0 + 4.095
        // Full and all fresh: the oldest go, down to three quarters.
        let out = p.evictions(stored: stored, now: Self.t0 + 5)
        #expect(out.count == 4096 - 3072)
        #expect(Set(out) == Set((0..<1024).map { "u\($0)" }))
        // Full with expired ones: only those go.
        stored["u0"] = Self.t0 - 20
        #expect(p.evictions(stored: stored, now: Self.t0 + 5) == ["u0"])
    }

    @Test func aForcedPublishWritesAtOnce() {
        var m = NSSCachePublishing()
        #expect(m.publish(now: Self.t0, force: true) == .write)
        #expect(m.publish(now: Self.t0 + 0.001, force: true) == .write)
        #expect(m.writtenAt == Self.t0 + 0.001 && !m.dirty)
    }

    @Test func aFileHalfItsLifetimeOldIsRenewedByAnyRequest() {
        var m = NSSCachePublishing()
        #expect(m.publish(now: Self.t0, force: true) == .write)
        #expect(m.publish(now: Self.t0 + 4.9) == .none)
        #expect(m.publish(now: Self.t0 + 5) == .write)
        #expect(m.writtenAt == Self.t0 + 5)
    }

    @Test func newNotFoundAnswersAreWrittenAtMostEveryFiftyMilliseconds() {
        var m = NSSCachePublishing()
        #expect(m.publish(now: Self.t0, force: true) == .write)
        // A change within 50 ms of the last write: scheduled for the end of the interval.
        guard case .schedule(let after) = m.publish(now: Self.t0 + 0.01, changed: true) else {
            Issue.record("not scheduled")
            return
        }
        #expect(abs(after - 0.04) < 1e-6)
        #expect(m.dirty && m.scheduled)
        // More changes meanwhile: one write is scheduled already.
        #expect(m.publish(now: Self.t0 + 0.02, changed: true) == .none)
        #expect(m.publish(now: Self.t0 + 0.03) == .none)
        // The scheduled write's time.
        m.scheduledWriteWoke()
        #expect(m.publish(now: Self.t0 + 0.051) == .write)
        #expect(!m.dirty && !m.scheduled)
        // A change 50 ms or more after the last write: written at once.
        #expect(m.publish(now: Self.t0 + 0.2, changed: true) == .write)
    }

    @Test func aDirtyCacheIsWrittenByTheNextRequestAfterTheInterval() {
        var m = NSSCachePublishing()
        #expect(m.publish(now: Self.t0, force: true) == .write)
        _ = m.publish(now: Self.t0 + 0.01, changed: true)
        #expect(m.publish(now: Self.t0 + 0.06) == .write)
        // Its scheduled write then finds nothing to do.
        m.scheduledWriteWoke()
        #expect(m.publish(now: Self.t0 + 0.061) == .none)
    }

    @Test func theFirstRequestWritesAnUnwrittenFile() {
        var m = NSSCachePublishing()
        #expect(m.publish(now: Self.t0) == .write)
    }

    @Test func onlyAChangeBetweenFailingAndWritingIsReported() {
        var m = NSSCachePublishing()
        #expect(m.wrote(ok: true) == nil)
        #expect(m.wrote(ok: false) == .failing)
        #expect(m.wrote(ok: false) == nil)
        #expect(m.failing)
        #expect(m.wrote(ok: true) == .recovered)
        #expect(m.wrote(ok: true) == nil)
    }
}
