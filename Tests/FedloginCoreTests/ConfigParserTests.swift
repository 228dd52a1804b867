import FedloginCore
import Testing

struct ConfigParserTests {
    let good = """
        [daemon]
        socket = "/run/x.sock"
        device_id = "dev1"
        [accounts]
        uid_min = 70000
        uid_max = 70100
        [idp.okta]
        display_name = "Okta"
        issuer = "https://example.okta.com"
        client_id = "abc"
        client_secret_file = "/etc/fedlogin/okta.secret"
        """

    @Test func parsesAWholeFile() throws {
        let c = try ConfigParser.parse(files: [("/etc/fedlogin/fedlogin.conf", good)])
        #expect(c.socketPath == "/run/x.sock")
        #expect(c.accounts.uidMax == 70100)
        #expect(c.idps["okta"]?.clientAuth == .clientSecretBasic)
        #expect(c.idps["okta"]?.scopes == ["openid", "email", "profile"])
    }

    @Test func dropInsOverrideKeys() throws {
        let c = try ConfigParser.parse(files: [
            ("/etc/fedlogin/fedlogin.conf", good), ("/etc/fedlogin/conf.d/10-okta.conf", "[idp.okta]\nclient_id = \"xyz\"\n"),
        ])
        #expect(c.idps["okta"]?.clientID == "xyz")
        #expect(c.idps["okta"]?.issuer == "https://example.okta.com")
    }

    func error(_ text: String, file: String = "/f.conf") -> ConfigError? {
        do {
            _ = try ConfigParser.parse(files: [(file, text)])
            return nil
        } catch let e as ConfigError {
            return e
        } catch {
            return nil
        }
    }

    @Test func unknownKeyIsNamedWithItsFile() {
        let e = error("[daemon]\nsokcet = \"/x\"\n", file: "/etc/fedlogin/conf.d/20.conf")
        #expect(e?.key == "daemon.sokcet")
        #expect(e?.file == "/etc/fedlogin/conf.d/20.conf")
        #expect(e?.description.contains("unknown key") == true)
    }

    @Test func aBadValueNamesTheDropInThatSetIt() {
        do {
            _ = try ConfigParser.parse(files: [("/etc/fedlogin/fedlogin.conf", good), ("/etc/fedlogin/conf.d/90.conf", "[signin]\ntimeout = 3\n")])
            Issue.record("accepted")
        } catch let e as ConfigError {
            #expect(e.file == "/etc/fedlogin/conf.d/90.conf" && e.key == "signin.timeout")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func unknownSectionIsNamed() {
        #expect(error("[deamon]\n")?.key == "deamon")
    }

    @Test func emailVerifiedStringIsPerIdPAndOffByDefault() throws {
        let c = try ConfigParser.parse(files: [("/etc/fedlogin/fedlogin.conf", good)])
        #expect(c.idps["okta"]?.emailVerifiedString == false)
        let on = try ConfigParser.parse(files: [("/etc/fedlogin/fedlogin.conf", good + "\nemail_verified_string = true\n")])
        #expect(on.idps["okta"]?.emailVerifiedString == true)
        let e = #expect(throws: ConfigError.self) {
            try ConfigParser.parse(files: [("/etc/fedlogin/fedlogin.conf", good + "\nemail_verified_string = \"true\"\n")])
        }
        #expect(e?.key == "idp.okta.email_verified_string")
    }

    @Test func directoryUIDRangeAndReservedNames() throws {
        let c = try ConfigParser.parse(files: [("/etc/fedlogin/fedlogin.conf", good)])
        #expect(c.accounts.directoryUIDMin == 80000 && c.accounts.directoryUIDMax == 99999)
        #expect(c.accounts.reservedNames.isEmpty)
        let set = try ConfigParser.parse(files: [
            ("/etc/fedlogin/fedlogin.conf", good),
            ("/etc/fedlogin/conf.d/10.conf", "[accounts]\ndirectory_uid_min = 10000\ndirectory_uid_max = 59999\nreserved_names = [\"kiosk\"]\n"),
        ])
        #expect(set.accounts.directoryUIDMin == 10000 && set.accounts.reservedNames == ["kiosk"])
        #expect(error("[accounts]\ndirectory_uid_min = 70050\n")?.key == "accounts.directory_uid_min")
        #expect(error("[accounts]\ndirectory_uid_min = 500\n")?.key == "accounts.directory_uid_min")
        #expect(error("[accounts]\ndirectory_uid_min = 90000\ndirectory_uid_max = 85000\n")?.key == "accounts.directory_uid_max")
        #expect(error("[accounts]\nreserved_names = [\"bad name\"]\n")?.key == "accounts.reserved_names")
    }

    @Test func wrongTypeIsNamed() {
        let e = error("[accounts]\nuid_min = \"7\"\n")
        #expect(e?.key == "accounts.uid_min")
    }

    @Test func invalidTOMLSaysWhere() {
        #expect(error("[daemon\n")?.problem.contains("line 1") == true)
    }

    @Test func negativeDurationsAreRefused() {
        #expect(error("[daemon]\ndirectory_timeout = -1\n")?.key == "daemon.directory_timeout")
        #expect(error("[signin]\nclock_skew = 9000\n")?.key == "signin.clock_skew")
        #expect(error("[signin]\nrevalidate_timeout = 0\n")?.key == "signin.revalidate_timeout")
        #expect(error("[signin]\nrevalidate_timeout = 30\n")?.key == "signin.revalidate_timeout")
        #expect(error("[signin]\nrevalidate_cache = -1\n")?.key == "signin.revalidate_cache")
    }

    @Test func systemUidRangeIsRefused() {
        #expect(error("[accounts]\nuid_min = 500\n")?.key == "accounts.uid_min")
    }

    @Test func plainHTTPIssuerNeedsLoopbackAndOptIn() {
        let remote = "[idp.x]\nissuer = \"http://idp.example\"\nclient_id = \"c\"\nclient_auth = \"none\"\n"
        #expect(error(remote)?.key == "idp.x.issuer")
        let noOptIn = "[idp.x]\nissuer = \"http://127.0.0.1:9400\"\nclient_id = \"c\"\nclient_auth = \"none\"\n"
        #expect(error(noOptIn)?.problem.contains("allow_http_loopback") == true)
        #expect(error(noOptIn + "allow_http_loopback = true\n") == nil)
    }

    @Test func confidentialClientNeedsASecretFile() {
        let e = error("[idp.x]\nissuer = \"https://idp.example\"\nclient_id = \"c\"\n")
        #expect(e?.key == "idp.x.client_secret_file")
    }

    @Test func symmetricAlgorithmsAreRefused() {
        let e = error("[idp.x]\nissuer = \"https://i\"\nclient_id = \"c\"\nclient_auth = \"none\"\nalgorithms = [\"HS256\"]\n")
        #expect(e?.key == "idp.x.algorithms")
    }

    @Test func badEnumValueListsTheChoices() {
        let e = error("[idp.x]\nissuer = \"https://i\"\nclient_id = \"c\"\nclient_auth = \"basic\"\n")
        #expect(e?.key == "idp.x.client_auth")
        #expect(e?.problem.contains("client_secret_post") == true)
    }
}

struct ConfigControlCharacterTests {
    @Test func aControlCharacterIsAConfigErrorNotACrash() throws {
        let text = "[daemon]\nlog_level = \"info\"\n[\u{01}\u{00}idp.x]\nissuer = \"https://idp.example\"\n"
        #expect(throws: ConfigError.self) { try ConfigParser.parse(files: [(path: "/etc/fedlogin/fedlogin.conf", text: text)]) }
        do {
            _ = try ConfigParser.parse(files: [(path: "/etc/fedlogin/fedlogin.conf", text: text)])
        } catch let e as ConfigError {
            #expect(e.description.contains("line 3, column 2"))
            #expect(e.description.contains("control character"))
        }
    }

    @Test func aTableHeaderWithoutANameIsAConfigErrorNotACrash() {
        for text in ["[\nsocket = 5\n", "[[\n", "[ \t\n", "[=]\n"] {
            #expect(throws: ConfigError.self, "\(text.debugDescription)") {
                try ConfigParser.parse(files: [(path: "/etc/fedlogin/fedlogin.conf", text: text)])
            }
        }
    }
}
