import Foundation
import NIOCore

/// Plain words for an error a person reads (a log line, a CLI message).
///
/// NIO's `IOError` describes itself with the Swift signature of the call that
/// failed and an unbalanced parenthesis (`connect(descriptor:addr:size:): No
/// such file or directory) (errno: 2)`); every log line and CLI message that
/// shows an error goes through `describe` instead of interpolating it.
public enum ErrorText {
    /// What failed, with errno's text once: "connect failed: No such file or directory".
    public static func describe(_ error: any Error) -> String {
        switch error {
        case let e as IOError:
            return "\(callName(e)) failed: \(errnoText(e.errnoCode))"
        case let e as ChannelError:
            return describe(e)
        case let e as FramedClient.ClientError:
            return e.description
        default:
            return "\(error)"
        }
    }

    /// errno's text for a system error code, without the code.
    public static func errnoText(_ code: CInt) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    /// Only the errno's text when the error is an `IOError` (for "cannot connect to PATH: ..."),
    /// `describe` otherwise.
    static func reason(_ error: any Error) -> String {
        if let e = error as? IOError { return errnoText(e.errnoCode) }
        return describe(error)
    }

    /// The system call's plain name: "connect" for "connect(descriptor:addr:size:): ...".
    static func callName(_ error: IOError) -> String {
        let text = error.description
        let end = text.firstIndex { $0 == "(" || $0 == ":" } ?? text.endIndex
        let name = text[..<end].trimmingCharacters(in: .whitespaces)
        return name.isEmpty ? "a system call" : name
    }

    static func describe(_ error: ChannelError) -> String {
        switch error {
        case .connectTimeout: "no connection in time"
        case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed, .inputClosed: "the connection is closed"
        case .connectPending: "a connection is already being made"
        case .operationUnsupported: "the operation is not supported on this connection"
        default: "the connection failed"
        }
    }
}
