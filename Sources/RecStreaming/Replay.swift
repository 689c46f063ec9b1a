import Foundation
import RecEngine

/// The embedded default: an events file replayed through the same micro-batch processing as the
/// Kafka driver, without a broker.
///
/// Files: JSON Lines (one event object a line, as on the events topic), or delimited text (tab,
/// `::` or comma, detected from the first line) either with a header naming the columns —
/// `user`/`userId`/`SessionId`, `item`/`itemId`/`movieId`, `time`/`timestamp`, and optionally
/// `type`, `weight`/`rating` — or without one, positionally: user, item, time (3 columns) or
/// user, item, weight, time (4 columns, MovieLens `u.data`).
public struct Replay {
    /// Options in force.
    public let processor: MicroBatchProcessor

    /// A replay through `processor`.
    public init(processor: MicroBatchProcessor) { self.processor = processor }

    /// What a replay did.
    public struct Summary: Sendable {
        /// Valid events processed.
        public var events = 0
        /// Lines refused, with their reasons (at most 20 kept).
        public var invalid = 0
        /// First refused lines and why.
        public var invalidSamples: [String] = []
        /// Results written.
        public var results = 0
        /// Wall-clock seconds.
        public var seconds = 0.0
    }

    /// Replays `path` in micro-batches of the processor's batch size, writing each result as a
    /// JSON line to `output`. With `speedup`, event times pace the replay (`speedup` times as
    /// fast as they happened); without it, as fast as possible. `limit` stops after that many events.
    public func run(path: String, speedup: Double? = nil, limit: Int? = nil, output: (String) -> Void) throws -> Summary {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw InvalidEvent(reason: "\(path): cannot open") }
        defer { try? handle.close() }
        let decoder = EventDecoder(options: processor.options)
        let state = PartitionState(historyPerUser: processor.options.historyPerUser, maximumUsers: processor.options.usersPerPartition)
        var summary = Summary()
        let start = ContinuousClock.now
        var firstTime: Double?
        var batch: [PendingEvent] = []
        var layout: DelimitedLayout?
        var lineNumber: Int64 = 0
        let isJSON = path.hasSuffix(".jsonl") || path.hasSuffix(".json") || path.hasSuffix(".ndjson")

        func flush() {
            guard !batch.isEmpty else { return }
            for result in processor.process(batch, state: { _ in state }) {
                output(String(decoding: result.jsonBytes(), as: UTF8.self))
                summary.results += 1
            }
            batch.removeAll(keepingCapacity: true)
        }

        lines: for line in LineReader(handle) {
            lineNumber += 1
            if line.isEmpty { continue }
            let decoded: Result<UserEvent, InvalidEvent>?
            if isJSON {
                decoded = decoder.decode(Array(line.utf8))
            } else if layout == nil {
                layout = DelimitedLayout(firstLine: line)
                decoded = layout!.hasHeader ? nil : decoder.decode(layout!.fields(line))
            } else {
                decoded = decoder.decode(layout!.fields(line))
            }
            switch decoded {
            case nil: continue
            case let .failure(invalid)?:
                summary.invalid += 1
                if summary.invalidSamples.count < 20 { summary.invalidSamples.append("\(path):\(lineNumber): \(invalid.reason)") }
            case let .success(event)?:
                if let speedup, let time = event.event.timestamp {
                    let origin = firstTime ?? time
                    firstTime = origin
                    let due = start + .milliseconds(Int64((time - origin) / speedup * 1000))
                    if due > .now { flush(); Thread.sleep(forTimeInterval: Double((due - .now).components.attoseconds) * 1e-18 + Double((due - .now).components.seconds)) }
                }
                batch.append(PendingEvent(partition: 0, offset: lineNumber, userEvent: event))
                summary.events += 1
                if batch.count >= processor.options.batchSize { flush() }
                if let limit, summary.events >= limit { break lines }
            }
        }
        flush()
        let elapsed = ContinuousClock.now - start
        summary.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return summary
    }
}

/// Columns of a delimited events file.
struct DelimitedLayout {
    let separator: String
    let hasHeader: Bool
    let names: [String]

    init(firstLine: String) {
        separator = firstLine.contains("\t") ? "\t" : firstLine.contains("::") ? "::" : ","
        let cells = firstLine.components(separatedBy: separator).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let known: [String: String] = ["user": "user", "userid": "user", "user_id": "user", "sessionid": "user", "session": "user",
                                       "item": "item", "itemid": "item", "item_id": "item", "movieid": "item",
                                       "time": "time", "timestamp": "time", "type": "type", "weight": "weight", "rating": "weight"]
        if cells.contains(where: { known[$0] != nil }) {
            hasHeader = true
            names = cells.map { known[$0] ?? $0 }
        } else {
            hasHeader = false
            names = cells.count >= 4 ? ["user", "item", "weight", "time"] : ["user", "item", "time"]
        }
    }

    func fields(_ line: String) -> [String: Any] {
        var fields: [String: Any] = [:]
        for (name, value) in zip(names, line.components(separatedBy: separator)) {
            fields[name] = value.trimmingCharacters(in: .whitespaces)
        }
        if fields["type"] == nil && fields["weight"] == nil { fields["type"] = "view" }
        return fields
    }
}

/// Lines of a file, read in 1 MiB chunks.
struct LineReader: Sequence, IteratorProtocol {
    let handle: FileHandle
    var buffer: [UInt8] = []
    var position = 0
    var finished = false

    init(_ handle: FileHandle) { self.handle = handle }

    mutating func next() -> String? {
        while true {
            if let newline = buffer[position...].firstIndex(of: 10) {
                var end = newline
                if end > position && buffer[end - 1] == 13 { end -= 1 }
                let line = String(decoding: buffer[position ..< end], as: UTF8.self)
                position = newline + 1
                return line
            }
            if finished {
                guard position < buffer.count else { return nil }
                defer { position = buffer.count }
                return String(decoding: buffer[position...], as: UTF8.self)
            }
            buffer.removeFirst(position)
            position = 0
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { finished = true } else { buffer.append(contentsOf: chunk) }
        }
    }
}
