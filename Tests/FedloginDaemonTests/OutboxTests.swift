import FedloginCore
import Foundation
import Testing

@testable import FedloginDaemon

/// The outbox's retries on a fake clock: 1, 2, 4 ... s up to the maximum, then delivered once.
struct OutboxTests {
    @Test func failedDeliveriesBackOffThenDeliverOnce() async throws {
        let w = try TestWorld()
        defer { w.remove() }
        let state = w.runtime.state
        var a = StateStore.Account(
            username: "carol", uid: 70002, state: .provisioning, directoryUsername: "carol", email: "c@example.com", createdAt: "2026-01-01T00:00:00Z"
        )
        try state.beginProvisioning(a)
        let report = BindingReport(
            key: "k1", deviceID: "device-1", username: "carol", localUsername: "carol", uid: 70002, email: "c@example.com",
            issuer: FakeIdP.issuer, subject: "s", passwordMode: "passcode", boundAt: "2026-01-01T00:00:00Z")
        let payload = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        try state.commitBinding(
            username: "carol", issuer: FakeIdP.issuer, subject: "s", passwordMode: .passcode, boundAt: "2026-01-01T00:00:00Z",
            report: StateStore.OutboxItem(key: "k1", username: "carol", payload: payload, attempts: 0, nextAttempt: 0))
        a.state = .active
        w.directory.state.withLockedValue { $0.failReports = 6 }
        let outbox = Outbox(state: state, directory: w.directory, retryMax: 10, logger: w.runtime.logger, clock: w.clock)
        var waits: [Double] = []
        for _ in 0..<6 {
            #expect(await outbox.deliverDue() == 0)
            let next = try #require(try state.nextAttempt())
            waits.append(next - w.clock.now())
            // Not due before its time.
            w.clock.advance(next - w.clock.now() - 0.5)
            #expect(await outbox.deliverDue() == 0)
            w.clock.advance(0.5)
        }
        #expect(waits == [1, 2, 4, 8, 10, 10])
        #expect(await outbox.deliverDue() == 1)
        #expect(try state.nextAttempt() == nil)
        #expect(await outbox.deliverDue() == 0)
        #expect(w.directory.state.withLockedValue { $0.reports.map(\.key) } == ["k1"])
    }
}

struct ReportSequenceTests {
    @Test func increasesEvenWhenTheClockDoesNot() {
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        let a = ReportSequence.next(now: t)
        let b = ReportSequence.next(now: t)
        let c = ReportSequence.next(now: t.addingTimeInterval(-10))
        #expect(a < b && b < c)
    }
}
