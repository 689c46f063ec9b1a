import Foundation
import RecEngine
import RecModels
import RecStreaming
import Testing

@Suite("Stream processing without a broker: event decoding, user state, micro-batches")
struct StreamProcessingTests {
    let decoder = EventDecoder(options: StreamOptions())

    func reason(_ text: String) -> String? {
        if case let .failure(invalid) = decoder.decode(Array(text.utf8)) { return invalid.reason }
        return nil
    }

    @Test("valid events decode with type weights times explicit weights; integer ids become strings")
    func validEvents() throws {
        let buy = try decoder.decode(Array(#"{"user": 7, "item": "i1", "type": "buy", "weight": 2, "time": 10.5}"#.utf8)).get()
        #expect(buy == UserEvent(user: "7", event: Event(item: "i1", type: "buy", timestamp: 10.5, weight: 10)))
        let weighted = try decoder.decode(Array(#"{"user": "u", "item": 3, "weight": 0.5, "time": 1}"#.utf8)).get()
        #expect(weighted.event.weight == 0.5 && weighted.event.item == "3")
    }

    @Test("each kind of invalid message is refused with a reason naming the problem")
    func invalidEvents() {
        #expect(reason("{nope")?.hasPrefix("not JSON") == true)
        #expect(reason("[1]") == "not a JSON object")
        #expect(reason(#"{"item": "1", "type": "view", "time": 1}"#) == "missing field 'user'")
        #expect(reason(#"{"user": "u", "type": "view", "time": 1}"#) == "missing field 'item'")
        #expect(reason(#"{"user": "u", "item": "1", "type": "view"}"#) == "missing field 'time'")
        #expect(reason(#"{"user": "u", "item": "1", "time": 1}"#) == "missing field 'type' or 'weight'")
        #expect(reason(#"{"user": "u", "item": "1", "type": "teleport", "time": 1}"#)?.contains("unknown event type 'teleport'") == true)
        #expect(reason(#"{"user": "u", "item": "1", "weight": "heavy", "time": 1}"#) == "field 'weight': expected a finite number")
        #expect(reason(#"{"user": "", "item": "1", "type": "view", "time": 1}"#)?.hasPrefix("field 'user'") == true)
        // A finite weight times the type's weight can overflow a Float; ids beyond 2^53 are not exact as numbers.
        #expect(reason(#"{"user": "u", "item": "1", "type": "buy", "weight": 1e38, "time": 1}"#)?.contains("out of range") == true)
        #expect(reason(#"{"user": 1e300, "item": "1", "type": "view", "time": 1}"#)?.hasPrefix("field 'user'") == true)
        var small = StreamOptions()
        small.maximumEventBytes = 10
        if case let .failure(invalid) = EventDecoder(options: small).decode(Array(#"{"user": "u", "item": "1", "type": "view", "time": 1}"#.utf8)) {
            #expect(invalid.reason.hasPrefix("oversized"))
        } else {
            Issue.record("an oversized message was accepted")
        }
    }

    @Test("user history is bounded, replayed offsets are not applied twice, and a snapshot round-trips")
    func partitionState() throws {
        let state = PartitionState(historyPerUser: 3, maximumUsers: 100)
        for n in 0 ..< 5 { state.apply(Event(item: "i\(n)", timestamp: Double(n)), user: "u", offset: Int64(n)) }
        #expect(state.events(of: "u").map(\.item) == ["i2", "i3", "i4"])
        #expect(!state.apply(Event(item: "again"), user: "u", offset: 4))  // a replay after a restart
        #expect(state.events(of: "u").map(\.item) == ["i2", "i3", "i4"] && state.nextOffset == 5)
        let path = NSTemporaryDirectory() + "stream-state-\(UUID().uuidString)/p0.json"
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        try state.save(to: path)
        let loaded = try PartitionState.load(from: path, historyPerUser: 3, maximumUsers: 100)
        #expect(loaded.nextOffset == 5 && loaded.events(of: "u") == state.events(of: "u"))
        #expect(try PartitionState.load(from: path + ".absent", historyPerUser: 3, maximumUsers: 100).userCount == 0)
    }

    @Test("least recently updated users are dropped beyond the bound")
    func userBound() {
        let state = PartitionState(historyPerUser: 2, maximumUsers: 8)
        for n in 0 ..< 40 { state.apply(Event(item: "i"), user: "u\(n)", offset: Int64(n)) }
        #expect(state.userCount <= 9)
        #expect(state.events(of: "u39").count == 1 && state.events(of: "u0").isEmpty)
    }

    @Test("a micro-batch gives one result per user, answers every event's offset, and folds in the whole history")
    func microBatch() throws {
        var log = Interactions()
        for user in 0 ..< 60 { for item in 0 ..< 30 where (user * 7 + item * 3) % 5 < 2 { log.append(user: "u\(user)", item: "\(item)") } }
        var als = ImplicitALS()
        als.factors = 4
        als.iterations = 3
        let model = try als.fit(try ModelCatalog(training: log))
        let directory = NSTemporaryDirectory() + "stream-store-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try ModelStore(directory: directory).add(model, name: "m", fingerprint: "f", activate: true)
        var options = StreamOptions()
        options.k = 5
        let processor = MicroBatchProcessor(options: options, scorer: try StreamScorer(engine: try Engine(store: directory), pipeline: nil, storeDirectory: directory))
        let state = PartitionState(historyPerUser: 50, maximumUsers: 100)
        let events = [("new", "1", 0), ("new", "2", 1), ("other", "3", 2), ("new", "4", 3)].map {
            PendingEvent(partition: 0, offset: Int64($0.2), userEvent: UserEvent(user: $0.0, event: Event(item: $0.1, timestamp: Double($0.2))))
        }
        let results = processor.process(events, state: { _ in state })
        #expect(results.map(\.user) == ["new", "other"])
        #expect(results[0].offsets == [0, 1, 3] && results[0].eventTime == 3 && results[0].version == 1 && results[0].model == "m")
        // Seen items never come back, and the answer is the one for the whole history at once.
        #expect(Set(results[0].items).isDisjoint(with: ["1", "2", "4"]) && results[0].items.count == 5)
        let direct = try model.recommend(history: [("1", 1), ("2", 1), ("4", 1)], k: 5).map(\.item)
        #expect(results[0].items == direct)
    }

    @Test("a micro-batch that closed before it was full scores on the partial-batch threads; a full one on the caller's limit")
    func partialBatchThreads() {
        var options = StreamOptions()
        options.batchSize = 16
        #expect(options.partialBatchThreads == 1)
        #expect(options.scoringThreads(forBatchOf: 15, fullBatch: nil) == 1)
        #expect(options.scoringThreads(forBatchOf: 1, fullBatch: 2) == 1)
        #expect(options.scoringThreads(forBatchOf: 16, fullBatch: nil) == nil)
        #expect(options.scoringThreads(forBatchOf: 16, fullBatch: 2) == 2)
        options.partialBatchThreads = nil
        #expect(options.scoringThreads(forBatchOf: 15, fullBatch: nil) == nil)
        #expect(options.scoringThreads(forBatchOf: 15, fullBatch: 2) == 2)
    }
}
