extension Wire {
    /// `text` made to fit one wire string: NUL bytes dropped, and when it is
    /// longer than `maxString` bytes, cut after the last whole character that
    /// fits (never inside a character's encoding). The encoder refuses what
    /// does not fit; this is for text a sender chooses to shorten.
    public static func fit(_ text: String) -> String {
        var s = text
        if s.utf8.contains(0) { s.removeAll { $0 == "\0" } }
        guard s.utf8.count > maxString else { return s }
        var end = s.startIndex
        var used = 0
        for i in s.indices {
            let n = s[i].utf8.count
            guard used + n <= maxString else { break }
            used += n
            end = s.index(after: i)
        }
        return String(s[..<end])
    }
}

extension WireMessage {
    /// The message with every string fitted (`Wire.fit`), so that the
    /// encoder accepts it: for text the daemon composes itself (messages,
    /// reasons, a QR code), which it would rather show shortened than not at
    /// all. Requests and answers are sent as they are, or refused.
    public func fittedToWire() -> WireMessage {
        let f = Wire.fit
        switch self {
        case .authenticate(let r):
            return .authenticate(PAMRequest(user: f(r.user), service: f(r.service), tty: f(r.tty), rhost: f(r.rhost), ruser: f(r.ruser)))
        case .authFailed(let r):
            return .authFailed(PAMRequest(user: f(r.user), service: f(r.service), tty: f(r.tty), rhost: f(r.rhost), ruser: f(r.ruser)))
        case .answer(let s): return .answer(f(s))
        case .acctMgmt(let u, let s): return .acctMgmt(user: f(u), service: f(s))
        case .chauthtok(let u, let s): return .chauthtok(user: f(u), service: f(s))
        case .chauthtokPrelim(let u, let s): return .chauthtokPrelim(user: f(u), service: f(s))
        case .nssGetpwnam(let s): return .nssGetpwnam(f(s))
        case .nssGetgrnam(let s): return .nssGetgrnam(f(s))
        case .control(let s): return .control(f(s))
        case .info(let s): return .info(f(s))
        case .sessionInfo(let s): return .sessionInfo(f(s))
        case .error(let s): return .error(f(s))
        case .promptEchoOn(let s): return .promptEchoOn(f(s))
        case .promptEchoOff(let s): return .promptEchoOff(f(s))
        case .result(let status, let reason): return .result(status, reason: f(reason))
        case .nssPasswd(let e):
            return .nssPasswd(PasswdEntry(name: f(e.name), uid: e.uid, gid: e.gid, gecos: f(e.gecos), dir: f(e.dir), shell: f(e.shell)))
        case .nssGroup(let name, let gid, let members): return .nssGroup(name: f(name), gid: gid, members: f(members))
        case .controlReply(let ok, let json): return .controlReply(ok: ok, json: f(json))
        case .controlReplyPart(let s): return .controlReplyPart(f(s))
        case .passcodeReset, .nssGetpwuid, .nssGetgrgid, .keepalive, .nssNotFound: return self
        }
    }
}
