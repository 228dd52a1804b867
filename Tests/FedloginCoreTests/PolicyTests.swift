import FedloginCore
import Testing

struct PolicyTests {
    let alice = DirectoryUser(username: "alice", email: "alice@example.test", groups: ["eng"])
    let policy = DevicePolicy(defaultIdP: "okta", routing: [RoutingRule(group: "contractors", idp: "entra")])

    func plan(
        _ requested: String = "alice", local: LocalAccount? = nil, managed: Bool = false, user: DirectoryUser?? = nil,
        idps: Set<String> = ["okta", "entra"], taken: Bool = false
    ) -> LoginPlan {
        LoginPlanner.plan(
            requested: requested, local: local, managed: managed, directoryUser: user ?? alice, policy: policy,
            configuredIdPs: idps, uidMin: 1000, rules: AccountRules(directoryUIDs: 1000...99999), uidTaken: { _ in taken })
    }

    @Test func firstLoginForADirectoryUser() {
        guard case .firstLogin(let p) = plan() else {
            Issue.record("expected a first login")
            return
        }
        #expect(p.localUsername == "alice")
        #expect(p.idp == "okta")
    }

    @Test func routingByGroup() {
        var bob = alice
        bob.username = "bob"
        bob.groups = ["contractors"]
        guard case .firstLogin(let p) = plan("bob", user: bob) else {
            Issue.record("expected a first login")
            return
        }
        #expect(p.idp == "entra")
        #expect(p.idpReason.contains("contractors"))
    }

    @Test func neverRootOrSystemOrForeignLocalAccounts() {
        #expect(plan("root", local: LocalAccount(name: "root", uid: 0)) == .notOurs(reason: "root is never a fedlogin account"))
        #expect(plan("root") == .notOurs(reason: "root is never a fedlogin account"))
        if case .notOurs = plan("alice", local: LocalAccount(name: "alice", uid: 5)) {} else { Issue.record("system account taken") }
        if case .notOurs = plan("alice", local: LocalAccount(name: "alice", uid: 1001)) {} else { Issue.record("local account taken") }
        #expect(plan("alice", local: LocalAccount(name: "alice", uid: 70000), managed: true) == .localCredential)
    }

    @Test func refusals() {
        if case .refuse(.userUnknown, let m, _) = plan(user: .some(nil)) { #expect(m.contains("not known")) } else { Issue.record("unknown") }
        var disabled = alice
        disabled.disabled = true
        if case .refuse(.authError, let m, _) = plan(user: disabled) { #expect(m.contains("disabled")) } else { Issue.record("disabled") }
        if case .refuse(.unavailable, let m, _) = plan(idps: ["entra"]) { #expect(m.contains("okta")) } else { Issue.record("no idp") }
        var sys = alice
        sys.uid = 10
        if case .refuse(.authError, _, let r) = plan(user: sys) { #expect(r.contains("UID_MIN")) } else { Issue.record("system uid") }
        var assigned = alice
        assigned.uid = 70001
        if case .refuse(.authError, _, let r) = plan(user: assigned, taken: true) { #expect(r.contains("in use")) } else { Issue.record("uid taken") }
    }

    @Test func emailLoginNameIsToldTheLocalName() {
        if case .refuse(_, let m, _) = plan("alice@example.test") { #expect(m.contains("Log in as alice")) } else { Issue.record("email name") }
    }

    @Test func usernames() throws {
        #expect(try LocalUsername.derive(username: "Alice", email: nil) == "alice")
        #expect(try LocalUsername.derive(username: nil, email: "Bob.Smith@x.test") == "bob.smith")
        #expect(throws: LocalUsername.Problem.self) { try LocalUsername.derive(username: "1abc", email: nil) }
        #expect(throws: LocalUsername.Problem.self) { try LocalUsername.derive(username: String(repeating: "a", count: 33), email: nil) }
        #expect(throws: LocalUsername.Problem.self) { try LocalUsername.derive(username: "a b", email: nil) }
        // ASCII lowercasing only: look-alike letters are refused, never mapped to ASCII.
        #expect(throws: LocalUsername.Problem.self) { try LocalUsername.derive(username: "\u{212A}ate", email: nil) }
        #expect(throws: LocalUsername.Problem.self) { try LocalUsername.derive(username: nil, email: "\u{212A}ate@x.test") }
        #expect(throws: LocalUsername.Problem.self) { try LocalUsername.derive(username: "\u{17F}am", email: nil) }
        #expect(throws: LocalUsername.Problem.self) { try LocalUsername.derive(username: "\u{130}vy", email: nil) }
        #expect(try LocalUsername.derive(username: "KATE", email: nil) == "kate")
    }

    @Test func passcodePolicySaysWhatIsMissing() {
        let p = PasscodePolicy(minLength: 8, minClasses: 3)
        #expect(p.problems(with: "Correct-Horse9").isEmpty)
        let short = p.problems(with: "Ab1")
        #expect(short.count == 1 && short[0].contains("at least 8"))
        let weak = p.problems(with: "alllowercase")
        #expect(weak.count == 1 && weak[0].contains("an uppercase letter"))
    }

    @Test func passwordDecisions() {
        let sync = DevicePolicy(passwordSync: true, defaultIdP: "okta")
        var u = alice
        u.passwordHash = "$y$j9T$abc$def"
        #expect(LoginPlanner.passwordDecision(user: u, policy: sync, hashSupported: { _ in true }) == .useDirectoryHash("$y$j9T$abc$def"))
        if case .refuse = LoginPlanner.passwordDecision(user: u, policy: sync, hashSupported: { _ in false }) {} else { Issue.record("unsupported") }
        for weak in ["abJnggxhB/yWI", "$3$$8846f7eaee8fb117ad06bdd830b7586c"] {
            u.passwordHash = weak
            if case .refuse = LoginPlanner.passwordDecision(user: u, policy: sync, hashSupported: { _ in true }) {
            } else {
                Issue.record("weak scheme \(weak) accepted")
            }
        }
        u.passwordHash = nil
        if case .askPasscode(let n) = LoginPlanner.passwordDecision(user: u, policy: sync, hashSupported: { _ in true }) {
            #expect(n?.contains("not synced to devices") == true)
        } else {
            Issue.record("no hash")
        }
        // A self-service user on an LDAP directory gets no hash: told why.
        if case .askPasscode(let n) = LoginPlanner.passwordDecision(user: u, policy: sync, associated: false, hashSupported: { _ in true }) {
            #expect(n?.contains("not assigned you to it") == true)
        } else {
            Issue.record("no hash, not associated")
        }
        var external = u
        external.passwordAuthority = .external
        if case .askPasscode(let n) = LoginPlanner.passwordDecision(user: external, policy: sync, associated: false, hashSupported: { _ in true }) {
            #expect(n?.contains("not synced to devices") == true)
        } else {
            Issue.record("external, not associated")
        }
        u.passwordSync = false
        u.passwordHash = "$y$j9T$abc$def"
        #expect(LoginPlanner.passwordDecision(user: u, policy: sync, hashSupported: { _ in true }) == .askPasscode(notice: nil))
    }

    @Test func authorizationResponses() {
        let r = AuthorizationResponse(target: "/callback?code=a%2Bb&state=s+1")
        #expect(r.code == "a+b" && r.state == "s 1")
        let pasted = AuthorizationResponse(target: "http://127.0.0.1:5000/callback?error=access_denied&state=x#frag")
        #expect(pasted.error == "access_denied" && pasted.state == "x")
    }

    @Test func backoffIsCapped() {
        #expect(Backoff.delay(afterAttempts: 0, max: 60) == 1)
        #expect(Backoff.delay(afterAttempts: 3, max: 60) == 8)
        #expect(Backoff.delay(afterAttempts: 40, max: 60) == 60)
    }
}
