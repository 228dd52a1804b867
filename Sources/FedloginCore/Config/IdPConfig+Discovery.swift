extension IdPConfig {
    /// Checks a discovery document's issuer and endpoints against this IdP's
    /// configuration; returns what is wrong, or nil.
    ///
    /// The issuer must be the one configured (for a multi-tenant Entra app,
    /// the `{tenantid}` template), and every endpoint https — plain http only
    /// on loopback for an IdP with `allow_http_loopback`: the token request
    /// carries the client secret.
    public func discoveryProblem(issuer found: String, endpoints: [(key: String, url: String)]) -> String? {
        let expected = issuerRule.discoveryIssuer
        guard found == expected else {
            return
                "discovery says the issuer is \"\(found)\", but idp.\(name) expects \"\(expected)\"; set idp.\(name).issuer to the IdP's exact issuer"
        }
        for (key, url) in endpoints {
            guard let parts = URLParts(url),
                parts.scheme == "https" || (parts.scheme == "http" && parts.isLoopback && allowHTTPLoopback)
            else {
                return "discovery gives \(key) \"\(url)\", which is not https; fedlogin refuses to send credentials there"
            }
        }
        return nil
    }
}
