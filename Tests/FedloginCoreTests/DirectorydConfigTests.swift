import FedloginCore
import Testing

struct DirectorydConfigTests {
    let path = "/etc/fedlogin-directoryd/directoryd.conf"
    let ldap = """
        backend = "ldap"
        socket = "/run/d.sock"
        [ldap]
        uris = ["ldapi:///", "ldap://ldap1.example.test"]
        users_base = "ou=users,dc=example,dc=test"
        groups_base = "ou=groups,dc=example,dc=test"
        devices_base = "ou=devices,dc=example,dc=test"
        policy_dn = "cn=policy,dc=example,dc=test"
        bind_dn = "cn=dev1,ou=devices,dc=example,dc=test"
        bind_password_file = "/etc/fedlogin-directoryd/ldap.secret"
        timeout = 3
        schema = "openldap"
        [ldap.attributes]
        username = "sAMAccountName"
        """

    func problem(_ text: String) -> ConfigError? {
        configProblem { _ = try DirectorydConfig.parse(path: path, text: text) }
    }

    @Test func parsesTheLDAPBackend() throws {
        let c = try DirectorydConfig.parse(path: path, text: ldap)
        #expect(c.backend == .ldap)
        #expect(c.socketPath == "/run/d.sock")
        let l = try #require(c.ldap)
        #expect(l.uris == ["ldapi:///", "ldap://ldap1.example.test"])
        #expect(l.policyDN == "cn=policy,dc=example,dc=test")
        #expect(l.bindDN == "cn=dev1,ou=devices,dc=example,dc=test")
        #expect(l.timeout == 3)
        #expect(l.attributes.username == "sAMAccountName")
        #expect(l.attributes.email == "mail")
    }

    @Test func theFileBackendIsTheDefault() throws {
        let c = try DirectorydConfig.parse(path: path, text: "[file]\ndirectory = \"/srv/d.json\"\n")
        #expect(c.backend == .file)
        #expect(c.file.directory == "/srv/d.json")
        #expect(c.file.stateDir == "/var/lib/fedlogin-directoryd")
        #expect(try DirectorydConfig.parse(path: path, text: "").backend == .file)
    }

    @Test func errorsNameTheKey() {
        #expect(problem("backnd = \"ldap\"")?.key == "backnd")
        #expect(problem("backend = \"sql\"")?.key == "backend")
        #expect(problem("[file]\ndirectroy = \"/x\"")?.key == "file.directroy")
        #expect(problem("[database]\nx = 1")?.problem.contains("unknown section") == true)
        #expect(problem(ldap.replacingFirst("timeout = 3", "timeout = \"3\""))?.key == "ldap.timeout")
        #expect(problem(ldap.replacingFirst("timeout = 3", "timeout = 0"))?.key == "ldap.timeout")
        #expect(problem(ldap.replacingFirst("timeout = 3", "timout = 3"))?.key == "ldap.timout")
        #expect(problem(ldap.replacingFirst("schema = \"openldap\"", "schema = \"novell\""))?.key == "ldap.schema")
        #expect(problem(ldap.replacingFirst("username = \"sAMAccountName\"", "usrname = \"x\""))?.key == "ldap.attributes.usrname")
        #expect(problem(ldap.replacingFirst("username = \"sAMAccountName\"", "username = \"a)(b\""))?.key == "ldap.attributes.username")
        #expect(problem(ldap.replacingFirst("\"ldap://ldap1.example.test\"", "\"http://x\""))?.key == "ldap.uris")
        #expect(problem(ldap.replacingFirst("policy_dn = \"cn=policy,dc=example,dc=test\"\n", ""))?.key == "ldap.policy_dn")
        #expect(problem(ldap.replacingFirst("users_base = \"ou=users,dc=example,dc=test\"", "users_base = \"users\""))?.key == "ldap.users_base")
        #expect(problem(ldap.replacingFirst("bind_password_file = \"/etc/fedlogin-directoryd/ldap.secret\"\n", ""))?.key == "ldap.bind_password_file")
        #expect(problem("backend = \"ldap\"")?.key == "ldap")
        #expect(problem("[ldap\n")?.key == "")
    }

    @Test func saslExternalNeedsLdapi() throws {
        let external = ldap.replacingFirst("bind_dn = \"cn=dev1,ou=devices,dc=example,dc=test\"\n", "")
            .replacingFirst("bind_password_file = \"/etc/fedlogin-directoryd/ldap.secret\"\n", "")
        #expect(problem(external)?.key == "ldap.uris")
        let c = try DirectorydConfig.parse(path: path, text: external.replacingFirst(", \"ldap://ldap1.example.test\"", ""))
        #expect(c.ldap?.bindDN == nil)
    }

    @Test func filterValuesAreEscaped() {
        #expect(LDAPFilter.escape("alice") == "alice")
        #expect(LDAPFilter.escape("*)(uid=*))(|(uid=*") == "\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a")
        #expect(LDAPFilter.escape("a\\b\u{0}c") == "a\\5cb\\00c")
        #expect(LDAPFilter.escape("Zoë") == "Zoë")
        #expect(LDAPFilter.escape("Zoë*(日本)") == "Zoë\\2a\\28日本\\29")
        #expect(LDAPFilter.anyEquals(["uid", "mail"], "a*") == "(|(uid=a\\2a)(mail=a\\2a))")
        #expect(LDAPFilter.anyEquals(["cn"], "dev(1)") == "(cn=dev\\281\\29)")
    }

    @Test func dnValuesAreEscaped() {
        #expect(LDAPDN.escapeValue("4f1c-9a") == "4f1c-9a")
        #expect(LDAPDN.escapeValue("a,ou=x+cn=y") == "a\\,ou\\=x\\+cn\\=y")
        #expect(LDAPDN.escapeValue("#a b ") == "\\#a b\\ ")
        #expect(LDAPDN.escapeValue(" \"<>;\\\u{0}") == "\\ \\\"\\<\\>\\;\\\\\\00")
    }

    @Test func mapsAnEntryLikeTheFileBackend() throws {
        let a = LDAPAttributes.openldap
        let e = LDAPEntry(
            dn: "uid=alice,ou=users,dc=example,dc=test",
            attributes: [
                "uid": ["alice"], "MAIL": ["alice@example.test"], "cn": ["Alice A"], "uidNumber": ["70001"],
                "userPassword": ["{CRYPT}$6$salt$hash"],
            ])
        let u = try #require(a.user(from: e, groups: ["admins"], today: 20000))
        #expect(
            u
                == DirectoryUser(
                    username: "alice", email: "alice@example.test", displayName: "Alice A", groups: ["admins"],
                    passwordAuthority: .directory, passwordHash: "$6$salt$hash", uid: 70001))
        var expired = e
        expired = LDAPEntry(dn: e.dn, attributes: ["uid": ["alice"], "mail": ["a@x"], "shadowExpire": ["19999"], "userPassword": ["plain"]])
        let d = try #require(a.user(from: expired, groups: [], today: 20000))
        #expect(d.disabled)
        #expect(d.passwordHash == nil)
        #expect(d.passwordAuthority == .local)
        #expect(a.user(from: LDAPEntry(dn: "x=y", attributes: ["uid": ["bob"], "shadowExpire": ["30000"]]), groups: [], today: 20000) == nil)
        #expect(
            a.user(from: LDAPEntry(dn: "x=y", attributes: ["uid": ["b"], "mail": ["b@x"], "shadowExpire": ["30000"]]), groups: [], today: 20000)?
                .disabled == false)
        // ppolicy's lock, whatever its value, is disabled.
        #expect(
            a.user(
                from: LDAPEntry(dn: "x=y", attributes: ["uid": ["b"], "mail": ["b@x"], "pwdAccountLockedTime": ["000001010000Z"]]), groups: [],
                today: 1)?
                .disabled == true)
        #expect(a.userAttributes.contains("pwdAccountLockedTime"))
    }

    @Test func malformedEntriesSayWhy() {
        let a = LDAPAttributes.openldap
        func problem(_ extra: [String: [String]]) -> String? {
            var attributes: [String: [String]] = ["uid": ["bob"], "mail": ["bob@x"], "uidNumber": ["80001"]]
            for (k, v) in extra { attributes[k] = v }
            return a.problem(with: LDAPEntry(dn: "uid=bob", attributes: attributes))
        }
        #expect(problem([:]) == nil)
        #expect(problem(["uidNumber": ["80001", "80002"]]) == "it has 2 values of uidNumber, where one is expected")
        #expect(problem(["uid": ["bob", "robert"]])?.contains("2 values of uid") == true)
        #expect(problem(["mail": []]) == "it has no mail the bind DN can read")
        #expect(problem(["uidNumber": ["eighty"]])?.contains("is not a number") == true)
        #expect(problem(["uidNumber": ["-1"]])?.contains("is not a number") == true)
        #expect(problem(["displayName": ["Bob\nroot::0:0"]])?.contains("control character") == true)
        #expect(problem(["uid": ["bob\n"]])?.contains("control character") == true)
        #expect(
            a.user(from: LDAPEntry(dn: "uid=bob", attributes: ["uid": ["bob"], "mail": ["b@x"], "uidNumber": ["1", "2"]]), groups: [], today: 1)
                == nil)
    }

    @Test func theOpenLDAPPresetReadsTheFedloginSchemaAndEveryNameIsOverridable() throws {
        let a = LDAPAttributes.openldap
        #expect(a.deviceUsers == "fedloginAssociatedUser")
        #expect(a.unboundUsers == "fedloginUnboundUser")
        #expect(a.policy == "fedloginPolicy")
        #expect(a.bindingClass == "fedloginBinding")
        #expect(a.bindingReport == "fedloginBindingReport")
        #expect(a.deviceClass == "device")
        #expect(a.locked == "pwdAccountLockedTime")
        let keys = [
            "username", "email", "display_name", "common_name", "uid_number", "password", "expire", "locked", "member", "group_name",
            "device_id", "device_class", "device_users", "unbound_users", "policy", "binding_class", "binding_report",
        ]
        let text = ldap.replacingFirst(
            "username = \"sAMAccountName\"", keys.map { "\($0) = \"x-\($0.replacingOccurrences(of: "_", with: "-"))\"" }.joined(separator: "\n"))
        let b = try #require(try DirectorydConfig.parse(path: path, text: text).ldap).attributes
        #expect(b.unboundUsers == "x-unbound-users" && b.bindingReport == "x-binding-report" && b.locked == "x-locked")
        #expect(b.deviceClass == "x-device-class" && b.bindingClass == "x-binding-class" && b.deviceUsers == "x-device-users")
        #expect(b.policy == "x-policy" && b.expire == "x-expire" && b.username == "x-username")
        let wrong = problem(ldap.replacingFirst("username = \"sAMAccountName\"", "unbound = \"x\""))
        #expect(wrong?.key == "ldap.attributes.unbound" && wrong?.problem.contains("unbound_users") == true)
    }
}

struct DirectorydTLSConfigTests {
    let path = "/etc/fedlogin-directoryd/directoryd.conf"

    func config(_ uris: [String], _ extra: String = "", bind: Bool = true) throws -> DirectorydConfig.LDAPBackend {
        let bindKeys = bind ? "bind_dn = \"cn=d,dc=example,dc=test\"\nbind_password_file = \"/etc/s\"" : ""
        let text = ldapConfigText(uris: uris, bindKeys + "\n" + extra)
        return try #require(try DirectorydConfig.parse(path: path, text: text).ldap)
    }

    func problem(_ uris: [String], _ extra: String = "", bind: Bool = true) -> ConfigError? {
        configProblem { _ = try config(uris, extra, bind: bind) }
    }

    @Test func theDefaultIsTLSExceptForLdapiAndLoopback() throws {
        let c = try config([
            "ldapi:///", "ldap://127.0.0.1:389", "ldap://[::1]", "ldap://localhost", "ldap://ldap1.example.test", "ldaps://ldap2.example.test",
        ])
        #expect(c.tls == nil)
        #expect(c.tlsMode(for: "ldapi:///") == .none)
        #expect(c.tlsMode(for: "ldap://127.0.0.1:389") == .none)
        #expect(c.tlsMode(for: "ldap://[::1]") == .none)
        #expect(c.tlsMode(for: "ldap://localhost") == .none)
        #expect(c.tlsMode(for: "ldap://ldap1.example.test") == .starttls)
        #expect(c.tlsMode(for: "ldaps://ldap2.example.test") == .ldaps)
        #expect(c.tlsMode(for: "LDAP://LDAP1.example.test:389/") == .starttls)
    }

    @Test func anExplicitModeAppliesToEveryNetworkURI() throws {
        let c = try config(["ldapi:///", "ldap://127.0.0.1"], "tls = \"starttls\"\nca_file = \"/etc/ca.pem\"")
        #expect(c.tlsMode(for: "ldap://127.0.0.1") == .starttls)
        #expect(c.tlsMode(for: "ldapi:///") == .none)
        #expect(c.caFile == "/etc/ca.pem")
        #expect(try config(["ldaps://a.example.test"], "tls = \"ldaps\"").tlsMode(for: "ldaps://a.example.test") == .ldaps)
        #expect(try config(["ldap://127.0.0.2:1389"], "tls = \"none\"").tlsMode(for: "ldap://127.0.0.2:1389") == .none)
    }

    @Test func noneOnlyForLdapiOrLoopback() {
        let e = problem(["ldap://ldap1.example.test"], "tls = \"none\"")
        #expect(e?.key == "ldap.tls")
        #expect(e?.problem.contains("loopback") == true)
        #expect(e?.problem.contains("starttls") == true)
        #expect(problem(["ldap://10.0.0.1"], "tls = \"none\"")?.key == "ldap.tls")
        #expect(problem(["ldap://127.evil.example"], "tls = \"none\"")?.key == "ldap.tls")
        #expect(problem(["ldap://localhost.example.test"], "tls = \"none\"")?.key == "ldap.tls")
        #expect(problem(["ldaps://a.example.test"], "tls = \"none\"")?.key == "ldap.tls")
        #expect(problem(["ldapi:///", "ldap://[::1]:389"], "tls = \"none\"") == nil)
    }

    @Test func theModeMustFitTheScheme() {
        let a = problem(["ldap://a.example.test"], "tls = \"ldaps\"")
        #expect(a?.key == "ldap.tls")
        #expect(a?.problem.contains("ldaps://") == true)
        let b = problem(["ldaps://a.example.test"], "tls = \"starttls\"")
        #expect(b?.key == "ldap.tls")
        #expect(b?.problem.contains("ldap://") == true)
        #expect(problem(["ldap://a.example.test"], "tls = \"STARTTLS\"")?.key == "ldap.tls")
        #expect(problem(["ldap://a.example.test"], "tls = true")?.key == "ldap.tls")
    }

    @Test func clientCertificateKeys() throws {
        let cert = "tls_cert = \"/etc/d.crt\"\ntls_key = \"/etc/d.key\""
        // SASL EXTERNAL over TLS with the client certificate.
        let c = try config(["ldaps://a.example.test", "ldapi:///"], cert, bind: false)
        #expect(c.bindDN == nil)
        #expect(c.tlsCert == "/etc/d.crt" && c.tlsKey == "/etc/d.key")
        _ = try config(["ldap://a.example.test"], cert, bind: false)
        // Without a certificate, SASL EXTERNAL stays ldapi:// only.
        #expect(problem(["ldaps://a.example.test"], bind: false)?.key == "ldap.uris")
        #expect(problem(["ldaps://a.example.test"], bind: false)?.problem.contains("tls_cert") == true)
        // Over a loopback URI without TLS, a certificate is never shown.
        #expect(problem(["ldap://127.0.0.1"], cert, bind: false)?.key == "ldap.tls_cert")
        #expect(problem(["ldap://a.example.test"], "tls_cert = \"/etc/d.crt\"")?.key == "ldap.tls_key")
        #expect(problem(["ldap://a.example.test"], "tls_key = \"/etc/d.key\"")?.key == "ldap.tls_cert")
        #expect(problem(["ldap://a.example.test"], "tls_key = \"d.key\"\ntls_cert = \"/etc/d.crt\"")?.key == "ldap.tls_key")
        #expect(problem(["ldapi:///"], "ca_file = \"/etc/ca.pem\"")?.key == "ldap.ca_file")
        // A simple bind may show a certificate too.
        _ = try config(["ldaps://a.example.test"], cert)
    }

    @Test func uriHosts() {
        #expect(LDAPURI("ldap://[::1]:389/")?.host == "::1")
        #expect(LDAPURI("ldap:///")?.isLoopback == true)
        #expect(LDAPURI("ldap://127.0.0.1:389")?.isLoopback == true)
        #expect(LDAPURI("ldap://127.0.0.256")?.isLoopback == false)
        #expect(LDAPURI("ldap://128.0.0.1")?.isLoopback == false)
        #expect(LDAPURI("http://x") == nil)
    }

    @Test func timeoutsTimesURIsMustFitFedlogindsDirectoryTimeout() throws {
        // 2 s × (3 URIs + the one retry) = 8 s.
        let c = try config(["ldap://127.0.0.1:1", "ldap://127.0.0.1:2", "ldap://127.0.0.1:3"], "timeout = 2")
        #expect(throws: Never.self) { try c.checkTimeout(against: 8, file: path, daemonFile: "in /etc/fedlogin/fedlogin.conf") }
        do {
            try c.checkTimeout(against: 7, file: path, daemonFile: "in /etc/fedlogin/fedlogin.conf")
            Issue.record("accepted 2 s × (3 URIs + 1) against 7 s")
        } catch let e as ConfigError {
            #expect(e.key == "ldap.timeout")
            #expect(e.problem.contains("daemon.directory_timeout"))
            #expect(e.problem.contains("8 s"))
            #expect(e.problem.contains("Lower ldap.timeout to 1"))
            #expect(e.problem.contains("raise daemon.directory_timeout to 8"))
        }
    }
}

struct LDAPSchemaPresetTests {
    let path = "/etc/fedlogin-directoryd/directoryd.conf"

    func attributes(_ schema: String, _ overrides: String = "") throws -> LDAPAttributes {
        let text = ldapConfigText("schema = \"\(schema)\"\n" + overrides)
        return try #require(try DirectorydConfig.parse(path: path, text: text).ldap).attributes
    }

    @Test func freeipaReadsNsAccountLock() throws {
        let a = try attributes("freeipa")
        #expect(a == .freeipa)
        #expect(a.username == "uid" && a.email == "mail" && a.displayName == "displayName" && a.commonName == "cn")
        #expect(a.uidNumber == "uidNumber" && a.member == "member")
        #expect(a.expire == "nsAccountLock")
        #expect(a.isDisabled("TRUE", today: 0))
        #expect(a.isDisabled("true", today: 0))
        #expect(!a.isDisabled("FALSE", today: 0))
        #expect(!a.isDisabled(nil, today: 0))
        #expect(!a.isDisabled("1", today: 0))
        #expect(a.passwordHashes)
        let e = LDAPEntry(dn: "uid=al,cn=users", attributes: ["uid": ["al"], "mail": ["al@x"], "nsAccountLock": ["TRUE"], "uidNumber": ["70001"]])
        let u = try #require(a.user(from: e, groups: ["g"], today: 20000))
        #expect(u.disabled && u.uid == 70001 && u.groups == ["g"])
    }

    @Test func adReadsTheAccountDisableBitAndHandsOutNoHash() throws {
        let a = try attributes("ad")
        #expect(a == .activeDirectory)
        #expect(a.username == "sAMAccountName" && a.email == "mail" && a.principalName == "userPrincipalName")
        #expect(a.expire == "userAccountControl")
        #expect(a.lookupAttributes == ["sAMAccountName", "mail", "userPrincipalName"])
        #expect(!a.userAttributes.contains("userPassword"))
        // NORMAL_ACCOUNT 0x200 = 512; + ACCOUNTDISABLE 0x2 = 514; + DONT_EXPIRE_PASSWORD 0x10000.
        #expect(!a.isDisabled("512", today: 0))
        #expect(a.isDisabled("514", today: 0))
        #expect(a.isDisabled("66050", today: 0))
        #expect(!a.isDisabled("66048", today: 0))
        #expect(a.isDisabled("2", today: 0))
        #expect(!a.isDisabled("544", today: 0))  // PASSWD_NOTREQD 0x20, not disabled
        #expect(a.isDisabled("-2147483646", today: 0))  // a negative 32-bit value with the bit
        #expect(!a.isDisabled("TRUE", today: 0))
        #expect(!a.isDisabled("", today: 0))
        let e = LDAPEntry(
            dn: "CN=Al,CN=Users,DC=x",
            attributes: [
                "sAMAccountName": ["al"], "userPrincipalName": ["al@corp.example"], "userAccountControl": ["514"],
                "userPassword": ["{CRYPT}$6$salt$hash"],
            ])
        let u = try #require(a.user(from: e, groups: [], today: 20000))
        #expect(u.email == "al@corp.example")
        #expect(u.disabled)
        #expect(u.passwordHash == nil)
        #expect(u.passwordAuthority == .local)
        let withMail = LDAPEntry(
            dn: "CN=Bo", attributes: ["sAMAccountName": ["bo"], "mail": ["bo@x"], "userPrincipalName": ["bo@corp"], "userAccountControl": ["512"]])
        #expect(a.user(from: withMail, groups: [], today: 0)?.email == "bo@x")
        #expect(a.user(from: withMail, groups: [], today: 0)?.disabled == false)
    }

    @Test func openldapStaysTheDefault() throws {
        let a = try attributes("openldap")
        #expect(a == .openldap)
        #expect(a.isDisabled("100", today: 200))
        #expect(!a.isDisabled("300", today: 200))
        #expect(!a.isDisabled("-1", today: 200))
    }

    @Test func everyAttributeStaysOverridable() throws {
        let a = try attributes("ad", "[ldap.attributes]\nusername = \"uid\"\ndisabled = \"userAccountControl2\"\nprincipal_name = \"mailNickname\"")
        #expect(a.username == "uid")
        #expect(a.expire == "userAccountControl2")
        #expect(a.principalName == "mailNickname")
        #expect(a.disabledReading == .accountDisableBit)
        // Overrides before the schema key still apply over the preset.
        let text = ldapConfigText(backendLine: false, "attributes = { email = \"otherMail\" }\nschema = \"freeipa\"")
        let b = try #require(try DirectorydConfig.parse(path: path, text: text).ldap).attributes
        #expect(b.email == "otherMail" && b.expire == "nsAccountLock")
    }
}

extension String {
    fileprivate func replacingFirst(_ a: String, _ b: String) -> String {
        guard let r = range(of: a) else { return self }
        return replacingCharacters(in: r, with: b)
    }
}

/// A directoryd.conf with the LDAP backend's required keys, `uris` as given,
/// then `extra` (more keys of [ldap], or tables after it).
func ldapConfigText(uris: [String] = ["ldapi:///"], backendLine: Bool = true, _ extra: String = "") -> String {
    let list = uris.map { "\"\($0)\"" }.joined(separator: ", ")
    return """
        \(backendLine ? "backend = \"ldap\"" : "")
        [ldap]
        uris = [\(list)]
        users_base = "ou=users,dc=example,dc=test"
        groups_base = "ou=groups,dc=example,dc=test"
        devices_base = "ou=devices,dc=example,dc=test"
        policy_dn = "cn=policy,dc=example,dc=test"
        \(extra)
        """
}

/// The ConfigError `body` throws; nil when it throws none.
func configProblem(_ body: () throws -> Void) -> ConfigError? {
    do {
        try body()
        return nil
    } catch let e as ConfigError {
        return e
    } catch {
        return ConfigError(file: "", key: "", problem: "\(error)")
    }
}
