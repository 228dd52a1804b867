import FedloginCore
import Foundation
import Testing

/// The golden frames in Tests/fixtures/protocol, shared with the C suite
/// (pam/tests/test_proto_fixtures.c): both codecs must agree byte for byte.
struct ProtocolFixtureTests {
    struct Fixture: CustomStringConvertible {
        var name: String
        var ok: Bool
        var verdict: String
        var fields: [String]
        var bytes: [UInt8]
        var description: String { name }
    }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures/protocol")

    static func load() throws -> [Fixture] {
        let tsv = try String(contentsOf: folder.appendingPathComponent("fixtures.tsv"), encoding: .utf8)
        return try tsv.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let cols = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            let bytes = try Data(contentsOf: folder.appendingPathComponent(cols[0] + ".bin"))
            return Fixture(name: cols[0], ok: cols[1] == "ok", verdict: cols[1], fields: Array(cols.dropFirst(3)), bytes: Array(bytes))
        }
    }

    /// The fields of a message rendered as in fixtures.tsv.
    static func render(_ m: WireMessage) -> [String] {
        switch m {
        case .authenticate(let r), .authFailed(let r): [r.user, r.service, r.tty, r.rhost, r.ruser]
        case .answer(let s), .nssGetpwnam(let s), .nssGetgrnam(let s), .control(let s), .info(let s), .sessionInfo(let s), .error(let s),
            .promptEchoOn(let s), .promptEchoOff(let s), .controlReplyPart(let s):
            [s]
        case .acctMgmt(let u, let s), .chauthtok(let u, let s), .chauthtokPrelim(let u, let s): [u, s]
        case .nssGetpwuid(let v), .nssGetgrgid(let v): [String(v)]
        case .keepalive, .nssNotFound, .passcodeReset: []
        case .result(let st, let reason): [String(st.rawValue), reason]
        case .nssPasswd(let e): [e.name, String(e.uid), String(e.gid), e.gecos, e.dir, e.shell]
        case .nssGroup(let n, let g, let m): [n, String(g), m]
        case .controlReply(let ok, let j): [ok ? "1" : "0", j]
        }
    }

    @Test func everyFixtureDecodesAsTheManifestSays() throws {
        let fixtures = try Self.load()
        #expect(fixtures.count > 40)
        for f in fixtures {
            if f.ok {
                let m = try WireCodec.decodeFrame(f.bytes)
                #expect(Self.render(m) == f.fields, "\(f.name)")
                // And the Swift encoder produces the same bytes.
                #expect(try WireCodec.encodeFrame(m) == f.bytes, "\(f.name)")
            } else {
                #expect(throws: WireError.self, "\(f.name)") { try WireCodec.decodeFrame(f.bytes) }
            }
        }
    }

    /// `refuse` fixtures: fields no encoder may encode. A string over 4096
    /// bytes is refused, never cut; bytes that are not UTF-8 cannot even be a
    /// Swift `String`, so no message can carry them. Decoders reject the frame.
    @Test func refusedFieldsAreRefused() throws {
        let fixtures = try Self.load().filter { $0.verdict == "refuse" }
        #expect(fixtures.count >= 4)
        for f in fixtures {
            #expect(throws: WireError.self, "\(f.name)") { try WireCodec.decodeFrame(f.bytes) }
            let strings = f.fields.map { Self.unhex($0) }
            let texts = strings.map { String(validating: $0, as: UTF8.self) }
            guard texts.allSatisfy({ $0 != nil }) else { continue }  // not UTF-8: no String holds it
            let t = texts.map { $0! }
            let message: WireMessage
            switch f.bytes[5] {
            case MessageType.answer.rawValue: message = .answer(t[0])
            case MessageType.info.rawValue: message = .info(t[0])
            case MessageType.authenticate.rawValue:
                message = .authenticate(PAMRequest(user: t[0], service: t[1], tty: t[2], rhost: t[3], ruser: t[4]))
            default:
                Issue.record("\(f.name): no message for type \(f.bytes[5])")
                continue
            }
            #expect(throws: WireError.self, "\(f.name)") { try WireCodec.encodeFrame(message) }
            // Fitted on purpose, it encodes, cut after a whole character.
            let fitted = try WireCodec.encodeFrame(message.fittedToWire())
            #expect(try WireCodec.decodeFrame(fitted) == message.fittedToWire(), "\(f.name)")
        }
    }

    @Test func fittingCutsBetweenCharacters() throws {
        #expect(Wire.fit("a\0b") == "ab")
        let long = "a" + String(repeating: "é", count: Wire.maxString / 2)
        #expect(Wire.fit(long) == "a" + String(repeating: "é", count: Wire.maxString / 2 - 1))
        #expect(Wire.fit(String(repeating: "x", count: Wire.maxString)).utf8.count == Wire.maxString)
        #expect(throws: WireError.nulInString) { try WireCodec.encodeFrame(.info("a\0b")) }
        #expect(throws: WireError.stringTooLong(Wire.maxString + 1)) {
            try WireCodec.encodeFrame(.error(String(repeating: "x", count: Wire.maxString + 1)))
        }
    }

    static func unhex(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    @Test func everyMessageTypeHasAFixture() throws {
        let types = Set(try Self.load().filter(\.ok).map { try WireCodec.decodeFrame($0.bytes).type })
        #expect(types == Set(MessageType.allCases))
    }

    @Test func lengthPrefixIsCheckedBeforeTheBody() throws {
        #expect(throws: WireError.frameLength(0x7fff_ffff)) { try WireCodec.bodyLength(prefix: [0x7f, 0xff, 0xff, 0xff]) }
        #expect(throws: WireError.frameLength(1)) { try WireCodec.bodyLength(prefix: [0, 0, 0, 1]) }
        #expect(try WireCodec.bodyLength(prefix: [0, 1, 0, 0]) == 65536)
    }

    @Test func answersNeverAppearInLogDescriptions() {
        #expect(!WireMessage.answer("hunter2").logDescription.contains("hunter2"))
    }
}
