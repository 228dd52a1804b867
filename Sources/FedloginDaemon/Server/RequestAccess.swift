import FedloginCore
import FedloginNIO

/// Who may send each request type: the one table fedlogind authorizes a
/// request by, from the peer's SO_PEERCRED, before any handler runs
/// (`SocketServer.dispatch`). A new message type does not compile until it
/// has a row.
enum RequestAccess: Equatable {
    /// uid 0 only; anyone else gets RESULT PERM_DENIED with `refusal`.
    case rootOnly(refusal: String, what: String)
    /// Any local user: NSS (public data), PASSCODE_RESET (the caller's own
    /// account only), CONTROL (each operation's own rule, `ControlRequest`).
    case anyone
    /// Not a request: a daemon's message, or an answer outside a conversation.
    case notARequest

    static func of(_ type: MessageType) -> RequestAccess {
        switch type {
        case .authenticate: .rootOnly(refusal: "only root may authenticate users", what: "authentication")
        case .authFailed: .rootOnly(refusal: "only root may report failed logins", what: "failed-login")
        case .acctMgmt: .rootOnly(refusal: "only root may ask", what: "account check")
        case .chauthtok: .rootOnly(refusal: "only root may ask", what: "password change")
        case .chauthtokPrelim: .rootOnly(refusal: "only root may ask", what: "password check")
        case .passcodeReset, .nssGetpwnam, .nssGetpwuid, .nssGetgrnam, .nssGetgrgid, .control: .anyone
        case .answer, .info, .sessionInfo, .error, .promptEchoOn, .promptEchoOff, .keepalive, .result, .nssPasswd, .nssGroup, .nssNotFound,
            .controlReply, .controlReplyPart:
            .notARequest
        }
    }

    /// Why `peer` may not send `request` (what it is told), or nil.
    static func refusal(of request: WireMessage, peer: PeerCredentials) -> (refusal: String, what: String)? {
        guard case .rootOnly(let refusal, let what) = of(request.type), !peer.isRoot else { return nil }
        return (refusal, what)
    }
}
