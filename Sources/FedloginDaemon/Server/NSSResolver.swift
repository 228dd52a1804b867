import FedloginCore
import Foundation
import NIOConcurrencyHelpers

/// Answers libnss_fedlogin: the passwd and group entries of directory users
/// who may log in on this machine and have no local account yet, so sshd
/// and login know them before their first sign-in. The uid (and the gid of
/// the private group) is reserved when first announced and is the one the
/// account gets. Only public data; local accounts are the files module's.
struct NSSResolver {
    let runtime: Runtime

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
        if let cached = runtime.nssCache.get(name) { return cached }
        // Local (or being made by fedlogin): the files module answers.
        if (try? runtime.accounts.lookup(name)) != nil || (try? runtime.state.account(name)) != nil { return .notFound }
        let answer = await lookUp(name)
        if case .unavailable = answer {} else { runtime.nssCache.put(name, answer) }
        return answer
    }

    func lookUp(_ name: String) async -> Answer {
        let directoryUser: DirectoryUser?
        let policy: DevicePolicy?
        do {
            directoryUser = try await runtime.directory.lookup(name)
            policy = directoryUser == nil ? nil : try await runtime.directory.policy(device: runtime.deviceID)
        } catch {
            runtime.logger.warning("NSS lookup of \(name): the directory cannot be reached: \(error)")
            return .unavailable("\(error)")
        }
        let state = runtime.state
        let accounts = runtime.accounts
        let plan = LoginPlanner.plan(
            requested: name, local: nil, managed: false, directoryUser: directoryUser, policy: policy,
            configuredIdPs: Set(runtime.idps.keys), uidMin: runtime.uidMin,
            uidTaken: { uid in
                (try? accounts.uidInUse(uid)) ?? true || ((try? state.reservedUIDs(except: name).contains(uid)) ?? true)
            })
        guard case .firstLogin(let p) = plan, p.localUsername == name else { return .notFound }
        let config = runtime.config.accounts
        let gecos = Self.gecos(p.directoryUser.displayName ?? "")
        let reservation: StateStore.Reservation?
        do {
            reservation = try state.reserve(name, gecos: gecos, wanted: p.uid) { others in
                try accounts.freeUID(in: config.uidMin...config.uidMax, reserved: others)
            }
        } catch {
            runtime.logger.error("NSS lookup of \(name): could not reserve a uid: \(error)")
            return .unavailable("state: \(error)")
        }
        guard let reservation else {
            runtime.logger.warning("NSS lookup of \(name): no free uid in \(config.uidMin)...\(config.uidMax)")
            return .notFound
        }
        return .passwd(
            PasswdEntry(
                name: name, uid: reservation.uid, gid: reservation.uid, gecos: reservation.gecos,
                dir: config.homeRoot + "/" + name, shell: config.shell))
    }

    /// A GECOS field cannot hold ':' or a newline.
    static func gecos(_ s: String) -> String {
        String(s.map { $0 == ":" || $0 == "\n" || $0 == "\r" ? " " : $0 }.prefix(256))
    }
}

/// NSS answers for a few seconds, so one login's dozen lookups ask the
/// directory once. Unavailability is never cached.
final class NSSCache: Sendable {
    let ttl: Double
    let entries = NIOLockedValueBox([String: (NSSResolver.Answer, Double)]())

    init(ttl: Double = 10) {
        self.ttl = ttl
    }

    func get(_ name: String) -> NSSResolver.Answer? {
        let now = Date().timeIntervalSince1970
        return entries.withLockedValue { e in
            guard let (a, at) = e[name], now - at < ttl else { return nil }
            return a
        }
    }

    func put(_ name: String, _ answer: NSSResolver.Answer) {
        let now = Date().timeIntervalSince1970
        entries.withLockedValue { e in
            if e.count > 4096 { e = e.filter { now - $0.value.1 < ttl } }
            e[name] = (answer, now)
        }
    }

    func clear() { entries.withLockedValue { $0.removeAll() } }
}
