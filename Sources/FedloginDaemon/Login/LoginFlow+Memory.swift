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
            // Locked, a failed-attempt count to clear, or no fresh answer of
            // the directory about the user (`LocalCredential.revalidate`
            // asks it): the full path.
            var checked = rec.lockout
            let now = runtime.clock.now()
            guard rec.state == .active, Self.lockStop(rec, now: now) == nil, checked.accountChecked() == .none,
                rec.offlineEnd.map({ now < $0 }) ?? true,
                Reauthentication.status(now: now, due: rec.reauthDue, graceDays: rec.reauthGrace) == .notDue,
                let answer = runtime.revalidations.fresh(user, now: now, maxAge: runtime.config.signin.revalidateCache)
            else { return nil }
            if case .noAnswer(let why) = answer.answer {
                logger.notice(
                    "the directory was not asked about the user: it did not answer \(Int(now - answer.at)) s ago (\(why)); the login goes on from local state",
                    metadata: ["user": "\(user)", "service": "\(service)"])
            }
            logger.notice(
                "account check passed", metadata: ["message_id": "\(MessageID.localLogin)", "user": "\(user)", "service": "\(service)"])
            return (.success, "managed account, not locked")
        default:
            return nil
        }
    }
}
