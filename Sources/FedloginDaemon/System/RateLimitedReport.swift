import Foundation
import Logging
import NIOConcurrencyHelpers

/// A log line at most every `every` seconds; the ones held back are counted in the next.
final class RateLimitedReport: Sendable {
    let every: Double
    let state = NIOLockedValueBox((last: -Double.infinity, held: 0))

    init(every: Double) {
        self.every = every
    }

    func report(_ logger: Logger, _ message: @autoclosure () -> String) {
        let now = Date().timeIntervalSince1970
        let held = state.withLockedValue { s -> Int? in
            guard now - s.last >= every || now < s.last else {
                s.held += 1
                return nil
            }
            defer { s = (now, 0) }
            return s.held
        }
        guard let held else { return }
        logger.warning("\(message())\(held > 0 ? " (\(held) more like it not logged)" : "")")
    }
}
