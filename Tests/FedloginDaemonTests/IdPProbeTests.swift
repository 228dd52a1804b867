import FedloginCore
import FedloginOIDC
import Testing

/// `fedloginctl idp check`'s reading of the token endpoint's answer to a made-up code.
struct IdPProbeTests {
    @Test func theAnswersRealIdPsGiveForABadCodeMeanTheClientIsAccepted() {
        #expect(IdPClient.classifyProbe(status: 400, error: "invalid_grant", description: "Code not valid") == .accepted)
        #expect(IdPClient.classifyProbe(status: 400, error: "invalid_code", description: nil) == .accepted)
        #expect(
            IdPClient.classifyProbe(status: 400, error: "invalid_request", description: "The authorization code is invalid or expired.")
                == .accepted)
    }

    @Test func anInvalidRequestAboutSomethingElseIsNotAccepted() {
        #expect(
            IdPClient.classifyProbe(status: 400, error: "invalid_request", description: "client authentication is required")
                == .rejected("invalid_request: client authentication is required"))
        #expect(IdPClient.classifyProbe(status: 400, error: "invalid_request", description: nil) == .rejected("invalid_request"))
    }

    @Test func aRefusedRedirectURIIsToldApart() {
        #expect(
            IdPClient.classifyProbe(status: 400, error: "unauthorized_client", description: "redirect_uri is not registered for this client")
                == .redirectRefused("unauthorized_client: redirect_uri is not registered for this client"))
        #expect(
            IdPClient.classifyProbe(status: 400, error: "invalid_request", description: "Invalid redirect_uri")
                == .redirectRefused("invalid_request: Invalid redirect_uri"))
    }

    @Test func clientProblemsKeepTheirKinds() {
        #expect(
            IdPClient.classifyProbe(status: 401, error: "invalid_client", description: "wrong client secret")
                == .wrongSecret("invalid_client: wrong client secret"))
        #expect(
            IdPClient.classifyProbe(status: 401, error: "invalid_client", description: "unknown client")
                == .unknownClient("invalid_client: unknown client"))
        #expect(IdPClient.classifyProbe(status: 500, error: nil, description: nil) == .rejected("HTTP 500"))
    }

    @Test func theProbeSendsTheRedirectURIASignInSends() {
        var idp = IdPConfig(name: "corp", issuer: "https://idp.example", clientID: "fedlogin")
        #expect(IdPClient.signInRedirectURI(idp) == "http://127.0.0.1/callback")
        idp.redirectPort = 8400
        #expect(IdPClient.signInRedirectURI(idp) == "http://127.0.0.1:8400/callback")
    }
}
