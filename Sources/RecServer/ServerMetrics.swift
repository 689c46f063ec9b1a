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
/// - `recommender_feedback_users`, `recommender_feedback_events`, `recommender_feedback_evicted_users_total`.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[String: CoreMetrics.Timer]>([:])

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
    func request(route: String, method: String, status: Int, seconds: Double) {
        let key = "\(route)\u{0}\(method)\u{0}\(status)"
        let counter = counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(label: "http_requests_total",
                                              dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
        timer("http_request_duration_seconds", [("route", route)]).recordNanoseconds(Int64(seconds * 1e9))
    }

    /// Records one pipeline run's stage timings (microseconds in, seconds out).
    func stages(pipeline: String, timings: [String: Double]) {
        for (stage, microseconds) in timings {
            timer("recommender_stage_duration_seconds", [("pipeline", pipeline), ("stage", stage)])
                .recordNanoseconds(Int64(microseconds * 1000))
        }
    }

    private func timer(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Timer {
        let key = label + dimensions.map { "\u{0}\($0.1)" }.joined()
        return timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = CoreMetrics.Timer(label: label, dimensions: dimensions, factory: factory)
            timers[key] = timer
            return timer
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
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        metrics.request(route: context.endpointPath ?? "NotFound", method: request.method.rawValue, status: Int(response.status.code), seconds: seconds)
        return response
    }
}
