import Metrics
import RecKernels
import RecModels

/// A named composition of the six stages and the models they read. Immutable and `Sendable`:
/// any number of requests may run through one pipeline at once.
///
/// Each run takes one ``ModelSnapshots`` from the ``ModelManager`` at its start, times every
/// stage (microseconds, in the response, in ``latencies`` and as swift-metrics timers in
/// seconds), and answers with the items, the model versions that answered and the notes
/// pre-processing left.
///
/// ## The request path
/// - Pre-processing resolves ids once; later stages work on catalog indices.
/// - Exclusions (the request's, and with ``ExcludeSeen`` the history and the user's training
///   items) and allow/deny lists are applied inside the scoring kernel, so a response has k
///   items whenever k eligible items exist.
/// - With ``FirstAvailable`` a later source runs only when the earlier ones gave fewer than k
///   items: a known user costs one scan. A ``WeightedBlend`` runs every source.
/// - Category caps fetch more candidates (doubling) until k items fit the caps or the sources
///   are exhausted.
/// - ``run(batch:models:)`` answers many requests at once: each source scores all the requests
///   it serves together, one GEMM for a factor model.
public struct Pipeline: Sendable {
    /// The stages in request order, as timing keys.
    public static let stages = ["transform", "preprocess", "similarity", "scoring", "postprocess", "results"]
    /// The largest k any request may ask for unless the pipeline says otherwise.
    public static let defaultMaximumK = 1000

    /// The pipeline's name, as settings and requests refer to it.
    public let name: String
    /// Stage 1: turns raw input into a request (used by ``run(input:models:)`` only).
    public let transformer: any RepresentationTransformer
    /// Stage 2, in order: each edits the prepared request.
    public let preprocessors: [any PreProcessor]
    /// Stage 3: the sources, in order (a fallback chain or the parts of a blend).
    public let sources: [any SimilaritySource]
    /// Stage 4: merges the sources' candidates into one ranked list.
    public let combiner: any ScoreCombiner
    /// Stage 5, in order: each constrains scoring and edits the ranked list.
    public let postprocessors: [any PostProcessor]
    /// Stage 6: turns the final ranked list into at most k response items.
    public let formatter: any ResultFormatter
    /// Results per request unless the request says otherwise.
    public let k: Int
    /// The largest k a request may ask for (k is also bounded by the catalog).
    public let maximumK: Int
    /// Candidates each similarity source returns at first (≥ k, so post-processing has room).
    public let candidates: Int
    /// Worker threads one request's kernel calls may use; nil: the caller's
    /// ``ScoringThreads/limit`` (the engine sets 1 when requests run concurrently).
    public let threadsPerRequest: Int?
    /// Per-stage latency histograms over every run.
    public let latencies = StageLatencies()
    /// What the post-processing stages ask of scoring, for every request of this pipeline.
    public let constraints: ScoringConstraints
    private let caps: [CategoryCap]
    private let timers: [String: Timer]

    /// A pipeline of the given stages. Without `candidates`, each source first returns k
    /// candidates (2 × k with category caps); a value below `k` is raised to `k`.
    public init(name: String, transformer: any RepresentationTransformer = JSONRequestTransformer(),
                preprocessors: [any PreProcessor] = [], sources: [any SimilaritySource], combiner: any ScoreCombiner = FirstAvailable(),
                postprocessors: [any PostProcessor] = [], formatter: any ResultFormatter = ScoredResults(), k: Int = 10,
                candidates: Int? = nil, threadsPerRequest: Int? = nil, maximumK: Int = Pipeline.defaultMaximumK) {
        self.threadsPerRequest = threadsPerRequest
        self.name = name
        self.transformer = transformer
        self.preprocessors = preprocessors
        self.sources = sources
        self.combiner = combiner
        self.postprocessors = postprocessors
        self.formatter = formatter
        self.k = k
        self.maximumK = max(maximumK, k)
        caps = postprocessors.compactMap { $0 as? CategoryCap }
        self.candidates = max(candidates ?? (caps.isEmpty ? k : 2 * k), k)
        var constraints = ScoringConstraints(filters: FilterCache())
        for stage in postprocessors { stage.constrain(&constraints) }
        self.constraints = constraints
        timers = Dictionary(uniqueKeysWithValues: (Pipeline.stages + ["total"]).map {
            ($0, Timer(label: "recommender_stage_duration", dimensions: [("pipeline", name), ("stage", $0)], preferredDisplayUnit: .seconds))
        })
    }

    /// Runs raw input (its representation is the pipeline's ``transformer``'s).
    public func run(input: String, models: ModelManager) throws -> RecommendationResponse {
        let clock = ContinuousClock(), start = clock.now
        let request = try transformer.transform(input)
        return try run(batch: [request], models: models, transformSeconds: seconds(clock.now - start))[0].get()
    }

    /// Runs a request that is already structured.
    public func run(_ request: RecommendationRequest, models: ModelManager) throws -> RecommendationResponse {
        try run(batch: [request], models: models)[0].get()
    }

    /// Runs many requests together: pre-processing per request, then each similarity source
    /// scores every request it serves in one call (one GEMM for a factor model), then
    /// post-processing per request. One request's failure fails only its own result.
    ///
    /// Each answer equals what ``run(_:models:)`` gives that request alone: the same items in
    /// the same order (scores agree to float rounding, as a GEMM sums in another order than a
    /// single query's dot products). Stage timings in each response are the whole batch's.
    public func run(batch requests: [RecommendationRequest], models manager: ModelManager) -> [Result<RecommendationResponse, any Error>] {
        run(batch: requests, models: manager, transformSeconds: 0)
    }

    private func run(batch requests: [RecommendationRequest], models manager: ModelManager,
                     transformSeconds: Double) -> [Result<RecommendationResponse, any Error>] {
        guard let threads = threadsPerRequest else { return runStages(requests, models: manager, transformSeconds: transformSeconds) }
        return ScoringThreads.$limit.withValue(threads) { runStages(requests, models: manager, transformSeconds: transformSeconds) }
    }

    private func runStages(_ requests: [RecommendationRequest], models manager: ModelManager,
                           transformSeconds: Double) -> [Result<RecommendationResponse, any Error>] {
        let models = manager.snapshot()
        let clock = ContinuousClock()
        var timings: [String: Double] = ["transform": transformSeconds * 1e6]
        func timed<T>(_ stage: String, _ body: () -> T) -> T {
            let start = clock.now
            defer { timings[stage, default: 0] += seconds(clock.now - start) * 1e6 }
            return body()
        }
        var outcomes: [Result<PreparedRequest, any Error>] = timed("preprocess") {
            requests.map { request in
                Result {
                    var prepared = PreparedRequest(request, k: k)
                    guard prepared.k >= 1 else { throw PipelineError.badRequest("k must be at least 1, got \(prepared.k)") }
                    guard prepared.k <= maximumK else { throw PipelineError.badRequest("k must be at most \(maximumK), got \(prepared.k)") }
                    prepared.constraints = constraints
                    for stage in preprocessors { try stage.process(&prepared, models: models) }
                    return prepared
                }
            }
        }
        var lists = [[(item: String, score: Float)]](repeating: [], count: requests.count)
        var used = [Set<String>](repeating: [], count: requests.count)
        var counts = outcomes.map { (try? $0.get()).map { max(candidates, $0.k) } ?? 0 }
        var pending = outcomes.indices.filter { (try? outcomes[$0].get()) != nil }
        var previousSizes = [Int](repeating: -1, count: requests.count)
        while !pending.isEmpty {
            let found = timed("similarity") { gather(pending, counts: counts, outcomes: &outcomes, models: models) }
            var again: [Int] = []
            timed("scoring") {
                for r in pending {
                    guard case let .success(request) = outcomes[r], let sourcesFound = found[r] else { continue }
                    lists[r] = filtered(combiner.combine(sourcesFound), sources: sourcesFound, request: request, models: models)
                    used[r] = Set(sourcesFound.map(\.model))
                    // Category caps: fetch more until k items fit the caps, or nothing more comes.
                    let size = sourcesFound.reduce(0) { $0 + $1.items.count }
                    if !caps.isEmpty, withinCaps(lists[r]) < request.k, size > previousSizes[r] {
                        previousSizes[r] = size
                        counts[r] *= 2
                        again.append(r)
                    }
                }
            }
            pending = again
        }
        var responses: [Result<RecommendationResponse, any Error>] = []
        timed("postprocess") {
            for r in outcomes.indices {
                guard case let .success(request) = outcomes[r] else { continue }
                do {
                    for stage in postprocessors {
                        let before = lists[r].count
                        try stage.process(&lists[r], request: request, k: request.k, models: models)
                        if let fallback = stage as? PopularityFallback, lists[r].count > before { used[r].insert(fallback.model) }
                    }
                } catch { outcomes[r] = .failure(error) }
            }
        }
        let formatted = timed("results") { lists.indices.map { formatter.format(lists[$0], k: (try? outcomes[$0].get())?.k ?? 0) } }
        timings["total"] = timings.values.reduce(0, +)
        latencies.record(timings)
        for (stage, microseconds) in timings { timers[stage]?.recordNanoseconds(Int64(microseconds * 1000)) }
        let versions = models.versions
        for r in outcomes.indices {
            responses.append(outcomes[r].map { request in
                RecommendationResponse(pipeline: name, items: formatted[r], models: versions.filter { used[r].contains($0.key) },
                                       timings: timings, notes: request.notes)
            })
        }
        return responses
    }

    /// Asks the sources, in order, for candidates for the requests `pending` (by position):
    /// each source serves all the requests it applies to in one call; with a fallback chain a
    /// source skips the requests the earlier ones already gave k items.
    private func gather(_ pending: [Int], counts: [Int], outcomes: inout [Result<PreparedRequest, any Error>],
                        models: ModelSnapshots) -> [Int: [Candidates]] {
        var found: [Int: [Candidates]] = [:]
        var eligible: [Int: Int] = [:]
        for r in pending { found[r] = [] }
        for source in sources {
            let served = pending.filter { r in
                guard case let .success(request) = outcomes[r], found[r] != nil else { return false }
                return (combiner.needsEverySource || eligible[r, default: 0] < request.k) && source.applies(to: request, models: models)
            }
            guard !served.isEmpty else { continue }
            let count = served.map { counts[$0] }.max()!
            let answers = source.candidates(for: served.map { try! outcomes[$0].get() }, count: count,
                                            constraints: try! outcomes[served[0]].get().constraints!, models: models)
            for (r, answer) in zip(served, answers) {
                switch answer {
                case var .success(candidates):
                    candidates.items = Array(candidates.items.prefix(counts[r]))
                    let request = try! outcomes[r].get()
                    eligible[r, default: 0] += candidates.filteredInKernel ? candidates.items.count
                        : candidates.items.count { permitted(candidates.names[$0.id], request: request) }
                    found[r]!.append(candidates)
                case let .failure(error):
                    outcomes[r] = .failure(error)
                    found[r] = nil
                }
            }
        }
        return found
    }

    /// The list without what the constraints leave out, for candidates a source could not
    /// filter while scoring (similar items, text matches).
    private func filtered(_ list: [(item: String, score: Float)], sources: [Candidates], request: PreparedRequest,
                          models: ModelSnapshots) -> [(item: String, score: Float)] {
        guard sources.contains(where: { !$0.filteredInKernel }) else { return list }
        // A known user's training items, by id, from the first recommender that knows the user.
        var seen = Set<String>()
        if request.constraints?.excludeSeen ?? false, let user = request.user {
            for source in sources {
                guard let catalog = try? models.recommender(source.model).catalog, catalog.users.index(of: user) != nil else { continue }
                seen = Set(catalog.trainingItems(of: user))
                break
            }
        }
        return list.filter { !seen.contains($0.item) && permitted($0.item, request: request) }
    }

    private func permitted(_ item: String, request: PreparedRequest) -> Bool {
        let constraints = request.constraints ?? self.constraints
        guard constraints.permits(item), !request.exclude.contains(item) else { return false }
        return !constraints.excludeSeen || !request.events.contains { $0.item == item }
    }

    /// How many of `list`'s items every category cap keeps.
    private func withinCaps(_ list: [(item: String, score: Float)]) -> Int {
        var kept = list
        for cap in caps { kept = cap.capped(kept).kept }
        return kept.count
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}
