import FedloginNIO
import NIOCore
import NIOPosix
import Testing

/// Errors read by people say what failed in plain words, errno's text once.
struct ErrorTextTests {
    @Test func ioErrorsSayTheCallAndErrnoOnce() {
        let e = IOError(errnoCode: 2, reason: "connect(descriptor:addr:size:)")
        #expect("\(e)".contains("(errno: 2)"))  // what NIO says
        #expect(ErrorText.describe(e) == "connect failed: No such file or directory")
    }

    @Test func aMissingSocketIsNamedWithoutSwiftSignatures() async {
        do {
            _ = try await FramedClient.with(socket: "/nonexistent/fedlogin-test.sock") { _ in 0 }
            Issue.record("connected to a missing socket")
        } catch {
            let text = ErrorText.describe(error)
            #expect(text == "cannot connect to /nonexistent/fedlogin-test.sock: No such file or directory")
        }
    }

    @Test func channelErrorsArePlainWords() {
        #expect(ErrorText.describe(ChannelError.ioOnClosedChannel) == "the connection is closed")
        #expect(ErrorText.describe(ChannelError.connectTimeout(.seconds(2))) == "no connection in time")
    }
}
