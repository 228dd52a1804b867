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

/// SIGHUP: re-read the configuration. An invalid one keeps the running one,
/// and the log and STATUS say why.
struct Reloader: Service {
    let holder: RuntimeHolder
    let configPath: String

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            let old = holder.current
            Systemd.notify("RELOADING=1")
            do {
                let config = try ConfigLoader.load(path: configPath, probe: true)
                if config.socketPath != old.config.socketPath || config.stateDir != old.config.stateDir {
                    old.logger.warning("daemon.socket and daemon.state_dir take effect at the next start")
                }
                holder.replace(try old.reloaded(with: config))
                holder.current.nssCache.publish(force: true)
                old.logger.notice(
                    "configuration reloaded", metadata: ["message_id": "\(MessageID.configReloaded)", "idps": "\(config.idps.keys.sorted())"])
                Systemd.notify("READY=1\nSTATUS=\(await Daemon.statusLine(holder.current))")
            } catch {
                old.logger.error("configuration not reloaded, the previous one stays in force: \(error)")
                Systemd.notify("READY=1\nSTATUS=reload failed, running with the previous configuration: \(error)")
            }
        }
    }
}

/// The directory sync every `daemon.sync_interval` seconds (the first one
/// shortly after start), with the configuration in force at each run.
struct PeriodicSync: Service {
    let holder: RuntimeHolder

    func run() async throws {
        var delay = 5.0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let ns = UInt64(delay * 1e9)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: ns) }
            if Task.isShuttingDownGracefully { return }
            let runtime = holder.current
            let interval = runtime.config.syncInterval
            guard interval > 0 else {
                delay = 60
                continue
            }
            delay = interval
            do {
                _ = try await Lifecycle(runtime: runtime).sync()
            } catch {
                runtime.logger.warning("directory sync skipped: \(error)")
            }
        }
    }
}

/// WATCHDOG=1 from the event loop, at half the interval systemd asks for, so
/// a stuck loop stops the pings.
struct Watchdog: Service {
    func run() async throws {
        guard let interval = Systemd.watchdogInterval() else {
            try? await gracefulShutdown()
            return
        }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let task = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(Int64(interval * 500))) { _ in
            Systemd.notify("WATCHDOG=1")
        }
        try? await gracefulShutdown()
        task.cancel()
    }
}
