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
            default:
                return fail("unknown op \"\(op)\"")
            }
        } catch {
            return fail("\(error)")
        }
    }

    func ok(_ obj: [String: Any]) -> (Bool, String) {
        (true, String(decoding: (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self))
    }

    func fail(_ message: String) -> (Bool, String) {
        (false, String(decoding: (try? JSONSerialization.data(withJSONObject: ["error": message])) ?? Data(), as: UTF8.self))
    }
}

public let fedloginVersion = "0.1.0"
