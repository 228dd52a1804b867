import FedloginCore
import FedloginNIO
import Foundation
import Logging
import NIOConcurrencyHelpers

/// The directory's latest answers about users at their account checks
/// (`LocalCredential.revalidate`), kept in memory for
/// `signin.revalidate_cache` so a busy machine neither asks the directory at
/// every login nor waits `signin.revalidate_timeout` at each while it is
/// down. The account check answered on the event loop reads it
/// (`LoginFlow.answerFromMemory`). A reload keeps it.
final class Revalidations: Sendable {
    enum Answer: Sendable, Equatable {
        /// The directory lets the user log in here.
        case allowed
        /// No answer in time, or none at all: the login went on from local state.
        case noAnswer(String)
    }

    struct Entry: Sendable, Equatable {
        var answer: Answer
        /// When it came (the runtime's clock).
        var at: Double
    }

    let entries = NIOLockedValueBox<[String: Entry]>([:])

    /// The user's answer if it is younger than `maxAge` seconds (one from
    /// the future, after the clock went back, is not).
    func fresh(_ user: String, now: Double, maxAge: Double) -> Entry? {
        guard let e = entries.withLockedValue({ $0[user] }), e.at <= now, now - e.at < maxAge else { return nil }
        return e
    }

    func record(_ user: String, _ answer: Answer, at: Double) {
        entries.withLockedValue { $0[user] = Entry(answer: answer, at: at) }
    }

    func forget(_ user: String) { _ = entries.withLockedValue { $0.removeValue(forKey: user) } }
}

extension Runtime {
    /// The directory answered about the account's user and allows them
    /// here: records when (the offline window starts again), with the
    /// policy's `offline_max` when the answer had it, and moves the
    /// window's mirror in /etc/shadow. On the account-change queue.
    /// A failure is logged, never the login's: the record stays as it was
    /// (the window then ends earlier, never later).
    func directoryAnswered(_ username: String, offlineMax: Int?, at now: Double, signedIn: Bool = false) async {
        do {
            // Nothing to write (an answer within the minute, the mirror as
            // it is: most account checks): no turn on the queue, where the
            // login would wait behind other logins' account changes.
            guard let change = try answerChange(username, offlineMax: offlineMax, at: now, signedIn: signedIn), change.writes else { return }
            try await Blocking.accountChange { try self.recordAnswer(username, offlineMax: offlineMax, at: now, signedIn: signedIn) }
        } catch {
            logAnswerNotRecorded(username, error)
        }
    }

    /// `directoryAnswered` in a turn on the account-change queue the caller
    /// already has (a first login's or a reset's own turn), so that the
    /// login does not wait for a second turn behind other logins' account
    /// changes.
    func directoryAnsweredNow(_ username: String, offlineMax: Int?, at now: Double, signedIn: Bool = false) {
        do {
            try recordAnswer(username, offlineMax: offlineMax, at: now, signedIn: signedIn)
        } catch {
            logAnswerNotRecorded(username, error)
        }
    }

    func logAnswerNotRecorded(_ username: String, _ error: any Error) {
        logger.error("cannot record the directory's answer about \(username): \(ErrorText.describe(error))", metadata: ["user": "\(username)"])
    }

    /// What recording the directory's answer changes: the account's record
    /// as it becomes, whether the offline window's mirror in /etc/shadow
    /// moves, and whether the row is written. nil when there is no account.
    func answerChange(
        _ username: String, offlineMax: Int?, at now: Double, signedIn: Bool
    ) throws -> (rec: StateStore.Account, reconcile: Bool, update: Bool, writes: Bool)? {
        guard var rec = try state.account(username) else { return nil }
        let before = rec
        rec.directoryAnswered(at: now, offlineMax: offlineMax)
        if signedIn { rec.lastSigninAt = now }
        // The mirror in /etc/shadow follows the window's end day.
        let record = try state.shadowRecord(username)
        let mirrored = record?.reasons.contains(.offline) == true ? record?.written : nil
        let reconcile = rec.offlineEnd.map(OfflineWindow.expiryDay) != mirrored
        // The row is written at most once a minute per user for the answer's time alone.
        let update = signedIn || rec.offlineMax != before.offlineMax || (before.lastAnswerAt ?? 0) + 60 <= now
        return (rec, reconcile, update, reconcile || update)
    }

    /// The record of the directory's answer; on the account-change queue.
    func recordAnswer(_ username: String, offlineMax: Int?, at now: Double, signedIn: Bool) throws {
        guard let change = try answerChange(username, offlineMax: offlineMax, at: now, signedIn: signedIn) else { return }
        if change.reconcile { try AccountLocks(runtime: self).reconcile(change.rec, now: now) }
        if change.update { try state.update(change.rec) }
    }
}

extension LocalCredential {
    /// What came of asking the directory about a user within the bound.
    enum DirectoryAnswer: Sendable {
        case answered(DirectoryUser?, DeviceAccess?)
        case none(String)
    }

    /// Asks the directory about the account's user (`lookup` and `access`,
    /// at once) and waits at most `signin.revalidate_timeout` for both. A
    /// request still running at the bound is abandoned (cancelled; the
    /// client's own timeout, the same bound, ends it).
    func askDirectory(about rec: StateStore.Account) async -> DirectoryAnswer {
        let directory = runtime.revalidationDirectory
        let device = runtime.deviceID
        let name = rec.directoryUsername
        let bound = config.signin.revalidateTimeout
        let result = await Self.firstOf(within: bound) { () async throws -> (DirectoryUser?, DeviceAccess?) in
            async let user = directory.lookup(name)
            async let access = directory.access(user: name, device: device)
            return (try await user, try await access)
        }
        let silent = "no answer within \(Int((bound * 1000).rounded())) ms"
        switch result {
        case .some(.success(let (user, access))): return .answered(user, access)
        // The client's timeout is the same bound: whichever clock fires first, the same answer.
        case .some(.failure(let error as DirectoryClient.Unavailable)) where error.timedOut: return .none(silent)
        case .some(.failure(let error)): return .none(ErrorText.describe(error))
        case .none: return .none(silent)
        }
    }

    /// `body`'s result, or nil when it has none after `seconds` (real time:
    /// the bound of an I/O wait). The caller does not wait for an abandoned
    /// body to end.
    static func firstOf<T: Sendable>(within seconds: Double, _ body: @escaping @Sendable () async throws -> T) async -> Result<T, any Error>? {
        let slot = NIOLockedValueBox<CheckedContinuation<Result<T, any Error>?, Never>?>(nil)
        let tasks = NIOLockedValueBox<[Task<Void, Never>]>([])
        @Sendable func finish(_ r: Result<T, any Error>?) {
            guard
                let c = slot.withLockedValue({ s -> CheckedContinuation<Result<T, any Error>?, Never>? in
                    defer { s = nil }
                    return s
                })
            else { return }
            c.resume(returning: r)
            for t in tasks.withLockedValue({ $0 }) { t.cancel() }
        }
        return await withCheckedContinuation { c in
            slot.withLockedValue { $0 = c }
            let work = Task {
                do { finish(.success(try await body())) } catch { finish(.failure(error)) }
            }
            let timer = Task {
                try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1e9))
                finish(nil)
            }
            tasks.withLockedValue { $0 = [work, timer] }
            // Either may have finished before they were recorded.
            if slot.withLockedValue({ $0 == nil }) {
                work.cancel()
                timer.cancel()
            }
        }
    }

    /// The check at each login of a managed account: asks the directory
    /// about the user unless a fresh answer is in memory. Disabled, gone, no
    /// longer associated with this machine or unbound: the account is locked
    /// at once, as a sync locks it, and the login is refused (the Stop).
    /// No answer in time: the login goes on from local state, and the
    /// journal says so.
    func revalidate(_ rec: StateStore.Account, service: String) async throws -> Stop? {
        var log = logger
        log[metadataKey: "user"] = "\(rec.username)"
        log[metadataKey: "service"] = "\(service)"
        let cache = runtime.revalidations
        let now = runtime.clock.now()
        if let e = cache.fresh(rec.username, now: now, maxAge: config.signin.revalidateCache) {
            if case .noAnswer(let why) = e.answer {
                log.notice(
                    "the directory was not asked about the user: it did not answer \(Int(now - e.at)) s ago (\(why)); the login goes on from local state"
                )
            }
            return nil
        }
        // A binding report still in the outbox when the directory is asked
        // may reach it while it answers, after its answer was made: pending
        // then counts, even if the report is delivered by the time the
        // answer is read.
        let pendingBefore = try runtime.state.pendingReports().contains { $0.username == rec.username }
        switch await askDirectory(about: rec) {
        case .none(let why):
            cache.record(rec.username, .noAnswer(why), at: now)
            log.warning(
                "the directory did not answer about the user: \(why); the login goes on from local state",
                metadata: ["message_id": "\(MessageID.revalidationUnanswered)"])
            return nil
        case .answered(let user, let access):
            let pending = try pendingBefore || runtime.state.pendingReports().contains { $0.username == rec.username }
            guard let lock = Revalidation.lock(user: user, access: access, bindingPending: pending) else {
                cache.record(rec.username, .allowed, at: now)
                await runtime.directoryAnswered(rec.username, offlineMax: nil, at: now)
                return nil
            }
            cache.forget(rec.username)
            let locks = AccountLocks(runtime: runtime)
            let state = runtime.state
            var refused = rec
            refused.lockedReason = lock.rawValue
            // The directory said no: the login is refused even when the lock cannot be written.
            var locked: StateStore.Account?
            do {
                locked = try await Blocking.accountChange { () throws -> StateStore.Account? in
                    // Read again: a sync or a lockout may have changed it meanwhile.
                    guard var current = try state.account(rec.username), current.uid == rec.uid else { return nil }
                    if current.lockedReason == nil {
                        current.lockedReason = lock.rawValue
                        try locks.reconcile(current, now: now)
                        try state.update(current)
                    }
                    return current
                }
                log.notice(
                    "account locked at login: \(lock.userMessage)",
                    metadata: ["message_id": "\(MessageID.accountLocked)", "why": "\(access?.refusal?.rawValue ?? lock.rawValue)"])
            } catch {
                log.error("the account could not be locked at login (\(lock.rawValue)): \(ErrorText.describe(error)); the next sync tries again")
            }
            var stop =
                LoginFlow.lockStop(locked ?? refused, now: now)
                ?? Stop(status: .permissionDenied, userMessage: nil, reason: "account locked: \(lock.rawValue)")
            if let refusal = access?.refusal, refusal == .unbound {
                stop.userMessage = refusal.userMessage(user: rec.username)
            }
            stop.reason = "the directory says the account is \(lock.userMessage): \(stop.reason)"
            return stop
        }
    }
}
