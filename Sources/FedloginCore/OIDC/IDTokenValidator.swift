/// Checks an ID token's header and claims (OpenID Connect Core 1.0 §3.1.3.7).
/// The signature is checked elsewhere (jwt-kit, against the IdP's JWKS); this
/// is everything else, with the clock passed in.
public enum TokenRejection: Error, Equatable, CustomStringConvertible {
    case algorithm(String)
    case issuer(expected: String, got: String)
    case audience(String)
    case authorizedParty(String)
    case expired
    case issuedInFuture
    case notYetValid
    case missingClaim(String)
    case nonce
    case subject
    case emailNotVerified
    case emailMismatch
    case malformed(String)
    case hostedDomain

    public var description: String {
        switch self {
        case .algorithm(let a): "ID token algorithm \"\(a)\" is not accepted"
        case .issuer(let e, let g): "ID token issuer \"\(g)\" is not \"\(e)\""
        case .audience(let a): "ID token audience \(a) does not name this client"
        case .authorizedParty(let a): "ID token authorized party \"\(a)\" is not this client"
        case .expired: "ID token has expired"
        case .issuedInFuture: "ID token was issued in the future (check the clocks)"
        case .notYetValid: "ID token is not valid yet"
        case .missingClaim(let c): "ID token lacks the \"\(c)\" claim"
        case .nonce: "ID token nonce does not match this sign-in"
        case .subject: "ID token subject is not the one bound to this account"
        case .emailNotVerified: "the IdP says the email address is not verified"
        case .emailMismatch: "the signed-in identity's email is not the directory user's"
        case .malformed(let m): "ID token is malformed: \(m)"
        case .hostedDomain: "the user is not in the configured Google Workspace domain (hd)"
        }
    }
}

public struct TokenExpectations: Sendable {
    public var issuer: IssuerRule
    /// google: the Workspace domain (`hd`) the user must belong to.
    public var hostedDomain: String? = nil
    public var clientID: String
    /// The nonce sent with the authorization request; nil for grants that send
    /// none (the device grant), where the token must not carry one either.
    public var nonce: String?
    public var now: Double
    public var skew: Double
    public var allowedAlgorithms: [String]
    public var emailClaim: String
    /// Whether `email_verified` may be the string "true" (idp.NAME.email_verified_string).
    public var emailVerifiedString: Bool

    public init(
        issuer: IssuerRule, clientID: String, nonce: String?, now: Double, skew: Double, allowedAlgorithms: [String],
        emailClaim: String, hostedDomain: String? = nil, emailVerifiedString: Bool = false
    ) {
        self.emailVerifiedString = emailVerifiedString
        self.issuer = issuer
        self.hostedDomain = hostedDomain
        self.clientID = clientID
        self.nonce = nonce
        self.now = now
        self.skew = skew
        self.allowedAlgorithms = allowedAlgorithms
        self.emailClaim = emailClaim
    }
}

/// What a verified ID token says about the person who signed in.
public struct VerifiedIdentity: Sendable, Equatable {
    public var issuer: String
    public var subject: String
    public var email: String
    public var name: String?
}

public enum IDTokenValidator {
    /// The header check that runs before any signature check: the algorithm
    /// must be on the allowlist (so `none` and HMAC never reach a verifier).
    public static func checkHeader(alg: String?, allowed: [String]) throws {
        guard let alg, allowed.contains(alg), alg != "none", !alg.hasPrefix("HS") else {
            throw TokenRejection.algorithm(alg ?? "(missing)")
        }
    }

    public static func validate(claims: [String: JSONValue], expect: TokenExpectations) throws -> VerifiedIdentity {
        guard let iss = claims["iss"]?.string else { throw TokenRejection.missingClaim("iss") }
        switch expect.issuer {
        case .oneOf(let list):
            guard list.contains(where: { sameBytes($0, iss) }) else { throw TokenRejection.issuer(expected: list[0], got: iss) }
        case .tenantTemplate(let template, let allowed):
            guard let tid = claims["tid"]?.string, allowed.contains(tid),
                sameBytes(iss, template.replacingOccurrences(of: "{tenantid}", with: tid))
            else { throw TokenRejection.issuer(expected: template, got: iss) }
        }
        if let hd = expect.hostedDomain {
            guard let got = claims["hd"]?.string, asciiCaseInsensitiveEqual(got, hd) else { throw TokenRejection.hostedDomain }
        }

        let audiences: [String]
        switch claims["aud"] {
        case .string(let a): audiences = [a]
        case .array(let list): audiences = list.compactMap(\.string)
        default: throw TokenRejection.missingClaim("aud")
        }
        guard audiences.contains(where: { sameBytes($0, expect.clientID) }) else { throw TokenRejection.audience(audiences.description) }
        let azp = claims["azp"]?.string
        if audiences.count > 1 && azp == nil { throw TokenRejection.authorizedParty("(missing, with several audiences)") }
        if let azp, !sameBytes(azp, expect.clientID) { throw TokenRejection.authorizedParty(azp) }

        guard let exp = claims["exp"]?.number else { throw TokenRejection.missingClaim("exp") }
        guard let iat = claims["iat"]?.number else { throw TokenRejection.missingClaim("iat") }
        guard expect.now < exp + expect.skew else { throw TokenRejection.expired }
        guard iat <= expect.now + expect.skew else { throw TokenRejection.issuedInFuture }
        if let nbf = claims["nbf"]?.number, nbf > expect.now + expect.skew { throw TokenRejection.notYetValid }

        if let expected = expect.nonce {
            guard let nonce = claims["nonce"]?.string else { throw TokenRejection.missingClaim("nonce") }
            guard constantTimeEqual(nonce, expected) else { throw TokenRejection.nonce }
        } else if claims["nonce"] != nil {
            throw TokenRejection.nonce
        }

        guard let sub = claims["sub"]?.string, !sub.isEmpty else { throw TokenRejection.missingClaim("sub") }
        guard let email = claims[expect.emailClaim]?.string, !email.isEmpty else {
            throw TokenRejection.missingClaim(expect.emailClaim)
        }
        // Where the IdP says whether the email is verified, it must say yes:
        // the JSON boolean true, or the string "true" where the IdP is known
        // to send one (email_verified_string). "yes", 1, "True" and the rest
        // are refused.
        if expect.emailClaim == "email", let verified = claims["email_verified"] {
            switch verified {
            case .bool(true): break
            case .string(let s) where expect.emailVerifiedString && sameBytes(s, "true"): break
            default: throw TokenRejection.emailNotVerified
            }
        }
        return VerifiedIdentity(issuer: iss, subject: sub, email: email, name: claims["name"]?.string)
    }

    /// Company emails compare case-insensitively in ASCII only, whole
    /// string, byte for byte: no Unicode case folding or normalisation on
    /// either side, so a look-alike letter (the Kelvin sign U+212A, the long
    /// s U+017F, a decomposed accent) never matches an ASCII address.
    public static func emailsMatch(_ a: String, _ b: String) -> Bool {
        asciiCaseInsensitiveEqual(a, b)
    }

    /// Equal UTF-8 bytes, where only A-Z and a-z are folded.
    public static func asciiCaseInsensitiveEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        for i in 0..<x.count where asciiLower(x[i]) != asciiLower(y[i]) { return false }
        return true
    }

    /// Equal UTF-8 bytes (Swift's `==` treats canonically equivalent strings as equal).
    public static func sameBytes(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    @inline(__always) static func asciiLower(_ c: UInt8) -> UInt8 {
        c >= 0x41 && c <= 0x5A ? c | 0x20 : c
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
