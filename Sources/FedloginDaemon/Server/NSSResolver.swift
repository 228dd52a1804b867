import FedloginCore
import FedloginNIO
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Answers libnss_fedlogin: the passwd and group entries of directory users
/// who may log in on this machine and have no local account yet, so sshd
/// and login know them before their first sign-in. The uid (and the gid of
/// the private group) is reserved when first announced and is the one the
/// account gets. Only public data; local accounts are the files module's.
struct NSSResolver {
    let runtime: Runtime
    /// Who asks (SO_PEERCRED). A new reservation for anyone but root is
    /// tentative and limited (`ReservationLimit`); nil counts as not root.
    var caller: PeerCredentials? = nil

    enum Answer: Equatable {
        case passwd(PasswdEntry)
        case notFound
        /// The directory could not be asked: the NSS client says UNAVAIL.
        case unavailable(String)
    }

    func passwd(name: String) async -> Answer {
        await resolve(name: name)
    }

    func passwd(uid: UInt32) async -> Answer {
        // The file's `ids_until` is renewed by the lookups that still reach the daemon.
        runtime.nssCache.publish()
        guard uid != 0, let r = try? runtime.state.reservation(uid: uid) else { return .notFound }
        // A reservation is announced until the account exists; the entry is
        // re-checked against the directory (through the cache) like a name lookup.
        let answer = await resolve(name: r.username)
        if case .passwd(let p) = answer, p.uid != uid { return .notFound }
        return answer
    }

    func group(name: String) async -> WireMessage? {
        Self.group(from: await resolve(name: name))
    }

    func group(gid: UInt32) async -> WireMessage? {
        Self.group(from: await passwd(uid: gid))
    }

    /// The user's private group: same name, gid = uid, no other members.
    static func group(from answer: Answer) -> WireMessage? {
        switch answer {
        case .passwd(let p): .nssGroup(name: p.name, gid: p.gid, members: "")
        case .notFound: .nssNotFound
        case .unavailable: nil
        }
    }

    func resolve(name: String) async -> Answer {
        guard name.count <= LocalUsername.maxLength, LocalUsername.isValid(name), name != "root" else { return .notFound }
        // The cache first: a lookup it answers reads no file. Making an
        // account clears it.
        if let cached = runtime.nssCache.get(name) {
            // Root's lookup (sshd's, before the sign-in) keeps a reservation
            // a non-root caller made: it then lasts until the account exists.
            if case .passwd = cached, runtime.nssCache.isTentative(name), callerIsRoot {
                if (try? runtime.state.promote(name)) != nil { runtime.nssCache.setTentative(name, false) }
            }
            runtime.nssCache.publish()
            return cached
        }
        // Local (or being made by fedlogin): the files module answers.
        if (try? runtime.accounts.lookup(name)) != nil || (try? runtime.state.account(name)) != nil { return .notFound }
        let answer = await lookUp(name)
        if case .unavailable = answer {} else { runtime.nssCache.put(name, answer) }
        return answer
    }

    func lookUp(_ name: String) async -> Answer {
        let directoryUser: DirectoryUser?
        let policy: DevicePolicy?
        let access: DeviceAccess?
        do {
            (directoryUser, policy, access) = try await runtime.directory.userOnDevice(name, device: runtime.deviceID)
        } catch {
            runtime.logger.warning("NSS lookup of \(name): the directory cannot be reached: \(ErrorText.describe(error))")
            return .unavailable("\(error)")
        }
        let state = runtime.state
        let accounts = runtime.accounts
        let plan = LoginPlanner.plan(
            requested: name, local: nil, managed: false, directoryUser: directoryUser, policy: policy,
            configuredIdPs: Set(runtime.idps.keys), uidMin: runtime.uidMin, rules: runtime.accountRules,
            uidTaken: { uid in
                (try? accounts.uidInUse(uid)) ?? true || ((try? state.reservedUIDs(except: name).contains(uid)) ?? true)
            })
        guard case .firstLogin(let p) = plan, p.localUsername == name else { return .notFound }
        // Only users the directory lets use this device get an entry (sshd
        // then refuses the others before any sign-in starts).
        guard let access, access.refusal == nil else { return .notFound }
        let config = runtime.config.accounts
        let gecos = Self.gecos(p.directoryUser.displayName ?? "")
        let reservation: StateStore.Reservation?
        let byRoot = callerIsRoot
        let inFlight = runtime.inFlight
        do {
            reservation = try AccountProvisioner(runtime: runtime).reserve(
                name, gecos: gecos, wanted: p.uid, byRoot: byRoot, limit: reservationLimit,
                busy: { inFlight.names.withLockedValue { $0 }.contains($0) })
        } catch let e as StateStore.ReservationLimitReached {
            // Not cached: a root caller's lookup of the name still gets its entry.
            Self.limitReports.report(runtime.logger, "NSS lookups by non-root callers: no uid reserved for \(name) and others: \(e)")
            return .unavailable("\(e)")
        } catch {
            runtime.logger.error("NSS lookup of \(name): could not reserve a uid: \(error)")
            return .unavailable("state: \(error)")
        }
        guard let reservation else {
            runtime.logger.warning("NSS lookup of \(name): no free uid in \(config.uidMin)...\(config.uidMax)")
            return .notFound
        }
        runtime.nssCache.setTentative(name, !reservation.byRoot)
        return .passwd(
            PasswdEntry(
                name: name, uid: reservation.uid, gid: reservation.uid, gecos: reservation.gecos,
                dir: config.homeRoot + "/" + name, shell: config.shell))
    }

    /// Root's lookups (sshd, login, su run by root) keep their reservation;
    /// a set-user-ID program run by a user (su) asks for that user.
    var callerIsRoot: Bool {
        guard let caller, caller.isRoot else { return false }
        return LocalCredential.realUID(of: caller.pid) == 0
    }

    /// The limit on reservations for non-root callers, from the uid range
    /// and the longest sign-in the configuration allows.
    var reservationLimit: ReservationLimit {
        let config = runtime.config
        let range = Int(config.accounts.uidMax) - Int(config.accounts.uidMin) + 1
        let longest = config.services.values.compactMap(\.timeout).reduce(config.signin.timeout, max)
        return .standard(rangeSize: range, longestSignIn: longest)
    }

    /// One warning a minute at most about refused reservations.
    static let limitReports = RateLimitedReport(every: 60)

    /// A GECOS field cannot hold ':' or a newline; other control characters
    /// (a directory's display name reaches finger, ps and terminals) are shown escaped.
    static func gecos(_ s: String) -> String {
        String(SafeText.escape(String(s.map { $0 == ":" || $0 == "\n" || $0 == "\r" ? " " : $0 })).prefix(256))
    }
}

/// NSS answers for a few seconds, so one login's dozen lookups ask the
/// directory once. Unavailability is never cached.
///
/// The answers are also published in a file next to the socket
/// (`nss.cache`, format in `NSSCacheFile`), which libnss_fedlogin reads
/// before it connects: a lookup the file answers costs no round trip. The
/// file holds the fresh answers (each with its expiry), an ASK record for
/// every reserved uid without one, and `ids_until`: until then, a uid the
/// file does not list is not fedlogin's. How long answers hold and how many
/// are kept is `NSSCachePolicy`; when the file is written,
/// `NSSCachePublishing` (both in FedloginCore, on `clock`'s time).
final class NSSCache: Sendable {
    let policy: NSSCachePolicy
    let clock: any WallClock
    let entries = NIOLockedValueBox([String: (NSSResolver.Answer, Double)]())
    let file: String?
    let state: StateStore?
    let logger: Logger?

    let published: NIOLockedValueBox<NSSCachePublishing>
    let writing = NIOLock()
    /// Names whose cached entry rests on a reservation made only for
    /// non-root callers (see `records`).
    let tentative = NIOLockedValueBox(Set<String>())

    func isTentative(_ name: String) -> Bool { tentative.withLockedValue { $0.contains(name) } }

    func setTentative(_ name: String, _ on: Bool) {
        tentative.withLockedValue { if on { $0.insert(name) } else { $0.remove(name) } }
    }

    init(
        ttl: Double = NSSCachePolicy.standardTTL, file: String? = nil, state: StateStore? = nil, logger: Logger? = nil,
        clock: any WallClock = SystemClock()
    ) {
        policy = NSSCachePolicy(ttl: ttl)
        published = NIOLockedValueBox(NSSCachePublishing(ttl: ttl))
        self.clock = clock
        self.file = file
        self.state = state
        self.logger = logger
    }

    func get(_ name: String) -> NSSResolver.Answer? {
        let now = clock.now()
        return entries.withLockedValue { e in
            guard let (a, at) = e[name], policy.isFresh(storedAt: at, now: now) else { return nil }
            return a
        }
    }

    func put(_ name: String, _ answer: NSSResolver.Answer) {
        let now = clock.now()
        entries.withLockedValue { e in
            if e[name] == nil && e.count >= policy.maxEntries { e = Self.trimmed(e, now: now, policy: policy) }
            e[name] = (answer, now)
        }
        if case .passwd = answer { publish(force: true) } else { publish(changed: true) }
    }

    /// Room for a new answer (`NSSCachePolicy.evictions`).
    static func trimmed(
        _ e: [String: (NSSResolver.Answer, Double)], now: Double, policy: NSSCachePolicy
    ) -> [String: (NSSResolver.Answer, Double)] {
        var kept = e
        for name in policy.evictions(stored: e.mapValues(\.1), now: now) { kept[name] = nil }
        return kept
    }

    func clear() {
        entries.withLockedValue { $0.removeAll() }
        tentative.withLockedValue { $0.removeAll() }
        publish(force: true)
    }

    /// Writes the file when it is due (`NSSCachePublishing`).
    func publish(force: Bool = false, changed: Bool = false) {
        guard file != nil else { return }
        let now = clock.now()
        let decision = published.withLockedValue { $0.publish(now: now, force: force, changed: changed) }
        switch decision {
        case .write:
            writing.withLock { write(now: now) }
        case .schedule(let delay):
            Task { [self] in
                try? await clock.sleep(seconds: max(0, delay) + 0.001)
                published.withLockedValue { $0.scheduledWriteWoke() }
                publish()
            }
        case .none:
            break
        }
    }

    func records(now: Double) -> [NSSCacheFile.Record] {
        var out: [NSSCacheFile.Record] = []
        let reserved = (try? state?.reservations()) ?? []
        // An entry whose reservation only non-root callers made is not in
        // the file: root's lookup of it (sshd's) then reaches the daemon,
        // which makes the reservation root's.
        let tentative = Set(reserved.filter { !$0.byRoot }.map(\.username))
        entries.withLockedValue { e in
            for (name, (answer, at)) in e where policy.isFresh(storedAt: at, now: now) {
                let expires = policy.expires(storedAt: at)
                switch answer {
                case .passwd(let p): if !tentative.contains(name) { out.append(.user(p, expires: expires)) }
                case .notFound: out.append(NSSCacheFile.Record(kind: .notFound, name: name, expires: expires))
                case .unavailable: break
                }
            }
        }
        // After the answers, so a name's answer wins over its reservation.
        for r in reserved {
            out.append(NSSCacheFile.Record(kind: .ask, name: r.username, uid: r.uid, gid: r.uid, expires: 0))
        }
        return out
    }

    func write(now: Double) {
        guard let file else { return }
        let bytes = NSSCacheFile.encode(
            records: records(now: now), generated: Int64(now.rounded(.down)), idsUntil: policy.idsUntil(now: now))
        let tmp = file + ".new"
        var problem: String?
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        if fd < 0 {
            problem = "cannot write \(tmp): \(Sys.errnoText())"
        } else {
            fchmod(fd, 0o644)
            let ok = bytes.withUnsafeBytes { raw -> Bool in
                var off = 0
                while off < raw.count {
                    let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return false }
                    off += n
                }
                return true
            }
            if !ok { problem = "cannot write \(tmp): \(Sys.errnoText())" }
            close(fd)
            if ok && rename(tmp, file) != 0 { problem = "cannot rename \(tmp) to \(file): \(Sys.errnoText())" }
            if problem != nil { unlink(tmp) }
        }
        // Lookups still work without the file (through the socket): say so once, not per lookup.
        switch published.withLockedValue({ $0.wrote(ok: problem == nil) }) {
        case .failing: logger?.warning("NSS cache file not updated, lookups go through the socket: \(problem ?? "")")
        case .recovered: logger?.info("NSS cache file updated again", metadata: ["file": "\(file)"])
        case nil: break
        }
    }

    /// At shutdown: lookups go to the socket (which says the daemon is down).
    func remove() {
        guard let file else { return }
        writing.withLock { _ = unlink(file) }
    }
}
