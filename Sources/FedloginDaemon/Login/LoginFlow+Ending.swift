import FedloginCore
import FedloginNIO
import Logging

/// How a request handled by `LoginFlow` or `LocalCredential` ends early: one mapping from a
/// `Stop`, a conversation that ended, or any other error to the RESULT sent
/// to pam_fedlogin, what the user is told and what the log says.
extension LoginFlow {
    /// What differs between the kinds of request.
    struct Ending: Sendable {
        /// Log line prefixes: a `Stop`, an ended conversation (nil: not
        /// logged), any other error.
        var refused: String
        var abandoned: String?
        var failed: String
        /// Whether refusals are logged with `MessageID.loginFailure`.
        var loginFailureID: Bool
        /// The status of a `Stop` that says the service is unavailable, where
        /// the request cannot answer UNAVAIL (nil: kept).
        var unavailableAs: ResultStatus?
        /// The status of an ended conversation.
        var endedStatus: ResultStatus
        /// The status of any other error, and what the user is told then.
        var internalStatus: ResultStatus
        var internalMessage: String?

        /// AUTHENTICATE.
        static let login = Ending(
            refused: "login refused", abandoned: "login abandoned", failed: "login failed", loginFailureID: true, unavailableAs: nil,
            endedStatus: .authError, internalStatus: .unavailable,
            internalMessage: "The login could not be completed because of an internal error. Try again, or ask your administrator.")
        /// AUTH_FAILED (its passcode reset): PAM has already failed the
        /// password, so nothing here may turn it into UNAVAIL.
        static let failedLogin = Ending(
            refused: "passcode reset refused", abandoned: nil, failed: "failed-login handling failed", loginFailureID: true,
            unavailableAs: .authError, endedStatus: .authError, internalStatus: .authError, internalMessage: nil)
        /// CHAUTHTOK.
        static let passwordChange = Ending(
            refused: "password change refused", abandoned: nil, failed: "password change failed", loginFailureID: false,
            unavailableAs: nil, endedStatus: .authtokError, internalStatus: .authtokError,
            internalMessage: "The password could not be changed because of an internal error.")
        /// PASSCODE_RESET from fedloginctl.
        static let ownPasscodeReset = Ending(
            refused: "passcode reset refused", abandoned: nil, failed: "passcode reset failed", loginFailureID: false,
            unavailableAs: nil, endedStatus: .authError, internalStatus: .authError, internalMessage: nil)
    }

    /// The RESULT of a `Stop` in a request of kind `ending`.
    static func result(of stop: Stop, _ ending: Ending) -> (ResultStatus, String) {
        let status = stop.status == .unavailable ? (ending.unavailableAs ?? stop.status) : stop.status
        return (status, stop.reason)
    }

    /// The RESULT of any error that ended a request of kind `ending`; tells
    /// the user and logs as that kind does.
    func result(after error: any Error, _ ending: Ending, conv: any PAMConversation, log: Logger) async -> (ResultStatus, String) {
        let metadata: Logger.Metadata = ending.loginFailureID ? ["message_id": "\(MessageID.loginFailure)"] : [:]
        switch error {
        case let stop as Stop:
            if let m = stop.userMessage { try? await conv.error(m) }
            log.notice("\(ending.refused): \(stop.reason)", metadata: metadata)
            return Self.result(of: stop, ending)
        case let ended as Conversation.Ended:
            if let abandoned = ending.abandoned { log.notice("\(abandoned): \(ended)", metadata: metadata) }
            return (ending.endedStatus, ended.description)
        default:
            log.error("\(ending.failed): \(ErrorText.describe(error))")
            if let m = ending.internalMessage { try? await conv.error(m) }
            return (ending.internalStatus, "internal error")
        }
    }
}
