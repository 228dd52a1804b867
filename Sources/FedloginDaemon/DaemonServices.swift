import FedloginCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

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
