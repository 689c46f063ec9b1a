import Foundation
import RecStreaming
import Testing

@Suite("Pipelined delivery: what may be committed, and the result messages' encoding")
struct StreamPipeliningTests {
    @Test("an acknowledged batch is committable only when every earlier batch is acknowledged too")
    func acknowledgementsInOrder() {
        var tracker = AcknowledgementTracker()
        let first = tracker.add(offsets: [0: 10, 1: 4], events: 3, produced: 1)
        let second = tracker.add(offsets: [0: 12], events: 2, produced: 2)
        let third = tracker.add(offsets: [1: 9], events: 1, produced: 3)
        tracker.acknowledge(second, at: 5)
        tracker.acknowledge(third, at: 6)
        // The first batch's results may still be lost: nothing is committable yet.
        #expect(tracker.retire().isEmpty && tracker.count == 3)
        tracker.acknowledge(first, at: 7)
        let retired = tracker.retire()
        #expect(retired.map(\.tag) == [first, second, third])
        #expect(retired.map(\.offsets) == [[0: 10, 1: 4], [0: 12], [1: 9]])
        #expect(retired.map(\.acknowledged) == [7, 5, 6] && tracker.isEmpty)
        tracker.acknowledge(999, at: 8)  // an unknown tag changes nothing
        #expect(tracker.isEmpty)
    }

    @Test("a micro-batch with a failed delivery is never acknowledged, so neither it nor any later batch is committed")
    func failedDeliveryBlocksCommits() {
        var ledger = DeliveryLedger()
        var tracker = AcknowledgementTracker()
        let first = tracker.add(offsets: [0: 10], events: 2, produced: 1)
        let second = tracker.add(offsets: [0: 20, 1: 5], events: 3, produced: 2)
        let third = tracker.add(offsets: [1: 9], events: 1, produced: 3)
        for tag in [first, first, second, second, second, third] { ledger.sent(tag) }
        ledger.seal(first, at: 3); ledger.seal(second, at: 3); ledger.seal(third, at: 3)
        // Reports out of order, across batches: the second batch's middle message fails.
        ledger.reported(third, failure: nil, at: 4)
        ledger.reported(second, failure: nil, at: 4)
        ledger.reported(first, failure: nil, at: 5)
        ledger.reported(second, failure: "Broker: Not enough in-sync replicas", at: 5)
        ledger.reported(first, failure: nil, at: 6)
        ledger.reported(second, failure: nil, at: 6)
        #expect(ledger.inFlight == 0)
        #expect(ledger.failed == [second] && ledger.takeFailures() == ["Broker: Not enough in-sync replicas"])
        let acknowledged = ledger.takeAcknowledged()
        #expect(acknowledged.map(\.tag) == [third, first])
        for (tag, time) in acknowledged { tracker.acknowledge(tag, at: time) }
        // Only the first batch may be committed: the second's results were lost, and the third
        // comes after it.
        #expect(tracker.retire().map(\.tag) == [first])
        #expect(tracker.retire().isEmpty && tracker.count == 2)
        // A failed tag stays failed: sealing or reporting it again does not acknowledge it.
        ledger.seal(second, at: 7)
        #expect(ledger.takeAcknowledged().isEmpty)
    }

    @Test("a tag is acknowledged when sealed after its last delivery, or at its last delivery after the seal")
    func sealBeforeOrAfterDeliveries() {
        var ledger = DeliveryLedger()
        ledger.sent(1); ledger.sent(1); ledger.sent(2)
        ledger.reported(1, failure: nil, at: 1)
        ledger.seal(1, at: 2)
        #expect(ledger.takeAcknowledged().isEmpty)  // one of its messages is still in flight
        ledger.reported(2, failure: nil, at: 3)
        #expect(ledger.takeAcknowledged().isEmpty)  // not sealed: more messages may come
        ledger.seal(2, at: 4)
        ledger.reported(1, failure: nil, at: 5)
        #expect(ledger.takeAcknowledged().map(\.tag) == [2, 1])
        ledger.seal(3, at: 6)  // no messages at all
        #expect(ledger.takeAcknowledged().map(\.at) == [6])
    }

    @Test("partitions given up in a rebalance are not committed by batches still in flight")
    func forgetRevokedPartitions() {
        var tracker = AcknowledgementTracker()
        let tag = tracker.add(offsets: [0: 10, 1: 4], events: 2, produced: 1)
        tracker.forget(partitions: [1])
        tracker.acknowledge(tag, at: 2)
        #expect(tracker.retire().map(\.offsets) == [[0: 10]])
    }

    @Test("a result message decodes to the same result, whatever the ids contain")
    func resultJSON() throws {
        let awkward = "quote\" backslash\\ newline\n tab\t control\u{01}\u{1f} slash/ é 😀"
        let full = StreamResult(user: awkward, items: ["a", awkward, ""], scores: [0.25, -1e-5, 3.4e38], model: "m\"1", version: 7,
                                eventTime: 1_732_945_000.123456, latencyMs: 0.000123, partition: 3, offsets: [0, 9_000_000_000_000], error: nil)
        let bare = StreamResult(user: "u", items: [], scores: [], model: nil, version: nil, eventTime: nil, latencyMs: 2,
                                partition: 0, offsets: [], error: "no such pipeline \"x\"")
        for result in [full, bare] {
            let bytes = result.jsonBytes()
            #expect(try JSONDecoder().decode(StreamResult.self, from: Data(bytes)) == result)
            #expect(try JSONSerialization.jsonObject(with: Data(bytes)) is [String: Any])  // strict JSON
        }
        // Absent optionals are left out, as JSONEncoder does; keys sorted.
        let text = String(decoding: bare.jsonBytes(), as: UTF8.self)
        #expect(!text.contains("model") && !text.contains("version") && !text.contains("eventTime"))
        #expect(text.hasPrefix("{\"error\":") && text.hasSuffix("\"user\":\"u\"}"))
    }
}
