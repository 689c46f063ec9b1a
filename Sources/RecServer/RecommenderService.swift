import Dispatch
import FoundationEssentials
import Logging
import RecEngine
import RecKernels
import RecModels
import RecText
import Synchronization

/// The state behind the HTTP routes: the engine (once loaded), the worker threads its numeric
/// calls run on, users' recent feedback, and the metrics.
///
/// The engine is loaded after the server starts listening (``load(_:)``): until it is, liveness
/// answers 200 and readiness and every `/v1` engine route 503, so an orchestrator does not send
/// traffic to a server still mapping its models.
public final class RecommenderService: Sendable {
    /// Limits, worker threads, feedback bounds, the admin token.
    public let configuration: ServerConfiguration
    let workers: EngineWorkers
    let feedback: FeedbackHistory
    let metrics = ServerMetrics()
    private let loaded = Mutex<Engine?>(nil)
    private let failure = Mutex<String?>(nil)
    private let readinessReports = Mutex<[(String, @Sendable () -> ReadinessReport)]>([])
    /// Store changes (upload, train, activate, roll back) one at a time, off the cooperative pool.
    private let administration = DispatchQueue(label: "recommender.administration")
    let logger: Logger

    /// A service with `configuration`, not ready until ``load(_:)`` succeeds.
    public init(configuration: ServerConfiguration, logger: Logger = Logger(label: "recommender.server")) {
        self.configuration = configuration
        self.logger = logger
        workers = EngineWorkers(threads: configuration.workerThreads, maximumQueued: configuration.maximumQueuedRequests)
        feedback = FeedbackHistory(maximumPerUser: configuration.recentEventsPerUser, maximumUsers: configuration.recentEventsUsers)
    }

    /// Builds the engine with `make` on a worker thread and starts serving it; on failure the
    /// service stays not ready and `/health/ready` reports the error.
    public func load(_ make: @escaping @Sendable () throws -> Engine) async {
        do {
            let engine = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Engine, any Error>) in
                administration.async { continuation.resume(with: Result { try make() }) }
            }
            loaded.withLock { $0 = engine }
            logger.info("engine ready: pipelines \(engine.pipelines.keys.sorted().joined(separator: ", "))")
        } catch {
            failure.withLock { $0 = "\(error)" }
            logger.error("the engine failed to load: \(error)")
        }
    }

    /// The engine, when loaded.
    public var engine: Engine? { loaded.withLock { $0 } }

    /// Adds a readiness report from outside the server (e.g. the model registry follower): a
    /// field `name` of `/health/ready`'s JSON and a 0/1 gauge `recommender_<name>_ready` in
    /// `/metrics`. Reports inform; they do not turn readiness to 503 (a server that cannot take
    /// model updates still serves the models it has).
    public func addReadinessReport(_ name: String, _ report: @escaping @Sendable () -> ReadinessReport) {
        readinessReports.withLock { $0.append((name, report)) }
    }

    /// The added readiness reports, in the order added.
    var extraReadiness: [(name: String, report: ReadinessReport)] {
        readinessReports.withLock { $0 }.map { ($0.0, $0.1()) }
    }

    /// Why loading failed, if it did.
    public var loadError: String? { failure.withLock { $0 } }

    /// The engine, or a 503 while it is loading (or failed to).
    func readyEngine() throws -> Engine {
        guard let engine else {
            throw APIError(.serviceUnavailable, loadError.map { "the engine failed to load: \($0)" } ?? "not ready: the models are still loading")
        }
        return engine
    }

    /// Runs a store change on the administration queue, one at a time.
    func administer<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            administration.async { continuation.resume(with: Result { try body() }) }
        }
    }

    // MARK: Recommendations

    /// Runs `request` through `pipeline` on a worker thread: the user's recent feedback is
    /// folded in first (and so left out of the results), k is checked against the configured
    /// maximum and the catalog, and stage timings go to the metrics.
    func recommend(_ request: RecommendationRequest, pipeline name: String) async throws -> RecommendationResponse {
        let engine = try readyEngine()
        guard let pipeline = engine.pipelines[name] else {
            throw APIError(.notFound, field: "pipeline", "no pipeline '\(name)' (have \(engine.pipelines.keys.sorted().joined(separator: ", ")))")
        }
        var request = request
        let limit = min(configuration.maximumK, catalogSize(of: pipeline, engine: engine))
        if let k = request.k, !(1 ... max(1, limit)).contains(k) {
            throw APIError.badRequest("k", "must be between 1 and \(limit) (the configured maximum and the catalog's size), got \(k)")
        }
        if let user = request.user {
            let recent = feedback.events(of: user)
            if !recent.isEmpty { request.history = recent + request.history }
        }
        let models = engine.models, prepared = request, threads = configuration.threadsPerRequest
        let response = try await workers.run { () throws -> RecommendationResponse in
            do {
                return try ScoringThreads.$limit.withValue(threads) { try pipeline.run(prepared, models: models) }
            } catch { throw Self.clientError(error) }
        }
        metrics.stages(pipeline: name, timings: response.timings)
        return response
    }

    /// Items in the catalog of the pipeline's first source model (bounds k).
    func catalogSize(of pipeline: Pipeline, engine: Engine) -> Int {
        let models = engine.models.snapshot()
        for source in pipeline.sources {
            if let model = try? models.recommender(source.model) { return model.catalog.items.count }
            if let index = try? models.textIndex(source.model) { return index.ids.count }
        }
        return configuration.maximumK
    }

    /// Maps what the engine and store throw to the HTTP status a client should see.
    static func clientError(_ error: any Error) -> any Error {
        switch error {
        case let error as APIError: return error
        case let error as PipelineError:
            switch error {
            case .badRequest: return APIError(.badRequest, "\(error)")
            case .modelNotLoaded, .modelFailedToLoad: return APIError(.serviceUnavailable, "\(error)")
            case .wrongModelKind: return APIError(.unprocessableContent, "\(error)")
            case .nothingToScore: return APIError(.unprocessableContent, "\(error)")
            }
        case let error as ModelError:
            switch error {
            case let .unknownItem(item): return APIError(.notFound, field: "item", "unknown item '\(item)'")
            case let .unknownUser(user): return APIError(.notFound, field: "user", "unknown user '\(user)'")
            default: return APIError(.unprocessableContent, "\(error)")
            }
        case let error as ModelStoreError:
            switch error {
            case .invalidName: return APIError(.badRequest, field: "model", "\(error)")
            case .unknownModel: return APIError(.notFound, field: "model", "\(error)")
            case .unknownVersion: return APIError(.notFound, field: "version", "\(error)")
            case .nothingToRollBackTo, .activeVersion: return APIError(.conflict, "\(error)")
            case .corrupt, .unsupportedKind: return APIError(.unprocessableContent, "\(error)")
            case .busy: return APIError(.serviceUnavailable, "\(error)")
            case .unreadableState, .fileSystem: return APIError(.internalServerError, "\(error)")
            }
        case let error as ScoringError: return APIError(.badRequest, "\(error)")
        case let error as DataError: return APIError(.badRequest, field: "(body)", "\(error)")
        default: return APIError(.unprocessableContent, "\(error)")
        }
    }
}

/// One readiness fact reported to the server from outside (``RecommenderService/addReadinessReport(_:_:)``).
public struct ReadinessReport: Sendable {
    /// Whether the reporter is in order.
    public var ready: Bool
    /// What a person reading `/health/ready` should know (never a credential).
    public var detail: String

    /// A report.
    public init(ready: Bool, detail: String) {
        self.ready = ready
        self.detail = detail
    }
}
