import FedloginCore
import Testing

struct AccountRulesTests {
    let rules = AccountRules(
        extraReservedNames: ["Kiosk", "scanner2"], directoryUIDs: 80000...99999,
        subordinateIDs: AccountRules.subordinateRanges("alice:90000:1000\n"))

    @Test func systemAndServiceNamesAreReserved() {
        for n in [
            "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "www-data",
            "backup", "list", "irc", "gnats", "nobody", "_apt", "sudo", "adm", "shadow", "staff", "users", "nogroup",
            "messagebus", "sshd", "postgres", "mysql", "nginx", "docker", "admin", "systemd-network", "systemd-timesync",
            "_chrony", "WWW-Data",
        ] {
            #expect(rules.nameProblem(n) != nil, "\(n)")
        }
    }

    @Test func configuredNamesAreReservedCaseInsensitively() {
        #expect(rules.nameProblem("kiosk")?.contains("accounts.reserved_names") == true)
        #expect(rules.nameProblem("scanner2") != nil)
    }

    @Test func ordinaryNamesAreNot() {
        for n in ["alice", "bob.smith", "man2", "rooty", "dev-ops", "sys-admin", "systemd"] {
            #expect(rules.nameProblem(n) == nil, "\(n)")
        }
    }

    @Test func directoryUIDsMustLieInTheirRange() {
        #expect(rules.uidProblem(80000) == nil)
        #expect(rules.uidProblem(99999) == nil)
        #expect(rules.uidProblem(79999)?.contains("outside the range") == true)
        #expect(rules.uidProblem(100000)?.contains("outside the range") == true)
        #expect(rules.uidProblem(0) != nil)
    }

    @Test func directoryUIDsMustBeClearOfSubordinateRanges() {
        #expect(rules.uidProblem(89999) == nil)
        #expect(rules.uidProblem(90000)?.contains("subordinate") == true)
        #expect(rules.uidProblem(90999)?.contains("subordinate") == true)
        #expect(rules.uidProblem(91000) == nil)
        let wide = AccountRules(directoryUIDs: 1000...70000)
        #expect(wide.uidProblem(65534) != nil)
        var unreadable = rules
        unreadable.subordinateUnreadable = "/etc/subuid: permission denied"
        #expect(unreadable.uidProblem(85000) != nil)
    }

    @Test func subordinateFilesAreParsed() {
        let r = AccountRules.subordinateRanges(
            """
            alice:100000:65536
            1001:165536:65536
            # not a range
            bad:line
            zero:5:0
            big:4294967290:100
            neg:-1:5
            """)
        #expect(r == [100000...165535, 165536...231071, 4_294_967_290...4_294_967_295])
    }
}
