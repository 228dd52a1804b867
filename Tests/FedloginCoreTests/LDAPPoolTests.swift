import FedloginCore
import Testing

struct LDAPPoolTests {
    typealias Book = LDAPPoolBook<String>

    @Test func anEmptyPoolOpensAndAGivenBackConnectionIsReused() {
        var book = Book(capacity: 2)
        #expect(book.checkout(now: 0).reuse == nil)
        #expect(book.checkin(.init(handle: "a", uriIndex: 0, opened: 0), now: 1).isEmpty)
        let (reuse, close) = book.checkout(now: 2)
        #expect(reuse?.handle == "a" && close.isEmpty)
        #expect(book.idle.isEmpty)  // in use by one request at a time
    }

    @Test func theFirstURIsConnectionIsPreferredThenTheMostRecentlyUsed() {
        var book = Book(capacity: 8)
        _ = book.checkin(.init(handle: "second", uriIndex: 1, opened: 0), now: 5)
        _ = book.checkin(.init(handle: "first-old", uriIndex: 0, opened: 0), now: 1)
        _ = book.checkin(.init(handle: "first-new", uriIndex: 0, opened: 0), now: 3)
        #expect(book.checkout(now: 6).reuse?.handle == "first-new")
        #expect(book.checkout(now: 6).reuse?.handle == "first-old")
        #expect(book.checkout(now: 6).reuse?.handle == "second")
        #expect(book.checkout(now: 6).reuse == nil)
    }

    @Test func aFullPoolClosesWhatComesBack() {
        var book = Book(capacity: 1)
        #expect(book.checkin(.init(handle: "a", uriIndex: 0, opened: 0), now: 0).isEmpty)
        #expect(book.checkin(.init(handle: "b", uriIndex: 0, opened: 0), now: 0) == ["b"])
        #expect(book.idle.map(\.handle) == ["a"])
    }

    @Test func aConnectionIdleTooLongIsClosedNotReused() {
        var book = Book(capacity: 4, idleLimit: 60, fallbackAge: 60)
        _ = book.checkin(.init(handle: "a", uriIndex: 0, opened: 0), now: 10)
        #expect(book.checkout(now: 70).reuse?.handle == "a")  // 60 s idle: still fine
        _ = book.checkin(.init(handle: "a", uriIndex: 0, opened: 0), now: 70)
        let (reuse, close) = book.checkout(now: 130.5)
        #expect(reuse == nil && close == ["a"])
        #expect(book.idle.isEmpty)
    }

    @Test func theFirstURIsConnectionHasNoMaxAge() {
        var book = Book(capacity: 4, idleLimit: 60, fallbackAge: 60)
        var now = 0.0
        _ = book.checkin(.init(handle: "a", uriIndex: 0, opened: 0), now: now)
        for _ in 0..<100 {
            now += 30
            let (reuse, close) = book.checkout(now: now)
            guard let reuse else {
                Issue.record("not reused at \(now)")
                return
            }
            #expect(reuse.handle == "a" && close.isEmpty)
            #expect(book.checkin(reuse, now: now).isEmpty)
        }
    }

    @Test func aConnectionToALaterURIGoesAfterFallbackAgeSoTheFirstIsTriedAgain() {
        var book = Book(capacity: 4, idleLimit: 60, fallbackAge: 60)
        // The first server was down: the request connected to the second.
        _ = book.checkin(.init(handle: "second", uriIndex: 1, opened: 100), now: 101)
        var now = 101.0
        // Busy: reused, never idle for long, until its age passes 60 s.
        while now < 150 {  // 111, 121, ... 151: at most 51 s old
            now += 10
            let (reuse, _) = book.checkout(now: now)
            guard let reuse else {
                Issue.record("not reused at \(now)")
                return
            }
            #expect(reuse.handle == "second")
            #expect(book.checkin(reuse, now: now).isEmpty)
        }
        now = 161
        let (reuse, close) = book.checkout(now: now)
        #expect(reuse == nil && close == ["second"])  // the next request opens: URIs in order
        // Given back after its age passed (a long request): closed too.
        #expect(book.checkin(.init(handle: "late", uriIndex: 2, opened: 0), now: 61) == ["late"])
    }

    @Test func aLostConnectionDropsEveryIdleOne() {
        var book = Book(capacity: 4)
        for h in ["a", "b", "c"] { _ = book.checkin(.init(handle: h, uriIndex: 0, opened: 0), now: 0) }
        #expect(Set(book.dropAll()) == ["a", "b", "c"])
        #expect(book.idle.isEmpty)
        #expect(book.dropAll().isEmpty)
    }

    @Test func connectionLevelResultsAreRetriedAnswersAreNot() {
        // LDAP_SERVER_DOWN, LDAP_LOCAL_ERROR, LDAP_ENCODING_ERROR, LDAP_DECODING_ERROR,
        // LDAP_TIMEOUT, LDAP_CONNECT_ERROR, LDAP_BUSY, LDAP_UNAVAILABLE
        for rc: Int32 in [-1, -2, -3, -4, -5, -11, 51, 52] { #expect(LDAPResultKind.of(rc) == .connectionLost, "\(rc)") }
        #expect(LDAPResultKind.of(0) == .success)
        // noSuchObject, insufficientAccess, invalidCredentials, sizeLimitExceeded,
        // timeLimitExceeded (the server's own limit), alreadyExists, unwillingToPerform,
        // LDAP_FILTER_ERROR, LDAP_PARAM_ERROR, LDAP_NO_MEMORY
        for rc: Int32 in [32, 50, 49, 4, 3, 68, 53, -7, -9, -10] { #expect(LDAPResultKind.of(rc) == .answer, "\(rc)") }
    }
}
