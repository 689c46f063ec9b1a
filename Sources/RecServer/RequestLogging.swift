import Logging

/// A log handler that keeps its logger's metadata and hands it to `base` only with a message.
///
/// Hummingbird gives every request a logger with one more metadata entry (`hb.request.id`).
/// swift-log's `StreamLogHandler` renders all its metadata to text each time an entry is set,
/// so that costs a string build per request (about 6 % of the event loop's time under load)
/// for messages that, at the server's level, are almost never written. Here setting an entry
/// is a dictionary store; the metadata is merged into the message (the message's own entries
/// win) only when one is logged.
struct MetadataAtLogTime: LogHandler {
    private var base: any LogHandler
    /// The logger's metadata, not yet given to `base`.
    var metadata: Logger.Metadata

    /// Wraps `base`, taking over its metadata.
    init(_ base: any LogHandler) {
        var base = base
        metadata = base.metadata
        base.metadata = [:]
        self.base = base
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }

    var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// - Complexity: O(metadata entries) per message written; O(1) per entry set.
    func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty { event.metadata = metadata.merging(event.metadata ?? [:]) { _, own in own } }
        base.log(event: event)
    }
}
