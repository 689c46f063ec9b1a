import Dispatch
import FoundationEssentials
import Logging
import RecEngine
import RecKernels
import RecModels
import RecText
import Synchronization

/// The state behind the HTTP routes: the engine (once loaded) and the metrics. Requests run on
/// the engine's own threads through its async entry points, behind its bounded queue; users'
/// feedback lives in the engine (``Engine/recentEvents``).
///
/// The engine is loaded after the server starts listening (``load(_:)``): until it is, liveness
/// answers 200 and readiness and every `/v1` engine route 503, so an orchestrator does not send
/// traffic to a server still mapping its models.
public final class RecommenderService: Sendable {
    /// Limits, the engine's options, the admin token.
    public let configuration: ServerConfiguration
    /// Reads and checks request bodies.
    let decoder: RequestDecoder
    let metrics = ServerMetrics()
    /// The task executors of the HTTP event loops (``ServerConfiguration/handlersOnConnectionEventLoop``).
    let eventLoopExecutors = EventLoopTaskExecutors()
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
        decoder = RequestDecoder(limits: configuration)
    }

    /// Requests waiting for the engine's workers, and engine calls running.
    var queueDepth: (waiting: Int, running: Int) { engine?.queueDepth ?? (waiting: 0, running: 0) }

    /// Builds the engine with `make` off the cooperative pool and starts serving it; on failure
    /// the service stays not ready and `/health/ready` reports the error. `make` should pass
    /// ``ServerConfiguration/engine`` as the engine's options (``load(store:settings:)`` does).
    public func load(_ make: @escaping @Sendable () throws -> Engine) async {
        do {
            let engine = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Engine, any Error>) in
                administration.async { continuation.resume(with: Result { try make() }) }
            }
            loaded.withLock { $0 = engine }
            logger.info("engine ready: pipelines \(engine.pipelineNames.joined(separator: ", "))")
        } catch {
            failure.withLock { $0 = "\(error)" }
            logger.error("the engine failed to load: \(error)")
        }
    }

    /// Loads the engine over the model store at `store` with the pipelines of `settings` (or
    /// the defaults) and the configured ``ServerConfiguration/engine`` options.
    public func load(store: String, settings: String?) async {
        let options = configuration.engine
        await load { try Engine(store: store, settings: settings, options: options) }
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

    /// Checks k against the configured maximum and the pipeline's catalog.
    /// - Throws: 404 for an unknown pipeline, 400 for k out of range.
    func check(_ request: RecommendationRequest, pipeline name: String, engine: Engine, field: String = "") throws {
        guard let pipeline = engine.pipelines[name] else {
            throw APIError(.notFound, field: field + "pipeline", "no pipeline '\(name)' (have \(engine.pipelineNames.joined(separator: ", ")))")
        }
        if let k = request.k {
            let limit = min(configuration.maximumK, catalogSize(of: pipeline, engine: engine))
            guard (1 ... max(1, limit)).contains(k) else {
                throw APIError.badRequest(field + "k", "must be between 1 and \(limit) (the configured maximum and the catalog's size), got \(k)")
            }
        }
    }

    /// Runs `request` through `pipeline` on the engine's own threads, through its async entry
    /// point (behind its bounded queue, answered together with the requests for the same
    /// pipeline queued behind it); the user's recent feedback is folded in and left out of the
    /// results; stage timings go to the metrics.
    func recommend(_ request: RecommendationRequest, pipeline name: String) async throws -> RecommendationResponse {
        let engine = try readyEngine()
        try check(request, pipeline: name, engine: engine)
        let response: RecommendationResponse
        do { response = try await engine.recommend(request, pipeline: name) } catch { throw Self.clientError(error) }
        metrics.stages(pipeline: name, timings: response.timings)
        return response
    }

    /// Runs a batch with the engine's batch entry point: one engine call, requests grouped by
    /// pipeline and scored together. Entries with a bad pipeline or k fail alone.
    func recommend(batch requests: [PipelineRequest]) async throws -> [Result<RecommendationResponse, any Error>] {
        let engine = try readyEngine()
        var results = [Result<RecommendationResponse, any Error>?](repeating: nil, count: requests.count)
        var runnable: [PipelineRequest] = [], positions: [Int] = []
        for (n, entry) in requests.enumerated() {
            do {
                try check(entry.request, pipeline: entry.pipeline, engine: engine)
                runnable.append(entry)
                positions.append(n)
            } catch { results[n] = .failure(error) }
        }
        if !runnable.isEmpty {
            let answers: [Result<RecommendationResponse, any Error>]
            do { answers = try await engine.recommend(batch: runnable) } catch { throw Self.clientError(error) }
            for (n, answer) in zip(positions, answers) {
                results[n] = answer.mapError { Self.clientError($0) }
                if case let .success(response) = answer { metrics.stages(pipeline: response.pipeline, timings: response.timings) }
            }
        }
        return results.map { $0! }
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
        case let error as EngineError:
            switch error {
            case .overloaded: return APIError(.serviceUnavailable, "\(error)", retryAfterSeconds: 1)
            case .unknownPipeline: return APIError(.notFound, field: "pipeline", "\(error)")
            case .noStore: return APIError(.conflict, "\(error)")
            }
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
