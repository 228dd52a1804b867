/// The fedlogin wire protocol, version 1 (docs/protocol.md).
///
/// Frames are a 4-byte big-endian length followed by a body of
/// `version, type, fields...`. This file holds the message vocabulary; the
/// byte-level codec is in `WireCodec.swift`.
public enum Wire {
    public static let version: UInt8 = 1
    public static let maxFrame = 65536
    public static let maxString = 4096
}

/// Message type codes, fixed forever for protocol version 1.
public enum MessageType: UInt8, Sendable, CaseIterable {
    case authenticate = 0x01
    case answer = 0x02
    case acctMgmt = 0x03
    case chauthtok = 0x04
    case authFailed = 0x05
    case passcodeReset = 0x06
    case chauthtokPrelim = 0x07
    case nssGetpwnam = 0x10
    case nssGetpwuid = 0x11
    case nssGetgrnam = 0x12
    case nssGetgrgid = 0x13
    case control = 0x20

    case info = 0x81
    case error = 0x82
    case promptEchoOn = 0x83
    case promptEchoOff = 0x84
    case keepalive = 0x85
    case result = 0x86
    case sessionInfo = 0x87
    case nssPasswd = 0x90
    case nssGroup = 0x91
    case nssNotFound = 0x92
    case controlReply = 0xa0
    case controlReplyPart = 0xa1
}

/// The closed set of final statuses a RESULT carries.
public enum ResultStatus: UInt8, Sendable, CaseIterable {
    case success = 0
    case ignore = 1
    case userUnknown = 2
    case authError = 3
    case unavailable = 4
    case permissionDenied = 5
    case accountExpired = 6
    case newAuthtokRequired = 7
    case authtokError = 8
}

/// The PAM items a shim sends with a request.
public struct PAMRequest: Sendable, Equatable {
    public var user: String
    public var service: String
    public var tty: String
    public var rhost: String
    public var ruser: String

    public init(user: String, service: String, tty: String = "", rhost: String = "", ruser: String = "") {
        self.user = user
        self.service = service
        self.tty = tty
        self.rhost = rhost
        self.ruser = ruser
    }
}

public struct PasswdEntry: Sendable, Equatable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32
    public var gecos: String
    public var dir: String
    public var shell: String

    public init(name: String, uid: UInt32, gid: UInt32, gecos: String, dir: String, shell: String) {
        self.name = name
        self.uid = uid
        self.gid = gid
        self.gecos = gecos
        self.dir = dir
        self.shell = shell
    }
}

/// One decoded frame body.
public enum WireMessage: Sendable, Equatable {
    case authenticate(PAMRequest)
    /// An answer to a prompt. It may be a secret: never log it.
    case answer(String)
    case acctMgmt(user: String, service: String)
    case chauthtok(user: String, service: String)
    /// The local password was wrong (pam_fedlogin `authfail`, after pam_unix).
    case authFailed(PAMRequest)
    /// The peer's own passcode reset (fedloginctl passcode reset).
    case passcodeReset
    /// pam_sm_chauthtok's preliminary pass: is this change fedlogind's?
    case chauthtokPrelim(user: String, service: String)
    case nssGetpwnam(String)
    case nssGetpwuid(UInt32)
    case nssGetgrnam(String)
    case nssGetgrgid(UInt32)
    case control(String)

    case info(String)
    case error(String)
    case promptEchoOn(String)
    case promptEchoOff(String)
    case keepalive
    case result(ResultStatus, reason: String)
    /// Text for the start of the session (a first login's welcome): the PAM
    /// module shows it when the session opens, not during authentication.
    case sessionInfo(String)
    case nssPasswd(PasswdEntry)
    case nssGroup(name: String, gid: UInt32, members: String)
    case nssNotFound
    case controlReply(ok: Bool, json: String)
    /// A leading piece of a CONTROL reply longer than one string holds.
    case controlReplyPart(String)

    public var type: MessageType {
        switch self {
        case .authenticate: .authenticate
        case .answer: .answer
        case .acctMgmt: .acctMgmt
        case .chauthtok: .chauthtok
        case .authFailed: .authFailed
        case .passcodeReset: .passcodeReset
        case .chauthtokPrelim: .chauthtokPrelim
        case .nssGetpwnam: .nssGetpwnam
        case .nssGetpwuid: .nssGetpwuid
        case .nssGetgrnam: .nssGetgrnam
        case .nssGetgrgid: .nssGetgrgid
        case .control: .control
        case .info: .info
        case .error: .error
        case .promptEchoOn: .promptEchoOn
        case .promptEchoOff: .promptEchoOff
        case .keepalive: .keepalive
        case .result: .result
        case .sessionInfo: .sessionInfo
        case .nssPasswd: .nssPasswd
        case .nssGroup: .nssGroup
        case .nssNotFound: .nssNotFound
        case .controlReply: .controlReply
        case .controlReplyPart: .controlReplyPart
        }
    }

    /// A description safe for logs: answers are never shown.
    public var logDescription: String {
        switch self {
        case .answer: "ANSWER(<redacted>)"
        case .control: "CONTROL"
        default: "\(type)"
        }
    }
}
