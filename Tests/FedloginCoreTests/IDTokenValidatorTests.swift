import FedloginCore
import Testing

struct IDTokenValidatorTests {
    let now = 1_800_000_000.0
    var expect: TokenExpectations {
        TokenExpectations(
            issuer: .oneOf(["https://idp.example"]), clientID: "fedlogin", nonce: "n-1", now: now, skew: 60,
            allowedAlgorithms: ["RS256"], emailClaim: "email")
    }

    func claims(_ change: (inout [String: JSONValue]) -> Void = { _ in }) -> [String: JSONValue] {
        var c: [String: JSONValue] = [
            "iss": .string("https://idp.example"), "aud": .string("fedlogin"), "sub": .string("00u1"),
            "exp": .number(now + 300), "iat": .number(now - 5), "nonce": .string("n-1"),
            "email": .string("Alice@Example.test"), "email_verified": .bool(true),
        ]
        change(&c)
        return c
    }

    func rejection(_ c: [String: JSONValue]) -> TokenRejection? {
        do {
            _ = try IDTokenValidator.validate(claims: c, expect: expect)
            return nil
        } catch let e as TokenRejection {
            return e
        } catch {
            return nil
        }
    }

    @Test func acceptsAGoodToken() throws {
        let id = try IDTokenValidator.validate(claims: claims(), expect: expect)
        #expect(id.subject == "00u1")
        #expect(IDTokenValidator.emailsMatch(id.email, "alice@example.TEST"))
    }

    @Test func algorithmAllowlist() {
        #expect(throws: TokenRejection.algorithm("none")) { try IDTokenValidator.checkHeader(alg: "none", allowed: ["RS256", "none"]) }
        #expect(throws: TokenRejection.algorithm("HS256")) { try IDTokenValidator.checkHeader(alg: "HS256", allowed: ["RS256", "HS256"]) }
        #expect(throws: TokenRejection.algorithm("ES256")) { try IDTokenValidator.checkHeader(alg: "ES256", allowed: ["RS256"]) }
        #expect(throws: TokenRejection.algorithm("(missing)")) { try IDTokenValidator.checkHeader(alg: nil, allowed: ["RS256"]) }
    }

    @Test func issuer() {
        #expect(
            rejection(claims { $0["iss"] = .string("https://evil.example") }) == .issuer(expected: "https://idp.example", got: "https://evil.example")
        )
    }

    @Test func audienceAndAuthorizedParty() {
        #expect(rejection(claims { $0["aud"] = .string("other") }) == .audience("[\"other\"]"))
        #expect(
            rejection(claims { $0["aud"] = .array([.string("fedlogin"), .string("other")]) }) == .authorizedParty("(missing, with several audiences)")
        )
        #expect(rejection(claims { $0["azp"] = .string("other") }) == .authorizedParty("other"))
        #expect(
            rejection(
                claims {
                    $0["aud"] = .array([.string("fedlogin"), .string("other")])
                    $0["azp"] = .string("fedlogin")
                }) == nil)
    }

    @Test func times() {
        #expect(rejection(claims { $0["exp"] = .number(now - 61) }) == .expired)
        #expect(rejection(claims { $0["exp"] = .number(now - 30) }) == nil)  // within skew
        #expect(rejection(claims { $0["iat"] = .number(now + 120) }) == .issuedInFuture)
        #expect(rejection(claims { $0["nbf"] = .number(now + 120) }) == .notYetValid)
        #expect(rejection(claims { $0["exp"] = nil }) == .missingClaim("exp"))
    }

    @Test func nonce() {
        #expect(rejection(claims { $0["nonce"] = nil }) == .missingClaim("nonce"))
        #expect(rejection(claims { $0["nonce"] = .string("n-2") }) == .nonce)
    }

    @Test func email() {
        #expect(rejection(claims { $0["email_verified"] = .bool(false) }) == .emailNotVerified)
        #expect(rejection(claims { $0["email_verified"] = nil }) == nil)
        #expect(rejection(claims { $0["email"] = nil }) == .missingClaim("email"))
        #expect(!IDTokenValidator.emailsMatch("alice@example.test", "alice@example.test.evil"))
    }

    func rejection(_ c: [String: JSONValue], verifiedString: Bool) -> TokenRejection? {
        var e = expect
        e.emailVerifiedString = verifiedString
        do {
            _ = try IDTokenValidator.validate(claims: c, expect: e)
            return nil
        } catch let r as TokenRejection {
            return r
        } catch {
            return .malformed("\(error)")
        }
    }

    @Test func emailVerifiedMustBeTheBooleanTrue() {
        let refused: [JSONValue] = [
            .string("true"), .string("True"), .string("yes"), .string("1"), .string(""), .number(1), .number(0),
            .null, .array([.bool(true)]), .bool(false), .string("false"),
        ]
        for v in refused {
            #expect(rejection(claims { $0["email_verified"] = v }) == .emailNotVerified, "\(v)")
        }
        #expect(rejection(claims { $0["email_verified"] = .bool(true) }) == nil)
    }

    @Test func emailVerifiedAsTheStringTrueOnlyWhereConfigured() {
        #expect(rejection(claims { $0["email_verified"] = .string("true") }, verifiedString: true) == nil)
        for v: JSONValue in [.string("True"), .string("TRUE"), .string("yes"), .string(" true"), .number(1), .string("false")] {
            #expect(rejection(claims { $0["email_verified"] = v }, verifiedString: true) == .emailNotVerified, "\(v)")
        }
    }

    @Test func emailsCompareInASCIIOnly() {
        #expect(IDTokenValidator.emailsMatch("Alice@Example.TEST", "alice@example.test"))
        // The Kelvin sign lowercases to "k" and is canonically equivalent to "K".
        #expect(!IDTokenValidator.emailsMatch("\u{212A}ate@example.test", "kate@example.test"))
        #expect(!IDTokenValidator.emailsMatch("\u{212A}ate@example.test", "Kate@example.test"))
        // The long s uppercases to "S".
        #expect(!IDTokenValidator.emailsMatch("\u{17F}am@example.test", "sam@example.test"))
        #expect(!IDTokenValidator.emailsMatch("\u{17F}am@example.test", "Sam@example.test"))
        // Dotted capital I lowercases to "i" + a combining dot.
        #expect(!IDTokenValidator.emailsMatch("\u{130}vy@example.test", "ivy@example.test"))
        // No normalisation: precomposed and decomposed é differ.
        #expect(!IDTokenValidator.emailsMatch("ren\u{E9}@example.test", "rene\u{301}@example.test"))
        #expect(IDTokenValidator.emailsMatch("ren\u{E9}@example.test", "ren\u{E9}@example.test"))
        // Non-ASCII letters are not case-folded either.
        #expect(!IDTokenValidator.emailsMatch("\u{C9}mile@example.test", "\u{E9}mile@example.test"))
    }

    @Test func issuerAndAudienceCompareByteForByte() {
        var e = expect
        e.issuer = .oneOf(["https://caf\u{E9}.example"])
        #expect(throws: TokenRejection.self) {
            try IDTokenValidator.validate(claims: claims { $0["iss"] = .string("https://cafe\u{301}.example") }, expect: e)
        }
        e.issuer = .oneOf(["https://\u{212A}.example"])
        #expect(throws: TokenRejection.self) {
            try IDTokenValidator.validate(claims: claims { $0["iss"] = .string("https://K.example") }, expect: e)
        }
    }
}
