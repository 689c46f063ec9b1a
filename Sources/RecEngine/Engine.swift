import Logging
import Metrics
import RecKernels
import RecModels
import RecText
import Synchronization

/// How an ``Engine`` runs requests and keeps realtime state.
public struct EngineOptions: Sendable {
    /// The engine's own scoring threads for async requests (default: one per core).
    public var workerThreads: Int = SystemInfo.cores
    /// Async requests that may wait for a worker; beyond it a request fails at once with
    /// ``EngineError/overloaded(queued:limit:)``.
    public var maximumQueuedRequests: Int = 1024
    /// Async requests for one pipeline that wait for a worker one behind the other are answered
    /// together, up to this many, in one pipeline batch (``Pipeline/run(batch:models:)``): a
    /// scan of a factor model's compressed item table scores 4 queries per pass over the table.
    /// A request never waits for others to arrive, so an idle engine answers each alone. Each
    /// answer is the one the request gets alone (the batch guarantee: the same items; scores
    /// to float rounding, bit for bit on a compressed table). 1: each request alone.
    public var gatheredRequests: Int = 4
    /// How much lower the workers' CPU priority is than the threads that hand them requests
    /// (Linux niceness added to each worker thread, 0...19). With workers busy on every core, a
    /// server's I/O threads then get a core as soon as they wake, instead of waiting a time
    /// slice behind a scan: requests keep reaching the queue and answers keep leaving it, and
    /// the workers use the rest of the CPU. 0 (the default): the same priority.
    public var workerNiceness: Int = 0
    /// Recent events kept per user for feedback.
    public var recentEventsPerUser: Int = 50
    /// Users whose recent events are kept; the least recently updated is evicted beyond it.
    public var recentEventsUsers: Int = 100_000
    /// How long a store change waits for another process's change.
    public var storeLockTimeout: Duration = .seconds(30)

    /// The defaults.
    public init() {}
}

/// One request of a batch, for the pipeline that should answer it.
public struct PipelineRequest: Sendable {
    /// The pipeline's name.
    public var pipeline: String
    /// The request.
    public var request: RecommendationRequest

    /// `request` for `pipeline`.
    public init(pipeline: String, request: RecommendationRequest) {
        self.pipeline = pipeline
        self.request = request
    }
}

/// Why the engine refused a request before any stage ran.
public enum EngineError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bounded queue of async requests is full.
    case overloaded(queued: Int, limit: Int)
    /// No pipeline of that name.
    case unknownPipeline(String, available: [String])
    /// The engine serves models registered directly, not from a store.
    case noStore

    public var description: String {
        switch self {
        case let .overloaded(queued, limit): "overloaded: \(queued) requests already wait (limit \(limit)); retry later"
        case let .unknownPipeline(name, available): "no pipeline '\(name)' (have \(available.joined(separator: ", ")))"
        case .noStore: "this engine serves models registered directly: there is no store to change"
        }
    }
}

/// One served model's state, for status pages and readiness.
public struct ModelStatus: Sendable, Codable, Equatable {
    /// The model's name.
    public var name: String
    /// Its kind ("als", "popularity", "text-index", …).
    public var kind: String
    /// The version served (or that failed to load); nil for a model registered directly.
    public var version: Int?
    /// Whether it is being served.
    public var loaded: Bool
    /// Why its active version could not be loaded.
    public var error: String?
}

/// The engine: a model store (or models registered directly), the models it serves, and the
/// pipelines of a settings file — or, without one, a default pipeline per model.
///
/// - Requests run synchronously on the caller's thread (``recommend(_:pipeline:)``,
///   ``recommend(batch:)``) or asynchronously on the engine's own threads, never blocking
///   Swift's cooperative pool, behind a bounded queue.
/// - A model whose active version cannot be loaded is reported (``status()``, logs, and a clear
///   error to requests for its pipelines); every other model keeps serving.
/// - Activation and rollback are serialized: the store change and the swap happen under one
///   lock (and the store's cross-process lock), so the store's active version and the served
///   one always agree. The new version is verified before anything changes; requests in flight
///   finish on the version they started with.
public final class Engine: Sendable {
    /// The store the served models come from; nil for an engine over registered models.
    public let store: ModelStore?
    /// The models being served.
    public let models: ModelManager
    /// Pipelines by name.
    public let pipelines: [String: Pipeline]
    /// Each user's recent events (feedback), folded into their next request.
    public let recentEvents: RecentEvents
    /// The options the engine was made with.
    public let options: EngineOptions
    private let pool: WorkerPool
    private let changes = Mutex(())
    private let logger = Logger(label: "recommender.engine")
    private let requestCounter: Counter
    private let failureCounter: Counter
    private let overloadCounter: Counter

    /// Loads every model's active version from the store at `directory` — a model that fails to
    /// load is reported, not fatal — then the pipelines of `settings` (checked against the
    /// models) or the defaults.
    ///
    /// - Throws: ``ModelStoreError`` for a store that cannot be read, ``SettingsError`` for
    ///   settings that make no sense.
    public convenience init(store directory: String, settings: String? = nil, options: EngineOptions = EngineOptions()) throws {
        let store = try ModelStore(directory: directory, lockTimeout: options.storeLockTimeout)
        let models = ModelManager()
        let logger = Logger(label: "recommender.engine")
        for name in try store.names() {
            let active: ModelVersion?
            do { active = try store.activeVersion(of: name) } catch {
                models.recordFailure(name, kind: "unknown", reason: "\(error)")
                logger.error("model refused", metadata: ["model": "\(name)", "reason": "\(error)"])
                continue
            }
            guard let active else { continue }
            do {
                models.install(try store.load(active), as: name, version: active.version)
                logger.info("model loaded", metadata: ["model": "\(name)", "version": "\(active.version)", "kind": "\(active.kind)"])
            } catch {
                models.recordFailure(name, kind: active.kind, reason: "\(error)")
                logger.error("model refused", metadata: ["model": "\(name)", "version": "\(active.version)", "reason": "\(error)"])
            }
        }
        try self.init(store: store, models: models, settings: settings, options: options)
    }

    /// An engine over models registered directly in `models` (no store: activation and rollback
    /// are not available), with the pipelines of `settings` or the defaults.
    public convenience init(models: ModelManager, settings: String? = nil, options: EngineOptions = EngineOptions()) throws {
        try self.init(store: nil, models: models, settings: settings, options: options)
    }

    /// An engine over `models` with the given pipelines (no settings file).
    public convenience init(models: ModelManager, pipelines: [Pipeline], options: EngineOptions = EngineOptions()) {
        self.init(store: nil, models: models, pipelines: pipelines, options: options)
    }

    private convenience init(store: ModelStore?, models: ModelManager, settings: String?, options: EngineOptions) throws {
        let declared = try settings.map { try PipelineSettings.load($0, models: models) } ?? Self.defaultPipelines(models)
        self.init(store: store, models: models, pipelines: declared, options: options)
    }

    private init(store: ModelStore?, models: ModelManager, pipelines: [Pipeline], options: EngineOptions) {
        self.store = store
        self.models = models
        self.options = options
        self.pipelines = Dictionary(pipelines.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        recentEvents = RecentEvents(maximumPerUser: options.recentEventsPerUser, maximumUsers: options.recentEventsUsers)
        let requestCounter = Counter(label: "recommender_requests"), failureCounter = Counter(label: "recommender_request_failures")
        // With several workers each request (or gathered batch) scores on one core.
        let threads = options.workerThreads > 1 ? 1 : nil as Int?
        pool = WorkerPool(threads: options.workerThreads, limit: options.maximumQueuedRequests, maximumGathered: options.gatheredRequests,
                          niceness: options.workerNiceness) { queued in
            let answers = ScoringThreads.$limit.withValue(threads ?? ScoringThreads.limit) {
                queued[0].pipeline.run(batch: queued.map(\.request), models: models)
            }
            requestCounter.increment(by: Int64(queued.count))
            failureCounter.increment(by: Int64(answers.count { if case .failure = $0 { true } else { false } }))
            for (request, answer) in zip(queued, answers) { request.continuation.resume(with: answer) }
        }
        self.requestCounter = requestCounter
        self.failureCounter = failureCounter
        overloadCounter = Counter(label: "recommender_requests_overloaded")
        for model in models.served {
            Gauge(label: "recommender_model_version", dimensions: [("model", model.name)]).record(model.version ?? 0)
        }
    }

    deinit { pool.shutdown() }

    /// One pipeline per model (failed ones included, so their requests get a clear error),
    /// named after it: text indexes answer text; recommenders answer a known user by their
    /// vector, a fresh history (or feedback) by fold-in, seed items by item-to-item similarity
    /// — a fallback chain in that order —, leave out what the user has, and fall back on a
    /// popularity model when one is served.
    public static func defaultPipelines(_ models: ModelManager) -> [Pipeline] {
        let served = models.served.map { (name: $0.name, kind: $0.kind) } + models.failed.map { (name: $0.name, kind: $0.kind) }
        let popular = models.served.first { $0.kind == "popularity" }?.name
        return served.map { model in
            if model.kind == StoredKinds.textIndex {
                return Pipeline(name: model.name, transformer: JSONRequestTransformer(), preprocessors: [TextCleaning()],
                                sources: [TextQuerySource(model: model.name)])
            }
            var post: [any PostProcessor] = [ExcludeSeen(model: model.name)]
            if let popular { post.append(PopularityFallback(model: popular)) }
            return Pipeline(name: model.name, preprocessors: [IDMapping(model: model.name)],
                            sources: [UserFactorsSource(model: model.name), FoldInSource(model: model.name), ItemToItemSource(model: model.name)],
                            postprocessors: post)
        }
    }

    /// The pipelines' names, sorted.
    public var pipelineNames: [String] { pipelines.keys.sorted() }

    /// The pipeline called `name`. - Throws: ``EngineError/unknownPipeline(_:available:)``.
    public func pipeline(_ name: String) throws -> Pipeline {
        guard let pipeline = pipelines[name] else { throw EngineError.unknownPipeline(name, available: pipelineNames) }
        return pipeline
    }

    // MARK: Requests

    /// Runs `input` through pipeline `name`, on the caller's thread.
    public func recommend(pipeline name: String, input: String) throws -> RecommendationResponse {
        let pipeline = try pipeline(name)
        return try counted { try pipeline.run(withRecentEvents(try pipeline.transformer.transform(input)), models: models) }
    }

    /// Runs `request` through pipeline `name`, on the caller's thread. A known user's recent
    /// events (``feedback(user:events:)``) are folded in and left out of the results.
    public func recommend(_ request: RecommendationRequest, pipeline name: String) throws -> RecommendationResponse {
        let pipeline = try pipeline(name)
        return try counted { try pipeline.run(withRecentEvents(request), models: models) }
    }

    /// Runs many requests on the caller's thread, grouped by pipeline; each group's sources
    /// score their requests together (one GEMM per factor model). Results come back in request
    /// order; one request's failure fails only its own result. Each answer equals the one
    /// ``recommend(_:pipeline:)`` gives alone (scores to float rounding).
    public func recommend(batch requests: [PipelineRequest]) -> [Result<RecommendationResponse, any Error>] {
        var results = [Result<RecommendationResponse, any Error>](repeating: .failure(EngineError.noStore), count: requests.count)
        var groups: [String: [Int]] = [:]
        for (n, request) in requests.enumerated() { groups[request.pipeline, default: []].append(n) }
        for (name, positions) in groups {
            guard let pipeline = pipelines[name] else {
                for n in positions { results[n] = .failure(EngineError.unknownPipeline(name, available: pipelineNames)) }
                continue
            }
            let answers = pipeline.run(batch: positions.map { withRecentEvents(requests[$0].request) }, models: models)
            for (n, answer) in zip(positions, answers) { results[n] = answer }
        }
        requestCounter.increment(by: Int64(requests.count))
        failureCounter.increment(by: Int64(results.count { if case .failure = $0 { true } else { false } }))
        return results
    }

    /// Runs `request` through pipeline `name` on the engine's own threads (one core per
    /// request when the engine has several workers, unless the pipeline says otherwise),
    /// together with the requests for the same pipeline queued behind it
    /// (``EngineOptions/gatheredRequests``).
    ///
    /// - Throws: ``EngineError/overloaded(queued:limit:)`` at once when the queue is full, and
    ///   what ``recommend(_:pipeline:)`` throws.
    public func recommend(_ request: RecommendationRequest, pipeline name: String) async throws -> RecommendationResponse {
        let pipeline = try pipeline(name)
        let request = withRecentEvents(request)
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RecommendationResponse, any Error>) in
            do {
                try pool.submit(QueuedRequest(pipeline: pipeline, request: request, continuation: continuation))
            } catch {
                overloadCounter.increment()
                logger.warning("overloaded", metadata: ["reason": "\(error)"])
                continuation.resume(throwing: error)
            }
        }
    }

    /// Runs `input` through pipeline `name` on the engine's own threads.
    public func recommend(pipeline name: String, input: String) async throws -> RecommendationResponse {
        let pipeline = try pipeline(name)
        return try await recommend(try pipeline.transformer.transform(input), pipeline: name)
    }

    /// Runs a batch (``recommend(batch:)``) on one of the engine's threads; the batch's GEMMs
    /// may use every core. - Throws: ``EngineError/overloaded(queued:limit:)``.
    public func recommend(batch requests: [PipelineRequest]) async throws -> [Result<RecommendationResponse, any Error>] {
        try await onWorker { self.recommend(batch: requests) }
    }

    /// Records `events` (oldest first) as `user`'s latest: their next request folds them in
    /// and leaves them out of its results. - Returns: the user's recent events after the change.
    @discardableResult
    public func feedback(user: String, events: [Event]) -> [Event] {
        recentEvents.append(user: user, events: events)
    }

    /// Runs `body` on the engine's own threads, behind the same bounded queue as requests: for
    /// numeric work an adapter does beside the pipelines (the HTTP server's explanations), so
    /// it never blocks Swift's cooperative pool. - Throws: ``EngineError/overloaded(queued:limit:)``
    /// and what `body` throws.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await onWorker(body)
    }

    /// Async requests waiting for a worker, and running.
    public var queueDepth: (waiting: Int, running: Int) { pool.depth }

    private func withRecentEvents(_ request: RecommendationRequest) -> RecommendationRequest {
        guard let user = request.user else { return request }
        let recent = recentEvents.events(of: user)
        guard !recent.isEmpty else { return request }
        var merged = request
        merged.history = recent + request.history
        return merged
    }

    private func counted<T>(_ body: () throws -> T) throws -> T {
        requestCounter.increment()
        do { return try body() } catch {
            failureCounter.increment()
            throw error
        }
    }

    private func onWorker<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            do {
                try pool.submit { continuation.resume(with: Result { try body() }) }
            } catch {
                overloadCounter.increment()
                logger.warning("overloaded", metadata: ["reason": "\(error)"])
                continuation.resume(throwing: error)
            }
        }
    }

    // MARK: Status

    /// Every model the engine knows: served ones with their versions, failed ones with the
    /// reason. - Complexity: O(models).
    public func status() -> [ModelStatus] {
        let served = models.served.map { ModelStatus(name: $0.name, kind: $0.kind, version: $0.version, loaded: true, error: nil) }
        let failed = models.failed.map { ModelStatus(name: $0.name, kind: $0.kind, version: nil, loaded: false, error: $0.reason) }
        return (served + failed).sorted { $0.name < $1.name }
    }

    /// Whether every model with an active version is being served.
    public var isReady: Bool { models.failed.isEmpty }

    // MARK: Store changes

    /// Makes `version` of `name` the active one and serves it.
    ///
    /// The new version is loaded (every checksum verified) before anything changes, so a file
    /// that cannot be served leaves both the store's state and the served model as they were.
    /// Changes are serialized: store and served version agree whatever runs concurrently.
    @discardableResult
    public func activate(_ name: String, version: Int) throws -> ModelVersion {
        guard let store else { throw EngineError.noStore }
        return try changes.withLock { _ in
            do {
                guard let target = try store.versions(of: name).first(where: { $0.version == version }) else {
                    throw ModelStoreError.unknownVersion(name: name, version: version)
                }
                let loaded = try store.load(target)
                let activated = try store.activate(name: name, version: version)
                models.install(loaded, as: name, version: activated.version)
                Gauge(label: "recommender_model_version", dimensions: [("model", name)]).record(activated.version)
                logger.info("activated", metadata: ["model": "\(name)", "version": "\(activated.version)"])
                return activated
            } catch {
                logger.error("activation refused", metadata: ["model": "\(name)", "version": "\(version)", "reason": "\(error)"])
                throw error
            }
        }
    }

    /// Re-activates the previously active version of `name` and serves it; when that version
    /// cannot be loaded, the store is put back to the current one and the error rethrown.
    @discardableResult
    public func rollback(_ name: String) throws -> ModelVersion {
        guard let store else { throw EngineError.noStore }
        return try changes.withLock { _ in
            let current = try store.activeVersion(of: name)
            let restored = try store.rollback(name: name)
            do {
                models.install(try store.load(restored), as: name, version: restored.version)
            } catch {
                if let current { _ = try? store.activate(name: name, version: current.version) }
                logger.error("rollback refused", metadata: ["model": "\(name)", "version": "\(restored.version)", "reason": "\(error)"])
                throw error
            }
            Gauge(label: "recommender_model_version", dimensions: [("model", name)]).record(restored.version)
            logger.info("rolled back", metadata: ["model": "\(name)", "version": "\(restored.version)"])
            return restored
        }
    }

    /// Loads `name`'s active version from the store again if it differs from the one served
    /// (another process activated a version). - Returns: whether the served version changed.
    @discardableResult
    public func refresh(_ name: String) throws -> Bool {
        guard let store else { throw EngineError.noStore }
        return try changes.withLock { _ in
            guard let active = try store.activeVersion(of: name) else { return false }
            if models.served.first(where: { $0.name == name })?.version == active.version { return false }
            do {
                models.install(try store.load(active), as: name, version: active.version)
                logger.info("picked up activation", metadata: ["model": "\(name)", "version": "\(active.version)"])
                return true
            } catch {
                logger.error("model refused", metadata: ["model": "\(name)", "version": "\(active.version)", "reason": "\(error)"])
                throw error
            }
        }
    }
}

/// Facts about the machine the engine needs.
public enum SystemInfo {
    /// Cores this process may use.
    public static var cores: Int { FlatIndex.defaultThreads }
}
