import FedloginCore

extension LoginFlow {
    /// The answer to a login step that needs nothing but memory: the account
    /// rows (`StateStore.cachedAccount`) and the passwd file as last read
    /// (read again only when it changed). QuickAnswers gives it on the event
    /// loop as the frame arrives; nil sends the request the full way (a
    /// first login, a lockout to count, clear or refuse, a database read).
    /// Each answer is the one the full path gives for the same state.
    func answerFromMemory(_ request: WireMessage) -> (ResultStatus, String)? {
        switch request {
        case .authenticate(let r):
            if r.user == "root" { return (.ignore, "root is never a fedlogin account") }
            guard let local = try? runtime.accounts.lookup(r.user) else { return nil }
            // A local account fedlogin does not manage (a system account, an
            // administrator's): never fedlogin's, pam_unix decides.
            guard let rec = runtime.state.cachedAccount(r.user) else {
                guard !SafeText.hasUnsafe(r.user),
                    case .notOurs(let reason) = LoginPlanner.plan(
                        requested: r.user, local: local, managed: false, directoryUser: nil, policy: nil, configuredIdPs: [],
                        uidMin: runtime.uidMin, rules: runtime.accountRules, uidTaken: { _ in true })
                else { return nil }
                return (.ignore, reason)
            }
            // A managed account whose local password or passcode decides
            // (pam_unix checks it): active, not locked, still the local
            // account fedlogin made.
            guard rec.state == .active, local.uid == rec.uid, Self.lockStop(rec, now: runtime.clock.now()) == nil else { return nil }
            return (.ignore, "fedlogin account: the local credential decides")
        case .acctMgmt(let user, let service):
            if user == "root" { return (.ignore, "no fedlogin account policy applies") }
            guard let rec = runtime.state.cachedAccount(user) else {
                return (.ignore, "no fedlogin account policy applies")
            }
            // Locked, or a failed-attempt count to clear: the full path.
            var checked = rec.lockout
            guard rec.state == .active, Self.lockStop(rec, now: runtime.clock.now()) == nil, checked.accountChecked() == .none
            else { return nil }
            logger.notice(
                "account check passed", metadata: ["message_id": "\(MessageID.localLogin)", "user": "\(user)", "service": "\(service)"])
            return (.success, "managed account, not locked")
        default:
            return nil
        }
    }
}
