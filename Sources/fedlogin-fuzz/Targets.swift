import FedloginCore
import Foundation

/// The inputs fedlogin's Swift code takes from outside: frames on the
/// daemon's socket, directory-protocol JSON, and configuration files. Each
/// target checks what must hold for any input; a broken invariant traps.
enum FuzzTarget: String, CaseIterable {
    case wire
    case directory
    case config

    func run(_ bytes: [UInt8]) {
        switch self {
        case .wire: Self.wire(bytes)
        case .directory: Self.directory(bytes)
        case .config: Self.config(bytes)
        }
    }

    /// Any byte string: decoded or rejected with a WireError; what decodes
    /// encodes back to the same bytes. As a body, too.
    static func wire(_ bytes: [UInt8]) {
        do {
            let m = try WireCodec.decodeFrame(bytes)
            let again = try WireCodec.encodeFrame(m)
            precondition(again == bytes, "a decoded frame does not encode back to its bytes")
        } catch is WireError {
        } catch {
            preconditionFailure("decodeFrame threw something other than a WireError: \(error)")
        }
        do {
            _ = try WireCodec.decodeBody(bytes[...])
        } catch is WireError {
        } catch {
            preconditionFailure("decodeBody threw something other than a WireError: \(error)")
        }
    }

    /// Directory-protocol JSON: requests and responses decode or fail with a
    /// DecodingError; what decodes survives a round trip.
    static func directory(_ bytes: [UInt8]) {
        let data = Data(bytes)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if let r = try? JSONDecoder().decode(DirectoryRequest.self, from: data) {
            let back = try! JSONDecoder().decode(DirectoryRequest.self, from: try! encoder.encode(r))
            precondition(back == r, "a directory request changes in a round trip")
        }
        if let r = try? JSONDecoder().decode(DirectoryResponse.self, from: data) {
            let back = try! JSONDecoder().decode(DirectoryResponse.self, from: try! encoder.encode(r))
            precondition(back == r, "a directory response changes in a round trip")
        }
    }

    /// A configuration file: parsed, or refused with a ConfigError that names a key or the file.
    static func config(_ bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        do {
            _ = try ConfigParser.parse(files: [(path: "/etc/fedlogin/fedlogin.conf", text: text)])
        } catch let e as ConfigError {
            precondition(!e.description.isEmpty, "a configuration error with no message")
        } catch {
            preconditionFailure("the parser threw something other than a ConfigError: \(error)")
        }
    }
}
