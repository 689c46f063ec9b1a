internal import CRdKafka
import Foundation
import Synchronization

// The one thin layer over librdkafka: configuration, a producer with delivery reports and a
// consumer with manual commits and a rebalance callback. Callbacks are `@convention(c)` closures
// that capture nothing; the Swift state they reach travels as the handle's opaque pointer
// (`Unmanaged`), kept alive by the owning object for as long as the handle lives. Callbacks run
// on the thread that calls poll/flush/consumer_poll, so none of this state needs a lock.

/// A librdkafka failure: the operation and librdkafka's own message.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    /// What failed and why, in librdkafka's words.
    public let description: String
    init(_ description: String) { self.description = description }
    init(_ operation: String, _ code: rd_kafka_resp_err_t) {
        self.description = "\(operation): \(String(cString: rd_kafka_err2str(code)))"
    }
}

/// A topic partition with an offset, as commits and rebalances see it.
public struct TopicPartition: Hashable, Sendable {
    /// The topic's name.
    public var topic: String
    /// The partition number.
    public var partition: Int32
}

/// One consumed message; the payload is copied out of librdkafka's buffer.
public struct KafkaMessage: Sendable {
    /// The topic it was read from.
    public var topic: String
    /// Its partition.
    public var partition: Int32
    /// Its offset in that partition.
    public var offset: Int64
    /// The key, when the producer gave one.
    public var key: [UInt8]?
    /// The payload (empty for a null value).
    public var value: [UInt8]
    /// The message's timestamp (create time from the producer, or the broker's append time),
    /// seconds since 1970 with millisecond resolution; nil when the message has none.
    public var timestamp: Double? = nil
}

/// librdkafka's version as loaded at run time (not the headers built against), e.g. "2.16.0".
public var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }

/// Builds an `rd_kafka_conf_t`; on failure the key, the value and librdkafka's reason.
private func makeConfiguration(_ settings: [String: String]) throws -> OpaquePointer {
    let configuration = rd_kafka_conf_new()!
    var message = [CChar](repeating: 0, count: 512)
    for (key, value) in settings.sorted(by: { $0.key < $1.key }) {
        if rd_kafka_conf_set(configuration, key, value, &message, message.count) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(configuration)
            throw KafkaError("librdkafka setting \(key)=\(value): \(String(cString: message))")
        }
    }
    return configuration
}

private func makeHandle(_ type: rd_kafka_type_t, _ configuration: OpaquePointer) throws -> OpaquePointer {
    var message = [CChar](repeating: 0, count: 512)
    guard let handle = rd_kafka_new(type, configuration, &message, message.count) else {
        rd_kafka_conf_destroy(configuration)
        throw KafkaError("creating a Kafka client: \(String(cString: message))")
    }
    return handle  // owns the configuration now
}

/// What the delivery-report callback updates: the per-tag ledger, behind a lock — the stream
/// processor sends from its scoring thread while its polling thread serves delivery reports.
final class DeliveryReports: Sendable {
    let ledger = Mutex(DeliveryLedger())
}

/// Per-tag bookkeeping of produced messages and their delivery reports: which tags (micro-batches)
/// are acknowledged, i.e. sealed with every message delivered.
///
/// A message whose delivery failed (refused by the broker, timed out, or failed by librdkafka
/// after its retries) makes its tag fail for good: the tag is never reported acknowledged, so the
/// events it answers are never committed (nor any later ones, since commits follow the
/// acknowledged prefix). Counting a failed delivery as an acknowledgement would commit past
/// events whose results were lost. O(1) per message.
public struct DeliveryLedger: Sendable {
    private var unacknowledged: [UInt64: Int] = [:]  // per tag, messages sent and not yet reported
    private var sealed: Set<UInt64> = []              // tags that get no more messages
    private var failedTags: Set<UInt64> = []          // tags with a failed message: never acknowledged
    private var acknowledged: [(tag: UInt64, at: Double)] = []
    /// Messages sent and not yet reported delivered or failed.
    public private(set) var inFlight = 0
    /// The first failures' reasons not yet taken by ``takeFailures()`` (at most 10 kept).
    public private(set) var failures: [String] = []

    /// Nothing sent yet.
    public init() {}

    /// Tags with a failed message (they are never reported acknowledged).
    public var failed: Set<UInt64> { failedTags }

    /// Records a message sent under `tag` (0: not tracked).
    public mutating func sent(_ tag: UInt64) {
        inFlight += 1
        if tag != 0 { unacknowledged[tag, default: 0] += 1 }
    }

    /// Records a message's delivery report: delivered, or failed with `failure` (librdkafka's reason).
    public mutating func reported(_ tag: UInt64, failure: String?, at time: Double) {
        inFlight -= 1
        if let failure {
            if failures.count < 10 { failures.append(failure) }
            if tag != 0 { failedTags.insert(tag) }
        }
        guard tag != 0 else { return }
        let left = (unacknowledged[tag] ?? 0) - 1
        unacknowledged[tag] = left
        if left <= 0 && sealed.contains(tag) { complete(tag, at: time) }
    }

    /// Declares that `tag` gets no more messages: it is acknowledged once all of its messages are
    /// delivered (at once when it had none, or all were delivered already) — unless one failed.
    public mutating func seal(_ tag: UInt64, at time: Double) {
        if (unacknowledged[tag] ?? 0) <= 0 { complete(tag, at: time) } else { sealed.insert(tag) }
    }

    private mutating func complete(_ tag: UInt64, at time: Double) {
        unacknowledged[tag] = nil
        sealed.remove(tag)
        if !failedTags.contains(tag) { acknowledged.append((tag, time)) }
    }

    /// The tags acknowledged since the last call, with when, in the order they completed.
    public mutating func takeAcknowledged() -> [(tag: UInt64, at: Double)] {
        defer { acknowledged.removeAll(keepingCapacity: true) }
        return acknowledged
    }

    /// The failures' reasons recorded since the last call.
    public mutating func takeFailures() -> [String] {
        defer { failures.removeAll() }
        return failures
    }
}

/// A producer whose every message is tracked until the broker acknowledges it (`acks=all`).
///
/// Messages carry a tag (a micro-batch): once the tag is sealed and all its messages are
/// acknowledged, ``serveDeliveries()`` reports it, so the sender can go on working while
/// acknowledgements arrive and learn later which of its batches are safe.
///
/// ``send(topic:key:value:tag:)`` and ``seal(_:)`` may be called on one thread while another
/// serves deliveries (``serveDeliveries()``); ``awaitDeliveries(timeoutMilliseconds:)`` only
/// when nothing is being sent.
public final class KafkaProducer {
    private let handle: OpaquePointer
    private let reports: DeliveryReports
    private let retained: Unmanaged<DeliveryReports>

    /// A producer for `brokers` ("host:port[,host:port]"); `settings` are passed to librdkafka
    /// after the defaults and may override them: acks=all; idempotence on (librdkafka then keeps
    /// up to 5 produce requests in flight per connection and still never reorders or duplicates
    /// a partition's messages on a retry, so a user's results stay in order); a 1 ms linger (a
    /// micro-batch's results are produced within a fraction of a millisecond, and the linger
    /// puts them in one produce request: with none, librdkafka sends the first result at once
    /// and the rest in further requests — measured against the test broker, Tansu, 0 ms cost it
    /// about three times the CPU of 5 ms at 2,000 messages/s, CPU the processor needs on a small
    /// machine); Nagle off (a small produce request
    /// is not held back waiting for the previous one's TCP acknowledgement). At-least-once does
    /// not rest on the ordering: a micro-batch counts as acknowledged only when every one of its
    /// messages is (``DeliveryLedger``), and offsets are committed over acknowledged prefixes.
    public init(brokers: String, settings: [String: String] = [:]) throws {
        var all = ["bootstrap.servers": brokers, "acks": "all", "enable.idempotence": "true", "linger.ms": "1",
                   "client.id": "recommender-stream", "socket.nagle.disable": "true"]
        all.merge(settings) { $1 }
        let configuration = try makeConfiguration(all)
        reports = DeliveryReports()
        retained = Unmanaged.passRetained(reports)
        rd_kafka_conf_set_opaque(configuration, retained.toOpaque())
        rd_kafka_conf_set_dr_msg_cb(configuration) { _, message, opaque in
            guard let message, let opaque else { return }
            let reports = Unmanaged<DeliveryReports>.fromOpaque(opaque).takeUnretainedValue()
            let code = message.pointee.err
            let tag = UInt64(UInt(bitPattern: message.pointee._private))
            let failure = code == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : String(cString: rd_kafka_err2str(code))
            let time = wallClock()
            reports.ledger.withLock { $0.reported(tag, failure: failure, at: time) }
        }
        do { handle = try makeHandle(RD_KAFKA_PRODUCER, configuration) } catch { retained.release(); throw error }
    }

    deinit {
        rd_kafka_flush(handle, 5000)
        rd_kafka_destroy(handle)
        retained.release()
    }

    /// Queues `value` for `topic` under `key`, as one of `tag`'s messages (tags are ≥ 1; 0: not
    /// tracked); waits (serving delivery reports) while the local queue is full.
    public func send(topic: String, key: [UInt8], value: [UInt8], tag: UInt64 = 0) throws {
        let opaque = UnsafeMutableRawPointer(bitPattern: UInt(tag))
        while true {
            let code = key.withUnsafeBytes { k in
                value.withUnsafeBytes { v in
                    rec_kafka_produce(handle, topic, k.baseAddress, k.count, v.baseAddress, v.count, opaque)
                }
            }
            if code == RD_KAFKA_RESP_ERR_NO_ERROR {
                reports.ledger.withLock { $0.sent(tag) }
                return
            }
            if code == RD_KAFKA_RESP_ERR__QUEUE_FULL { rd_kafka_poll(handle, 10); continue }
            throw KafkaError("producing to \(topic)", code)
        }
    }

    /// Declares that `tag` gets no more messages: it is reported acknowledged once all of its
    /// messages are (at once when it had none, or all were acknowledged already).
    public func seal(_ tag: UInt64) {
        let time = wallClock()
        reports.ledger.withLock { $0.seal(tag, at: time) }
    }

    /// Serves delivery reports without waiting; returns the sealed tags acknowledged since the
    /// last call, with when (seconds since 1970), in the order their acknowledgements came. A tag
    /// with a failed message is never returned (see ``DeliveryLedger``).
    ///
    /// - Throws: ``KafkaError`` when a message was refused for good (after librdkafka's retries);
    ///   again on every later call, since those results are lost.
    public func serveDeliveries() throws -> [(tag: UInt64, at: Double)] {
        rd_kafka_poll(handle, 0)
        try throwFailures()
        return reports.ledger.withLock { $0.takeAcknowledged() }
    }

    private var failureReasons: [String] = []

    private func throwFailures() throws {
        let (taken, failed) = reports.ledger.withLock { ($0.takeFailures(), $0.failed.count) }
        failureReasons += taken
        if failed > 0 || !failureReasons.isEmpty {
            throw KafkaError("delivery failed for \(failed) micro-batches: \(failureReasons.prefix(10).joined(separator: "; "))")
        }
    }

    /// Waits until the broker acknowledged every message sent so far.
    ///
    /// - Throws: ``KafkaError`` when a message was refused for good (after librdkafka's retries)
    ///   or `timeoutMilliseconds` passed with messages still unacknowledged.
    public func awaitDeliveries(timeoutMilliseconds: Int32 = 60_000) throws {
        let code = rd_kafka_flush(handle, timeoutMilliseconds)
        rd_kafka_poll(handle, 0)
        try throwFailures()
        let inFlight = reports.ledger.withLock { $0.inFlight }
        if code != RD_KAFKA_RESP_ERR_NO_ERROR || inFlight > 0 {
            throw KafkaError("\(inFlight) messages unacknowledged after \(timeoutMilliseconds) ms")
        }
    }
}

/// What the rebalance and commit callbacks call: the partitions gained, those about to be given
/// up, and each commit's outcome (nil: committed; else librdkafka's reason).
final class RebalanceHandlers {
    var assigned: ([TopicPartition]) -> Void = { _ in }
    var revoking: ([TopicPartition]) -> Void = { _ in }
    var committed: (String?) -> Void = { _ in }
}

/// A group consumer with manual commits (auto-commit off) and the classic, eager protocol: the
/// rebalance callback tells the owner which partitions it gains, and which it loses *before* it
/// loses them, so the owner can finish and commit its work on them first.
///
/// Not thread-safe: one thread polls and commits; the rebalance handlers run inside ``poll(timeoutMilliseconds:)``.
public final class KafkaConsumer {
    private let handle: OpaquePointer
    private let handlers: RebalanceHandlers
    private let retained: Unmanaged<RebalanceHandlers>
    private var closed = false

    /// A consumer in `group`; `settings` go to librdkafka after the defaults (no auto-commit,
    /// earliest offset for a new group, Nagle off, and fetches that wait at most 10 ms rather than
    /// librdkafka's 500 ms: the test broker, Tansu, answers a fetch only when its wait expires,
    /// not when data arrives, so an event waits about half the fetch wait there; a Kafka broker
    /// answers as soon as data is there, and the shorter wait costs only more empty fetches)
    /// and may override them.
    /// `committed` is told each commit's outcome (nil or the reason it failed), in the order
    /// the commits were made, from inside ``poll(timeoutMilliseconds:)``.
    public init(brokers: String, group: String, settings: [String: String] = [:],
                assigned: @escaping ([TopicPartition]) -> Void, revoking: @escaping ([TopicPartition]) -> Void,
                committed: @escaping (String?) -> Void = { _ in }) throws {
        var all = ["bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": "false",
                   "enable.auto.offset.store": "false", "auto.offset.reset": "earliest",
                   "partition.assignment.strategy": "range", "client.id": "recommender-stream",
                   "fetch.wait.max.ms": "10", "socket.nagle.disable": "true"]
        all.merge(settings) { $1 }
        let configuration = try makeConfiguration(all)
        handlers = RebalanceHandlers()
        handlers.assigned = assigned
        handlers.revoking = revoking
        handlers.committed = committed
        retained = Unmanaged.passRetained(handlers)
        rd_kafka_conf_set_opaque(configuration, retained.toOpaque())
        rd_kafka_conf_set_rebalance_cb(configuration) { handle, code, partitions, opaque in
            guard let handle, let opaque else { return }
            let handlers = Unmanaged<RebalanceHandlers>.fromOpaque(opaque).takeUnretainedValue()
            let list = partitions.map(topicPartitions) ?? []
            if code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
                handlers.assigned(list)
                rd_kafka_assign(handle, partitions)
            } else {
                handlers.revoking(list)
                rd_kafka_assign(handle, nil)
            }
        }
        rd_kafka_conf_set_offset_commit_cb(configuration) { _, code, _, opaque in
            guard let opaque else { return }
            let handlers = Unmanaged<RebalanceHandlers>.fromOpaque(opaque).takeUnretainedValue()
            handlers.committed(code == RD_KAFKA_RESP_ERR_NO_ERROR || code == RD_KAFKA_RESP_ERR__NO_OFFSET
                               ? nil : String(cString: rd_kafka_err2str(code)))
        }
        do { handle = try makeHandle(RD_KAFKA_CONSUMER, configuration) } catch { retained.release(); throw error }
        rd_kafka_poll_set_consumer(handle)
    }

    deinit {
        close()
        rd_kafka_destroy(handle)
        retained.release()
    }

    /// Joins the group for `topics`.
    public func subscribe(_ topics: [String]) throws {
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let code = rd_kafka_subscribe(handle, list)
        if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError("subscribing to \(topics)", code) }
    }

    /// The next message, or nil when none came within `timeoutMilliseconds`. Transient errors
    /// (a broker going away, end of partition) are left to librdkafka's retries and give nil.
    public func poll(timeoutMilliseconds: Int32) -> KafkaMessage? {
        guard let message = rd_kafka_consumer_poll(handle, timeoutMilliseconds) else { return nil }
        defer { rd_kafka_message_destroy(message) }
        let m = message.pointee
        guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        let key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        let milliseconds = rd_kafka_message_timestamp(message, nil)
        return KafkaMessage(topic: topic, partition: m.partition, offset: m.offset, key: key, value: value,
                            timestamp: milliseconds >= 0 ? Double(milliseconds) / 1000 : nil)
    }

    /// Commits `offsets` (each the offset of the next message to read): waiting for the
    /// broker's answer, or, `asynchronously`, returning at once (the outcome then goes to the
    /// `committed` handler during a later poll). Either way the handler hears of it.
    /// Returns false, committing nothing, when `offsets` is empty.
    @discardableResult
    public func commit(_ offsets: [TopicPartition: Int64], asynchronously: Bool = false) throws -> Bool {
        guard !offsets.isEmpty else { return false }
        let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in offsets {
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition).pointee.offset = offset
        }
        let code = rd_kafka_commit(handle, list, asynchronously ? 1 : 0)
        if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError("committing offsets", code) }
        return true
    }

    /// Leaves the group (running the revoke handler first); idempotent.
    public func close() {
        guard !closed else { return }
        closed = true
        rd_kafka_consumer_close(handle)
    }
}

private func topicPartitions(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
    (0 ..< Int(list.pointee.cnt)).map { index in
        let element = list.pointee.elems[index]
        return TopicPartition(topic: String(cString: element.topic), partition: element.partition)
    }
}
