import FedloginCore
import Foundation
import Testing

/// Provider presets against discovery documents in each provider's shape
/// (Tests/fixtures/discovery) and their issuer rules.
struct PresetTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures/discovery")

    func idp(_ toml: String) throws -> IdPConfig {
        try ConfigParser.parse(files: [("/f.conf", "[idp.x]\nclient_id = \"c\"\nclient_auth = \"none\"\n" + toml)]).idps["x"]!
    }

    func discovery(_ name: String) throws -> (String, [(key: String, url: String)]) {
        let data = try Data(contentsOf: Self.folder.appendingPathComponent(name + ".json"))
        let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let keys = ["authorization_endpoint", "token_endpoint", "jwks_uri", "device_authorization_endpoint"]
        return (obj["issuer"] as! String, keys.compactMap { k in (obj[k] as? String).map { (key: k, url: $0) } })
    }

    func claims(iss: String, extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
        var c: [String: JSONValue] = [
            "iss": .string(iss), "aud": .string("c"), "sub": .string("s"), "exp": .number(2e9), "iat": .number(1e9),
            "nonce": .string("n"), "email": .string("a@example.test"), "preferred_username": .string("a@example.test"),
        ]
        c.merge(extra) { $1 }
        return c
    }

    func accepts(_ idp: IdPConfig, _ c: [String: JSONValue]) -> Bool {
        let expect = TokenExpectations(
            issuer: idp.issuerRule, clientID: "c", nonce: "n", now: 1.5e9, skew: 60, allowedAlgorithms: ["RS256"],
            emailClaim: idp.emailClaim, hostedDomain: idp.hostedDomain)
        return (try? IDTokenValidator.validate(claims: c, expect: expect)) != nil
    }

    @Test func okta() throws {
        let i = try idp("preset = \"okta\"\nissuer = \"https://example.okta.com\"\n")
        let (iss, endpoints) = try discovery("okta")
        #expect(i.discoveryBase == "https://example.okta.com")
        #expect(i.discoveryProblem(issuer: iss, endpoints: endpoints) == nil)
        #expect(accepts(i, claims(iss: "https://example.okta.com")))
    }

    @Test func entraSingleTenant() throws {
        let i = try idp("preset = \"entra\"\ntenant = \"9188040d-6c67-4c5b-b112-36a304b66dad\"\nemail_claim = \"preferred_username\"\n")
        #expect(i.issuer == "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0")
        let (iss, endpoints) = try discovery("entra-tenant")
        #expect(i.discoveryProblem(issuer: iss, endpoints: endpoints) == nil)
        #expect(accepts(i, claims(iss: i.issuer)))
        #expect(!accepts(i, claims(iss: "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0")))
    }

    @Test func entraDefaultsToTheVerifiedUPNClaim() throws {
        #expect(try idp("preset = \"entra\"\ntenant = \"t-1\"\n").emailClaim == "preferred_username")
        #expect(try idp("preset = \"entra\"\ntenant = \"t-1\"\nemail_claim = \"email\"\n").emailClaim == "email")
        #expect(try idp("issuer = \"https://i\"\n").emailClaim == "email")
    }

    @Test func entraMultiTenantNeedsAnAllowList() throws {
        #expect(throws: ConfigError.self) { try idp("preset = \"entra\"\ntenant = \"organizations\"\n") }
        let i = try idp("preset = \"entra\"\ntenant = \"organizations\"\nallowed_tenants = [\"t-1\"]\n")
        #expect(i.discoveryBase == "https://login.microsoftonline.com/organizations/v2.0")
        let (iss, endpoints) = try discovery("entra-organizations")
        #expect(i.discoveryProblem(issuer: iss, endpoints: endpoints) == nil)
        let ok = claims(iss: "https://login.microsoftonline.com/t-1/v2.0", extra: ["tid": .string("t-1")])
        #expect(accepts(i, ok))
        // Another tenant, even with a matching iss, is refused.
        #expect(!accepts(i, claims(iss: "https://login.microsoftonline.com/t-2/v2.0", extra: ["tid": .string("t-2")])))
        // An iss that does not follow the token's own tid is refused.
        #expect(!accepts(i, claims(iss: "https://login.microsoftonline.com/t-2/v2.0", extra: ["tid": .string("t-1")])))
    }

    @Test func googleBothIssuerSpellingsAndHostedDomain() throws {
        let i = try idp("preset = \"google\"\nhosted_domain = \"example.test\"\n")
        #expect(i.issuer == "https://accounts.google.com")
        let (iss, endpoints) = try discovery("google")
        #expect(i.discoveryProblem(issuer: iss, endpoints: endpoints) == nil)
        #expect(accepts(i, claims(iss: "https://accounts.google.com", extra: ["hd": .string("example.test")])))
        #expect(accepts(i, claims(iss: "accounts.google.com", extra: ["hd": .string("example.test")])))
        #expect(!accepts(i, claims(iss: "accounts.google.com", extra: ["hd": .string("other.test")])))
        #expect(!accepts(i, claims(iss: "accounts.google.com")))
    }

    @Test func genericKeycloakAndDirectoryIdP() throws {
        let k = try idp("issuer = \"https://sso.example.test/realms/corp\"\n")
        let (iss, endpoints) = try discovery("keycloak")
        #expect(k.discoveryProblem(issuer: iss, endpoints: endpoints) == nil)
        let d = try idp("preset = \"directory-idp\"\nissuer = \"https://oauth.id.example.test\"\nemail_claim = \"email\"\n")
        #expect(d.preset == .directoryIdP)
    }

    @Test func discoveryMismatchesAreExplained() throws {
        let i = try idp("issuer = \"https://sso.example.test/realms/other\"\n")
        let (iss, endpoints) = try discovery("keycloak")
        #expect(i.discoveryProblem(issuer: iss, endpoints: endpoints)?.contains("set idp.x.issuer") == true)
        let j = try idp("issuer = \"https://sso.example.test/realms/corp\"\n")
        #expect(
            j.discoveryProblem(issuer: iss, endpoints: [(key: "token_endpoint", url: "http://sso.example.test/t")])?.contains("not https") == true)
    }

    @Test func presetKeysBelongToTheirPreset() {
        #expect(throws: ConfigError.self) { try idp("issuer = \"https://i\"\ntenant = \"x\"\n") }
        #expect(throws: ConfigError.self) { try idp("issuer = \"https://i\"\nhosted_domain = \"x\"\n") }
        #expect(throws: ConfigError.self) { try idp("preset = \"ping\"\nissuer = \"https://i\"\n") }
    }
}
