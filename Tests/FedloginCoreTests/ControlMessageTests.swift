import FedloginCore
import Foundation
import Testing

/// CONTROL requests and replies: typed on both ends, the same JSON on the
/// wire as when fedlogind and fedloginctl built it from dictionaries.
struct ControlMessageTests {
    static func sorted(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// What the dictionary-built replies were (JSONSerialization, sorted keys).
    static func legacy(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    static func request(_ json: String) throws -> ControlRequest {
        try JSONDecoder().decode(ControlRequest.self, from: Data(json.utf8))
    }

    static let requests: [ControlRequest] = [
        .status, .users, .outbox, .deliver, .sync,
        .bind(user: "alice", passwordSync: nil, adopt: false), .bind(user: "bob", passwordSync: true, adopt: true),
        .bind(user: "carol", passwordSync: false, adopt: false), .unbind(user: "dave"), .unlock(user: "ève"),
    ]

    @Test(arguments: requests)
    func requestRoundTrip(_ r: ControlRequest) throws {
        #expect(try Self.request(Self.sorted(r)) == r)
        #expect(try JSONDecoder().decode(ControlRequestHead.self, from: Data(Self.sorted(r).utf8)).op == r.op)
    }

    @Test func requestJSON() throws {
        #expect(try Self.sorted(ControlRequest.status) == #"{"op":"status"}"#)
        #expect(
            try Self.sorted(ControlRequest.bind(user: "bob", passwordSync: false, adopt: true))
                == #"{"adopt":true,"op":"bind","password_sync":"no","user":"bob"}"#)
        #expect(try Self.sorted(ControlRequest.unlock(user: "al")) == #"{"op":"unlock","user":"al"}"#)
    }

    /// Requests as fedloginctl and the tests have been sending them.
    @Test func requestsAsSentBefore() throws {
        #expect(try Self.request(#"{"op": "sync"}"#) == .sync)
        #expect(try Self.request(#"{"user":"al","adopt":false,"op":"bind"}"#) == .bind(user: "al", passwordSync: nil, adopt: false))
        #expect(try Self.request(#"{"op":"bind","user":"al","password_sync":"yes"}"#) == .bind(user: "al", passwordSync: true, adopt: false))
        #expect(try Self.request(#"{"op":"bind","user":"al","password_sync":"maybe"}"#) == .bind(user: "al", passwordSync: false, adopt: false))
        #expect(try Self.request(#"{"op":"bind","user":"al","password_sync":1,"adopt":"x"}"#) == .bind(user: "al", passwordSync: nil, adopt: false))
    }

    @Test func requestErrors() throws {
        for bad in ["[]", "{}", #"{"op":3}"#, #"{"op":null}"#] {
            #expect(throws: ControlRequestError.notARequest) { try Self.request(bad) }
        }
        // Not JSON at all: JSONDecoder's own error, which fedlogind answers as notARequest.
        for bad in ["not json", ""] {
            #expect(throws: DecodingError.self) { try Self.request(bad) }
        }
        #expect(throws: ControlRequestError.unknownOp("lookup")) { try Self.request(#"{"op":"lookup","user":"x"}"#) }
        #expect(throws: ControlRequestError.needsUser(.unbind)) { try Self.request(#"{"op":"unbind"}"#) }
        #expect(throws: ControlRequestError.needsUser(.bind)) { try Self.request(#"{"op":"bind","user":""}"#) }
        #expect(throws: ControlRequestError.needsUser(.unlock)) { try Self.request(#"{"op":"unlock","user":7}"#) }
        #expect(ControlRequestError.notARequest.description == #"the request is not a JSON object with "op""#)
        #expect(ControlRequestError.unknownOp("x").description == #"unknown op "x""#)
        #expect(ControlRequestError.needsUser(.bind).description == #"bind needs "user""#)
        #expect(ControlOp.allCases.filter { !$0.rootOnly } == [.status])
    }

    /// Today's replies, byte for byte (the integration tests read them with --json).
    @Test func replyFixtures() throws {
        let status = ControlReply.Status(
            version: "0.1.0", deviceID: "demo-device-1", idps: ["entra", "google"], managedUsers: 2, pendingReports: 0,
            socket: "/run/fedlogin/fedlogind.sock")
        #expect(
            try Self.sorted(status)
                == #"{"device_id":"demo-device-1","idps":["entra","google"],"managed_users":2,"pending_reports":0,"socket":"\/run\/fedlogin\/fedlogind.sock","version":"0.1.0"}"#
        )
        let user = ControlReply.User(
            username: "alice", uid: 60001, email: "alice@example.com", state: "active", passwordMode: "passcode",
            issuer: "https://idp.example/", subject: "s-1", boundAt: "2026-01-02T03:04:05Z", reported: true, locked: "",
            failedAttempts: 1, groups: ["sudo", "docker"], lastSignIn: "2026-01-02T03:04:05Z", lastDirectoryAnswer: "2026-01-03T00:00:00Z",
            offlineUntil: "")
        #expect(
            try Self.sorted(ControlReply.Users(users: [user]))
                == #"{"users":[{"bound_at":"2026-01-02T03:04:05Z","email":"alice@example.com","failed_attempts":1,"groups":["sudo","docker"],"iss":"https:\/\/idp.example\/","last_directory_answer":"2026-01-03T00:00:00Z","last_signin":"2026-01-02T03:04:05Z","locked":"","offline_until":"","password_mode":"passcode","reauth_due":"","reported":true,"state":"active","sub":"s-1","uid":60001,"username":"alice"}]}"#
        )
        // An older fedlogind's reply, without the times: they read as empty.
        let older = try JSONDecoder().decode(
            ControlReply.Users.self,
            from: Data(
                #"{"users":[{"bound_at":"","email":"","failed_attempts":0,"groups":[],"iss":"","locked":"","password_mode":"","reported":true,"state":"active","sub":"","uid":1,"username":"a"}]}"#
                    .utf8))
        #expect(older.users[0].lastSignIn == "" && older.users[0].offlineUntil == "")
        #expect(try Self.sorted(ControlReply.Failure(error: "only root may list users")) == #"{"error":"only root may list users"}"#)
    }

    /// Every reply type encodes as the dictionary it replaces did, and decodes back.
    @Test func repliesMatchLegacy() throws {
        let odd = "/é \u{1}\"\\\t😀<>&'\u{2028}"
        let status = ControlReply.Status(version: odd, deviceID: odd, idps: [], managedUsers: 0, pendingReports: 7, socket: odd)
        #expect(
            try Self.sorted(status)
                == Self.legacy([
                    "version": odd, "device_id": odd, "idps": [String](), "managed_users": 0, "pending_reports": 7, "socket": odd,
                ]))
        let user = ControlReply.User(
            username: odd, uid: UInt32.max, email: "", state: "pending", passwordMode: "", issuer: "", subject: odd, boundAt: "",
            reported: false, locked: odd, failedAttempts: 0, groups: [])
        let legacyUser: [String: Any] = [
            "username": odd, "uid": UInt32.max, "email": "", "state": "pending", "password_mode": "", "iss": "", "sub": odd,
            "bound_at": "", "reported": false, "locked": odd, "failed_attempts": 0, "groups": [String](), "last_signin": "",
            "last_directory_answer": "", "offline_until": "", "reauth_due": "",
        ]
        #expect(try Self.sorted(ControlReply.Users(users: [user, user])) == Self.legacy(["users": [legacyUser, legacyUser]]))
        #expect(try Self.sorted(ControlReply.Users(users: [])) == Self.legacy(["users": [[String: Any]]()]))
        let item = ControlReply.PendingReport(key: "k-1", username: odd, attempts: 3, lastError: odd)
        #expect(
            try Self.sorted(ControlReply.Outbox(pending: [item]))
                == Self.legacy(["pending": [["key": "k-1", "username": odd, "attempts": 3, "last_error": odd]]]))
        #expect(try Self.sorted(ControlReply.Delivered(delivered: 4)) == Self.legacy(["delivered": 4]))
        let sync = ControlReply.Sync(provisioned: ["a"], locked: [odd], unlocked: [], groupChanges: ["g: +sudo"], skipped: [], errors: ["e"])
        #expect(
            try Self.sorted(sync)
                == Self.legacy([
                    "provisioned": ["a"], "locked": [odd], "unlocked": [String](), "group_changes": ["g: +sudo"],
                    "skipped": [String](), "errors": ["e"],
                ]))
        #expect(try Self.sorted(ControlReply.Message(message: odd)) == Self.legacy(["message": odd]))
        #expect(
            String(decoding: try JSONEncoder().encode(ControlReply.Failure(error: odd)), as: UTF8.self)
                == String(decoding: try JSONSerialization.data(withJSONObject: ["error": odd]), as: UTF8.self))

        let decoder = JSONDecoder()
        #expect(try decoder.decode(ControlReply.Status.self, from: Data(Self.sorted(status).utf8)) == status)
        #expect(try decoder.decode(ControlReply.Users.self, from: Data(Self.sorted(ControlReply.Users(users: [user])).utf8)).users == [user])
        #expect(try decoder.decode(ControlReply.Sync.self, from: Data(Self.sorted(sync).utf8)) == sync)
        #expect(try decoder.decode(ControlReply.Outbox.self, from: Data(Self.sorted(ControlReply.Outbox(pending: [item])).utf8)).pending == [item])
    }
}

extension ControlRequest: CustomTestStringConvertible {
    public var testDescription: String { "\(self)" }
}
