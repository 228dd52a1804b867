import FedloginCore
import Testing

struct LDAPDNMatchTests {
    @Test func anyOfEscapesEachValueAndUsesNoOrForOne() {
        #expect(LDAPFilter.anyOf("entryDN", []) == nil)
        #expect(LDAPFilter.anyOf("entryDN", ["uid=a,ou=users"]) == "(entryDN=uid=a,ou=users)")
        #expect(
            LDAPFilter.anyOf("entryDN", ["uid=a,ou=users", "cn=x)(uid=*"])
                == "(|(entryDN=uid=a,ou=users)(entryDN=cn=x\\29\\28uid=\\2a))")
        // A DN with an escaped comma: the backslash is escaped for the filter.
        #expect(LDAPFilter.anyOf("entrydn", ["cn=k\\2Cx,ou=d"]) == "(entrydn=cn=k\\5c2Cx,ou=d)")
    }

    @Test func chunksKeepTheOrderDropRepeatsAndHoldAtMostTheSize() {
        let dns = (0..<250).map { "uid=u\($0),ou=users" }
        let chunks = LDAPFilter.chunked(dns + ["uid=u0,ou=users"])
        #expect(chunks.map(\.count) == [100, 100, 50])
        #expect(chunks.flatMap { $0 } == dns)
        #expect(LDAPFilter.chunked([]).isEmpty)
        #expect(LDAPFilter.chunked(["a", "b", "a", "c"], size: 2) == [["a", "b"], ["c"]])
        #expect(LDAPFilter.chunked(["a"], size: 0) == [["a"]])
    }

    @Test func normalizedDNsOfTheSameEntryAreEqual() {
        let n = LDAPDN.normalized
        #expect(n("uid=alice,ou=users,dc=example,dc=com") == "uid=alice,ou=users,dc=example,dc=com")
        #expect(n("UID=Alice, ou=Users , DC=example,dc=COM") == n("uid=alice,ou=users,dc=example,dc=com"))
        #expect(n("uid=alice;ou=users") == n("uid=alice,ou=users"))
        #expect(n("cn=a\\2cb,ou=x") == n("cn=a\\,b,ou=x"))
        #expect(n("cn=a\\2Cb,ou=x") == n("cn=\"a,b\",ou=x"))
        #expect(n("cn=Ann  Lee,ou=x") == n("cn=ann lee,ou=x"))
        #expect(n("cn=a\\ ,ou=x") == "cn=a,ou=x")  // an escaped trailing space, folded as caseIgnoreMatch does
        #expect(n("cn=a+uid=b,ou=x") == n("uid=b+cn=a,ou=x"))
        #expect(n("") == "")
    }

    @Test func normalizedDNsKeepDifferentDNsApart() {
        let n = LDAPDN.normalized
        #expect(n("uid=alice,ou=users") != n("uid=alicia,ou=users"))
        #expect(n("cn=a\\,b,ou=x") != n("cn=a,cn=b,ou=x"))
        #expect(n("cn=a\\+uid=b,ou=x") != n("cn=a+uid=b,ou=x"))
        #expect(n("cn=a\\3db,ou=x") != n("cn=a,ou=x"))
        #expect(n("uid=alice,ou=users") != n("cn=alice,ou=users"))
    }

    @Test func aStringThatIsNoDNHasNoNormalizedForm() {
        #expect(LDAPDN.normalized("not a dn") == nil)
        #expect(LDAPDN.normalized("uid=a,") == nil)
        #expect(LDAPDN.normalized("uid=a\\") == nil)
        #expect(LDAPDN.normalized("=a,ou=x") == nil)
        #expect(LDAPDN.normalized("cn=\"open,ou=x") == nil)
    }

    @Test func eachDNIsMatchedToTheOneEntryOfItsNormalizedForm() {
        let entries = ["uid=bob,ou=users,dc=x", "uid=alice,ou=users,dc=x", "cn=Carol,ou=users,dc=x", "cn=carol,ou=users,dc=x"]
        let dns = [
            "uid=Alice, ou=users,dc=x", "uid=gone,ou=users,dc=x", "uid=bob,ou=users,dc=x", "CN=carol,ou=users,dc=x", "junk",
            "cn=Carol,ou=users,dc=x",
        ]
        // CN=carol is in doubt (two entries of its normalized form), gone and
        // junk have none: the caller asks the server about those on their own.
        // A DN spelt exactly as an entry's is that entry's.
        #expect(LDAPDN.match(dns, to: entries) == [1, nil, 0, nil, nil, 2])
        #expect(LDAPDN.match([], to: entries).isEmpty)
        #expect(LDAPDN.match(["uid=a,dc=x"], to: []) == [nil])
    }

    @Test func theEntryDNAttributeIsPerPresetAndOverridable() throws {
        #expect(LDAPAttributes.openldap.entryDN == "entryDN")
        #expect(LDAPAttributes.freeipa.entryDN == "entrydn")
        #expect(LDAPAttributes.activeDirectory.entryDN == "distinguishedName")
        let text = ldapConfigText("[ldap.attributes]\nentry_dn = \"myEntryDN\"")
        let config = try DirectorydConfig.parse(path: "/etc/fedlogin/directoryd.conf", text: text)
        #expect(config.ldap?.attributes.entryDN == "myEntryDN")
    }
}
