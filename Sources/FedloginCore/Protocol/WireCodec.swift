/// Byte-level encoding and decoding of wire frames (docs/protocol.md).
public enum WireError: Error, Equatable, CustomStringConvertible {
    case frameLength(Int)
    case badVersion(UInt8)
    case unknownType(UInt8)
    case truncated
    case trailingBytes
    case stringTooLong(Int)
    case nulInString
    case invalidUTF8
    case unknownStatus(UInt8)
    case badFlag(UInt8)

    public var description: String {
        switch self {
        case .frameLength(let n): "frame length \(n) outside 2...\(Wire.maxFrame)"
        case .badVersion(let v): "protocol version \(v), expected \(Wire.version)"
        case .unknownType(let t): "unknown message type \(t)"
        case .truncated: "frame ends inside a field"
        case .trailingBytes: "bytes left over after the last field"
        case .stringTooLong(let n): "string of \(n) bytes exceeds \(Wire.maxString)"
        case .nulInString: "string contains a NUL byte"
        case .invalidUTF8: "string is not UTF-8"
        case .unknownStatus(let s): "unknown result status \(s)"
        case .badFlag(let v): "flag \(v), expected 0 or 1"
        }
    }
}

public enum WireCodec {
    /// Encodes a message as a whole frame (length prefix included). Refuses
    /// what the C encoder refuses (docs/protocol.md, "Strings"): a string of
    /// more than `Wire.maxString` bytes, or one holding a NUL byte. (A Swift
    /// `String` is always valid UTF-8, the third rule.) Nothing is cut or
    /// dropped here; text that may be too long is fitted first, on purpose
    /// (`WireMessage.fittedToWire()`).
    public static func encodeFrame(_ message: WireMessage) throws(WireError) -> [UInt8] {
        var body: [UInt8] = [Wire.version, message.type.rawValue]
        var refused: WireError?
        func str(_ s: String) {
            let bytes = s.utf8
            if bytes.count > Wire.maxString {
                refused = refused ?? .stringTooLong(bytes.count)
            } else if bytes.contains(0) {
                refused = refused ?? .nulInString
            }
            body.append(UInt8((bytes.count >> 8) & 0xff))
            body.append(UInt8(bytes.count & 0xff))
            body.append(contentsOf: bytes)
        }
        func u32(_ v: UInt32) {
            body.append(contentsOf: [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)])
        }
        switch message {
        case .authenticate(let r), .authFailed(let r):
            str(r.user)
            str(r.service)
            str(r.tty)
            str(r.rhost)
            str(r.ruser)
        case .answer(let s), .nssGetpwnam(let s), .nssGetgrnam(let s), .control(let s),
            .info(let s), .sessionInfo(let s), .error(let s), .promptEchoOn(let s), .promptEchoOff(let s), .controlReplyPart(let s):
            str(s)
        case .acctMgmt(let user, let service), .chauthtok(let user, let service), .chauthtokPrelim(let user, let service):
            str(user)
            str(service)
        case .nssGetpwuid(let v), .nssGetgrgid(let v):
            u32(v)
        case .keepalive, .nssNotFound, .passcodeReset:
            break
        case .result(let status, let reason):
            body.append(status.rawValue)
            str(reason)
        case .nssPasswd(let e):
            str(e.name)
            u32(e.uid)
            u32(e.gid)
            str(e.gecos)
            str(e.dir)
            str(e.shell)
        case .nssGroup(let name, let gid, let members):
            str(name)
            u32(gid)
            str(members)
        case .controlReply(let ok, let json):
            body.append(ok ? 1 : 0)
            str(json)
        }
        if let refused { throw refused }
        let n = UInt32(body.count)
        return [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)] + body
    }

    /// Reads the length prefix; throws when it is out of range, so a reader
    /// never allocates or waits for an oversized body.
    public static func bodyLength<C: Collection>(prefix: C) throws -> Int where C.Element == UInt8 {
        precondition(prefix.count >= 4)
        var n = 0
        for b in prefix.prefix(4) { n = (n << 8) | Int(b) }
        guard n >= 2 && n <= Wire.maxFrame else { throw WireError.frameLength(n) }
        return n
    }

    /// Decodes a whole frame (length prefix included).
    public static func decodeFrame(_ frame: [UInt8]) throws -> WireMessage {
        guard frame.count >= 4 else { throw WireError.truncated }
        let n = try bodyLength(prefix: frame)
        guard frame.count - 4 == n else { throw frame.count - 4 < n ? WireError.truncated : WireError.trailingBytes }
        return try decodeBody(frame[4...])
    }

    /// Decodes a frame body (version, type, fields).
    public static func decodeBody(_ body: ArraySlice<UInt8>) throws -> WireMessage {
        var r = Reader(bytes: body)
        let version = try r.u8()
        guard version == Wire.version else { throw WireError.badVersion(version) }
        let raw = try r.u8()
        guard let type = MessageType(rawValue: raw) else { throw WireError.unknownType(raw) }
        let message: WireMessage
        switch type {
        case .authenticate:
            message = .authenticate(
                PAMRequest(user: try r.str(), service: try r.str(), tty: try r.str(), rhost: try r.str(), ruser: try r.str()))
        case .authFailed:
            message = .authFailed(
                PAMRequest(user: try r.str(), service: try r.str(), tty: try r.str(), rhost: try r.str(), ruser: try r.str()))
        case .passcodeReset: message = .passcodeReset
        case .chauthtokPrelim: message = .chauthtokPrelim(user: try r.str(), service: try r.str())
        case .answer: message = .answer(try r.str())
        case .acctMgmt: message = .acctMgmt(user: try r.str(), service: try r.str())
        case .chauthtok: message = .chauthtok(user: try r.str(), service: try r.str())
        case .nssGetpwnam: message = .nssGetpwnam(try r.str())
        case .nssGetpwuid: message = .nssGetpwuid(try r.u32())
        case .nssGetgrnam: message = .nssGetgrnam(try r.str())
        case .nssGetgrgid: message = .nssGetgrgid(try r.u32())
        case .control: message = .control(try r.str())
        case .info: message = .info(try r.str())
        case .sessionInfo: message = .sessionInfo(try r.str())
        case .error: message = .error(try r.str())
        case .promptEchoOn: message = .promptEchoOn(try r.str())
        case .promptEchoOff: message = .promptEchoOff(try r.str())
        case .keepalive: message = .keepalive
        case .result:
            let s = try r.u8()
            guard let status = ResultStatus(rawValue: s) else { throw WireError.unknownStatus(s) }
            message = .result(status, reason: try r.str())
        case .nssPasswd:
            message = .nssPasswd(
                PasswdEntry(
                    name: try r.str(), uid: try r.u32(), gid: try r.u32(), gecos: try r.str(), dir: try r.str(),
                    shell: try r.str()))
        case .nssGroup: message = .nssGroup(name: try r.str(), gid: try r.u32(), members: try r.str())
        case .nssNotFound: message = .nssNotFound
        case .controlReplyPart: message = .controlReplyPart(try r.str())
        case .controlReply:
            let ok = try r.u8()
            guard ok <= 1 else { throw WireError.badFlag(ok) }
            message = .controlReply(ok: ok == 1, json: try r.str())
        }
        guard r.atEnd else { throw WireError.trailingBytes }
        return message
    }

    /// Where an ANSWER body's string lies (offsets into `body`), checked as
    /// `decodeBody` checks it (version, length, no NUL, UTF-8, nothing after
    /// it), without making a `String` of it: an answer may be a secret the
    /// caller copies into a `SecretBytes` and then wipes from the frame.
    /// nil when the body is some other well-formed message.
    public static func answerRange(inBody body: UnsafeRawBufferPointer) throws -> Range<Int>? {
        guard body.count >= 2 else { throw WireError.truncated }
        guard body[0] == Wire.version else { throw WireError.badVersion(body[0]) }
        guard let type = MessageType(rawValue: body[1]) else { throw WireError.unknownType(body[1]) }
        guard type == .answer else {
            _ = try decodeBody(ArraySlice(body))
            return nil
        }
        guard body.count >= 4 else { throw WireError.truncated }
        let n = Int(body[2]) << 8 | Int(body[3])
        guard n <= Wire.maxString else { throw WireError.stringTooLong(n) }
        guard body.count >= 4 + n else { throw WireError.truncated }
        guard body.count == 4 + n else { throw WireError.trailingBytes }
        let range = 4..<(4 + n)
        let field = UnsafeRawBufferPointer(rebasing: body[range])
        guard !field.contains(0) else { throw WireError.nulInString }
        guard isValidUTF8(field) else { throw WireError.invalidUTF8 }
        return range
    }

    /// Whether `bytes` are well-formed UTF-8, checked in place.
    public static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    private struct Reader {
        var bytes: ArraySlice<UInt8>

        var atEnd: Bool { bytes.isEmpty }

        mutating func u8() throws -> UInt8 {
            guard let b = bytes.first else { throw WireError.truncated }
            bytes = bytes.dropFirst()
            return b
        }

        mutating func u16() throws -> Int {
            (Int(try u8()) << 8) | Int(try u8())
        }

        mutating func u32() throws -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<4 { v = (v << 8) | UInt32(try u8()) }
            return v
        }

        mutating func str() throws -> String {
            let n = try u16()
            guard n <= Wire.maxString else { throw WireError.stringTooLong(n) }
            guard bytes.count >= n else { throw WireError.truncated }
            let raw = bytes.prefix(n)
            bytes = bytes.dropFirst(n)
            guard !raw.contains(0) else { throw WireError.nulInString }
            guard let s = String(validating: raw, as: UTF8.self) else { throw WireError.invalidUTF8 }
            return s
        }
    }
}
