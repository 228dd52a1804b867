import Foundation
import Testing

@testable import FedloginCore

@Suite struct SecretBytesTests {
    func secret(_ s: String) -> SecretBytes {
        Array(s.utf8).withUnsafeBytes { SecretBytes(copying: $0) }
    }

    @Test func holdsTheBytesNULTerminatedAndWipes() {
        let s = secret("Correct-Horse9")
        #expect(s.count == 14 && !s.isEmpty)
        #expect(s.withCString { String(cString: $0) } == "Correct-Horse9")
        #expect(s.withUnsafeBytes { Array($0) } == Array("Correct-Horse9".utf8))
        #expect(!"\(s)".contains("Horse"))
        s.wipe()
        #expect(s.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
        #expect(s.withCString { String(cString: $0) } == "")
        #expect(secret("").isEmpty)
    }

    @Test func comparesWholeBuffers() {
        #expect(secret("Correct-Horse9").constantTimeEquals(secret("Correct-Horse9")))
        #expect(!secret("Correct-Horse9").constantTimeEquals(secret("Correct-Horse8")))
        #expect(!secret("Correct-Horse9").constantTimeEquals(secret("Correct-Horse")))
        #expect(!secret("Correct-Horse").constantTimeEquals(secret("Correct-Horse9")))
        #expect(!secret("").constantTimeEquals(secret("a")))
        #expect(secret("").constantTimeEquals(secret("")))
    }

    @Test func wipeHelperZeroesMemory() {
        var bytes: [UInt8] = Array("secret".utf8)
        bytes.withUnsafeMutableBytes { SecretBytes.wipe($0) }
        #expect(bytes == [0, 0, 0, 0, 0, 0])
    }

    @Test func passcodePolicyOnBytesAgreesWithStrings() {
        let samples = [
            "Correct-Horse9", "Ab1", "alllowercase", "ALLUPPER12", "e\u{301}e\u{301}e\u{301}e\u{301}Aa1x",
            "🇩🇪🇩🇪🇩🇪🇩🇪Aa", "пароль-Пароль1", "", "12345678", "        ", "Ωmega-omega", "a\u{0}b",
        ]
        for policy in [PasscodePolicy(), PasscodePolicy(minLength: 8, minClasses: 3), PasscodePolicy(minLength: 12, minClasses: 4)] {
            for s in samples {
                let bytes = Array(s.utf8)
                #expect(bytes.withUnsafeBytes { policy.problems(withUTF8: $0) } == policy.problems(with: s), "\(s)")
            }
        }
        // Not UTF-8: each bad byte is a symbol, as String(decoding:) would show it.
        let bad: [UInt8] = [0x61, 0x62, 0xff, 0x63, 0x64, 0x65, 0x66, 0x67]
        #expect(
            bad.withUnsafeBytes { PasscodePolicy().problems(withUTF8: $0) } == PasscodePolicy().problems(with: String(decoding: bad, as: UTF8.self)))
    }

    @Test func answerRangeChecksAnAnswerLikeTheDecoder() throws {
        func range(_ m: WireMessage) throws -> Range<Int>? {
            try WireCodec.encodeFrame(m).dropFirst(4).withUnsafeBytes { try WireCodec.answerRange(inBody: $0) }
        }
        #expect(try range(.answer("Correct-Horse9")) == 4..<18)
        #expect(try range(.answer("")) == 4..<4)
        #expect(try range(.keepalive) == nil)
        #expect(try range(.info("hello")) == nil)
        func check(_ body: [UInt8], _ expected: WireError) {
            #expect(throws: expected) { try body.withUnsafeBytes { try WireCodec.answerRange(inBody: $0) } }
            #expect(throws: expected) { try WireCodec.decodeBody(ArraySlice(body)) }
        }
        check([1], .truncated)
        check([2, 2, 0, 0], .badVersion(2))
        check([1, 0x7f, 0, 0], .unknownType(0x7f))
        check([1, 2, 0], .truncated)
        check([1, 2, 0, 3, 0x61], .truncated)
        check([1, 2, 0, 1, 0x61, 0x62], .trailingBytes)
        check([1, 2, 0, 2, 0x61, 0], .nulInString)
        check([1, 2, 0, 2, 0xc3, 0x28], .invalidUTF8)
        check([1, 2, 0x10, 0x01] + [UInt8](repeating: 0x61, count: 4097), .stringTooLong(4097))
    }
}

@Suite struct ChangePasswordJSONTests {
    func secret(_ s: String) -> SecretBytes {
        Array(s.utf8).withUnsafeBytes { SecretBytes(copying: $0) }
    }

    @Test func isTheRequestJSONEncoderMakes() throws {
        for (current, new) in [("Old-Pass1", "New-Pass2"), ("q\"uo\\te", "tab\tnew\nline\u{1}"), ("Zoë-Ω", ""), ("</script>", "{\"x\":1}")] {
            let json = DirectoryRequest.changePasswordJSON(user: "al\"ice", current: secret(current), new: secret(new))
            let data = json.withUnsafeBytes { Data($0) }
            let decoded = try JSONDecoder().decode(DirectoryRequest.self, from: data)
            #expect(decoded == DirectoryRequest(op: .changePassword, user: "al\"ice", current: current, new: new))
            #expect(json.withCString { strlen($0) } == json.count)
        }
    }
}
