import Crypto
import FedloginCore
import Foundation
import Logging

/// One sign-in at the IdP, used by a first login and by a passcode reset:
/// discovery, the flows the PAM service and the IdP allow (the loopback
/// redirect with PKCE, or the address pasted back; the device grant driven
/// by `DeviceGrantPoll`), and the ID token's verification. Every way it
/// ends early is a `LoginFlow.Stop`.
struct SignIn: Sendable {
    typealias Stop = LoginFlow.Stop
    let runtime: Runtime
    var config: DaemonConfig { runtime.config }

    /// Signs the user in at the IdP with the first flow the PAM service and
    /// the IdP allow that can start.
    func run(client: IdPClient, plan: FirstLoginPlan, request: PAMRequest, conv: any PAMConversation, log: Logger) async throws
        -> VerifiedIdentity
    {
        let idp = client.config
        let discovery: Discovery
        do {
            discovery = try await conv.keepingAlive { try await client.discovery() }
        } catch let e as IdPError {
            throw Stop(status: .unavailable, userMessage: e.userMessage, reason: e.description)
        }
        let deadline = runtime.clock.now() + config.signinTimeout(service: request.service)
        var flows = config.flows(service: request.service, idp: idp)
        var i = -1
        while i + 1 < flows.count {
            i += 1
            let flow = flows[i]
            switch flow {
            case .device:
                guard discovery.deviceAuthorizationEndpoint != nil else {
                    log.info("device grant skipped: the IdP has no device authorization endpoint")
                    continue
                }
                let start: IdPClient.DeviceAuthorization
                do {
                    start = try await conv.keepingAlive { try await client.startDevice() }
                } catch let e as IdPError {
                    log.warning("device grant could not start: \(e)")
                    if i == flows.count - 1 { throw Stop(status: .authError, userMessage: e.userMessage, reason: e.description) }
                    continue
                }
                log.info("sign-in flow: device grant", metadata: ["flows": "\(flows.map(\.rawValue))"])
                log.notice(
                    "device code shown, waiting for the sign-in at \(idp.name)",
                    metadata: ["message_id": "\(MessageID.deviceCodeShown)", "expires_in": "\(Int(start.expiresIn))s"])
                return try await deviceSignIn(client: client, start: start, plan: plan, deadline: deadline, conv: conv)
            case .loopback:
                let listener: (listener: LoopbackListener, temporary: Bool)
                do {
                    listener = try await runtime.listener(for: idp)
                } catch let e as LoopbackListener.PortUnavailable {
                    log.warning("loopback redirect not available: \(e)")
                    guard discovery.deviceAuthorizationEndpoint != nil else {
                        throw Stop(
                            status: .authError,
                            userMessage: "The sign-in cannot come back to this machine: \(e.userText). Ask your administrator.",
                            reason: "loopback redirect: \(e)")
                    }
                    try await conv.info("The sign-in cannot come back to this machine: \(e.userText). Sign in with a code instead.")
                    if !flows[(i + 1)...].contains(.device) { flows.append(.device) }
                    continue
                }
                log.info("sign-in flow: loopback redirect", metadata: ["flows": "\(flows.map(\.rawValue))"])
                defer { if listener.temporary { Task { await listener.listener.close() } } }
                return try await loopbackSignIn(
                    client: client, listener: listener.listener, discovery: discovery, plan: plan, deadline: deadline, conv: conv)
            }
        }
        throw Stop(
            status: .unavailable, userMessage: "No sign-in method is available for this login. Ask your administrator.",
            reason: "no usable flow among \(flows.map(\.rawValue))")
    }

    static func timeLeft(_ deadline: Double, now: Double) -> String {
        TimeLeft.text(until: deadline, now: now)
    }

    /// The device authorization grant (RFC 8628): a code to enter on another
    /// device, with a QR code of the address; polls at the IdP's interval.
    func deviceSignIn(
        client: IdPClient, start: IdPClient.DeviceAuthorization, plan: FirstLoginPlan, deadline: Double, conv: any PAMConversation
    ) async throws -> VerifiedIdentity {
        let idp = client.config
        let clock = runtime.clock
        // The IdP says when the code expires (expired_token); a few seconds of
        // grace let its answer, not a guess, end the wait (`DeviceGrantPoll`).
        let poll = DeviceGrantPoll(
            interval: start.interval ?? DeviceTiming.defaultInterval, expiresIn: start.expiresIn, deadline: deadline, now: clock.now())
        var text = "Sign in with \(idp.displayName) \(plan.purpose).\n"
        // RFC 8628 §5.4: the person approving on another device must see what
        // they approve, so a code sent to them by someone else stands out.
        text += "This code signs you in to \(plan.localUsername) on the machine \(SafeText.escape(Sys.hostname())); "
        text += "if you did not start this login there yourself, do not enter it.\n"
        text +=
            "On your phone or computer, open this address and enter the code \(SafeText.escape(start.userCode)):\n\(SafeText.escape(start.verificationURI))\n"
        if let complete = start.verificationURIComplete, let qr = QRCode.text(for: complete) {
            text += "Or scan this code, which opens it with the code filled in:\n\(qr)\n\(SafeText.escape(complete))\n"
        }
        text += "You have \(Self.timeLeft(poll.shownEnd, now: clock.now()))."
        try await conv.info(text)
        _ = try await conv.ask("Press Enter once you have signed in: ", echo: true, timeout: poll.promptTimeout(now: clock.now()))
        let token: String = try await conv.keepingAlive {
            try await Self.waitForDeviceToken(poll, clock: clock, idpName: idp.displayName) {
                try await client.pollDevice(code: start.deviceCode)
            }
        }
        return try await verify(token, client: client, nonce: nil, conv: conv)
    }

    /// The shell around `DeviceGrantPoll`: asks the token endpoint, sleeps
    /// on `clock` as the machine says, and turns its failures into `Stop`s.
    static func waitForDeviceToken(
        _ machine: DeviceGrantPoll, clock: any WallClock, idpName: String,
        poll: @Sendable () async throws -> IdPClient.DevicePoll
    ) async throws -> String {
        var machine = machine
        var action = machine.woke(now: clock.now())
        while true {
            switch action {
            case .poll:
                let answer: IdPClient.DevicePoll
                do {
                    answer = try await poll()
                } catch let e as IdPError {
                    throw Stop(status: .authError, userMessage: e.userMessage, reason: e.description)
                }
                switch answer {
                case .token(let t): return t
                case .pending: action = machine.received(.pending)
                case .slowDown: action = machine.received(.slowDown)
                case .denied: action = machine.received(.denied)
                case .expired: action = machine.received(.expired)
                }
            case .wait(let seconds):
                try await clock.sleep(seconds: seconds)
                action = machine.woke(now: clock.now())
            case .fail(.deadlinePassed):
                throw Stop(status: .authError, userMessage: "The sign-in took too long. Start the login again.", reason: "sign-in deadline passed")
            case .fail(.denied):
                throw Stop(
                    status: .authError, userMessage: "The sign-in was cancelled or denied at \(idpName).", reason: "device grant: access_denied")
            case .fail(.expired):
                throw Stop(
                    status: .authError, userMessage: "The code expired before the sign-in finished. Start the login again.",
                    reason: "device grant: expired_token")
            }
        }
    }

    /// Verifies an ID token, mapping rejections to what the user is told.
    func verify(_ token: String, client: IdPClient, nonce: String?, conv: any PAMConversation) async throws -> VerifiedIdentity {
        let idp = client.config
        do {
            return try await conv.keepingAlive {
                let expect = TokenExpectations(
                    issuer: idp.issuerRule, clientID: idp.clientID, nonce: nonce, now: runtime.clock.now(),
                    skew: config.signin.clockSkew, allowedAlgorithms: idp.algorithms, emailClaim: idp.emailClaim,
                    hostedDomain: idp.hostedDomain, emailVerifiedString: idp.emailVerifiedString)
                return try await TokenVerifier.verify(token, client: client, expect: expect)
            }
        } catch let e as IdPError {
            throw Stop(status: .authError, userMessage: e.userMessage, reason: e.description)
        } catch let e as TokenRejection {
            throw Stop(
                status: .authError,
                userMessage: "The identity provider's answer could not be verified, so you are not signed in. Ask your administrator.",
                reason: "ID token rejected: \(e)")
        }
    }

    /// The authorization code flow with PKCE and a loopback redirect; the
    /// user may paste the address the browser ended on instead.
    func loopbackSignIn(
        client: IdPClient, listener: LoopbackListener, discovery: Discovery, plan: FirstLoginPlan, deadline: Double, conv: any PAMConversation
    ) async throws -> VerifiedIdentity {
        let idp = client.config
        let state = Self.randomToken()
        let nonce = Self.randomToken()
        let verifier = Self.randomToken() + Self.randomToken()
        let challenge = Self.base64url(Data(SHA256.hash(data: Data(verifier.utf8))))

        runtime.callbacks.register(state: state)
        defer { runtime.callbacks.unregister(state: state) }
        let redirectURI = listener.redirectURI

        let query = FormEncoding.encode([
            ("response_type", "code"), ("client_id", idp.clientID), ("redirect_uri", redirectURI),
            ("scope", idp.scopes.joined(separator: " ")), ("state", state), ("nonce", nonce),
            ("code_challenge", challenge), ("code_challenge_method", "S256"),
        ])
        let sep = discovery.authorizationEndpoint.contains("?") ? "&" : "?"
        let url = discovery.authorizationEndpoint + sep + query

        try await conv.info(
            "Sign in with \(idp.displayName) \(plan.purpose).\nOpen this address in a browser on this machine:\n\(url)\nIf the browser cannot come back to this machine, paste the address it ends on at the prompt. You have \(Self.timeLeft(deadline, now: runtime.clock.now()))."
        )
        let response = try await Self.waitForResponse(
            LoopbackWait(state: state, deadline: deadline), callbacks: runtime.callbacks, clock: runtime.clock, conv: conv)
        if let error = response.error {
            let why =
                error == "access_denied"
                ? "The sign-in was cancelled or denied at \(idp.displayName)." : "\(idp.displayName) did not sign you in (\(SafeText.escape(error)))."
            throw Stop(status: .authError, userMessage: why, reason: "authorization error from the IdP: \(SafeText.escape(error))")
        }
        guard let code = response.code, !code.isEmpty else {
            throw Stop(status: .authError, userMessage: "The sign-in did not complete. Start the login again.", reason: "callback without a code")
        }
        let token: String
        do {
            token = try await conv.keepingAlive { try await client.exchange(code: code, verifier: verifier, redirectURI: redirectURI) }
        } catch let e as IdPError {
            throw Stop(status: .authError, userMessage: e.userMessage, reason: e.description)
        }
        return try await verify(token, client: client, nonce: nonce, conv: conv)
    }

    /// The shell around `LoopbackWait`: prompts, awaits the redirect with
    /// keepalives, reminds, and turns its failures into `Stop`s. The
    /// sign-in's `state` is unregistered once it has its response, so a
    /// later redirect with it gets the listener's error page.
    static func waitForResponse(
        _ machine: LoopbackWait, callbacks: CallbackRegistry, clock: any WallClock, conv: any PAMConversation
    ) async throws -> AuthorizationResponse {
        var machine = machine
        let state = machine.state
        var action = machine.started(now: clock.now())
        while true {
            switch action {
            case .prompt(let timeout):
                let answer = try await conv.ask("Press Enter once you have signed in: ", echo: true, timeout: timeout)
                action = machine.answered(answer)
            case .awaitCallback(let seconds):
                // The redirect may still be on its way: wait a little, with keepalives.
                let arrived = try await conv.keepingAlive { await callbacks.wait(state: state, within: seconds, clock: clock) }
                action = machine.callbackWaited(arrived)
            case .remind:
                try await conv.error("The sign-in has not finished yet. Finish it in the browser, then press Enter.")
                action = machine.reminded(now: clock.now())
            case .finish(let response):
                callbacks.unregister(state: state)
                return response
            case .fail(.deadlinePassed):
                throw Stop(status: .authError, userMessage: "The sign-in took too long. Start the login again.", reason: "sign-in timed out")
            case .fail(.wrongState):
                throw Stop(
                    status: .authError, userMessage: "That address belongs to another sign-in. Start the login again.",
                    reason: "pasted address with a wrong state")
            }
        }
    }

    static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        return base64url(Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }))
    }

    static func base64url(_ d: Data) -> String {
        d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
