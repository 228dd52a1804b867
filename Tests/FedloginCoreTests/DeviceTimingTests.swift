import FedloginCore
import Foundation
import Testing

struct DeviceTimingTests {
    @Test func valuesInRangeAreKept() {
        let t = DeviceTiming(interval: .number(5), expiresIn: .number(900))
        #expect(t.interval == 5 && t.expiresIn == 900 && t.adjusted.isEmpty)
        let f = DeviceTiming(interval: .number(2.5), expiresIn: .number(1))
        #expect(f.interval == 2.5 && f.expiresIn == 1 && f.adjusted.isEmpty)
    }

    @Test func absentValuesTakeTheDefaults() {
        let t = DeviceTiming(interval: nil, expiresIn: nil)
        #expect(t.interval == 5 && t.expiresIn == 600 && t.adjusted.isEmpty)
    }

    @Test func outOfRangeValuesAreClampedAndNamed() {
        let neg = DeviceTiming(interval: .number(-1), expiresIn: .number(-30))
        #expect(neg.interval == 1 && neg.expiresIn == 1)
        #expect(neg.adjusted == ["interval -1 -> 1", "expires_in -30 -> 1"])
        let zero = DeviceTiming(interval: .number(0), expiresIn: .number(0))
        #expect(zero.interval == 1 && zero.expiresIn == 1 && zero.adjusted.count == 2)
        let huge = DeviceTiming(interval: .number(1e20), expiresIn: .number(1e300))
        #expect(huge.interval == 60 && huge.expiresIn == 3600)
        #expect(huge.adjusted == ["interval 1e+20 -> 60", "expires_in 1e+300 -> 3600"])
        let big = DeviceTiming(interval: .number(Double(Int64.max)), expiresIn: .number(86400))
        #expect(big.interval == 60 && big.expiresIn == 3600)
    }

    @Test func nonNumbersTakeTheDefaultsAndAreNamed() {
        let t = DeviceTiming(interval: .string("soon"), expiresIn: .bool(true))
        #expect(t.interval == 5 && t.expiresIn == 600 && t.adjusted.count == 2)
        let s = DeviceTiming(interval: .string("7"), expiresIn: .null)
        #expect(s.interval == 7 && s.expiresIn == 600 && s.adjusted.count == 2)
        let inf = DeviceTiming(interval: .number(.infinity), expiresIn: .number(.nan))
        #expect(inf.interval == 5 && inf.expiresIn == 600)
        let esc = DeviceTiming(interval: .string("\u{1b}[2J"), expiresIn: nil)
        #expect(!esc.adjusted[0].contains("\u{1b}"))
    }

    @Test func slowDownAndSleepStayBounded() {
        #expect(DeviceTiming.slowedDown(5) == 10)
        #expect(DeviceTiming.slowedDown(58) == 60)
        #expect(DeviceTiming.slowedDown(60) == 60)
        #expect(DeviceTiming.nanoseconds(-1) == 0)
        #expect(DeviceTiming.nanoseconds(.nan) == 0)
        #expect(DeviceTiming.nanoseconds(1e20) == 60_000_000_000)
        #expect(DeviceTiming.nanoseconds(1.5) == 1_500_000_000)
    }

    @Test func aFakeDeviceAuthorizationAnswer() throws {
        let body = #"{"device_code":"d","user_code":"U","verification_uri":"https://x","expires_in":1e20,"interval":-1}"#
        let fields = try JSONDecoder().decode([String: JSONValue].self, from: Data(body.utf8))
        let t = DeviceTiming(interval: fields["interval"], expiresIn: fields["expires_in"])
        #expect(t.interval == 1 && t.expiresIn == 3600 && t.adjusted.count == 2)
    }
}
