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
        do {
            _ = try DirectorydConfig.parse(path: path, text: text)
            return nil
        } catch let e as ConfigError {
            return e
        } catch {
            return ConfigError(file: "", key: "", problem: "\(error)")
        }
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
        #expect(problem(ldap.replacingFirst("schema = \"openldap\"", "schema = \"ad\""))?.key == "ldap.schema")
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

extension String {
    fileprivate func replacingFirst(_ a: String, _ b: String) -> String {
        guard let r = range(of: a) else { return self }
        return replacingCharacters(in: r, with: b)
    }
}
