import FedloginCore
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Everything a request handler needs, built once from the configuration.
public final class Runtime: Sendable {
    public let config: DaemonConfig
    public let logger: Logger
    public let state: StateStore
    let accounts: any AccountBackend
    let directory: any DirectoryService
    /// The directory as the account check asks it: bounded by
    /// `signin.revalidate_timeout`.
    let revalidationDirectory: any DirectoryService
    /// The directory's latest answers about users at their account checks; a reload keeps them.
    let revalidations: Revalidations
    /// The clock every timer of a request uses (sign-in deadlines, the device
    /// grant's polls, lockouts, the outbox's retries).
    let clock: any WallClock
    /// The world this runtime talks to; a reload keeps it.
    let seams: Seams
    public let idps: [String: IdPClient]
    public let callbacks: CallbackRegistry
    public let outbox: Outbox
    public let deviceID: String
    /// UID_MIN of the system (login.defs), read when the configuration is.
    public let uidMin: UInt32
    var inFlight: InFlight { inFlightShared }
    /// NSS answers of the last seconds, published next to the socket (a reload starts afresh).
    let nssCache: NSSCache
    let fixedListeners: [UInt16: LoopbackListener]
    /// Test-only crash points (FEDLOGIN_FAILPOINT): the daemon SIGKILLs itself there.
    let failpoints: Set<String>

    let inFlightShared: InFlight

    /// What a runtime talks to: the clock, the local accounts, the directory
    /// and the IdPs' HTTP. nil: the real one made from the configuration
    /// (shadow-utils in `system_root`, the directory socket, libcurl).
    struct Seams: Sendable {
        var clock: any WallClock = SystemClock()
        var accounts: (any AccountBackend)?
        var directory: (any DirectoryService)?
        var idpTransport: (any HTTPTransport)?
        /// The device id when the configuration has none (the machine's app-specific id otherwise).
        var machineID: (@Sendable () -> String?) = { Sys.machineAppID() }

        static let production = Seams()

        func accounts(_ config: DaemonConfig) -> any AccountBackend { accounts ?? ShadowAccounts(root: config.systemRoot) }

        func directory(_ config: DaemonConfig) -> any DirectoryService {
            directory ?? DirectoryClient(socketPath: config.directorySocket, timeout: config.directoryTimeout)
        }

        func revalidationDirectory(_ config: DaemonConfig) -> any DirectoryService {
            directory ?? DirectoryClient(socketPath: config.directorySocket, timeout: config.signin.revalidateTimeout)
        }
    }

    /// The first runtime of a daemon: opens the state and makes the outbox.
    convenience init(
        config: DaemonConfig, logger: Logger, fixedListeners: [UInt16: LoopbackListener], callbacks: CallbackRegistry = .init(),
        seams: Seams = .production
    ) throws {
        let state = try StateStore(directory: config.stateDir)
        try state.migrateShadowWrites()
        let outbox = Outbox(
            state: state, directory: seams.directory(config), retryMax: config.reportRetryMax, logger: logger, clock: seams.clock)
        try self.init(
            config: config, logger: logger, state: state, outbox: outbox, fixedListeners: fixedListeners, callbacks: callbacks,
            inFlight: InFlight(), revalidations: Revalidations(), seams: seams)
    }

    /// A runtime for a re-read configuration, sharing the state, the outbox,
    /// the listeners and the logins in flight with the one it replaces.
    func reloaded(with config: DaemonConfig) throws -> Runtime {
        try Runtime(
            config: config, logger: logger, state: state, outbox: outbox, fixedListeners: fixedListeners, callbacks: callbacks,
            inFlight: inFlightShared, revalidations: revalidations, seams: seams)
    }

    init(
        config: DaemonConfig, logger: Logger, state: StateStore, outbox: Outbox, fixedListeners: [UInt16: LoopbackListener],
        callbacks: CallbackRegistry, inFlight: InFlight, revalidations: Revalidations, seams: Seams
    ) throws {
        self.revalidations = revalidations
        self.seams = seams
        clock = seams.clock
        self.config = config
        self.callbacks = callbacks
        self.logger = logger
        self.state = state
        self.outbox = outbox
        self.inFlightShared = inFlight
        accounts = seams.accounts(config)
        nssCache = NSSCache(
            file: (config.socketPath as NSString).deletingLastPathComponent + "/nss.cache", state: state, logger: logger, clock: seams.clock)
        uidMin = accounts.uidMin()
        directory = seams.directory(config)
        revalidationDirectory = seams.revalidationDirectory(config)
        idps = config.idps.mapValues {
            IdPClient(config: $0, timeout: config.signin.httpTimeout, logger: logger, transport: seams.idpTransport)
        }
        deviceID = config.deviceID.isEmpty ? (seams.machineID() ?? "unknown-device") : config.deviceID
        self.fixedListeners = fixedListeners
        failpoints = Set((ProcessInfo.processInfo.environment["FEDLOGIN_FAILPOINT"] ?? "").split(separator: ",").map(String.init))
    }

    /// The loopback listener for a sign-in: the IdP's fixed one, or a new
    /// one; `temporary` ones are closed when the sign-in ends. A fixed port
    /// that could not be bound at start is tried again here; still taken:
    /// `LoopbackListener.PortUnavailable`.
    func listener(for idp: IdPConfig) async throws -> (listener: LoopbackListener, temporary: Bool) {
        if idp.redirectPort == 0 { return (try await LoopbackListener.start(port: 0, registry: callbacks, logger: logger), true) }
        if let l = fixedListeners[idp.redirectPort] { return (l, false) }
        return (try await LoopbackListener.startFixed(port: Int(idp.redirectPort), registry: callbacks, logger: logger), true)
    }

    func failpoint(_ name: String) throws {
        if failpoints.contains(name) {
            logger.critical("failpoint \(name): stopping hard")
            kill(getpid(), SIGKILL)
        }
    }

    /// Removes a half-made account (only one fedlogin itself recorded as
    /// being provisioned, with the same uid) and its record.
    func undoProvisioning(_ username: String) {
        do {
            if let rec = try state.account(username), rec.state == .provisioning {
                if let local = try accounts.lookup(username), local.uid == rec.uid {
                    try accounts.delete(name: username)
                }
                // The private group made just before useradd, if userdel left it.
                if accounts.groupID(username) == rec.uid {
                    try accounts.deleteGroup(name: username)
                }
                try state.forget(username)
            }
        } catch {
            logger.error("could not undo the provisioning of \(username): \(error)")
        }
    }

    /// At start: undo any provisioning a crash interrupted.
    func recover() throws {
        for rec in try state.provisioning() {
            logger.warning("undoing an account creation that did not finish", metadata: ["user": "\(rec.username)"])
            undoProvisioning(rec.username)
        }
    }
}

/// The users with a first login in progress: one at a time per user.
final class InFlight: Sendable {
    let names = NIOLockedValueBox(Set<String>())

    func begin(_ name: String) -> Bool { names.withLockedValue { $0.insert(name).inserted } }

    func end(_ name: String) { _ = names.withLockedValue { $0.remove(name) } }
}

/// The runtime in force; a reload swaps it. Requests in progress keep the one they started with.
public final class RuntimeHolder: Sendable {
    let box: NIOLockedValueBox<Runtime>

    init(_ runtime: Runtime) {
        box = NIOLockedValueBox(runtime)
    }

    var current: Runtime { box.withLockedValue { $0 } }

    func replace(_ runtime: Runtime) { box.withLockedValue { $0 = runtime } }
}
