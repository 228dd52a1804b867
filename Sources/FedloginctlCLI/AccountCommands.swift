import ArgumentParser
import FedloginCore
import FedloginNIO
import Foundation
import NIOCore

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sync the managed accounts with the directory now (root only).",
        discussion:
            "Locks accounts disabled in or removed from the directory, or no longer associated with this machine (never deletes them), updates local groups, and creates the accounts of users associated with this machine."
    )
    @OptionGroup var connection: Connection

    func run() async throws {
        let r = try await connection.call(.sync, ControlReply.Sync.self, wait: 3600)
        guard !connection.json else { return }
        for (items, label) in [
            (r.provisioned, "created"), (r.locked, "locked"), (r.unlocked, "unlocked"), (r.groupChanges, "groups"),
            (r.skipped, "skipped"), (r.errors, "errors"),
        ] where !items.isEmpty {
            print("\(label): \(items.joined(separator: ", "))")
        }
        print("sync done")
    }
}

extension PasswordSyncChoice: ExpressibleByArgument {}

struct Bind: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bind a directory user to this machine (root only).",
        discussion:
            "Creates the user's account ahead of the first sign-in and reports the binding to the directory. With --adopt, an existing local account (not root, not a system account) becomes managed by fedlogin instead."
    )
    @OptionGroup var connection: Connection
    @Argument(help: "The user's local name.") var user: String
    @Option(
        name: .customLong("password-sync"),
        help:
            "yes: the directory's password becomes the password here; no: a local passcode, set at the first sign-in. Default: the directory's policy."
    )
    var passwordSync: PasswordSyncChoice?
    @Flag(help: "Take over the existing local account USER.") var adopt = false

    func run() async throws {
        let request = ControlRequest.bind(user: user, passwordSync: passwordSync.map { $0 == .yes }, adopt: adopt)
        let r = try await connection.call(request, ControlReply.Message.self, wait: 300)
        if !connection.json { print(r.message) }
    }
}

struct Unbind: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop managing a user's account (root only); the account and its files stay.")
    @OptionGroup var connection: Connection
    @Argument(help: "The user's local name.") var user: String

    func run() async throws {
        let r = try await connection.call(.unbind(user: user), ControlReply.Message.self)
        if !connection.json { print(r.message) }
    }
}

struct Unlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "End a lockout after failed login attempts (root only).")
    @OptionGroup var connection: Connection
    @Argument(help: "The user's local name.") var user: String

    func run() async throws {
        let r = try await connection.call(.unlock(user: user), ControlReply.Message.self)
        if !connection.json { print(r.message) }
    }
}
