import FedloginCore
import Foundation
import JWTKit

/// Verifies an ID token: the algorithm allowlist, the signature against the
/// IdP's JWKS (one refetch on an unknown key), then every claim (FedloginCore).
public struct TokenVerifier: Sendable {
    struct SignatureOnly: JWTPayload {
        func verify(using algorithm: some JWTAlgorithm) throws {}
    }

    struct Header: Decodable {
        var alg: String?
        var kid: String?
    }

    public static func decodePart<T: Decodable>(_ part: Substring, as: T.Type) throws -> T {
        var s = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        s += String(repeating: "=", count: (4 - s.count % 4) % 4)
        guard let data = Data(base64Encoded: s) else { throw TokenRejection.malformed("not base64url") }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw TokenRejection.malformed("not JSON")
        }
    }

    /// Keys from a JWKS document. Keys without a `kid` get a positional one,
    /// and a token without `kid` is checked against every key.
    static func keys(from jwks: Data) async throws -> (JWTKeyCollection, Set<String>) {
        guard var obj = try JSONSerialization.jsonObject(with: jwks) as? [String: Any],
            var list = obj["keys"] as? [[String: Any]]
        else { throw TokenRejection.malformed("the IdP's JWKS is not a key set") }
        for i in list.indices where list[i]["kid"] == nil { list[i]["kid"] = "fedlogin-key-\(i)" }
        // Signing keys only: a key marked for encryption never verifies.
        list = list.filter { ($0["use"] as? String ?? "sig") == "sig" }
        obj["keys"] = list
        let collection = JWTKeyCollection()
        var added: Set<String> = []
        for key in list {
            let one = try JSONSerialization.data(withJSONObject: ["keys": [key]])
            if (try? await collection.add(jwksJSON: String(decoding: one, as: UTF8.self))) != nil, let kid = key["kid"] as? String {
                added.insert(kid)
            }
        }
        return (collection, added)
    }

    public static func verify(_ token: String, client: IdPClient, expect: TokenExpectations) async throws -> VerifiedIdentity {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw TokenRejection.malformed("not a signed JWT (\(parts.count) parts)") }
        let header = try decodePart(parts[0], as: Header.self)
        try IDTokenValidator.checkHeader(alg: header.alg, allowed: expect.allowedAlgorithms)

        var (keys, kids) = try await Self.keys(from: try await client.jwks())
        do {
            try await checkSignature(token, keys: keys, kid: header.kid, kids: kids)
        } catch {
            // An unknown key may mean the IdP rotated: refetch once (rate-limited).
            (keys, kids) = try await Self.keys(from: try await client.jwks(refreshFor: header.kid ?? ""))
            do {
                try await checkSignature(token, keys: keys, kid: header.kid, kids: kids)
            } catch {
                throw TokenRejection.malformed("signature does not verify against the IdP's keys")
            }
        }
        let claims = try decodePart(parts[1], as: [String: JSONValue].self)
        return try IDTokenValidator.validate(claims: claims, expect: expect)
    }

    static func checkSignature(_ token: String, keys: JWTKeyCollection, kid: String?, kids: Set<String>) async throws {
        guard !kids.isEmpty else { throw TokenRejection.malformed("the IdP publishes no usable signing key") }
        if let kid {
            // jwt-kit falls back to its default key for an unknown kid; this
            // makes sure the named key is the one that verifies.
            guard kids.contains(kid) else { throw TokenRejection.malformed("unknown key id") }
            _ = try await keys.verify(token, as: SignatureOnly.self)
        } else {
            _ = try await keys.verify(token, as: SignatureOnly.self, iteratingKeys: true)
        }
    }
}
