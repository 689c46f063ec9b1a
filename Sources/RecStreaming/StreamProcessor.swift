import Foundation
import RecEngine

/// One result message: a user's fresh recommendations after the events of one micro-batch.
public struct StreamResult: Codable, Sendable, Equatable {
    /// The user's external id (also the message key).
    public var user: String
    /// Recommended items, best first; empty when scoring failed (see ``error``).
    public var items: [String]
    /// Their scores, in the same order.
    public var scores: [Float]
    /// The model that answered (the first, by name, when a pipeline blends several).
    public var model: String?
    /// That model's version.
    public var version: Int?
    /// The time of the user's newest event in the batch (seconds since 1970).
    public var eventTime: Double?
    /// Milliseconds from receiving the user's first event of the batch to the result's being sent.
    public var latencyMs: Double
    /// The partition the events came from (0 in replay).
    public var partition: Int32
    /// The offsets of the events this result answers (line numbers in replay).
    public var offsets: [Int64]
    /// Why no items could be given (an unknown pipeline, nothing to score…), when so.
    public var error: String?

    /// A result with every field given.
    public init(user: String, items: [String], scores: [Float], model: String?, version: Int?, eventTime: Double?, latencyMs: Double,
                partition: Int32, offsets: [Int64], error: String?) {
        (self.user, self.items, self.scores, self.model, self.version) = (user, items, scores, model, version)
        (self.eventTime, self.latencyMs, self.partition, self.offsets, self.error) = (eventTime, latencyMs, partition, offsets, error)
    }
}

/// A received, decoded event and where it came from.
public struct PendingEvent: Sendable {
    /// Source partition (0 in replay).
    public var partition: Int32
    /// Source offset (line number in replay).
    public var offset: Int64
    /// The decoded event.
    public var userEvent: UserEvent
    /// When it was received.
    public var received: ContinuousClock.Instant

    /// An event received now or at `received`.
    public init(partition: Int32, offset: Int64, userEvent: UserEvent, received: ContinuousClock.Instant = .now) {
        self.partition = partition
        self.offset = offset
        self.userEvent = userEvent
        self.received = received
    }
}

/// The engine as the stream processor uses it: one call scores a micro-batch, and the served
/// models follow the store's active versions.
public final class StreamScorer: @unchecked Sendable {
    /// The engine that scores.
    public let engine: Engine
    /// The pipeline used.
    public let pipeline: String
    private let store: ModelStore?
    private var lastModelCheck = ContinuousClock.now

    /// Scores through `engine`'s `pipeline` (its only pipeline when nil); with `storeDirectory`,
    /// ``refreshModels()`` follows that store's activations.
    public init(engine: Engine, pipeline: String?, storeDirectory: String?) throws {
        self.engine = engine
        let names = engine.pipelines.keys.sorted()
        if let pipeline {
            guard names.contains(pipeline) else {
                throw InvalidEvent(reason: "--pipeline \(pipeline): no such pipeline (have \(names.joined(separator: ", ")))")
            }
            self.pipeline = pipeline
        } else {
            guard names.count == 1 else {
                throw InvalidEvent(reason: "--pipeline: the engine has \(names.count) pipelines (\(names.joined(separator: ", "))); name one")
            }
            self.pipeline = names[0]
        }
        self.store = try storeDirectory.map { try ModelStore(directory: $0) }
    }

    /// Scores `requests` as one micro-batch through the engine's batch entry point: each
    /// similarity source folds its requests' histories in together and scores them with one
    /// GEMM. One result per request, in order; each equals the one-at-a-time answer.
    public func score(_ requests: [RecommendationRequest]) -> [Result<RecommendationResponse, any Error>] {
        engine.recommend(batch: requests.map { PipelineRequest(pipeline: pipeline, request: $0) })
    }

    /// Serves the store's active version of every model whose served version differs, at most
    /// once per `intervalMilliseconds`. Returns the models swapped in. A version that cannot be
    /// loaded leaves the served one in place.
    @discardableResult
    public func refreshModels(intervalMilliseconds: Int = 500) -> [String] {
        guard let store, ContinuousClock.now - lastModelCheck >= .milliseconds(intervalMilliseconds) else { return [] }
        lastModelCheck = .now
        let served = Dictionary(engine.models.served.map { ($0.name, $0.version) }, uniquingKeysWith: { a, _ in a })
        var swapped: [String] = []
        for name in (try? store.names()) ?? [] {
            guard let active = try? store.activeVersion(of: name), served[name] != .some(active.version) else { continue }
            guard let loaded = try? store.load(active) else { continue }
            engine.models.install(loaded, as: name, version: active.version)
            swapped.append(name)
        }
        return swapped
    }
}

/// The processing shared by the Kafka and replay drivers: apply a micro-batch's events to the
/// users' state, score each user once through the engine's batch entry point, and make the
/// result messages.
public struct MicroBatchProcessor: Sendable {
    /// Options in force.
    public let options: StreamOptions
    /// The scorer.
    public let scorer: StreamScorer

    /// A processor scoring through `scorer`.
    public init(options: StreamOptions, scorer: StreamScorer) {
        self.options = options
        self.scorer = scorer
    }

    /// A micro-batch applied to user state, ready to score: one request per user and partition.
    public struct PreparedBatch {
        struct Group { var partition: Int32; var user: String; var offsets: [Int64]; var time: Double?; var received: ContinuousClock.Instant }
        var groups: [Group]
        var requests: [RecommendationRequest]
    }

    /// Applies `events` (in arrival order) to `state(partition)` and returns one result per user
    /// and partition, in the order users first appear. Events already applied (offset below the
    /// state's position, replayed after a restart) are not applied twice but still answered.
    public func process(_ events: [PendingEvent], state: (Int32) -> PartitionState) -> [StreamResult] {
        score(prepare(events, state: state))
    }

    /// The first half of ``process(_:state:)``: applies `events` to the users' state and reads
    /// each user's history once. O(events + users × history).
    public func prepare(_ events: [PendingEvent], state: (Int32) -> PartitionState) -> PreparedBatch {
        var groups: [PreparedBatch.Group] = []
        var index: [String: Int] = [:]
        for pending in events {
            let user = pending.userEvent.user
            state(pending.partition).apply(pending.userEvent.event, user: user, offset: pending.offset)
            let key = "\(pending.partition)\u{0}\(user)"
            if let at = index[key] {
                groups[at].offsets.append(pending.offset)
                groups[at].time = max(groups[at].time ?? -.infinity, pending.userEvent.event.timestamp ?? -.infinity)
            } else {
                index[key] = groups.count
                groups.append(PreparedBatch.Group(partition: pending.partition, user: user, offsets: [pending.offset],
                                                  time: pending.userEvent.event.timestamp, received: pending.received))
            }
        }
        let requests = groups.map {
            RecommendationRequest(user: $0.user, history: state($0.partition).events(of: $0.user), k: options.k)
        }
        return PreparedBatch(groups: groups, requests: requests)
    }

    /// The second half of ``process(_:state:)``: scores a prepared batch through the engine's
    /// batch entry point (one GEMM per similarity source) and makes the result messages.
    public func score(_ batch: PreparedBatch) -> [StreamResult] {
        let responses = scorer.score(batch.requests)
        let now = ContinuousClock.now
        return zip(batch.groups, responses).map { group, response in
            let latency = now - group.received
            let milliseconds = Double(latency.components.seconds) * 1e3 + Double(latency.components.attoseconds) * 1e-15
            var result = StreamResult(user: group.user, items: [], scores: [], model: nil, version: nil, eventTime: group.time,
                                      latencyMs: milliseconds, partition: group.partition, offsets: group.offsets, error: nil)
            switch response {
            case let .success(answer):
                result.items = answer.items.map(\.item)
                result.scores = answer.items.map(\.score)
                if let first = answer.models.sorted(by: { $0.key < $1.key }).first { (result.model, result.version) = (first.key, first.value) }
            case let .failure(error):
                result.error = "\(error)"
            }
            return result
        }
    }
}
