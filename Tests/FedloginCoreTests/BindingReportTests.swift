import FedloginCore
import Foundation
import Testing

/// Binding reports: the optional `seq` and the order a directory keeps them in.
struct BindingReportTests {
    func report(_ key: String, at: String, seq: UInt64?, action: String = "bind") -> BindingReport {
        BindingReport(
            key: key, deviceID: "dev1", username: "alice", localUsername: "alice", uid: 70001, email: "alice@example.test",
            issuer: "", subject: "", passwordMode: "passcode", boundAt: at, action: action, seq: seq)
    }

    @Test func aBindAndItsUnbindInOneSecondKeepTheirOrder() {
        // The unbind's key sorts first; seq says it came second.
        let bind = report("f0", at: "2026-12-03T10:00:00Z", seq: 1_000)
        let unbind = report("0a", at: "2026-12-03T10:00:00Z", seq: 1_001, action: "unbind")
        #expect([unbind, bind].sorted(by: BindingReport.inOrder).map(\.action) == ["bind", "unbind"])
        // bound_at first: an earlier second wins whatever its seq.
        let earlier = report("ff", at: "2026-12-03T09:59:59Z", seq: 5_000)
        #expect([bind, earlier].sorted(by: BindingReport.inOrder).map(\.key) == ["ff", "f0"])
        // Reports without seq (older fedlogind) keep the key order.
        let a = report("a", at: "2026-12-03T10:00:00Z", seq: nil)
        let b = report("b", at: "2026-12-03T10:00:00Z", seq: nil)
        #expect([b, a].sorted(by: BindingReport.inOrder).map(\.key) == ["a", "b"])
    }

    @Test func seqIsOptionalOnTheWire() throws {
        let encoded = try JSONEncoder().encode(report("k", at: "2026-12-03T10:00:00Z", seq: 42))
        #expect(try JSONDecoder().decode(BindingReport.self, from: encoded).seq == 42)
        var old = try JSONSerialization.jsonObject(with: encoded) as! [String: Any]
        old.removeValue(forKey: "seq")
        let decoded = try JSONDecoder().decode(BindingReport.self, from: JSONSerialization.data(withJSONObject: old))
        #expect(decoded.seq == nil)
    }
}
