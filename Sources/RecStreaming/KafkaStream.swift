import Foundation
import Synchronization
import RecEngine
import RecKernels

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
    /// Micro-batches that were ready (applied to user state) while the one before was still
    /// being scored or produced: the overlap of ``StreamOptions/overlapsScoring`` at work.
    public var preparedWhileScoring = 0
}

/// The stream processor on Kafka: consume events in a group, micro-batch them through the
/// engine, publish results, commit.
///
/// Micro-batches close when full, when no further event is waiting in the consumer, or
/// `lingerMilliseconds` after their first event — so under light load an event is scored as soon
/// as it arrives, and under heavy load the backlog makes the batches full.
///
/// Scoring overlaps the polling thread's work (``StreamOptions/overlapsScoring``): the polling
/// thread consumes, decodes and applies batch N+1 to user state while batch N (and with
/// ``StreamOptions/concurrentBatches`` 2, batch N−1 too) is scored on threads of the
/// ``OverlappedStage``; results are produced in batch order, so a user's results keep the order of
/// their events. Before a rebalance and at the end the stage is drained first.
///
/// Delivery is at least once, and pipelined: a batch's results are produced and the next batch
/// is taken at once, while the broker's acknowledgements come in. Offsets are committed
/// (asynchronously) only after the broker acknowledged every result and dead letter of the
/// events below them and of every earlier batch (``AcknowledgementTracker``), and after the
/// partitions' user state covering them was saved. After a crash the events since the last
/// commit are processed again (duplicate results, never missing ones); state is not applied
/// twice, because each snapshot carries the offset it reflects.
///
/// User state is a snapshot per partition in `stateDirectory`, loaded when the partition is
/// assigned and saved before each commit — on a writer thread, captured as it was when the
/// offsets to commit were taken, so scoring goes on meanwhile — and before the partition is
/// given up in a rebalance (the eager protocol revokes everything before anything is
/// reassigned; the results in flight are waited for then, and the snapshot written in place).
/// See the README for why snapshots rather than a compacted topic.
public final class KafkaStream {
    private let configuration: KafkaStreamConfiguration
    private let processor: MicroBatchProcessor
    private let decoder: EventDecoder
    private let producer: KafkaProducer
    private var consumer: KafkaConsumer!
    private var states: [Int32: PartitionState] = [:]
    private var pending: [PendingEvent] = []
    private var deadLetters: [(partition: Int32, offset: Int64, value: [UInt8])] = []
    private var inFlight = AcknowledgementTracker()
    private let snapshots = SnapshotWriter()
    private var processedThrough: [Int32: Int64] = [:]  // highest offset whose outputs (and earlier ones) are acknowledged
    private var uncommitted = false
    private var lastCheckpoint = ContinuousClock.now
    // Stage boundaries of the pending events (wall clock, seconds), parallel to `pending`.
    private var pendingTimes: [(created: Double?, polled: Double)] = []
    private var timeline = BusyTimeline()  // when the loop worked rather than polled
    private var awaitingCommit: [(acknowledged: Double, events: Int)] = []
    // Commits made and not yet answered, oldest first: when requested and the batches they cover.
    private var commitsInFlight: [(requested: Double, batches: [(acknowledged: Double, events: Int)])] = []
    /// Where each event's time went, stage by stage (see ``StreamStage``).
    public let stages = StageLatencies()
    /// Counts so far.
    public private(set) var counters = StreamCounters()
    /// Called with a line for the log (assignments, model swaps).
    public var log: (String) -> Void = { _ in }
    // Scores and produces batch N on its own thread while this one prepares batch N+1
    // (``StreamOptions/overlapsScoring``); nil: both on this thread, one after the other.
    private var scoringStage: OverlappedStage<ScoringJob, ScoredJob>?
    // Batches the scoring thread finished, for this thread's figures (stages, acknowledgement times).
    private let scored = Mutex<[ScoredBatch]>([])

    /// A prepared micro-batch on its way to scoring and producing.
    private struct ScoringJob {
        var batch: MicroBatchProcessor.PreparedBatch
        var deadLetters: [(partition: Int32, offset: Int64, value: [UInt8])]
        var threads: Int?
        var tag: UInt64
        var events: Int
        var prepared: Double
    }

    /// A batch's results, to produce.
    private struct ScoredJob {
        var job: ScoringJob
        var results: [StreamResult]
        var scored: Double
    }

    /// When a batch's scoring and producing ended (seconds since 1970).
    private struct ScoredBatch {
        var tag: UInt64
        var events: Int
        var prepared: Double
        var scored: Double
        var produced: Double
    }

    /// A processor for `configuration`, scoring with `processor`.
    public init(configuration: KafkaStreamConfiguration, processor: MicroBatchProcessor) throws {
        self.configuration = configuration
        self.processor = processor
        self.decoder = EventDecoder(options: processor.options)
        self.producer = try KafkaProducer(brokers: configuration.brokers, settings: configuration.producerSettings)
        self.consumer = try KafkaConsumer(
            brokers: configuration.brokers, group: configuration.group, settings: configuration.consumerSettings,
            assigned: { [unowned self] in self.assigned($0) }, revoking: { [unowned self] in self.revoking($0) },
            committed: { [unowned self] in self.committed($0) })
        if processor.options.overlapsScoring {
            scoringStage = OverlappedStage(name: "rec-stream-score", workers: processor.options.concurrentBatches,
                                           work: { [unowned self] in self.score($0) }, deliver: { [unowned self] in try self.produce($0) })
        }
    }

    deinit { scoringStage?.close() }

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
            try finishInFlight()
        } catch {
            log("warning: finishing before a rebalance: \(error); the next owner processes those events again")
        }
        // Whatever could not be finished is the next owner's to process again; nothing of these
        // partitions may be applied, saved or committed here any more.
        let revoked = Set(partitions.map(\.partition))
        pendingTimes = zip(pending, pendingTimes).filter { !revoked.contains($0.0.partition) }.map(\.1)
        pending.removeAll { revoked.contains($0.partition) }
        deadLetters.removeAll { revoked.contains($0.partition) }
        inFlight.forget(partitions: revoked)
        for partition in revoked { states[partition] = nil; processedThrough[partition] = nil }
        log("revoked partitions \(partitions.map(\.partition).sorted())")
    }

    private func committed(_ failure: String?) {
        let now = wallClock()
        if let failure {
            // A commit refused (mid-rebalance, say): a later commit covers those offsets, or the
            // next owner replays from the previous one (at least once).
            log("warning: commit failed: \(failure)")
        }
        guard !commitsInFlight.isEmpty else { return }
        let commit = commitsInFlight.removeFirst()
        guard failure == nil else { return }
        stages.record(.commitRoundTrip, seconds: now - commit.requested)
        for batch in commit.batches { stages.record(.commit, seconds: now - batch.acknowledged, count: batch.events) }
    }

    /// Runs until `stop` is requested: then finishes the batch in flight, waits for its results'
    /// acknowledgements, commits, leaves the group and returns.
    ///
    /// - Throws: ``KafkaError`` when results cannot be delivered (nothing more is committed then).
    public func run(until stop: StopRequest) throws {
        try consumer.subscribe([configuration.eventsTopic])
        // Last (defers run in reverse): no scoring thread may still use this stream when run
        // returns or throws — after a failed batch the others may still be scoring.
        defer { scoringStage?.finish() }
        defer { consumer.close() }  // runs the revoke handler: the last batch finished and committed
        let options = processor.options
        while !stop.isRequested {
            var deadline: ContinuousClock.Instant?
            while pending.count + deadLetters.count < options.batchSize && !stop.isRequested {
                let message: KafkaMessage?
                if let deadline {
                    // The batch is open: take what is already waiting, close when nothing is.
                    if ContinuousClock.now >= deadline { break }
                    message = consumer.poll(timeoutMilliseconds: 0)
                    if message == nil { break }
                } else {
                    // Wait for a first event; briefly while acknowledgements are due, so they
                    // are taken in (and offsets become committable) without delay.
                    message = consumer.poll(timeoutMilliseconds: inFlight.isEmpty ? 100 : 2)
                    if message == nil { break }
                }
                guard let message, message.topic == configuration.eventsTopic else { continue }
                if deadline == nil { deadline = .now + .milliseconds(options.lingerMilliseconds) }
                switch decoder.decode(message.value) {
                case let .success(event):
                    pending.append(PendingEvent(partition: message.partition, offset: message.offset, userEvent: event))
                    pendingTimes.append((message.timestamp, wallClock()))
                case let .failure(invalid):
                    deadLetters.append((message.partition, message.offset, deadLetter(message, reason: invalid.reason)))
                }
            }
            let working = wallClock()
            try sendBatch()
            try retireAcknowledged()
            if let written = snapshots.finished() { try commit(after: written) }
            if uncommitted && !snapshots.isBusy && ContinuousClock.now - lastCheckpoint >= .milliseconds(options.checkpointMilliseconds) {
                startCheckpoint()
            }
            for name in processor.scorer.refreshModels() { log("serving a new version of model \(name)") }
            timeline.worked(from: working, to: wallClock())
        }
        try finishInFlight()
    }

    private func deadLetter(_ message: KafkaMessage, reason: String) -> [UInt8] {
        DeadLetter.record(topic: message.topic, partition: message.partition, offset: message.offset, key: message.key,
                          value: message.value, reason: reason)
    }

    /// Sends the pending batch and everything before it, waits for all acknowledgements, saves
    /// state and commits, waiting for the answer: before a rebalance and at the end.
    private func finishInFlight() throws {
        // First the snapshot being written (none may land after a partition is given up); the
        // checkpoint below supersedes its commit and covers at least its offsets.
        if let written = snapshots.waitUntilFinished() {
            awaitingCommit = written.batches + awaitingCommit
            uncommitted = true
            if let error = written.error { throw error }
        }
        try sendBatch()
        try scoringStage?.drain()
        try producer.awaitDeliveries()
        try retireAcknowledged()
        try checkpoint()
    }

    /// Applies the pending events to user state, then scores them and produces their results and
    /// dead letters — on the scoring thread, after the batch before it, when scoring overlaps;
    /// without waiting for the broker: the batch joins ``inFlight`` until its acknowledgements
    /// come in. Batches are produced in the order they were taken, so a user's results keep the
    /// order of their events.
    private func sendBatch() throws {
        guard !pending.isEmpty || !deadLetters.isEmpty else { return }
        let closed = wallClock()
        for (created, polled) in pendingTimes {
            if let created {
                let busy = timeline.busySeconds(from: created, to: polled)
                stages.record(.busy, seconds: busy)
                stages.record(.transport, seconds: max(0, polled - created - busy))
            }
            stages.record(.batchFill, seconds: closed - polled)
        }
        // State changes stay on this thread, in event order: batch N+1's fold-in sees batch N's
        // events even while batch N is still being scored.
        let prepared = processor.prepare(pending, state: state)
        var offsets: [Int32: Int64] = [:]
        for event in pending { offsets[event.partition] = max(offsets[event.partition] ?? -1, event.offset) }
        for letter in deadLetters {
            offsets[letter.partition] = max(offsets[letter.partition] ?? -1, letter.offset)
            // A refused message still moves the partition's position (the state snapshot may run
            // ahead of the commit: replayed events are answered, not applied twice).
            state(letter.partition).skip(through: letter.offset)
        }
        let stateDone = wallClock()
        stages.record(.state, seconds: stateDone - closed, count: pending.count)
        // Batches scored side by side get one kernel thread each.
        let threads = scoringStage != nil && processor.options.concurrentBatches > 1
            ? 1 : processor.options.scoringThreads(forBatchOf: pending.count + deadLetters.count, fullBatch: ScoringThreads.limit)
        let tag = inFlight.add(offsets: offsets, events: pending.count, produced: stateDone)
        let job = ScoringJob(batch: prepared, deadLetters: deadLetters, threads: threads, tag: tag, events: pending.count, prepared: stateDone)
        counters.events += pending.count
        counters.deadLetters += deadLetters.count
        counters.results += prepared.groups.count
        counters.batches += 1
        pending.removeAll(keepingCapacity: true)
        pendingTimes.removeAll(keepingCapacity: true)
        deadLetters.removeAll(keepingCapacity: true)
        if let scoringStage {
            if scoringStage.isBusy { counters.preparedWhileScoring += 1 }
            try scoringStage.submit(job)
        } else {
            try produce(score(job))
        }
        takeScored()
    }

    /// Scores a prepared batch through the engine (on a scoring thread when scoring overlaps).
    private func score(_ job: ScoringJob) -> ScoredJob {
        let results = ScoringThreads.$limit.withValue(job.threads) { processor.score(job.batch) }
        return ScoredJob(job: job, results: results, scored: wallClock())
    }

    /// Hands a scored batch's results and dead letters to the producer under the batch's tag,
    /// then seals it — in batch order (on a scoring thread when scoring overlaps: it touches no
    /// state of the polling thread's but ``scored``).
    private func produce(_ scoredJob: ScoredJob) throws {
        let (job, results, scoredAt) = (scoredJob.job, scoredJob.results, scoredJob.scored)
        for result in results {
            try producer.send(topic: configuration.resultsTopic, key: Array(result.user.utf8), value: result.jsonBytes(), tag: job.tag)
        }
        for letter in job.deadLetters {
            try producer.send(topic: configuration.deadLetterTopic, key: Array("\(letter.partition):\(letter.offset)".utf8),
                              value: letter.value, tag: job.tag)
        }
        let producedAt = wallClock()
        // Recorded before the seal, so the polling thread knows the batch's times before it can
        // see its acknowledgement.
        scored.withLock {
            $0.append(ScoredBatch(tag: job.tag, events: job.events, prepared: job.prepared, scored: scoredAt, produced: producedAt))
        }
        producer.seal(job.tag)
    }

    /// Records the figures of the batches the scoring thread finished.
    private func takeScored() {
        let finished = scored.withLock { batches in defer { batches.removeAll(keepingCapacity: true) }; return batches }
        for batch in finished {
            inFlight.produced(batch.tag, at: batch.produced)
            stages.record(.scoring, seconds: batch.scored - batch.prepared, count: batch.events)
            stages.record(.produce, seconds: batch.produced - batch.scored, count: batch.events)
        }
    }

    /// Takes in the acknowledgements that arrived; the batches acknowledged in order make their
    /// offsets committable.
    private func retireAcknowledged() throws {
        let deliveries = try producer.serveDeliveries()
        // After serving: a batch is sealed only after its times were recorded, so every batch
        // acknowledged here is among those taken now (taken before, a batch sealed and
        // acknowledged in between kept its preparation time as produce time).
        takeScored()
        for (tag, time) in deliveries { inFlight.acknowledge(tag, at: time) }
        for batch in inFlight.retire() {
            for (partition, offset) in batch.offsets { processedThrough[partition] = max(processedThrough[partition] ?? -1, offset) }
            let acknowledged = batch.acknowledged ?? wallClock()
            if batch.events > 0 {
                stages.record(.ack, seconds: acknowledged - batch.produced, count: batch.events)
                awaitingCommit.append((acknowledged, batch.events))
            }
            uncommitted = true
        }
    }

    /// Captures the changed partitions' state (it covers every event produced so far, so every
    /// acknowledged one) and the offsets after the acknowledged events, and has the snapshots
    /// written on the writer thread; the commit follows when they are (``commit(after:)``).
    private func startCheckpoint() {
        lastCheckpoint = .now
        let captured = states.filter(\.value.dirty).map { (statePath($0.key), $0.value.capture()) }
        let offsets = Dictionary(uniqueKeysWithValues: processedThrough.map {
            (TopicPartition(topic: configuration.eventsTopic, partition: $0.key), $0.value + 1)
        })
        uncommitted = false
        snapshots.start(captured, offsets: offsets, batches: awaitingCommit)
        awaitingCommit.removeAll()
    }

    /// Commits, without waiting for the broker, the offsets whose state snapshot is now written
    /// (the outcome comes to ``committed(_:)``).
    private func commit(after written: SnapshotWriter.Written) throws {
        if let error = written.error { throw error }
        stages.record(.snapshotWrite, seconds: written.finished - written.started)
        commitsInFlight.append((written.finished, written.batches))
        do {
            if try !consumer.commit(written.offsets, asynchronously: true) { commitsInFlight.removeLast() }
        } catch {
            commitsInFlight.removeLast()
            log("warning: \(error)")
        }
    }

    /// Saves the changed partitions' state here and now, then commits the offsets after the
    /// acknowledged events and waits for the broker's answer: before a rebalance and at the end.
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
        commitsInFlight.append((saved, awaitingCommit))
        awaitingCommit.removeAll()
        do {
            if try !consumer.commit(offsets) { commitsInFlight.removeLast() }
        } catch {
            commitsInFlight.removeLast()
            // A commit refused mid-rebalance: the next owner replays from the previous commit
            // (at least once), and the saved state's offset keeps it from applying events twice.
            log("warning: \(error)")
        }
    }
}

/// Writes captured partition states on its own thread, one checkpoint at a time, and holds the
/// offsets those snapshots cover until the processor's thread commits them.
final class SnapshotWriter: @unchecked Sendable {
    /// A finished write: the offsets it makes committable, or why it failed.
    struct Written: Sendable {
        var offsets: [TopicPartition: Int64]
        var batches: [(acknowledged: Double, events: Int)]
        var error: (any Error)?
        var started: Double
        var finished: Double
    }

    private let queue = DispatchQueue(label: "recommender.stream.snapshots")
    private let lock = NSLock()
    private var done: Written?  // guarded by lock
    /// A write was started and its outcome not yet taken (processor's thread only).
    private(set) var isBusy = false

    /// Writes `captured` (path, state) in the background; `offsets` and `batches` come back with the outcome.
    func start(_ captured: [(String, CapturedPartitionState)], offsets: [TopicPartition: Int64],
               batches: [(acknowledged: Double, events: Int)]) {
        isBusy = true
        let started = wallClock()
        queue.async { [self] in
            var failure: (any Error)?
            do { for (path, state) in captured { try state.write(to: path) } } catch { failure = error }
            let written = Written(offsets: offsets, batches: batches, error: failure, started: started, finished: wallClock())
            lock.withLock { done = written }
        }
    }

    /// The finished write's outcome, once (nil while writing or when none was started).
    func finished() -> Written? {
        guard isBusy, let written = lock.withLock({ () -> Written? in defer { done = nil }; return done }) else { return nil }
        isBusy = false
        return written
    }

    /// Waits for the write in progress and returns its outcome (nil when none was started).
    func waitUntilFinished() -> Written? {
        guard isBusy else { return nil }
        queue.sync {}
        return finished()
    }
}
