import FedloginCore
import FedloginNIO
import Foundation
import Logging
import NIOConcurrencyHelpers

@testable import FedloginDaemon

/// A clock whose sleep moves its own time on at once and records the wait.
final class FakeClock: WallClock {
    struct State {
        var now: Double
        var sleeps: [Double] = []
    }
    let state: NIOLockedValueBox<State>

    init(now: Double = 1_800_000_000) {
        state = NIOLockedValueBox(State(now: now))
    }

    func now() -> Double { state.withLockedValue { $0.now } }
    var sleeps: [Double] { state.withLockedValue { $0.sleeps } }
    func advance(_ seconds: Double) { state.withLockedValue { $0.now += seconds } }

    func sleep(seconds: Double) async throws {
        try Task.checkCancellation()
        state.withLockedValue {
            $0.sleeps.append(seconds)
            $0.now += max(0, seconds)
        }
    }
}

/// Local accounts in memory.
final class FakeAccounts: AccountBackend {
    let table = NIOLockedValueBox<[String: LocalAccount]>([:])
    let hashes = NIOLockedValueBox<[String: String]>([:])
    /// Thrown by every lookup when set.
    let failure = NIOLockedValueBox<(any Error)?>(nil)

    func add(_ name: String, uid: UInt32) { table.withLockedValue { $0[name] = LocalAccount(name: name, uid: uid) } }

    func passwd() throws -> [ShadowAccounts.PasswdLine] { [] }
    func lookup(_ name: String) throws -> LocalAccount? {
        if let e = failure.withLockedValue({ $0 }) { throw e }
        return table.withLockedValue { $0[name] }
    }
    func uidInUse(_ uid: UInt32) throws -> Bool { table.withLockedValue { $0.values.contains { $0.uid == uid } } }
    func uidMin() -> UInt32 { 1000 }
    func freeUID(in range: ClosedRange<UInt32>, reserved: Set<UInt32>) throws -> UInt32? {
        range.first { uid in !reserved.contains(uid) && !((try? uidInUse(uid)) ?? true) }
    }
    /// Runs while an account is created (on the account-change queue).
    let whileCreating = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)
    func create(name: String, uid: UInt32, gecos: String, shell: String, homeRoot: String, groups: [String]) throws {
        whileCreating.withLockedValue { $0 }?()
        add(name, uid: uid)
    }
    func existingGroups() -> Set<String> { [] }
    func setPasswordHash(name: String, hash: String) throws { hashes.withLockedValue { $0[name] = hash } }
    func delete(name: String) throws { _ = table.withLockedValue { $0.removeValue(forKey: name) } }
    func shadowHash(_ name: String) throws -> String? { hashes.withLockedValue { $0[name] } }
    func groups(of name: String) -> Set<String> { [] }
    func addToGroup(name: String, group: String) throws {}
    func removeFromGroup(name: String, group: String) throws {}
    func groupID(_ name: String) -> UInt32? { nil }
    func deleteGroup(name: String) throws {}
    /// The lock fields of shadow entries, for the accounts a test gives one.
    let shadow = NIOLockedValueBox<[String: ShadowLocks.Entry]>([:])
    func lockEntry(_ name: String) throws -> ShadowLocks.Entry? { shadow.withLockedValue { $0[name] } }
    func setExpiry(name: String, day: Int?) throws { shadow.withLockedValue { $0[name]?.expire = day } }
    /// Thrown by lockPassword when set (usermod failing).
    let lockFailure = NIOLockedValueBox<(any Error)?>(nil)
    func lockPassword(name: String) throws {
        if let e = lockFailure.withLockedValue({ $0 }) { throw e }
        shadow.withLockedValue { $0[name]?.passwordLocked = true }
    }
    func unlockPassword(name: String) throws { shadow.withLockedValue { $0[name]?.passwordLocked = false } }
}

/// A directory that knows some users and can be made unreachable or refusing.
final class FakeDirectory: DirectoryService {
    struct State {
        var users: [String: DirectoryUser] = [:]
        var policy = DevicePolicy(defaultIdP: "test")
        var access = DeviceAccess(associated: true, unbound: false, disabled: false, selfService: true)
        var unreachable = false
        /// Requests fail as the client's own timeout fails them.
        var timesOut = false
        /// Requests are taken and never answered.
        var silent = false
        /// `lookup` requests received.
        var lookups = 0
        /// Reports fail while this is above zero (each failure counts it down).
        var failReports = 0
        var reports: [BindingReport] = []
        /// Runs while an `access` request is answered (before its answer returns).
        var whileAnsweringAccess: (@Sendable () throws -> Void)?
    }
    let state = NIOLockedValueBox(State())

    func check() throws {
        if state.withLockedValue({ $0.unreachable }) { throw DirectoryClient.Unavailable(.unreachable, "directory at /fake: unreachable") }
        if state.withLockedValue({ $0.timesOut }) {
            throw DirectoryClient.Unavailable(.unreachable, "directory at /fake: no answer from /fake in time", timedOut: true)
        }
    }
    func lookup(_ user: String) async throws -> DirectoryUser? {
        try check()
        if state.withLockedValue({ s in
            s.lookups += 1
            return s.silent
        }) {
            try await Task.sleep(nanoseconds: 60_000_000_000)
        }
        return state.withLockedValue { $0.users[user] }
    }
    func policy(device: String) async throws -> DevicePolicy {
        try check()
        return state.withLockedValue { $0.policy }
    }
    func deviceUsers(device: String) async throws -> [String] {
        try check()
        return state.withLockedValue { Array($0.users.keys) }
    }
    func access(user: String, device: String) async throws -> DeviceAccess? {
        try check()
        let (answer, meanwhile) = state.withLockedValue { ($0.access, $0.whileAnsweringAccess) }
        try meanwhile?()
        return answer
    }
    func changePassword(user: String, current: SecretBytes, new: SecretBytes) async throws { try check() }
    func report(_ binding: BindingReport) async throws {
        try check()
        let fail = state.withLockedValue { s -> Bool in
            if s.failReports > 0 {
                s.failReports -= 1
                return true
            }
            s.reports.append(binding)
            return false
        }
        if fail { throw DirectoryClient.Unavailable(.refused, "directory refused report_binding: busy") }
    }
}

/// An IdP over HTTP: discovery, a device authorization and scripted token answers.
final class FakeIdP: HTTPTransport, @unchecked Sendable {
    static let issuer = "https://idp.test"
    struct State {
        var deviceStart: [String: Any] = [
            "device_code": "dc", "user_code": "ABCD-EFGH", "verification_uri": "https://idp.test/device", "interval": 5, "expires_in": 600,
        ]
        /// Token endpoint answers, in order; the last one repeats.
        var tokenAnswers: [(Int, [String: Any])] = []
        var polls = 0
    }
    let state: NIOLockedValueBox<State>

    init(tokenAnswers: [(Int, [String: Any])]) {
        var s = State()
        s.tokenAnswers = tokenAnswers
        state = NIOLockedValueBox(s)
    }

    static func error(_ code: String) -> (Int, [String: Any]) { (400, ["error": code]) }

    var polls: Int { state.withLockedValue { $0.polls } }

    func json(_ status: Int, _ object: [String: Any]) -> HTTPClient.Response {
        HTTPClient.Response(status: status, body: try! JSONSerialization.data(withJSONObject: object))
    }

    /// The JWKS the IdP publishes (`TestSigner.jwks`); empty: none.
    let jwks = NIOLockedValueBox<[String: Any]>(["keys": [] as [Any]])

    func get(_ url: String, headers: [String]) async throws -> HTTPClient.Response {
        if url == "\(Self.issuer)/jwks" { return json(200, jwks.withLockedValue { $0 }) }
        guard url.hasSuffix("/.well-known/openid-configuration") else { return json(404, [:]) }
        return json(
            200,
            [
                "issuer": Self.issuer, "authorization_endpoint": "\(Self.issuer)/authorize", "token_endpoint": "\(Self.issuer)/token",
                "jwks_uri": "\(Self.issuer)/jwks", "device_authorization_endpoint": "\(Self.issuer)/device",
            ])
    }

    func post(_ url: String, headers: [String], body: Data) async throws -> HTTPClient.Response {
        if url.hasSuffix("/device") { return json(200, state.withLockedValue { $0.deviceStart }) }
        let (status, object) = state.withLockedValue { s -> (Int, [String: Any]) in
            s.polls += 1
            return s.tokenAnswers.isEmpty ? (500, [:]) : s.tokenAnswers[min(s.polls - 1, s.tokenAnswers.count - 1)]
        }
        return json(status, object)
    }
}

/// A PAM conversation that answers prompts from a script and records what it was shown.
final class ScriptedConversation: PAMConversation, @unchecked Sendable {
    let peer: PeerCredentials
    let lock = NIOLock()
    var answers: [String]
    /// Answers made from what the conversation has shown so far (after `answers` run out).
    var reply: (@Sendable ([String]) -> String?)?
    var shown: [String] = []
    var prompts: [String] = []
    /// How long each prompt would have waited for its answer.
    var timeouts: [Double] = []

    init(root: Bool = true, answers: [String] = []) {
        peer = PeerCredentials(pid: 4242, uid: root ? 0 : 1000, gid: root ? 0 : 1000)
        self.answers = answers
    }

    func info(_ text: String) async throws { lock.withLock { shown.append("info: " + text) } }
    func error(_ text: String) async throws { lock.withLock { shown.append("error: " + text) } }
    func sessionInfo(_ text: String) async throws { lock.withLock { shown.append("session: " + text) } }

    func ask(_ prompt: String, echo: Bool, timeout: Double) async throws -> String {
        let next: String? = lock.withLock {
            prompts.append(prompt)
            timeouts.append(timeout)
            if !answers.isEmpty { return answers.removeFirst() }
            return reply?(shown)
        }
        guard let next else { throw Conversation.Ended(description: "no answer within \(Int(timeout)) s") }
        return next
    }

    func askSecret(_ prompt: String, timeout: Double) async throws -> SecretBytes {
        let text = try await ask(prompt, echo: false, timeout: timeout)
        return Array(text.utf8).withUnsafeBytes { SecretBytes(copying: $0) }
    }

    func keepingAlive<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T { try await body() }
}

/// A runtime over fakes, in a temporary directory: no root, no /etc.
struct TestWorld {
    let dir: String
    let clock = FakeClock()
    let accounts = FakeAccounts()
    let directory = FakeDirectory()
    let idp: FakeIdP
    let runtime: Runtime

    init(
        tokenAnswers: [(Int, [String: Any])] = [], signinTimeout: Int = 300, lockout: LockoutPolicy = .init(), flows: String = "\"device\"",
        signin: String = ""
    ) throws {
        dir = NSTemporaryDirectory() + "fedlogin-daemon-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        idp = FakeIdP(tokenAnswers: tokenAnswers)
        let toml = """
            [daemon]
            socket = "\(dir)/fedlogind.sock"
            state_dir = "\(dir)/state"
            system_root = "\(dir)/root"
            device_id = "device-1"
            [accounts]
            uid_min = 70000
            uid_max = 70100
            [signin]
            timeout = \(signinTimeout)
            \(signin)
            [idp.test]
            display_name = "Test IdP"
            issuer = "\(FakeIdP.issuer)"
            client_id = "fedlogin"
            client_auth = "none"
            flows = [\(flows)]
            """
        let config = try ConfigParser.parse(files: [("\(dir)/fedlogin.conf", toml)])
        directory.state.withLockedValue {
            $0.users["alice"] = DirectoryUser(username: "alice", email: "alice@example.com", displayName: "Alice")
            $0.policy.lockout = lockout
        }
        var seams = Runtime.Seams()
        seams.clock = clock
        seams.accounts = accounts
        seams.directory = directory
        seams.idpTransport = idp
        seams.machineID = { "device-1" }
        var logger = Logger(label: "fedlogind-test")
        logger.logLevel = .critical
        runtime = try Runtime(config: config, logger: logger, fixedListeners: [:], seams: seams)
    }

    var flow: LoginFlow { LoginFlow(runtime: runtime) }
    var credential: LocalCredential { LocalCredential(runtime: runtime) }

    func authenticate(_ user: String = "alice", service: String = "sshd", conv: ScriptedConversation) async -> (ResultStatus, String) {
        await flow.authenticate(PAMRequest(user: user, service: service, tty: "", rhost: "", ruser: ""), conv: conv)
    }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }
}
