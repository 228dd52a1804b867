import FedloginCore
import FedloginNIO
import Foundation

/// fedloginctl's requests (docs/protocol.md, CONTROL).
struct Control {
    let runtime: Runtime

    func handle(_ json: String, peer: PeerCredentials) async -> (Bool, String) {
        let data = Data(json.utf8)
        let request: ControlRequest
        do {
            let op = try JSONDecoder().decode(ControlRequestHead.self, from: data).op
            if op.rootOnly && !peer.isRoot { return fail(Self.refusal(op)) }
            request = try JSONDecoder().decode(ControlRequest.self, from: data)
        } catch let e as ControlRequestError {
            return fail(e.description)
        } catch {
            return fail(ControlRequestError.notARequest.description)
        }
        do {
            switch request {
            case .status:
                let pending = try runtime.state.pendingReports().count
                let managed = try runtime.state.accounts().filter { $0.state == .active }.count
                return ok(
                    ControlReply.Status(
                        version: fedloginVersion, deviceID: runtime.deviceID, idps: runtime.idps.keys.sorted(), managedUsers: managed,
                        pendingReports: pending, socket: runtime.config.socketPath))
            case .users:
                let delivered = Set(try runtime.state.pendingReports().map(\.username))
                let users = try runtime.state.accounts().map { a in
                    ControlReply.User(
                        username: a.username, uid: a.uid, email: a.email, state: a.state.rawValue, passwordMode: a.passwordMode?.rawValue ?? "",
                        issuer: a.issuer ?? "", subject: a.subject ?? "", boundAt: a.boundAt ?? "", reported: !delivered.contains(a.username),
                        locked: Self.lockText(a) ?? "", failedAttempts: a.failedAttempts,
                        groups: a.managedGroups.split(separator: ",").map(String.init),
                        lastSignIn: Self.time(a.lastSigninAt) ?? a.boundAt ?? "", lastDirectoryAnswer: Self.time(a.lastAnswerAt) ?? "",
                        offlineUntil: Self.time(a.offlineEnd) ?? "", reauthDue: Self.time(a.reauthDue) ?? "")
                }
                return ok(ControlReply.Users(users: users))
            case .outbox:
                let items = try runtime.state.pendingReports().map {
                    ControlReply.PendingReport(key: $0.key, username: $0.username, attempts: $0.attempts, lastError: $0.lastError ?? "")
                }
                return ok(ControlReply.Outbox(pending: items))
            case .deliver:
                return ok(ControlReply.Delivered(delivered: await runtime.outbox.deliverDue()))
            case .sync:
                let r: Lifecycle.SyncResult
                do {
                    r = try await Lifecycle(runtime: runtime).sync()
                } catch let e as DirectoryClient.Unavailable {
                    return fail("the directory cannot be reached, nothing was changed: \(e)")
                }
                return ok(
                    ControlReply.Sync(
                        provisioned: r.provisioned, locked: r.locked, unlocked: r.unlocked, groupChanges: r.groupChanges, skipped: r.skipped,
                        errors: r.errors))
            case .bind(let user, let passwordSync, let adopt):
                return ok(try await changed(Lifecycle(runtime: runtime).bind(user, passwordSync: passwordSync, adopt: adopt)))
            case .unbind(let user):
                return ok(try changed(Lifecycle(runtime: runtime).unbind(user)))
            case .unlock(let user):
                return ok(try changed(Lifecycle(runtime: runtime).unlock(user)))
            }
        } catch let e as Lifecycle.Failure {
            return fail(e.description)
        } catch let e as DirectoryClient.Unavailable {
            return fail("the directory cannot be reached: \(e)")
        } catch {
            return fail("\(error)")
        }
    }

    /// The reply to a change of an account: what NSS answered from its cache may be stale now.
    private func changed(_ message: String) -> ControlReply.Message {
        runtime.nssCache.clear()
        return ControlReply.Message(message: message)
    }

    /// The refusal of a root-only op to another peer.
    static func refusal(_ op: ControlOp) -> String {
        switch op {
        case .status: "only root may ask for the status"
        case .users: "only root may list users"
        case .outbox: "only root may read the outbox"
        case .deliver: "only root may run the outbox"
        case .sync: "only root may sync with the directory"
        case .bind, .unbind, .unlock: "only root may \(op.rawValue) accounts"
        }
    }

    /// A managed account's lock as a person reads it, nil when not locked.
    static func time(_ t: Double?) -> String? { t.map { Sys.iso8601(Date(timeIntervalSince1970: $0)) } }

    static func lockText(_ a: StateStore.Account, now: Double = Date().timeIntervalSince1970) -> String? {
        if let r = a.lockedReason { return SyncLock(rawValue: r)?.userMessage ?? r }
        if let until = a.lockedUntil, until > now {
            return "locked after failed attempts until " + Sys.iso8601(Date(timeIntervalSince1970: until))
        }
        return nil
    }

    func ok(_ reply: some Encodable) -> (Bool, String) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (true, String(decoding: (try? encoder.encode(reply)) ?? Data("{}".utf8), as: UTF8.self))
    }

    func fail(_ message: String) -> (Bool, String) {
        (false, String(decoding: (try? JSONEncoder().encode(ControlReply.Failure(error: message))) ?? Data(), as: UTF8.self))
    }
}

public let fedloginVersion = "0.1.0"
