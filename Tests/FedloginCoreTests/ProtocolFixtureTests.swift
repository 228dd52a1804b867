import FedloginCore
import Foundation
import Testing

/// The golden frames in Tests/fixtures/protocol, shared with the C suite
/// (pam/tests/test_proto_fixtures.c): both codecs must agree byte for byte.
struct ProtocolFixtureTests {
    struct Fixture: CustomStringConvertible {
        var name: String
        var ok: Bool
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
            return Fixture(name: cols[0], ok: cols[1] == "ok", fields: Array(cols.dropFirst(3)), bytes: Array(bytes))
        }
    }

    /// The fields of a message rendered as in fixtures.tsv.
    static func render(_ m: WireMessage) -> [String] {
        switch m {
        case .authenticate(let r), .authFailed(let r): [r.user, r.service, r.tty, r.rhost, r.ruser]
        case .answer(let s), .nssGetpwnam(let s), .nssGetgrnam(let s), .control(let s), .info(let s), .error(let s),
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
                #expect(WireCodec.encodeFrame(m) == f.bytes, "\(f.name)")
            } else {
                #expect(throws: WireError.self, "\(f.name)") { try WireCodec.decodeFrame(f.bytes) }
            }
        }
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
