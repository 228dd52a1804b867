import ArgumentParser
import FedloginCore
import FedloginNIO
import Foundation
import NIOCore

struct Passcode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Your fedlogin passcode on this machine.", subcommands: [Reset.self])

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign in with your identity provider and choose a new passcode (your own account only).")
        @Option(help: "fedlogind's socket.")
        var socket = "/run/fedlogin/fedlogind.sock"

        func run() async throws {
            let status: ResultStatus
            do {
                status = try await FramedClient.with(socket: socket) { session in
                    try await session.send(WireMessage.passcodeReset.exactBody())
                    while true {
                        let m = try WireMessage(body: try await session.receive(timeout: .seconds(30)))
                        switch m {
                        // Unbuffered: each message shows as soon as it comes, also through a pipe.
                        case .info(let t), .sessionInfo(let t): FileHandle.standardOutput.write(Data((t + "\n").utf8))
                        case .error(let t): FileHandle.standardError.write(Data((t + "\n").utf8))
                        case .promptEchoOn(let p): try await session.send(WireMessage.answer(Terminal.read(p, echo: true)).exactBody())
                        case .promptEchoOff(let p): try await session.send(WireMessage.answer(Terminal.read(p, echo: false)).exactBody())
                        case .keepalive: continue
                        case .result(let s, _): return s
                        default: throw CLIError("fedlogind sent an unexpected answer")
                        }
                    }
                }
            } catch let e as FramedClient.ClientError {
                throw CLIError("fedlogind is not reachable: \(e). Is it running? Try: systemctl status fedlogind")
            }
            guard status == .success else { throw ExitCode(1) }
        }
    }
}

/// Prompts on the terminal; with echo off the typed text is not shown.
enum Terminal {
    static func read(_ prompt: String, echo: Bool) -> String {
        FileHandle.standardOutput.write(Data(prompt.utf8))
        var old = termios()
        let isTTY = isatty(0) == 1 && tcgetattr(0, &old) == 0
        if !echo && isTTY {
            var quiet = old
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSAFLUSH, &quiet)
        }
        let line = readLine(strippingNewline: true) ?? ""
        if !echo && isTTY {
            tcsetattr(0, TCSAFLUSH, &old)
            FileHandle.standardOutput.write(Data("\n".utf8))
        }
        return line
    }
}
