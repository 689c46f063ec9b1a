import CoreMetrics
import Hummingbird
import Prometheus
import Synchronization

/// The server's metrics, through swift-metrics into its own Prometheus registry (no global
/// bootstrap, so several servers — in tests — each count their own):
///
/// - `http_requests_total{route, method, status}` — requests by route template and status;
/// - `http_request_duration_seconds{route}` — request latency histogram, seconds;
/// - `recommender_stage_duration_seconds{pipeline, stage}` — per-stage latency histograms, seconds;
/// - `recommender_queue_depth` / `recommender_engine_running` — engine calls waiting / running;
/// - `recommender_model_version{model}` — the served version of each model;
/// - `recommender_feedback_users`, `recommender_feedback_evicted_users_total` — the engine's recent-events store.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    /// Metric handles by what labels them, made once: a request only looks them up (no label
    /// strings are built per request).
    private struct RequestKey: Hashable { let route: String, method: String, status: Int }
    private struct StageKey: Hashable { let pipeline: String, stage: String }
    private let requestMetrics = Mutex<[RequestKey: (counter: CoreMetrics.Counter, timer: CoreMetrics.Timer)]>([:])
    private let stageTimers = Mutex<[StageKey: CoreMetrics.Timer]>([:])

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Requests take tens of microseconds to tens of milliseconds: buckets to match.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
        ]
        self.factory = factory
    }

    /// Counts one request and records its latency.
    func request(route: String, method: String, status: Int, nanoseconds: Int64) {
        let key = RequestKey(route: route, method: method, status: status)
        let handles = requestMetrics.withLock { handles in
            if let found = handles[key] { return found }
            let made = (CoreMetrics.Counter(label: "http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory),
                        CoreMetrics.Timer(label: "http_request_duration_seconds", dimensions: [("route", route)], factory: factory))
            handles[key] = made
            return made
        }
        handles.counter.increment()
        handles.timer.recordNanoseconds(nanoseconds)
    }

    /// Records one pipeline run's stage timings (microseconds in, seconds out).
    func stages(pipeline: String, timings: [String: Double]) {
        for (stage, microseconds) in timings {
            let key = StageKey(pipeline: pipeline, stage: stage)
            let timer = stageTimers.withLock { timers in
                if let timer = timers[key] { return timer }
                let timer = CoreMetrics.Timer(label: "recommender_stage_duration_seconds", dimensions: [("pipeline", pipeline), ("stage", stage)], factory: factory)
                timers[key] = timer
                return timer
            }
            timer.recordNanoseconds(Int64(microseconds * 1000))
        }
    }

    /// Sets a gauge to `value`.
    func gauge(_ label: String, _ dimensions: [(String, String)], _ value: Double) {
        CoreMetrics.Gauge(label: label, dimensions: dimensions, factory: factory).record(value)
    }

    /// The Prometheus text exposition of everything recorded.
    func exposition() -> [UInt8] { registry.emitToBuffer() }
}

/// Counts every request by route template and status, and times it.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = (ContinuousClock.now - start).components
        metrics.request(route: context.endpointPath ?? "NotFound", method: request.method.rawValue, status: Int(response.status.code),
                        nanoseconds: elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        return response
    }
}
