import FedloginCore
import FedloginNIO
import Foundation
import Logging

extension LocalCredential {
    /// Re-authentication in the account phase (docs/accounts.md,
    /// "Re-authentication"): nothing before the sign-in at the IdP falls due
    /// (`reauth_interval` days after the last one); a warning during
    /// `reauth_grace`; then this login signs the owner in at the IdP through
    /// `conv`, or is refused (the Stop) when it cannot: an SSH-key login,
    /// whose conversation answers nothing, or a failed sign-in.
    func reauthenticate(_ rec: StateStore.Account, service: String, conv: (any PAMConversation)?, now: Double) async -> Stop? {
        guard rec.state == .active else { return nil }
        var log = logger
        log[metadataKey: "user"] = "\(rec.username)"
        log[metadataKey: "service"] = "\(service)"
        let days = rec.reauthInterval
        switch Reauthentication.status(now: now, due: rec.reauthDue, graceDays: rec.reauthGrace) {
        case .notDue:
            return nil
        case .grace(let until):
            log.notice(
                "a sign-in at the IdP is due (every \(days) days); the login goes on until \(LoginFlow.clock(until))",
                metadata: ["message_id": "\(MessageID.reauthDue)"])
            try? await conv?.info(
                "Your organization asks you to sign in with your identity provider every \(days) days. From \(LoginFlow.clock(until)) on, logging in to \(rec.username) asks you to (at the console, or over SSH with the passcode)."
            )
            return nil
        case .required:
            let told = Stop(
                status: .permissionDenied,
                userMessage:
                    "\(rec.username) must sign in with the identity provider again (every \(days) days). Log in at the console, or over SSH with the passcode, to do it.",
                reason: "a sign-in at the IdP is due and this login did not do it")
            guard let conv else { return told }
            do {
                _ = try await signInAsOwner(rec, service: service, why: "re-authentication", conv: conv, log: log)
                // A turn on the account-change queue may wait behind other
                // logins' account changes: the PAM module hears keepalives.
                try await conv.keepingAlive { [runtime] in
                    await runtime.directoryAnswered(rec.username, offlineMax: nil, at: runtime.clock.now(), signedIn: true)
                }
            } catch let stop as Stop {
                return Stop(status: .permissionDenied, userMessage: stop.userMessage, reason: stop.reason)
            } catch {
                var stop = told
                stop.reason += ": \(ErrorText.describe(error))"
                return stop
            }
            log.notice("signed in at the IdP again (every \(days) days)", metadata: ["message_id": "\(MessageID.reauthenticated)"])
            return nil
        }
    }
}
