import RecEngine
import RecKernels
import RecModels
import Synchronization
import Testing

/// A source that counts the requests it was asked to score, around another source.
struct CountingSource: SimilaritySource {
    let inner: any SimilaritySource
    let calls = Counter()
    var model: String { inner.model }
    func applies(to request: PreparedRequest, models: ModelSnapshots) -> Bool { inner.applies(to: request, models: models) }
    func candidates(for requests: [PreparedRequest], count: Int, constraints: ScoringConstraints,
                    models: ModelSnapshots) -> [Result<Candidates, any Error>] {
        calls.add(requests.count, batches: 1)
        return inner.candidates(for: requests, count: count, constraints: constraints, models: models)
    }

    final class Counter: Sendable {
        private let state = Mutex((requests: 0, batches: 0))
        func add(_ requests: Int, batches: Int) { state.withLock { $0.requests += requests; $0.batches += batches } }
        var requests: Int { state.withLock { $0.requests } }
        var batches: Int { state.withLock { $0.batches } }
    }
}

@Suite("The request path")
struct RequestPathTests {
    @Test("a fallback chain stops at the first source that gives k items: a known user costs one scan")
    func fallbackStops() throws {
        let manager = servedModels()
        let byFactors = CountingSource(inner: UserFactorsSource(model: "als")), byFoldIn = CountingSource(inner: FoldInSource(model: "als"))
        let pipeline = Pipeline(name: "p", preprocessors: [IDMapping(model: "als")], sources: [byFactors, byFoldIn],
                                postprocessors: [ExcludeSeen()], k: 5)
        let known = try pipeline.run(RecommendationRequest(user: knownUserID), models: manager)
        #expect(known.items.count == 5 && byFactors.calls.requests == 1 && byFoldIn.calls.requests == 0)
        #expect(known.items.map(\.item) == (try als.recommend(user: knownUserID, k: 5)).map(\.item))
        // Fresh events: the user-factors source does not apply; fold-in answers.
        _ = try pipeline.run(RecommendationRequest(user: knownUserID, history: [Event(item: "i1")]), models: manager)
        #expect(byFactors.calls.requests == 1 && byFoldIn.calls.requests == 1)
        // A blend runs every source.
        let blend = Pipeline(name: "b", preprocessors: [IDMapping(model: "als")], sources: [byFactors, CountingSource(inner: ItemToItemSource(model: "knn"))],
                             combiner: WeightedBlend(weights: [1, 1]), k: 5)
        _ = try blend.run(RecommendationRequest(user: knownUserID, items: ["i2"]), models: manager)
        #expect(byFactors.calls.requests == 2)
    }

    @Test("allow/deny lists are applied while scoring: k items whenever k are eligible")
    func allowDenyInKernel() throws {
        let manager = servedModels()
        // The 12 items this user's model ranks lowest: far outside any over-fetch of the top.
        let ranked = try als.recommend(user: knownUserID, k: catalog.items.count)
        let allowed = Set(ranked.suffix(12).map(\.item)), denied = ranked.suffix(12).first!.item
        let pipeline = Pipeline(name: "p", preprocessors: [IDMapping(model: "als")], sources: [UserFactorsSource(model: "als")],
                                postprocessors: [ExcludeSeen(), AllowDenyFilter(allow: allowed, deny: [denied])], k: 10)
        let response = try pipeline.run(RecommendationRequest(user: knownUserID), models: manager)
        #expect(response.items.count == 10)
        #expect(response.items.allSatisfy { allowed.contains($0.item) && $0.item != denied })
        #expect(response.items.map(\.item) == Array(ranked.suffix(12).map(\.item).filter { $0 != denied }.prefix(10)))
        // Exclusions named by the request are left out in the kernel too.
        let excluding = try pipeline.run(RecommendationRequest(user: knownUserID, exclude: [response.items[0].item]), models: manager)
        #expect(excluding.items.count == 10 && !excluding.items.contains { $0.item == response.items[0].item })
    }

    @Test("category caps fetch more until k items fit the caps")
    func categoryCapsRefill() throws {
        let manager = servedModels()
        let ranked = try als.recommend(user: knownUserID, k: catalog.items.count)
        // The user's 60 best items are all "top"; everything else is one category per item.
        var rows: [String: [String: String]] = [:]
        for (rank, entry) in ranked.enumerated() { rows[entry.item] = ["genre": rank < 60 ? "top" : "g\(rank)"] }
        let genres = ItemMetadata(rows: rows, categoryColumn: "genre")
        let pipeline = Pipeline(name: "p", preprocessors: [IDMapping(model: "als")], sources: [UserFactorsSource(model: "als")],
                                postprocessors: [ExcludeSeen(), CategoryCap(maximumPerCategory: 2, catalog: genres)], k: 10)
        let response = try pipeline.run(RecommendationRequest(user: knownUserID), models: manager)
        #expect(response.items.map(\.item) == ranked.prefix(2).map(\.item) + ranked[60 ..< 68].map(\.item))
    }

    @Test("a batch answers each request as it would be answered alone, scoring each source's requests together")
    func batchEqualsSingles() throws {
        let manager = servedModels()
        let byFactors = CountingSource(inner: UserFactorsSource(model: "als")), byFoldIn = CountingSource(inner: FoldInSource(model: "als"))
        let pipeline = Pipeline(name: "p", preprocessors: [IDMapping(model: "als"), EventTypeWeighting(weights: ["buy": 5])],
                                sources: [byFactors, byFoldIn, ItemToItemSource(model: "als")],
                                postprocessors: [ExcludeSeen(), PopularityFallback(model: "pop")], k: 7)
        var generator = SeededGenerator(seed: 11)
        let requests: [RecommendationRequest] = (0 ..< 120).map { n in
            let item = { catalog.items[Int.random(in: 0 ..< catalog.items.count, using: &generator)] }
            switch n % 5 {
            case 0, 1: return RecommendationRequest(user: catalog.users[Int.random(in: 0 ..< catalog.users.count, using: &generator)])
            case 2: return RecommendationRequest(history: (0 ..< Int.random(in: 1 ... 6, using: &generator)).map { _ in Event(item: item(), type: "buy") })
            case 3: return RecommendationRequest(user: catalog.users[n], history: [Event(item: item())], k: 3, exclude: [item()])
            default: return n % 10 == 4 ? RecommendationRequest(items: [item(), item()]) : RecommendationRequest(user: "stranger-\(n)")
            }
        }
        let batched = pipeline.run(batch: requests, models: manager)
        #expect(byFactors.calls.batches == 1 && byFoldIn.calls.batches == 1)
        for (request, answer) in zip(requests, batched) {
            let alone = try pipeline.run(request, models: manager)
            let together = try answer.get()
            #expect(together.items.map(\.item) == alone.items.map(\.item), "\(request)")
            for (a, b) in zip(together.items, alone.items) { #expect(abs(a.score - b.score) <= 1e-4 * max(1, abs(b.score))) }
        }
        // One bad request fails alone.
        let mixed = pipeline.run(batch: [RecommendationRequest(user: knownUserID), RecommendationRequest(user: knownUserID, k: 0)], models: manager)
        #expect((try? mixed[0].get()) != nil)
        #expect(throws: PipelineError.badRequest("k must be at least 1, got 0")) { try mixed[1].get() }
    }

    @Test("k is bounded by the pipeline's maximum and never allocates past the catalog")
    func boundedK() throws {
        let manager = servedModels()
        let pipeline = Pipeline(name: "p", preprocessors: [IDMapping(model: "als")], sources: [UserFactorsSource(model: "als")], k: 5, maximumK: 1000)
        #expect(throws: PipelineError.badRequest("k must be at most 1000, got 1000000000000")) {
            try pipeline.run(RecommendationRequest(user: knownUserID, k: 1_000_000_000_000), models: manager)
        }
        let all = try pipeline.run(RecommendationRequest(user: knownUserID, k: 1000), models: manager)
        #expect(all.items.count == catalog.items.count)
    }

    @Test("feedback changes the next answer: the events are folded in and left out")
    func feedback() throws {
        let manager = servedModels()
        let engine = Engine(models: manager, pipelines: Engine.defaultPipelines(manager))
        let before = try engine.recommend(RecommendationRequest(user: knownUserID, k: 10), pipeline: "als")
        let liked = before.items.prefix(3).map { Event(item: $0.item, type: "buy") }
        engine.feedback(user: knownUserID, events: liked)
        let after = try engine.recommend(RecommendationRequest(user: knownUserID, k: 10), pipeline: "als")
        #expect(after.items.count == 10)
        #expect(!after.items.contains { item in liked.contains { $0.item == item.item } })
        // The answer is the fold-in of training history + the new events.
        let training = catalog.history.row(knownUser)
        let history = zip(training.columns, training.values).map { (item: catalog.items[Int($0.0)], weight: $0.1) } + liked.map { ($0.item, Float(1)) }
        #expect(after.items.map(\.item) == (try als.recommend(history: history, k: 10)).map(\.item))
        #expect(engine.recentEvents.events(of: knownUserID).map(\.item) == liked.map(\.item))
    }

    @Test("recent events are bounded per user and in users; the least recently updated user is evicted")
    func recentEventsBounded() {
        let recent = RecentEvents(maximumPerUser: 3, maximumUsers: 2)
        recent.append(user: "a", events: (0 ..< 5).map { Event(item: "i\($0)") })
        #expect(recent.events(of: "a").map(\.item) == ["i2", "i3", "i4"])
        recent.append(user: "b", events: [Event(item: "x")])
        recent.append(user: "a", events: [Event(item: "i5")])
        recent.append(user: "c", events: [Event(item: "y")])
        #expect(recent.userCount == 2 && recent.evictedUsers == 1)
        #expect(recent.events(of: "b").isEmpty && recent.events(of: "a").map(\.item) == ["i3", "i4", "i5"])
    }
}

@Suite("The async entry point")
struct AsyncEntryTests {
    /// A source that blocks until released, to hold the engine's only worker.
    struct GateSource: SimilaritySource {
        let gate: Gate
        var model: String { "als" }
        func applies(to request: PreparedRequest, models: ModelSnapshots) -> Bool { true }
        func candidates(for requests: [PreparedRequest], count: Int, constraints: ScoringConstraints,
                        models: ModelSnapshots) -> [Result<Candidates, any Error>] {
            gate.enterAndWait()
            return UserFactorsSource(model: "als").candidates(for: requests, count: count, constraints: constraints, models: models)
        }
    }

    final class Gate: Sendable {
        private let state = Mutex((entered: 0, open: false))
        func enterAndWait() {
            state.withLock { $0.entered += 1 }
            while !state.withLock({ $0.open }) { usleep(1000) }
        }
        var entered: Int { state.withLock { $0.entered } }
        func open() { state.withLock { $0.open = true } }
    }

    @Test("work runs on the engine's threads; a full queue refuses at once with 'overloaded'")
    func overload() async throws {
        let gate = Gate()
        var options = EngineOptions()
        options.workerThreads = 1
        options.maximumQueuedRequests = 1
        let engine = Engine(models: servedModels(), pipelines: [
            Pipeline(name: "gated", preprocessors: [IDMapping(model: "als")], sources: [GateSource(gate: gate)], k: 3),
        ], options: options)
        let request = RecommendationRequest(user: knownUserID)
        let first = Task { try await engine.recommend(request, pipeline: "gated") }
        while gate.entered == 0 { try await Task.sleep(for: .milliseconds(1)) }   // the worker is busy
        let second = Task { try await engine.recommend(request, pipeline: "gated") }
        while engine.queueDepth.waiting == 0 { try await Task.sleep(for: .milliseconds(1)) }  // one waits
        await #expect(throws: EngineError.overloaded(queued: 1, limit: 1)) { try await engine.recommend(request, pipeline: "gated") }
        gate.open()
        #expect(try await first.value.items.count == 3)
        #expect(try await second.value.items.count == 3)
    }

    @Test("workers run at the configured niceness below their creator's priority (Linux); 0 leaves it unchanged", arguments: [7, 0])
    func workerNiceness(niceness: Int) async throws {
        var options = EngineOptions()
        options.workerThreads = 2
        options.workerNiceness = niceness
        // Threads start with their creator's niceness: the engine is made on this thread.
        let creator = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        let engine = Engine(models: servedModels(), pipelines: [], options: options)
        var seen: Set<Int32> = []
        for _ in 0 ..< 8 { seen.insert(try await engine.run { getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) }) }
        #expect(seen == [min(19, creator + Int32(niceness))])
        // The niceness is the workers' alone (not the process's): the calling thread keeps its own.
        #expect(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) == creator)
    }

    @Test("async requests queued behind each other for one pipeline are answered in one batch, up to gatheredRequests; answers equal the synchronous ones", arguments: [4, 1])
    func gathering(gathered: Int) async throws {
        let manager = servedModels()
        var options = EngineOptions()
        options.workerThreads = 1
        options.gatheredRequests = gathered
        let counted = CountingSource(inner: UserFactorsSource(model: "als")), other = CountingSource(inner: UserFactorsSource(model: "als"))
        let engine = Engine(models: manager, pipelines: [
            Pipeline(name: "counted", preprocessors: [IDMapping(model: "als")], sources: [counted], postprocessors: [ExcludeSeen()], k: 5),
            Pipeline(name: "other", preprocessors: [IDMapping(model: "als")], sources: [other], postprocessors: [ExcludeSeen()], k: 5),
        ], options: options)
        // Hold the only worker while six requests queue: five for "counted", then one for "other".
        let gate = Gate()
        let holder = Task { try await engine.run { gate.enterAndWait() } }
        while gate.entered == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let users = (0 ..< 5).map { catalog.users[$0 * 11] }
        var answers: [Task<RecommendationResponse, any Error>] = []
        for (n, user) in users.enumerated() {
            answers.append(Task { try await engine.recommend(RecommendationRequest(user: user), pipeline: "counted") })
            while engine.queueDepth.waiting < n + 1 { try await Task.sleep(for: .milliseconds(1)) }
        }
        let last = Task { try await engine.recommend(RecommendationRequest(user: users[0]), pipeline: "other") }
        while engine.queueDepth.waiting < 6 { try await Task.sleep(for: .milliseconds(1)) }
        gate.open()
        try await holder.value
        for (user, answer) in zip(users, answers) {
            let alone = try { () throws -> RecommendationResponse in try engine.recommend(RecommendationRequest(user: user), pipeline: "counted") }()
            // The batch guarantee: the same items in the same order, scores to float rounding
            // (this catalog is too small for a compressed table, whose scans are bit for bit).
            let gatheredItems = try await answer.value.items
            #expect(gatheredItems.map(\.item) == alone.items.map(\.item))
            for (a, b) in zip(gatheredItems, alone.items) { #expect(abs(a.score - b.score) <= 1e-5 * max(1, abs(b.score))) }
        }
        _ = try await last.value
        // Oldest first, at most `gathered` at a time, never across pipelines.
        #expect(counted.calls.requests == 5 + 5)
        #expect(counted.calls.batches == (gathered == 4 ? 2 : 5) + 5)
        #expect(other.calls.requests == 1 && other.calls.batches == 1)
    }

    @Test("async and batch answers equal the synchronous ones")
    func asyncEqualsSync() async throws {
        let manager = servedModels()
        let engine = Engine(models: manager, pipelines: Engine.defaultPipelines(manager))
        let requests = (0 ..< 40).map { PipelineRequest(pipeline: "als", request: RecommendationRequest(user: catalog.users[$0 * 7])) }
        let batch = try await engine.recommend(batch: requests)
        for (request, answer) in zip(requests, batch) {
            let sync = try { () throws -> RecommendationResponse in try engine.recommend(request.request, pipeline: "als") }()
            let async = try await engine.recommend(request.request, pipeline: "als")
            #expect(try answer.get().items.map(\.item) == sync.items.map(\.item))
            #expect(async.items == sync.items)
        }
        let unknown = try await engine.recommend(batch: [PipelineRequest(pipeline: "nope", request: RecommendationRequest())])
        #expect(throws: EngineError.unknownPipeline("nope", available: ["als", "docs", "knn", "pop"])) { try unknown[0].get() }
    }
}

#if canImport(Glibc)
import Glibc
#endif
