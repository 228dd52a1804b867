/// The device authorization grant's numbers from the IdP (RFC 8628 §3.2),
/// bounded before fedlogind waits on them: `interval` to 1...60 seconds
/// (5 when absent, as RFC 8628 says), `expires_in` to 1...3600 seconds
/// (600 when absent). A negative, zero, huge, fractional, non-finite or
/// non-numeric value never traps; it is clamped (or replaced by the
/// default) and named in `adjusted`, for one log line.
public struct DeviceTiming: Sendable, Equatable {
    public static let intervalRange: ClosedRange<Double> = 1...60
    public static let defaultInterval: Double = 5
    public static let expiresInRange: ClosedRange<Double> = 1...3600
    public static let defaultExpiresIn: Double = 600
    /// What slow_down adds to the interval (RFC 8628 §3.5).
    public static let slowDownStep: Double = 5

    public var interval: Double
    public var expiresIn: Double
    /// "interval -1 -> 1", ... for what was not used as sent.
    public var adjusted: [String]

    public init(interval: JSONValue?, expiresIn: JSONValue?) {
        var adjusted: [String] = []
        self.interval = Self.bound(
            interval, name: "interval", range: Self.intervalRange, default: Self.defaultInterval, adjusted: &adjusted)
        self.expiresIn = Self.bound(
            expiresIn, name: "expires_in", range: Self.expiresInRange, default: Self.defaultExpiresIn, adjusted: &adjusted)
        self.adjusted = adjusted
    }

    /// The interval after a slow_down answer, still within the range.
    public static func slowedDown(_ interval: Double) -> Double {
        min(max(interval, intervalRange.lowerBound) + slowDownStep, intervalRange.upperBound)
    }

    /// A wait in whole nanoseconds for `Task.sleep`, never trapping.
    public static func nanoseconds(_ seconds: Double) -> UInt64 {
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return UInt64(min(seconds, intervalRange.upperBound) * 1e9)
    }

    static func bound(
        _ v: JSONValue?, name: String, range: ClosedRange<Double>, default value: Double, adjusted: inout [String]
    ) -> Double {
        guard let v else { return value }
        let n: Double?
        switch v {
        case .number(let d): n = d
        case .string(let s): n = Double(s)
        default: n = nil
        }
        guard let n, n.isFinite else {
            adjusted.append("\(name) \(Self.shown(v)) -> \(Self.shown(value)) (not a number)")
            return value
        }
        let c = min(max(n, range.lowerBound), range.upperBound)
        if c != n || !Self.isNumber(v) {
            adjusted.append("\(name) \(Self.shown(v)) -> \(Self.shown(c))")
        }
        return c
    }

    static func isNumber(_ v: JSONValue) -> Bool {
        if case .number = v { return true }
        return false
    }

    static func shown(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }

    static func shown(_ v: JSONValue) -> String {
        switch v {
        case .number(let d): shown(d)
        case .string(let s): "\"" + SafeText.escape(String(s.prefix(40))) + "\""
        case .bool(let b): String(b)
        case .null: "null"
        case .array: "(a list)"
        case .object: "(an object)"
        }
    }
}
