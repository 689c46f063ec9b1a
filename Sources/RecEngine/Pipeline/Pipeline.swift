import RecKernels
import RecModels

/// A named composition of the six stages and the models they read. Immutable and `Sendable`:
/// any number of requests may run through one pipeline at once.
///
/// Each run takes one ``ModelSnapshots`` from the ``ModelManager`` at its start, times every
/// stage (microseconds, in the response and in ``latencies``), and answers with the items, the
/// model versions that answered and the notes pre-processing left.
public struct Pipeline: Sendable {
    /// The stages in request order, as timing keys.
    public static let stages = ["transform", "preprocess", "similarity", "scoring", "postprocess", "results"]

    /// The pipeline's name, as settings and requests refer to it.
    public let name: String
    /// Stage 1: turns raw input into a request (used by ``run(input:models:)`` only).
    public let transformer: any RepresentationTransformer
    /// Stage 2, in order: each edits the prepared request.
    public let preprocessors: [any PreProcessor]
    /// Stage 3: every source is asked for candidates, in order.
    public let sources: [any SimilaritySource]
    /// Stage 4: merges the sources' candidates into one ranked list.
    public let combiner: any ScoreCombiner
    /// Stage 5, in order: each edits the ranked list.
    public let postprocessors: [any PostProcessor]
    /// Stage 6: turns the final ranked list into at most k response items.
    public let formatter: any ResultFormatter
    /// Results per request unless the request says otherwise.
    public let k: Int
    /// Candidates each similarity source returns (≥ k, so post-processing has room).
    public let candidates: Int
    /// Worker threads one request's kernel calls may use; nil: every core. Under concurrent
    /// load 1 is right: requests run in parallel with each other instead of fighting for cores.
    public let threadsPerRequest: Int?
    /// Per-stage latency histograms over every run.
    public let latencies = StageLatencies()

    /// A pipeline of the given stages. Without `candidates`, each source returns 5 × `k`
    /// candidates; a value below `k` is raised to `k`.
    public init(name: String, transformer: any RepresentationTransformer = JSONRequestTransformer(),
                preprocessors: [any PreProcessor] = [], sources: [any SimilaritySource], combiner: any ScoreCombiner = FirstAvailable(),
                postprocessors: [any PostProcessor] = [], formatter: any ResultFormatter = ScoredResults(), k: Int = 10,
                candidates: Int? = nil, threadsPerRequest: Int? = nil) {
        self.threadsPerRequest = threadsPerRequest
        self.name = name
        self.transformer = transformer
        self.preprocessors = preprocessors
        self.sources = sources
        self.combiner = combiner
        self.postprocessors = postprocessors
        self.formatter = formatter
        self.k = k
        self.candidates = max(candidates ?? k * 5, k)
    }

    /// Runs raw input (its representation is the pipeline's ``transformer``'s).
    public func run(input: String, models: ModelManager) throws -> RecommendationResponse {
        let clock = ContinuousClock(), start = clock.now
        let request = try transformer.transform(input)
        return try run(request, models: models, transformSeconds: seconds(clock.now - start))
    }

    /// Runs a request that is already structured.
    public func run(_ request: RecommendationRequest, models: ModelManager) throws -> RecommendationResponse {
        try run(request, models: models, transformSeconds: 0)
    }

    private func run(_ request: RecommendationRequest, models manager: ModelManager, transformSeconds: Double) throws -> RecommendationResponse {
        try ScoringThreads.$limit.withValue(threadsPerRequest ?? ScoringThreads.limit) {
            try runStages(request, models: manager, transformSeconds: transformSeconds)
        }
    }

    private func runStages(_ request: RecommendationRequest, models manager: ModelManager, transformSeconds: Double) throws -> RecommendationResponse {
        let models = manager.snapshot()
        let k = request.k ?? self.k
        guard k >= 1 else { throw PipelineError.badRequest("k must be at least 1, got \(k)") }
        let count = max(candidates, k)
        let clock = ContinuousClock()
        var timings: [String: Double] = ["transform": transformSeconds * 1e6]
        func timed<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
            let start = clock.now
            defer { timings[stage] = seconds(clock.now - start) * 1e6 }
            return try body()
        }
        var prepared = PreparedRequest(request)
        try timed("preprocess") { for stage in preprocessors { try stage.process(&prepared, models: models) } }
        let found = try timed("similarity") { try sources.map { try $0.candidates(for: prepared, count: count, models: models) } }
        var items = timed("scoring") { combiner.combine(found) }
        try timed("postprocess") { for stage in postprocessors { try stage.process(&items, request: prepared, k: k, models: models) } }
        let results = timed("results") { formatter.format(items, k: k) }
        timings["total"] = timings.values.reduce(0, +)
        latencies.record(timings)
        let used = Set(found.map(\.model))
        return RecommendationResponse(pipeline: name, items: results, models: models.versions.filter { used.contains($0.key) },
                                      timings: timings, notes: prepared.notes)
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}
