import FedloginCore
import FedloginNIO
import Foundation

/// fedloginctl's requests (docs/protocol.md, CONTROL).
struct Control {
    let runtime: Runtime

    func handle(_ json: String, peer: PeerCredentials) async -> (Bool, String) {
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any], let op = obj["op"] as? String else {
            return fail("the request is not a JSON object with \"op\"")
        }
        do {
            switch op {
            case "status":
                let pending = try runtime.state.pendingReports().count
                let managed = try runtime.state.accounts().filter { $0.state == "active" }.count
                return ok([
                    "version": fedloginVersion, "device_id": runtime.deviceID, "idps": runtime.idps.keys.sorted(),
                    "managed_users": managed, "pending_reports": pending, "socket": runtime.config.socketPath,
                ])
            case "users":
                guard peer.isRoot else { return fail("only root may list users") }
                let delivered = Set(try runtime.state.pendingReports().map(\.username))
                let users: [[String: Any]] = try runtime.state.accounts().map { a in
                    [
                        "username": a.username, "uid": a.uid, "email": a.email, "state": a.state,
                        "password_mode": a.passwordMode ?? "", "iss": a.issuer ?? "", "sub": a.subject ?? "",
                        "bound_at": a.boundAt ?? "", "reported": !delivered.contains(a.username),
                        "locked": Self.lockText(a) ?? "", "failed_attempts": a.failedAttempts,
                        "groups": a.managedGroups.split(separator: ",").map(String.init),
                    ]
                }
                return ok(["users": users])
            case "outbox":
                guard peer.isRoot else { return fail("only root may read the outbox") }
                let items: [[String: Any]] = try runtime.state.pendingReports().map {
                    ["key": $0.key, "username": $0.username, "attempts": $0.attempts, "last_error": $0.lastError ?? ""]
                }
                return ok(["pending": items])
            case "deliver":
                guard peer.isRoot else { return fail("only root may run the outbox") }
                let n = await runtime.outbox.deliverDue()
                return ok(["delivered": n])
            case "sync":
                guard peer.isRoot else { return fail("only root may sync with the directory") }
                do {
                    return ok(try await Lifecycle(runtime: runtime).sync().json)
                } catch let e as DirectoryClient.Unavailable {
                    return fail("the directory cannot be reached, nothing was changed: \(e)")
                }
            case "bind", "unbind", "unlock":
                guard peer.isRoot else { return fail("only root may \(op) accounts") }
                guard let user = obj["user"] as? String, !user.isEmpty else { return fail("\(op) needs \"user\"") }
                let life = Lifecycle(runtime: runtime)
                let message: String
                switch op {
                case "bind":
                    let sync: Bool? = (obj["password_sync"] as? String).map { $0 == "yes" }
                    message = try await life.bind(user, passwordSync: sync, adopt: obj["adopt"] as? Bool ?? false)
                case "unbind": message = try life.unbind(user)
                default: message = try life.unlock(user)
                }
                runtime.nssCache.clear()
                return ok(["message": message])
            default:
                return fail("unknown op \"\(op)\"")
            }
        } catch let e as Lifecycle.Failure {
            return fail(e.description)
        } catch let e as DirectoryClient.Unavailable {
            return fail("the directory cannot be reached: \(e)")
        } catch {
            return fail("\(error)")
        }
    }

    /// A managed account's lock as a person reads it, nil when not locked.
    static func lockText(_ a: StateStore.Account, now: Double = Date().timeIntervalSince1970) -> String? {
        if let r = a.lockedReason { return SyncLock(rawValue: r)?.userMessage ?? r }
        if let until = a.lockedUntil, until > now {
            return "locked after failed attempts until " + Sys.iso8601(Date(timeIntervalSince1970: until))
        }
        return nil
    }

    func ok(_ obj: [String: Any]) -> (Bool, String) {
        (true, String(decoding: (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self))
    }

    func fail(_ message: String) -> (Bool, String) {
        (false, String(decoding: (try? JSONSerialization.data(withJSONObject: ["error": message])) ?? Data(), as: UTF8.self))
    }
}

public let fedloginVersion = "0.1.0"
