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
        // seq wins over bound_at: a clock stepped back between a bind and
        // its unbind does not turn them around.
        let stepped = report("0b", at: "2026-12-03T09:59:00Z", seq: 1_002, action: "unbind")
        #expect([stepped, bind].sorted(by: BindingReport.inOrder).map(\.key) == ["f0", "0b"])
        // A report without seq is placed by bound_at, in the same unit.
        let micros = UInt64(Date(timeIntervalSince1970: 1_796_292_000).timeIntervalSince1970 * 1_000_000)  // 2026-12-03T10:00:00Z
        let old = report("aa", at: "2026-12-03T10:00:00Z", seq: nil)
        let before = report("zz", at: "x", seq: micros - 1)
        let after = report("00", at: "x", seq: micros + 1)
        #expect([after, old, before].sorted(by: BindingReport.inOrder).map(\.key) == ["zz", "aa", "00"])
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
