import CFedloginSys
import FedloginCore
import Foundation
import Logging

/// sd_notify, sd_listen_fds and the watchdog, through libsystemd. Each is a
/// no-op when fedlogind does not run under systemd.
public enum Systemd {
    public static func notify(_ state: String) {
        _ = sd_notify(0, state)
    }

    public static func status(_ line: String) {
        notify("STATUS=\(line)")
    }

    /// The listening socket systemd passed (socket activation), if any.
    public static func listenFD() -> Int32? {
        let n = sd_listen_fds(1)
        return n == 1 ? SD_LISTEN_FDS_START : nil
    }

    /// The watchdog interval in seconds, when systemd asks for pings.
    public static func watchdogInterval() -> Double? {
        var usec: UInt64 = 0
        return sd_watchdog_enabled(0, &usec) > 0 ? Double(usec) / 1e6 : nil
    }
}

/// A swift-log handler writing to journald with structured fields:
/// MESSAGE_ID, FEDLOGIN_USER, FEDLOGIN_SERVICE, FEDLOGIN_IDP and the rest of
/// the metadata in the message text. Used when stderr is the journal.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        var all = metadata
        if let extra { all.merge(extra) { $1 } }
        let id = all.removeValue(forKey: "message_id").map { "\($0)" }
        let user = all.removeValue(forKey: "user").map { "\($0)" }
        let service = all.removeValue(forKey: "service").map { "\($0)" }
        let idp = all.removeValue(forKey: "idp").map { "\($0)" }
        var text = message.description
        if !all.isEmpty {
            text += " (" + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + ")"
        }
        if let user { text = "\(user): " + text }
        _ = fedlogin_journal_send(text, Self.priority(level), id, user, service, idp, label)
    }

    static func priority(_ level: Logger.Level) -> Int32 {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// journald when stderr is connected to it (systemd sets JOURNAL_STREAM),
    /// else stderr; either way through `SafeLogHandler`.
    public static func bootstrap(label: String) {
        if ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil {
            LoggingSystem.bootstrap { SafeLogHandler(JournalLogHandler(label: $0)) }
        } else {
            LoggingSystem.bootstrap { SafeLogHandler(StreamLogHandler.standardError(label: $0)) }
        }
    }
}

/// Wraps a log handler so that no logged value can forge a log line or
/// reach a terminal as an escape sequence: the message and every metadata
/// value are passed through `SafeText.escape` (user names, reasons, claims,
/// directory fields and IdP answers all end up in log lines).
public struct SafeLogHandler: LogHandler {
    var inner: any LogHandler

    public init(_ inner: any LogHandler) {
        self.inner = inner
    }

    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue.mapValues(Self.clean) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue.map(Self.clean) }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        inner.log(
            level: level, message: "\(SafeText.escape(message.description))", metadata: extra?.mapValues(Self.clean),
            source: source, file: file, function: function, line: line)
    }

    /// A metadata value with every string in it escaped.
    public static func clean(_ v: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch v {
        case .string(let s): .string(SafeText.escape(s))
        case .stringConvertible(let c): .string(SafeText.escape(c.description))
        case .array(let a): .array(a.map(clean))
        case .dictionary(let d): .dictionary(Dictionary(uniqueKeysWithValues: d.map { (SafeText.escape($0.key), clean($0.value)) }))
        }
    }
}
