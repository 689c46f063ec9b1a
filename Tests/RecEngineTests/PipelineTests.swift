import RecEngine
import RecKernels
import RecModels
import RecText
import Testing

/// Small served models shared by the suite.
let log = try! Interactions.synthetic(users: 300, items: 200, interactions: 6000, tasteDimensions: 4, zipfExponent: 0.5,
                                 affinity: 6, selectivity: 1, seed: 3)
let catalog = try! ModelCatalog(training: log)
let als: FactorModel = {
    var trainer = ImplicitALS(); trainer.factors = 8; trainer.iterations = 8; trainer.alpha = 5; trainer.regularization = 0.1
    return try! trainer.fit(catalog)
}()
let servedPopularity = try! PopularityModel(catalog)
let knn = try! ItemKNNModel(catalog, neighbours: 20)
let documents = try! TextIndex(documents: [
    TextDocument(id: "d1", text: "space ships travel between distant stars"),
    TextDocument(id: "d2", text: "a detective solves a murder in the city"),
    TextDocument(id: "d3", text: "stars and planets seen from a space station"),
])

func servedModels() -> ModelManager {
    let manager = ModelManager()
    manager.install(.recommender(als), as: "als", version: 1)
    manager.install(.recommender(servedPopularity), as: "pop", version: 1)
    manager.install(.recommender(knn), as: "knn", version: 1)
    manager.install(.text(documents), as: "docs", version: 1)
    return manager
}

/// A user with training history, and one of their training items.
let knownUser = (0 ..< catalog.users.count).first { catalog.history.row($0).columns.count >= 5 }!
let knownUserID = catalog.users[knownUser]
let seenItem = catalog.items[Int(catalog.history.row(knownUser).columns.first!)]

@Suite("Pipeline stages")
struct StageTests {
    @Test("representation transformers: JSON, CSV rows, raw text, events; bad input is an error")
    func transformers() throws {
        let json = try JSONRequestTransformer().transform(#"{"user": "u1", "k": 3, "history": [{"item": "i2", "type": "buy"}]}"#)
        #expect(json.user == "u1" && json.k == 3 && json.history == [Event(item: "i2", type: "buy")])
        #expect(try CSVRowTransformer().transform("u7, 4") == RecommendationRequest(user: "u7", k: 4))
        #expect(try RawTextTransformer().transform("stars") == RecommendationRequest(text: "stars"))
        #expect(try RecentEventsTransformer().transform(#"[{"item": "i1", "type": "view", "timestamp": 5}]"#).history.count == 1)
        #expect(throws: PipelineError.self) { try JSONRequestTransformer().transform("{not json") }
        #expect(throws: PipelineError.badRequest("k 'x' is not a number")) { try CSVRowTransformer().transform("u1,x") }
        #expect(throws: PipelineError.badRequest("empty text")) { try RawTextTransformer().transform("   ") }
    }

    @Test("pre-processing: weights and decay stay with their events after drops and truncation, in the documented order")
    func preprocessing() throws {
        let models = servedModels().snapshot()
        var request = PreparedRequest(RecommendationRequest(user: "nobody", history: [
            Event(item: "i1", type: "view", timestamp: 0), Event(item: "no-such-item", type: "buy", timestamp: 50),
            Event(item: "i2", type: "buy", timestamp: 100), Event(item: "i3", type: "cart", timestamp: 200),
        ], text: " lots\tof \u{7}  space "))
        // Id mapping first (drops an event), then truncation (drops another), then weighting:
        // the order the settings documentation gives.
        try IDMapping(model: "als").process(&request, models: models)
        #expect(request.events.map(\.item) == ["i1", "i2", "i3"] && request.user == nil && request.notes.count == 2)
        #expect(request.events.map(\.index) == [catalog.items.index(of: "i1"), catalog.items.index(of: "i2"), catalog.items.index(of: "i3")])
        try HistoryTruncation(maximumEvents: 2).process(&request, models: models)
        #expect(request.events.map(\.item) == ["i2", "i3"])
        try EventTypeWeighting(weights: ["view": 1, "cart": 3, "buy": 5]).process(&request, models: models)
        try TimeDecay(halfLife: 100).process(&request, models: models)
        // i2 is a buy 100 s older than the newest event: 5 × ½; i3 a cart, the newest: 3.
        #expect(request.events.map(\.weight) == [2.5, 3])
        try TextCleaning().process(&request, models: models)
        #expect(request.text == "lots of space")
    }

    @Test("similarity sources answer from the right model, and apply only where they have input")
    func sources() throws {
        let models = servedModels().snapshot()
        let constraints = Pipeline(name: "c", sources: []).constraints
        func prepared(_ request: RecommendationRequest) throws -> PreparedRequest {
            var prepared = PreparedRequest(request)
            try IDMapping(model: "als").process(&prepared, models: models)
            return prepared
        }
        let user = try prepared(RecommendationRequest(user: knownUserID))
        let byFactors = try UserFactorsSource(model: "als").candidates(for: [user], count: 5, constraints: constraints, models: models)[0].get()
        #expect(byFactors.items.map { byFactors.names[$0.id] } == (try als.recommend(user: knownUserID, k: 5, excludeSeen: false)).map(\.item))
        #expect(byFactors.version == 1 && byFactors.filteredInKernel)
        let fresh = try prepared(RecommendationRequest(history: [Event(item: "i3"), Event(item: "i4")]))
        #expect(!UserFactorsSource(model: "als").applies(to: fresh, models: models))
        #expect(UserFactorsSource(model: "als").applies(to: user, models: models))
        let folded = try FoldInSource(model: "als").candidates(for: [fresh], count: 5, constraints: constraints, models: models)[0].get()
        #expect(folded.items.map { folded.names[$0.id] } == (try als.recommend(history: [(item: "i3", weight: 1), (item: "i4", weight: 1)], k: 5, excludeSeen: false)).map(\.item))
        let seeds = try ItemToItemSource(model: "knn").candidates(for: [PreparedRequest(RecommendationRequest(items: ["i3"]))], count: 4,
                                                                  constraints: constraints, models: models)[0].get()
        #expect(seeds.items.map { seeds.names[$0.id] } == (try knn.similarItems(to: "i3", k: 4)).map(\.item))
        let text = try TextQuerySource(model: "docs").candidates(for: [PreparedRequest(RecommendationRequest(text: "space stars"))], count: 2,
                                                                 constraints: constraints, models: models)[0].get()
        #expect(Set(text.items.map { text.names[$0.id] }) == ["d1", "d3"])
        #expect(throws: PipelineError.wrongModelKind(model: "docs", expected: "a recommender", actual: "text-index")) {
            try FoldInSource(model: "docs").candidates(for: [fresh], count: 5, constraints: constraints, models: models)[0].get()
        }
    }

    @Test("scoring: a fallback chain in source order without repeats, or a normalized weighted blend")
    func scoring() {
        let names = CandidateNames.list(["x", "y", "z"])
        let a = Candidates(model: "a", version: 1, items: [ScoredItem(id: 0, score: 10), ScoredItem(id: 1, score: 0)], names: names, filteredInKernel: true)
        let b = Candidates(model: "b", version: 1, items: [ScoredItem(id: 1, score: 4), ScoredItem(id: 2, score: 2)], names: names, filteredInKernel: true)
        #expect(FirstAvailable().combine([b]).map(\.item) == ["y", "z"])
        #expect(FirstAvailable().combine([a, b]).map(\.item) == ["x", "y", "z"])
        let blended = WeightedBlend(weights: [0.75, 0.25]).combine([a, b])
        #expect(blended.map { $0.item } == ["x", "y", "z"] && blended.map { $0.score } == [0.75, 0.25, 0])
    }

    @Test("post-processing: category caps move overflow down; popularity fills from the ranking made at install")
    func postprocessing() throws {
        let models = servedModels().snapshot()
        var request = PreparedRequest(RecommendationRequest(user: knownUserID, history: [Event(item: "h")], exclude: ["e"]))
        request.constraints = Pipeline(name: "c", sources: [], postprocessors: [ExcludeSeen()]).constraints
        let genres = ItemMetadata(rows: ["p": ["genre": "g1"], "q": ["genre": "g1"], "r": ["genre": "g2"]], categoryColumn: "genre")
        var diverse: [(item: String, score: Float)] = [("p", 3), ("q", 2), ("r", 1)]
        try CategoryCap(maximumPerCategory: 1, catalog: genres).process(&diverse, request: request, k: 2, models: models)
        #expect(diverse.map(\.item) == ["p", "r", "q"])
        var short: [(item: String, score: Float)] = [("i5", 1)]
        try PopularityFallback(model: "pop").process(&short, request: request, k: 4, models: models)
        // The reference: distinct users per item counted here, most first, ties by index.
        var counts = [Int](repeating: 0, count: catalog.items.count)
        for item in catalog.history.columnIndices { counts[Int(item)] += 1 }
        let seen = Set(catalog.history.row(knownUser).columns.map { catalog.items[Int($0)] })
        let popular = counts.indices.sorted { counts[$0] > counts[$1] || (counts[$0] == counts[$1] && $0 < $1) }.map { catalog.items[$0] }
        #expect(short.count == 4 && short[0].item == "i5")
        #expect(short.dropFirst().map(\.item) == Array(popular.filter { $0 != "i5" && !seen.contains($0) }.prefix(3)))
    }

    @Test("a pipeline runs all six stages, times each, and names the versions that answered")
    func endToEnd() throws {
        let manager = servedModels()
        let pipeline = Pipeline(name: "home", transformer: CSVRowTransformer(), preprocessors: [IDMapping(model: "als")],
                                sources: [UserFactorsSource(model: "als"), FoldInSource(model: "als")],
                                postprocessors: [ExcludeSeen(model: "als"), PopularityFallback(model: "pop")], k: 5)
        let response = try pipeline.run(input: "\(knownUserID),5", models: manager)
        #expect(response.items.map(\.item) == (try als.recommend(user: knownUserID, k: 5)).map(\.item))
        #expect(Set(response.timings.keys) == Set(Pipeline.stages + ["total"]))
        #expect(response.models == ["als": 1])
        let cold = try pipeline.run(input: "stranger", models: manager)
        #expect(cold.items.count == 5 && cold.notes.contains { $0.contains("cold user") })
        #expect(pipeline.latencies.current["total"]?.count == 2)
        let exposition = pipeline.latencies.prometheusText(pipeline: "home")
        #expect(exposition.contains("recommender_stage_latency_microseconds_count{pipeline=\"home\",stage=\"similarity\"} 2"))
        #expect(exposition.split(separator: "\n").filter { $0.contains("quantile=") }.count == 3 * (Pipeline.stages.count + 1))
        #expect(throws: PipelineError.badRequest("k must be at least 1, got 0")) { try pipeline.run(input: "u1,0", models: manager) }
    }
}

@Suite("Latency histograms")
struct HistogramTests {
    @Test("percentiles land within a bucket (~9%) of the true values")
    func percentiles() {
        var histogram = LatencyHistogram()
        for microseconds in 1 ... 1000 { histogram.record(microseconds: Double(microseconds)) }
        #expect(histogram.count == 1000 && histogram.mean == 500.5)
        for (p, truth) in [(50.0, 500.0), (90.0, 900.0), (99.0, 990.0)] {
            let estimate = histogram.percentile(p)
            #expect(estimate >= truth && estimate <= truth * 1.1, "p\(p): \(estimate)")
        }
        #expect(LatencyHistogram().percentile(50) == 0)
    }
}

@Suite("Hot swap")
struct HotSwapTests {
    /// Two popularity models over disjoint catalogs: every answer must come entirely from the
    /// version it names, while versions are swapped under concurrent requests.
    @Test("activating versions under concurrent requests: none fails, each answers from one snapshot")
    func hotSwap() async throws {
        func popularityModel(prefix: String) throws -> PopularityModel {
            var interactions = Interactions()
            for user in 0 ..< 20 { for item in 0 ..< 10 where (user + item) % 3 == 0 { interactions.append(user: "u\(user)", item: "\(prefix)\(item)") } }
            return try PopularityModel(ModelCatalog(training: interactions))
        }
        let versions = [1: try popularityModel(prefix: "a"), 2: try popularityModel(prefix: "b")]
        let manager = ModelManager()
        manager.install(.recommender(versions[1]!), as: "pop", version: 1)
        let pipeline = Pipeline(name: "swap", sources: [FoldInSource(model: "pop")], postprocessors: [PopularityFallback(model: "pop")], k: 5)
        let running = Flag(true), tally = Tally()
        let (failures, mismatches, answered, byVersion) = await withTaskGroup(of: (Int, Int, Int, [Int: Int]).self) { group in
            group.addTask {
                // Swap until requests have seen each version several times (at most 20 s), so the
                // race this test is about has surely happened.
                var swap = 0
                let deadline = ContinuousClock.now + .seconds(20)
                while (tally.count(1) < 20 || tally.count(2) < 20 || swap < 400) && ContinuousClock.now < deadline {
                    manager.install(.recommender(versions[swap % 2 == 0 ? 2 : 1]!), as: "pop", version: swap % 2 == 0 ? 2 : 1)
                    swap += 1
                    await Task.yield()
                }
                running.set(false)
                return (0, 0, 0, [:])
            }
            for _ in 0 ..< 6 {
                group.addTask {
                    var failed = 0, mixed = 0, done = 0, seen: [Int: Int] = [:]
                    while running.value {
                        await Task.yield()  // let the swapping task run on a 2-thread pool
                        do {
                            let response = try pipeline.run(RecommendationRequest(user: "cold"), models: manager)
                            let version = response.models["pop"] ?? 0
                            seen[version, default: 0] += 1
                            tally.add(version)
                            let prefix = version == 1 ? "a" : "b"
                            if !response.items.allSatisfy({ $0.item.hasPrefix(prefix) }) || response.items.count != 5 { mixed += 1 }
                            done += 1
                        } catch { failed += 1 }
                    }
                    return (failed, mixed, done, seen)
                }
            }
            return await group.reduce((0, 0, 0, [Int: Int]())) { ($0.0 + $1.0, $0.1 + $1.1, $0.2 + $1.2, $0.3.merging($1.3, uniquingKeysWith: +)) }
        }
        #expect(byVersion[1, default: 0] > 0 && byVersion[2, default: 0] > 0, "both versions must have answered: \(byVersion)")
        #expect(failures == 0 && mismatches == 0 && answered > 0)
    }
}

@Suite("Settings")
struct SettingsTests {
    let settings = """
    { "pipelines": { "home": {
        "input": "csv",
        "preprocess": [ { "type": "idMapping", "model": "als" }, { "type": "eventWeights", "weights": { "view": 1, "buy": 5 } } ],
        "similarity": [ { "type": "userFactors", "model": "als" }, { "type": "itemToItem", "model": "knn" } ],
        "scoring": { "type": "blend", "weights": [0.7, 0.3] },
        "postprocess": [ { "type": "excludeSeen", "model": "als" }, { "type": "popularityFallback", "model": "pop" } ],
        "k": 5 },
      "search": { "input": "text", "similarity": [ { "type": "text", "model": "docs" } ], "k": 2 } } }
    """

    @Test("a valid file gives its pipelines, which run")
    func valid() throws {
        let manager = servedModels()
        let pipelines = try PipelineSettings.parse(Array(settings.utf8), file: "engine.json", models: manager)
        #expect(pipelines.map(\.name) == ["home", "search"])
        #expect(try pipelines[0].run(input: knownUserID, models: manager).items.count == 5)
        #expect(try pipelines[1].run(input: "space stars", models: manager).items.count == 2)
    }

    @Test("nonsense is refused naming the file, the key and the problem", arguments: [
        ("\"k\": 5 }", "\"k\": 0 }", "pipelines.home.k", "must be at least 1, got 0"),
        ("\"type\": \"userFactors\", \"model\": \"als\"", "\"type\": \"userFactor\", \"model\": \"als\"", "pipelines.home.similarity[0].type",
         "unknown similarity stage 'userFactor' (userFactors, foldIn, itemToItem, text)"),
        ("\"type\": \"itemToItem\", \"model\": \"knn\"", "\"type\": \"itemToItem\", \"model\": \"missing\"", "pipelines.home.similarity[1].model",
         "model 'missing' is not loaded (loaded: als, docs, knn, pop)"),
        ("\"weights\": [0.7, 0.3]", "\"weights\": [1]", "pipelines.home.scoring.weights", "1 weights for 2 similarity sources: dimensions do not match"),
        ("\"popularityFallback\", \"model\": \"pop\"", "\"popularityFallback\", \"model\": \"als\"", "pipelines.home.postprocess[1].model",
         "model 'als' is a 'als' model; popularityFallback needs popularity"),
        ("\"input\": \"csv\",", "\"input\": \"csv\", \"kk\": 3,", "pipelines.home.kk",
         "unknown key (expected one of candidates, input, k, maximumK, postprocess, preprocess, results, scoring, similarity, threadsPerRequest)"),
        ("\"k\": 5 }", "\"k\": 5, \"candidates\": 1e15 }", "pipelines.home.candidates", "must be at most 1000000, got 1000000000000000"),
        ("\"weights\": [0.7, 0.3]", "\"weights\": [-1, 0.3]", "pipelines.home.scoring.weights[0]", "must be between 0 and 1e6, got -1.0"),
        ("\"weights\": [0.7, 0.3]", "\"weights\": [1e308, 0.3]", "pipelines.home.scoring.weights[0]", "must be between 0 and 1e6, got 1e+308"),
    ])
    func invalid(change: (String, String, String, String)) throws {
        let text = settings.replacingFirst(change.0, with: change.1)
        #expect(text != settings)
        #expect(throws: SettingsError(file: "engine.json", key: change.2, problem: change.3)) {
            try PipelineSettings.parse(Array(text.utf8), file: "engine.json", models: servedModels())
        }
    }

    /// `recommender tune --model blend` picks a `BlendModel`, which is not saved as one file; it
    /// is served as its two components under a pipeline with two sources and a `blend` stage.
    /// That pipeline must rank what the tuned `BlendModel` ranks, or the tuned figure is not
    /// what is served.
    @Test("a blend pipeline of two served models answers every known user as BlendModel does")
    func blendPipelineServesBlendModel() throws {
        let manager = servedModels()
        let weight: Float = 0.3, depth = 50, k = 10
        let text = """
        { "pipelines": { "blend": {
            "preprocess": [ { "type": "idMapping", "model": "als" } ],
            "similarity": [ { "type": "userFactors", "model": "als" }, { "type": "userFactors", "model": "knn" } ],
            "scoring": { "type": "blend", "weights": [\(1 - weight), \(weight)] },
            "postprocess": [ { "type": "excludeSeen" } ],
            "k": \(k), "candidates": \(depth) } } }
        """
        let pipeline = try PipelineSettings.parse(Array(text.utf8), file: "blend.json", models: manager)[0]
        let blend = try BlendModel(first: als, second: knn, weight: weight, candidates: depth)
        let users = Array(0 ..< catalog.users.count)
        let expected = try blend.recommend(users: users, k: k)
        var compared = 0
        for user in users {
            let served = try pipeline.run(RecommendationRequest(user: catalog.users[user]), models: manager).items
            let modelled = expected[user]
            #expect(served.map(\.item) == modelled.map { catalog.items[$0.id] }, "user \(catalog.users[user])")
            #expect(zip(served, modelled).allSatisfy { abs($0.score - $1.score) <= 1e-6 }, "user \(catalog.users[user])")
            let seen = Set(catalog.history.row(user).columns.map { catalog.items[Int($0)] })
            #expect(!served.contains { seen.contains($0.item) })
            compared += served.count
        }
        // Both components contribute: the blend is neither model alone for some user.
        let alone = try (als.recommend(users: users, k: k), knn.recommend(users: users, k: k))
        #expect(users.contains { expected[$0].map(\.id) != alone.0[$0].map(\.id) && expected[$0].map(\.id) != alone.1[$0].map(\.id) })
        #expect(compared == users.count * k)

        // An anonymous session (a history, no user) through fold-in sources.
        let sessions = try PipelineSettings.parse(Array(text.replacingOccurrences(of: "userFactors", with: "foldIn").utf8),
                                                  file: "blend.json", models: manager)[0]
        for user in users.prefix(40) {
            let history = catalog.history.row(user).columns.prefix(5).map { Int($0) }
            let served = try sessions.run(RecommendationRequest(history: history.map { Event(item: catalog.items[$0]) }), models: manager).items
            let modelled = try blend.recommend(history: history, weights: history.map { _ in 1 }, k: k)
            #expect(served.map(\.item) == modelled.map { catalog.items[$0.id] }, "session of user \(catalog.users[user])")
            #expect(!served.contains { item in history.contains { catalog.items[$0] == item.item } })
        }
    }

    @Test("a stage needing the item table without one is refused")
    func categoryCapNeedsMetadata() {
        let text = settings.replacingFirst("{ \"type\": \"excludeSeen\", \"model\": \"als\" }", with: "{ \"type\": \"categoryCap\", \"maximum\": 2 }")
        #expect(throws: SettingsError(file: "e.json", key: "pipelines.home.postprocess[0]", problem: "categoryCap needs an itemMetadata table with a category column")) {
            try PipelineSettings.parse(Array(text.utf8), file: "e.json", models: servedModels())
        }
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        return String(self[..<range.lowerBound]) + replacement + String(self[range.upperBound...])
    }
}

#if canImport(Glibc)
import Glibc
#endif
