import FedloginCore
import Foundation
import Logging
import ServiceLifecycle

/// Starts fedlogind: configuration, state recovery, the socket server and
/// the outbox, run as one ServiceGroup until SIGTERM.
public enum Daemon {
    public static func run(configPath: String) async throws {
        let config = try ConfigLoader.load(path: configPath)
        _ = HTTPClient.initialized
        var logger = Logger(label: "fedlogind")
        logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info

        // Fixed-port IdPs share one listener per port; callbacks are routed by state.
        let callbacks = CallbackRegistry()
        var fixed: [UInt16: LoopbackListener] = [:]
        for idp in config.idps.values where idp.redirectPort != 0 && fixed[idp.redirectPort] == nil {
            fixed[idp.redirectPort] = try await LoopbackListener.start(port: Int(idp.redirectPort), registry: callbacks, logger: logger)
        }
        let live = try Runtime(config: config, logger: logger, fixedListeners: fixed, callbacks: callbacks)
        try live.recover()
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: SocketServer(runtime: live)), .init(service: live.outbox)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        for l in fixed.values { await l.close() }
    }
}
