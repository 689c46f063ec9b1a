import Foundation
import Synchronization
import RecEngine

/// A request to stop, set from a signal handler or another thread; the processor finishes the
/// micro-batch in flight, commits and returns.
public final class StopRequest: Sendable {
    private let flag = Atomic<Bool>(false)
    /// Not yet requested.
    public init() {}
    /// Requests the stop.
    public func request() { flag.store(true, ordering: .relaxed) }
    /// Whether a stop was requested.
    public var isRequested: Bool { flag.load(ordering: .relaxed) }
}

/// Where the Kafka driver reads, writes and keeps state.
public struct KafkaStreamConfiguration: Sendable {
    /// "host:port[,host:port]".
    public var brokers: String
    /// Events topic (keyed by user, so a user's events stay in one partition).
    public var eventsTopic: String
    /// Results topic (keyed by user).
    public var resultsTopic: String
    /// Dead-letter topic: refused messages with the reason and the original bytes.
    public var deadLetterTopic: String
    /// Consumer group shared by the processors that split the partitions.
    public var group: String
    /// Directory of per-partition state snapshots (`<dir>/<group>/<topic>-<partition>.json`).
    public var stateDirectory: String
    /// Extra librdkafka settings for the consumer (e.g. `session.timeout.ms`).
    public var consumerSettings: [String: String] = [:]
    /// Extra librdkafka settings for the producer.
    public var producerSettings: [String: String] = [:]

    /// A configuration; the dead-letter topic defaults to `<events>.dead-letter`.
    public init(brokers: String, eventsTopic: String, resultsTopic: String, deadLetterTopic: String? = nil, group: String,
                stateDirectory: String) {
        self.brokers = brokers
        self.eventsTopic = eventsTopic
        self.resultsTopic = resultsTopic
        self.deadLetterTopic = deadLetterTopic ?? "\(eventsTopic).dead-letter"
        self.group = group
        self.stateDirectory = stateDirectory
    }
}

/// Counts since start, for the log line at exit.
public struct StreamCounters: Sendable {
    /// Valid events processed (replays after a restart included).
    public var events = 0
    /// Messages sent to the dead-letter topic.
    public var deadLetters = 0
    /// Result messages sent.
    public var results = 0
    /// Micro-batches scored.
    public var batches = 0
}

/// The stream processor on Kafka: consume events in a group, micro-batch them through the
/// engine, publish results, commit.
///
/// Delivery is at least once: offsets are committed only after the broker acknowledged every
/// result and dead letter of the events below them, and after the partitions' user state up to
/// those offsets was saved. After a crash the events since the last commit are processed again
/// (duplicate results, never missing ones); state is not applied twice, because each snapshot
/// carries the offset it reflects.
///
/// User state is a snapshot per partition in `stateDirectory`, loaded when the partition is
/// assigned and saved before each commit and before the partition is given up in a rebalance
/// (the eager protocol revokes everything before anything is reassigned). See the README for
/// why snapshots rather than a compacted topic.
public final class KafkaStream {
    private let configuration: KafkaStreamConfiguration
    private let processor: MicroBatchProcessor
    private let decoder: EventDecoder
    private let producer: KafkaProducer
    private var consumer: KafkaConsumer!
    private var states: [Int32: PartitionState] = [:]
    private var pending: [PendingEvent] = []
    private var deadLetters: [(partition: Int32, offset: Int64, value: [UInt8])] = []
    private var processedThrough: [Int32: Int64] = [:]  // highest offset whose outputs are acknowledged
    private var uncommitted = false
    private var lastCheckpoint = ContinuousClock.now
    // Stage boundaries of the pending events (wall clock, seconds), parallel to `pending`.
    private var pendingTimes: [(created: Double?, polled: Double)] = []
    private var loopReadyAt = wallClock()  // when the loop last came back to polling
    private var awaitingCommit: [(acknowledged: Double, events: Int)] = []
    /// Where each event's time went, stage by stage (see ``StreamStage``).
    public let stages = StageLatencies()
    /// Counts so far.
    public private(set) var counters = StreamCounters()
    /// Called with a line for the log (assignments, model swaps).
    public var log: (String) -> Void = { _ in }

    /// A processor for `configuration`, scoring with `processor`.
    public init(configuration: KafkaStreamConfiguration, processor: MicroBatchProcessor) throws {
        self.configuration = configuration
        self.processor = processor
        self.decoder = EventDecoder(options: processor.options)
        self.producer = try KafkaProducer(brokers: configuration.brokers, settings: configuration.producerSettings)
        self.consumer = try KafkaConsumer(
            brokers: configuration.brokers, group: configuration.group, settings: configuration.consumerSettings,
            assigned: { [unowned self] in self.assigned($0) }, revoking: { [unowned self] in self.revoking($0) })
    }

    private func statePath(_ partition: Int32) -> String {
        "\(configuration.stateDirectory)/\(configuration.group)/\(configuration.eventsTopic)-\(partition).json"
    }

    private func state(_ partition: Int32) -> PartitionState {
        if let state = states[partition] { return state }
        let state = PartitionState(historyPerUser: processor.options.historyPerUser, maximumUsers: processor.options.usersPerPartition)
        states[partition] = state
        return state
    }

    private func assigned(_ partitions: [TopicPartition]) {
        for partition in partitions where partition.topic == configuration.eventsTopic {
            do {
                states[partition.partition] = try PartitionState.load(
                    from: statePath(partition.partition), historyPerUser: processor.options.historyPerUser,
                    maximumUsers: processor.options.usersPerPartition)
            } catch {
                log("warning: \(error); partition \(partition.partition) starts with empty user state")
                states[partition.partition] = nil
            }
        }
        log("assigned partitions \(partitions.map(\.partition).sorted())")
    }

    private func revoking(_ partitions: [TopicPartition]) {
        do {
            try completeBatch()
            try checkpoint()
        } catch {
            log("warning: finishing before a rebalance: \(error); the next owner processes those events again")
        }
        // Whatever could not be finished is the next owner's to process again; nothing of these
        // partitions may be applied or saved here any more.
        let revoked = Set(partitions.map(\.partition))
        pendingTimes = zip(pending, pendingTimes).filter { !revoked.contains($0.0.partition) }.map(\.1)
        pending.removeAll { revoked.contains($0.partition) }
        deadLetters.removeAll { revoked.contains($0.partition) }
        for partition in revoked { states[partition] = nil; processedThrough[partition] = nil }
        log("revoked partitions \(partitions.map(\.partition).sorted())")
    }

    /// Runs until `stop` is requested: then finishes the batch in flight, commits, leaves the
    /// group and returns.
    ///
    /// - Throws: ``KafkaError`` when results cannot be delivered (nothing is committed then).
    public func run(until stop: StopRequest) throws {
        try consumer.subscribe([configuration.eventsTopic])
        defer { consumer.close() }  // runs the revoke handler: the last batch finished and committed
        let options = processor.options
        while !stop.isRequested {
            loopReadyAt = wallClock()
            var deadline: ContinuousClock.Instant?
            while pending.count + deadLetters.count < options.batchSize && !stop.isRequested {
                let wait: Int32
                if let deadline {
                    let left = deadline - .now
                    if left <= .zero { break }
                    wait = Int32(max(1, left.components.attoseconds / 1_000_000_000_000_000 + left.components.seconds * 1000))
                } else {
                    wait = 100
                }
                guard let message = consumer.poll(timeoutMilliseconds: wait) else {
                    if deadline == nil { break }
                    continue
                }
                guard message.topic == configuration.eventsTopic else { continue }
                if deadline == nil { deadline = .now + .milliseconds(options.lingerMilliseconds) }
                switch decoder.decode(message.value) {
                case let .success(event):
                    pending.append(PendingEvent(partition: message.partition, offset: message.offset, userEvent: event))
                    pendingTimes.append((message.timestamp, wallClock()))
                case let .failure(invalid):
                    deadLetters.append((message.partition, message.offset, deadLetter(message, reason: invalid.reason)))
                }
            }
            try completeBatch()
            if uncommitted && ContinuousClock.now - lastCheckpoint >= .milliseconds(options.checkpointMilliseconds) {
                try checkpoint()
            }
            for name in processor.scorer.refreshModels() { log("serving a new version of model \(name)") }
        }
        try completeBatch()
        try checkpoint()
    }

    private func deadLetter(_ message: KafkaMessage, reason: String) -> [UInt8] {
        let record: [String: Any] = [
            "reason": reason, "topic": message.topic, "partition": Int(message.partition), "offset": message.offset,
            "key": message.key.map { Data($0).base64EncodedString() } ?? NSNull(),
            "value": Data(message.value).base64EncodedString(),
        ]
        return Array((try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])) ?? Data())
    }

    /// Scores the pending events, sends results and dead letters and waits for the broker's
    /// acknowledgement; only then are their offsets eligible for commit.
    private func completeBatch() throws {
        guard !pending.isEmpty || !deadLetters.isEmpty else { return }
        let closed = wallClock()
        for (created, polled) in pendingTimes {
            if let created {
                let busy = max(0, loopReadyAt - created)
                stages.record(.busy, seconds: busy)
                stages.record(.transport, seconds: polled - created - busy)
            }
            stages.record(.batchFill, seconds: closed - polled)
        }
        let prepared = processor.prepare(pending, state: state)
        let stateDone = wallClock()
        let results = processor.score(prepared)
        let scored = wallClock()
        let encoder = JSONEncoder()
        for result in results {
            try producer.send(topic: configuration.resultsTopic, key: Array(result.user.utf8), value: Array(try encoder.encode(result)))
        }
        for letter in deadLetters {
            try producer.send(topic: configuration.deadLetterTopic, key: Array("\(letter.partition):\(letter.offset)".utf8), value: letter.value)
        }
        let produced = wallClock()
        try producer.awaitDeliveries()
        let acknowledged = wallClock()
        stages.record(.state, seconds: stateDone - closed, count: pending.count)
        stages.record(.scoring, seconds: scored - stateDone, count: pending.count)
        stages.record(.produce, seconds: produced - scored, count: pending.count)
        stages.record(.ack, seconds: acknowledged - produced, count: pending.count)
        awaitingCommit.append((acknowledged, pending.count))
        pendingTimes.removeAll(keepingCapacity: true)
        for event in pending { processedThrough[event.partition] = max(processedThrough[event.partition] ?? -1, event.offset) }
        for letter in deadLetters {
            processedThrough[letter.partition] = max(processedThrough[letter.partition] ?? -1, letter.offset)
            state(letter.partition).skip(through: letter.offset)
        }
        counters.events += pending.count
        counters.deadLetters += deadLetters.count
        counters.results += results.count
        counters.batches += 1
        pending.removeAll(keepingCapacity: true)
        deadLetters.removeAll(keepingCapacity: true)
        uncommitted = true
    }

    /// Saves the changed partitions' state, then commits the offsets after the acknowledged events.
    private func checkpoint() throws {
        lastCheckpoint = .now
        guard uncommitted else { return }
        let start = wallClock()
        for (partition, state) in states where state.dirty { try state.save(to: statePath(partition)) }
        let saved = wallClock()
        stages.record(.snapshotWrite, seconds: saved - start)
        let offsets = Dictionary(uniqueKeysWithValues: processedThrough.map {
            (TopicPartition(topic: configuration.eventsTopic, partition: $0.key), $0.value + 1)
        })
        uncommitted = false
        do {
            try consumer.commit(offsets)
            let committed = wallClock()
            stages.record(.commitRoundTrip, seconds: committed - saved)
            for batch in awaitingCommit { stages.record(.commit, seconds: committed - batch.acknowledged, count: batch.events) }
        } catch {
            // A commit refused mid-rebalance: the next owner replays from the previous commit
            // (at least once), and the saved state's offset keeps it from applying events twice.
            log("warning: \(error)")
        }
        awaitingCommit.removeAll()
    }
}
