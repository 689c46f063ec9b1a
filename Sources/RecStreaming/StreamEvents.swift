import Foundation
import RecEngine
import RecKernels

/// What the stream processor accepts and how it weighs event types.
public struct StreamOptions: Sendable {
    /// The pipeline that scores; nil: the engine's only pipeline.
    public var pipeline: String?
    /// Results per user.
    public var k: Int = 10
    /// At most this many events are scored together (one engine batch).
    public var batchSize: Int = 256
    /// How long the first event of a batch waits for more before the batch is scored.
    public var lingerMilliseconds: Int = 5
    /// Kernel threads for a micro-batch that closed before it was full (light load: nothing else
    /// was waiting); nil: as many as a full batch. A full batch means a backlog, where every core
    /// on one batch gives the most events per second; a partial batch is latency-bound, and on
    /// one thread it never waits for a helper thread that the broker or other processes preempted.
    public var partialBatchThreads: Int? = 1

    /// The kernel thread limit for a micro-batch of `events` events (dead letters included):
    /// ``partialBatchThreads`` when it closed before reaching ``batchSize``, else `fullBatch`
    /// (the caller's ``ScoringThreads/limit``; nil: every core).
    public func scoringThreads(forBatchOf events: Int, fullBatch: Int?) -> Int? {
        events < batchSize ? partialBatchThreads ?? fullBatch : fullBatch
    }
    /// Whether the Kafka processor scores and produces micro-batches on threads of their own
    /// while its polling thread consumes, decodes and applies the next batch to user state
    /// (results still leave in batch order). Off: one thread does each batch's steps one after
    /// the other. nil (the default): on for micro-batches of at most ``overlapBatchLimit``
    /// events — see ``overlapsScoring``.
    public var overlapScoring: Bool? = nil
    /// With ``overlapScoring``: how many micro-batches are scored at the same time, each on its
    /// own thread with one kernel thread (default 2), rather than one at a time with every core
    /// on its scan (1). Why 2: one small batch split across two cores is a fork/join whose caller
    /// waits whenever the helper's half is late (the broker and the polling thread preempt it).
    public var concurrentBatches = 2

    /// The largest micro-batch size for which scoring overlaps by default (the engine's exact
    /// int8 scan serves up to 32 queries).
    public static let overlapBatchLimit = 32

    /// Whether scoring overlaps: ``overlapScoring``, or by default when ``batchSize`` is at most
    /// ``overlapBatchLimit``. Measured through the test broker (Benchmarks/stream.py, 100,000
    /// items): at micro-batch 16 two batches side by side kept the processor on 1.44–1.52 cores
    /// against 1.29–1.36 serially (ratio to the bound 0.70 against 0.62, means of 9 and 7 runs);
    /// at 256 one batch already keeps both cores busy, the rate was the same, and the half-load
    /// p50 about doubled (median 121 against 54 ms: a batch closed early waits behind the one
    /// scoring).
    public var overlapsScoring: Bool { overlapScoring ?? (batchSize <= Self.overlapBatchLimit) }

    /// Recent events kept per user (oldest dropped first).
    public var historyPerUser: Int = 50
    /// Users kept per partition (least recently updated dropped first).
    public var usersPerPartition: Int = 200_000
    /// Larger messages go to the dead-letter topic.
    public var maximumEventBytes: Int = 64 * 1024
    /// Event type → weight. An event names a type, a weight, or both (weight × type weight);
    /// a type not listed here is refused.
    public var eventTypes: [String: Float] = ["view": 1, "click": 1, "cart": 3, "wishlist": 2, "like": 2, "rating": 1,
                                              "buy": 5, "purchase": 5]
    /// How often user state is saved and offsets committed (also on every rebalance and stop).
    public var checkpointMilliseconds: Int = 1000

    /// The defaults.
    public init() {}
}

/// One valid event: the user it belongs to and what happened.
public struct UserEvent: Sendable, Equatable {
    /// The user's external id.
    public var user: String
    /// The event, its weight already combining type and explicit weight.
    public var event: Event

    /// `event` of `user`.
    public init(user: String, event: Event) {
        self.user = user
        self.event = event
    }
}

/// Why a message was refused; goes to the dead-letter topic with the original bytes.
public struct InvalidEvent: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was wrong, naming the field.
    public let reason: String
    /// The reason.
    public var description: String { reason }
}

/// Decodes event messages: a JSON object with `user` and `item` (strings or integers), `time`
/// (seconds since 1970, a number) and `type` (one of ``StreamOptions/eventTypes``) or `weight`
/// (a finite number) or both.
public struct EventDecoder: Sendable {
    /// The limits and event types in force.
    public let options: StreamOptions

    /// A decoder with `options`' size limit and event types.
    public init(options: StreamOptions) { self.options = options }

    /// The event in `bytes`, or why it is refused. Never traps, whatever the bytes.
    public func decode(_ bytes: [UInt8]) -> Result<UserEvent, InvalidEvent> {
        if bytes.count > options.maximumEventBytes {
            return .failure(InvalidEvent(reason: "oversized: \(bytes.count) bytes, at most \(options.maximumEventBytes)"))
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(bytes)) } catch {
            return .failure(InvalidEvent(reason: "not JSON: \(error.localizedDescription)"))
        }
        guard let fields = object as? [String: Any] else { return .failure(InvalidEvent(reason: "not a JSON object")) }
        return decode(fields)
    }

    /// The event in already-parsed `fields` (a JSON object or a CSV row's named columns).
    public func decode(_ fields: [String: Any]) -> Result<UserEvent, InvalidEvent> {
        func identifier(_ key: String) -> Result<String, InvalidEvent> {
            switch fields[key] {
            case nil, is NSNull: return .failure(InvalidEvent(reason: "missing field '\(key)'"))
            case let text as String where !text.isEmpty: return .success(text)
            // Integers a double holds exactly (|n| ≤ 2^53): larger ids must come as strings.
            case let number as NSNumber where number.doubleValue.rounded() == number.doubleValue && abs(number.doubleValue) <= 9_007_199_254_740_992:
                return .success(String(number.int64Value))
            default: return .failure(InvalidEvent(reason: "field '\(key)': expected a non-empty string or an integer (at most 2^53 in magnitude)"))
            }
        }
        let user: String, item: String
        switch (identifier("user"), identifier("item")) {
        case let (.success(u), .success(i)): (user, item) = (u, i)
        case let (.failure(e), _), let (_, .failure(e)): return .failure(e)
        }
        guard let timeValue = fields["time"], !(timeValue is NSNull) else { return .failure(InvalidEvent(reason: "missing field 'time'")) }
        guard let time = (timeValue as? NSNumber)?.doubleValue ?? (timeValue as? String).flatMap(Double.init), time.isFinite else {
            return .failure(InvalidEvent(reason: "field 'time': expected seconds since 1970 as a number"))
        }
        var weight: Float = 1
        var type = "view"
        let typeValue = fields["type"], weightValue = fields["weight"]
        if typeValue == nil && weightValue == nil {
            return .failure(InvalidEvent(reason: "missing field 'type' or 'weight'"))
        }
        if let typeValue, !(typeValue is NSNull) {
            guard let name = typeValue as? String else { return .failure(InvalidEvent(reason: "field 'type': expected a string")) }
            guard let typeWeight = options.eventTypes[name] else {
                return .failure(InvalidEvent(reason: "field 'type': unknown event type '\(name)' (known: \(options.eventTypes.keys.sorted().joined(separator: ", ")))"))
            }
            type = name
            weight = typeWeight
        }
        if let weightValue, !(weightValue is NSNull) {
            guard let value = (weightValue as? NSNumber)?.floatValue ?? (weightValue as? String).flatMap(Float.init), value.isFinite else {
                return .failure(InvalidEvent(reason: "field 'weight': expected a finite number"))
            }
            weight *= value
            guard weight.isFinite else {
                return .failure(InvalidEvent(reason: "field 'weight': \(value) times the type's weight is out of range"))
            }
        }
        return .success(UserEvent(user: user, event: Event(item: item, type: type, timestamp: time, weight: weight)))
    }
}

/// The record a refused message becomes on the dead-letter topic.
public enum DeadLetter {
    /// A JSON object with the `reason`, where the message came from (`topic`, `partition`,
    /// `offset`) and its original `key` (null when it had none) and `value`, both base64: any
    /// bytes survive. O(size of the message).
    public static func record(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8], reason: String) -> [UInt8] {
        let record: [String: Any] = [
            "reason": reason, "topic": topic, "partition": Int(partition), "offset": offset,
            "key": key.map { Data($0).base64EncodedString() } ?? NSNull(), "value": Data(value).base64EncodedString(),
        ]
        return Array((try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])) ?? Data())
    }
}

/// The bounded recent history of the users of one partition, and the offset it reflects.
///
/// Each user keeps at most `historyPerUser` events (oldest dropped); beyond `maximumUsers` the
/// least recently updated users are dropped (in bulk, amortized O(1) per update).
public final class PartitionState: @unchecked Sendable {
    /// Offset of the next event this state has not seen; events below it are not applied again
    /// when replayed after a restart.
    public var nextOffset: Int64
    private(set) var users: [String: (events: [Event], updated: UInt64)]
    private var clock: UInt64 = 0
    private let historyPerUser: Int
    private let maximumUsers: Int
    /// Changed since last saved.
    var dirty = false

    /// An empty state starting at `nextOffset`.
    public init(historyPerUser: Int, maximumUsers: Int, nextOffset: Int64 = 0) {
        self.historyPerUser = max(1, historyPerUser)
        self.maximumUsers = max(1, maximumUsers)
        self.nextOffset = nextOffset
        self.users = [:]
    }

    /// Users held.
    public var userCount: Int { users.count }

    /// `user`'s recent events, oldest first.
    public func events(of user: String) -> [Event] { users[user]?.events ?? [] }

    /// Appends `event` to `user`'s history when `offset` was not applied before; returns whether it was.
    @discardableResult
    public func apply(_ event: Event, user: String, offset: Int64) -> Bool {
        guard offset >= nextOffset else { return false }
        nextOffset = offset + 1
        clock += 1
        var events = users[user]?.events ?? []
        events.append(event)
        if events.count > historyPerUser { events.removeFirst(events.count - historyPerUser) }
        users[user] = (events, clock)
        dirty = true
        if users.count > maximumUsers + maximumUsers / 8 {
            let keep = users.sorted { $0.value.updated > $1.value.updated }.prefix(maximumUsers)
            users = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
        return true
    }

    /// Marks offsets up to `offset` as seen (an invalid message still moves the position).
    public func skip(through offset: Int64) {
        if offset >= nextOffset { nextOffset = offset + 1; dirty = true }
    }

    struct Snapshot: Codable {
        var nextOffset: Int64
        var users: [String: [Event]]
    }

    /// The state as it is now, to be written later or on another thread; marks the state saved.
    /// O(1) here: the users' table is shared copy-on-write (the next update copies it once).
    public func capture() -> CapturedPartitionState {
        dirty = false
        return CapturedPartitionState(nextOffset: nextOffset, users: users)
    }

    /// Writes the state to `path` atomically (a temporary file renamed over it).
    public func save(to path: String) throws {
        try CapturedPartitionState(nextOffset: nextOffset, users: users).write(to: path)
        dirty = false
    }

    /// The state saved at `path`, or an empty one when there is no file.
    ///
    /// - Throws: when the file exists but cannot be decoded (naming it).
    public static func load(from path: String, historyPerUser: Int, maximumUsers: Int) throws -> PartitionState {
        let state = PartitionState(historyPerUser: historyPerUser, maximumUsers: maximumUsers)
        guard FileManager.default.fileExists(atPath: path) else { return state }
        let snapshot: Snapshot
        do { snapshot = try JSONDecoder().decode(Snapshot.self, from: Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw InvalidEvent(reason: "\(path): not a stream state snapshot: \(error)")
        }
        state.nextOffset = snapshot.nextOffset
        for (user, events) in snapshot.users {
            state.clock += 1
            state.users[user] = (Array(events.suffix(state.historyPerUser)), state.clock)
        }
        return state
    }
}

/// A partition's state as it was when captured (``PartitionState/capture()``): a value, so it
/// can be written on another thread while the processor goes on updating the live state.
public struct CapturedPartitionState: Sendable {
    let nextOffset: Int64
    let users: [String: (events: [Event], updated: UInt64)]

    /// Writes it to `path` atomically (a temporary file renamed over it), in the format
    /// ``PartitionState/load(from:historyPerUser:maximumUsers:)`` reads. O(users × history).
    public func write(to path: String) throws {
        let snapshot = PartitionState.Snapshot(nextOffset: nextOffset, users: users.mapValues(\.events))
        let data = try JSONEncoder().encode(snapshot)
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AtomicFile.write(Array(data), to: path)
    }
}
