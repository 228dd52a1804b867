import FedloginCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// Starts fedlogind: configuration, state recovery, the socket server, the
/// outbox and the reload handler, run as one ServiceGroup until SIGTERM.
public enum Daemon {
    public static func run(configPath: String) async throws {
        let config = try ConfigLoader.load(path: configPath, probe: true)
        _ = HTTPClient.initialized
        var logger = Logger(label: "fedlogind")
        logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info

        // Fixed-port IdPs share one listener per port; callbacks are routed by state.
        let callbacks = CallbackRegistry()
        var fixed: [UInt16: LoopbackListener] = [:]
        for idp in config.idps.values where idp.redirectPort != 0 && fixed[idp.redirectPort] == nil {
            do {
                fixed[idp.redirectPort] = try await LoopbackListener.startFixed(port: Int(idp.redirectPort), registry: callbacks, logger: logger)
            } catch {
                // Another user may hold the port: fedlogind starts anyway; a
                // sign-in that needs it tries again and otherwise falls back
                // to the device grant.
                logger.error(
                    "redirect port of IdP \(idp.name) not available: \(error); its sign-ins try it again, and use the device grant where the IdP has one"
                )
            }
        }
        let runtime = try Runtime(config: config, logger: logger, fixedListeners: fixed, callbacks: callbacks)
        try runtime.recover()
        let holder = RuntimeHolder(runtime)
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: SocketServer(holder: holder)), .init(service: runtime.outbox),
                    .init(service: Reloader(holder: holder, configPath: configPath)),
                    .init(service: Watchdog()), .init(service: PeriodicSync(holder: holder)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        for l in fixed.values { await l.close() }
    }

    /// The line `systemctl status` shows.
    static func statusLine(_ runtime: Runtime, prefix: String = "ready") async -> String {
        let idps = runtime.idps.count
        let managed = (try? runtime.state.accounts().filter { $0.state == .active }.count) ?? 0
        let reachable: String
        do {
            _ = try await runtime.directory.policy(device: runtime.deviceID)
            reachable = "directory reachable"
        } catch {
            reachable = "directory unreachable (\(runtime.config.directorySocket))"
        }
        let pending = (try? runtime.state.pendingReports().count) ?? 0
        let reports = pending > 0 ? ", \(pending) binding report\(pending == 1 ? "" : "s") pending" : ""
        return "\(prefix): \(idps) IdP\(idps == 1 ? "" : "s"), \(managed) managed user\(managed == 1 ? "" : "s"), \(reachable)\(reports)"
    }
}
