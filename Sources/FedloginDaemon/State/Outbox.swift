import FedloginCore
import FedloginNIO
import Foundation
import Logging
import ServiceLifecycle

/// Delivers queued binding reports to the directory until each is acked,
/// retrying with backoff; resumes after a restart because the queue is in the
/// state database.
public final class Outbox: Service, Sendable {
    let state: StateStore
    let directory: any DirectoryService
    let clock: any WallClock
    let schedule: OutboxSchedule
    let logger: Logger
    let kicks: AsyncStream<Void>
    let kicker: AsyncStream<Void>.Continuation

    init(state: StateStore, directory: any DirectoryService, retryMax: Double, logger: Logger, clock: any WallClock = SystemClock()) {
        self.state = state
        self.directory = directory
        self.clock = clock
        schedule = OutboxSchedule(retryMax: retryMax)
        self.logger = logger
        (kicks, kicker) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a delivery round now.
    public func kick() { kicker.yield() }

    public func run() async throws {
        kick()
        var timer: Task<Void, Never>?
        for await _ in kicks.cancelOnGracefulShutdown() {
            await deliverDue()
            timer?.cancel()
            if let wait = schedule.timer(nextAttempt: try? state.nextAttempt(), now: clock.now()) {
                let kicker = self.kicker
                let clock = self.clock
                timer = Task {
                    try? await clock.sleep(seconds: wait)
                    if !Task.isCancelled { kicker.yield() }
                }
            }
        }
        timer?.cancel()
    }

    /// One round: every due report, in order. Returns how many were acked.
    @discardableResult
    public func deliverDue() async -> Int {
        let due: [StateStore.OutboxItem]
        do {
            due = try state.dueReports(now: clock.now())
        } catch {
            logger.error("cannot read the outbox: \(error)")
            return 0
        }
        var delivered = 0
        for item in due {
            do {
                let report = try JSONDecoder().decode(BindingReport.self, from: Data(item.payload.utf8))
                try await directory.report(report)
                try state.markDelivered(item.key, at: Sys.iso8601())
                delivered += 1
                logger.notice(
                    "binding delivered to the directory",
                    metadata: [
                        "message_id": "\(MessageID.bindingDelivered)", "user": "\(item.username)", "key": "\(item.key)",
                        "attempts": "\(item.attempts + 1)",
                    ])
            } catch {
                let (delay, next) = schedule.failed(attempts: item.attempts, now: clock.now())
                try? state.markFailed(item.key, error: ErrorText.describe(error), nextAttempt: next)
                logger.warning(
                    "binding not delivered yet; will retry",
                    metadata: ["user": "\(item.username)", "retry_in": "\(delay)s", "error": "\(ErrorText.describe(error))"])
            }
        }
        return delivered
    }
}
