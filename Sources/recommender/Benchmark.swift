import ArgumentParser
import RecEngine
import RecKernels
import RecModels
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// A pipeline end to end and per stage for a named configuration, beside the kernel-only bound
/// for the same work timed in the same run, and a batch of fresh histories through the batch
/// entry point against the same requests one at a time; with a hardware-sizing summary.
struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pipeline throughput and per-stage p50/p99 against the kernel-only bound for the same work; the batch entry point; sizing.")

    @Option(help: "Catalog items.") var items = 100_000
    @Option(help: "Users (with training histories).") var users = 20_000
    @Option(help: "Interactions in the synthetic training set.") var interactions = 1_000_000
    @Option(help: "Embedding dimensions (ALS factors).") var dimensions = 64
    @Option(help: "Results per request.") var k = 10
    @Option(parsing: .upToNextOption, help: "Concurrent clients to run with.") var clients: [Int] = [1, 2]
    @Option(help: "Requests per client.") var requests = 2000
    @Option(help: "Fresh histories in the batch-entry-point comparison.") var batch = 256
    @Option(help: "p99 target for the sizing summary, milliseconds.") var p99Target = 10.0
    @Option(help: "Also write the per-stage latencies in Prometheus text format to this file.") var prometheus: String?

    func validate() throws {
        for (name, value) in [("items", items), ("users", users), ("interactions", interactions), ("dimensions", dimensions), ("k", k),
                              ("requests", requests), ("batch", batch)] where value < 1 {
            throw ValidationError("--\(name) must be at least 1, got \(value)")
        }
        guard clients.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--clients must all be at least 1") }
        guard p99Target.isFinite, p99Target > 0 else { throw ValidationError("--p99-target must be a positive number of milliseconds, got \(p99Target)") }
    }

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let log = try Interactions.synthetic(users: users, items: items, interactions: interactions, seed: 5)
        let catalog = try ModelCatalog(training: log)
        var als = ImplicitALS()
        als.factors = dimensions
        als.iterations = 2
        let model = try als.fit(catalog)
        let popularity = try PopularityModel(catalog)
        print("configuration: \(items) items × \(dimensions) dims, \(users) users, \(catalog.history.nonzeroCount) interactions, top-\(k) (set-up \(fixed(seconds(since: start), 1)) s)")
        let manager = ModelManager()
        manager.install(.recommender(model), as: "als", version: 1)
        manager.install(.recommender(popularity), as: "pop", version: 1)
        // The home-page pipeline: a known user by vector, fresh events by fold-in, seen items
        // out (in the kernel), popular items for the cold.
        let workload: [RecommendationRequest] = (0 ..< requests).map { n in
            n % 4 == 3 ? RecommendationRequest(history: [Event(item: "i\(n % items)", type: "view"), Event(item: "i\((n * 7) % items)", type: "buy")])
                : RecommendationRequest(user: "u\((n * 13) % users)")
        }
        // The same work as bare model calls: the top-k search a known user needs, and the
        // fold-in + search a fresh history needs — nothing of the pipeline around them.
        let kernelWork: [@Sendable () throws -> Void] = workload.map { request in
            if let user = request.user, let index = catalog.users.index(of: user) {
                return { _ = try model.recommend(users: [index], k: k, excludeSeen: true, filter: nil) }
            }
            let items = request.history.map { catalog.items.index(of: $0.item)! }
            let weights = request.history.map { $0.type == "buy" ? Float(5) : 1 }
            return { _ = try model.recommend(history: items, weights: weights, k: k, excludeSeen: true, filter: nil) }
        }
        print("requests: 3 in 4 known users (user factors), 1 in 4 fresh two-event histories (fold-in)")
        print("one client: each request may use every core; several: one core per request\n")
        print([pad("clients", 8), pad("work", 10), pad("req/s", 10), pad("stage", 12), pad("p50 µs", 10), pad("p90 µs", 10), pad("p99 µs", 10),
               pad("pipeline / kernel", 18)].joined())
        var sizing: [(clients: Int, perCore: Double, p99: Double)] = []
        for clientCount in clients {
            let threads = clientCount > 1 ? 1 : FlatIndex.defaultThreads
            let pipeline = Pipeline(name: "home", preprocessors: [IDMapping(model: "als"), EventTypeWeighting(weights: ["view": 1, "buy": 5])],
                                    sources: [UserFactorsSource(model: "als"), FoldInSource(model: "als")],
                                    postprocessors: [ExcludeSeen(model: "als"), PopularityFallback(model: "pop")], k: k,
                                    threadsPerRequest: threads)
            // Kernel-only bound first, then the pipeline, then the bound again: the mean of the
            // two bound runs brackets drift on a shared machine.
            let bound1 = runClients(clientCount, threads: threads, work: kernelWork)
            let (pipelineRun, failures) = runPipeline(clientCount, pipeline: pipeline, manager: manager, requests: workload)
            let bound2 = runClients(clientCount, threads: threads, work: kernelWork)
            let boundRate = Double(clientCount * requests) / ((bound1.wall + bound2.wall) / 2)
            let throughput = Double(clientCount * requests) / pipelineRun
            var boundHistogram = bound1.latencies
            boundHistogram.merge(bound2.latencies)
            print([pad("\(clientCount)", 8), pad("kernel", 10), pad(fixed(boundRate, 0), 10), pad("total", 12),
                   pad(fixed(boundHistogram.percentile(50), 0), 10), pad(fixed(boundHistogram.percentile(90), 0), 10),
                   pad(fixed(boundHistogram.percentile(99), 0), 10)].joined())
            let stages = pipeline.latencies.current
            for stage in Pipeline.stages + ["total"] {
                guard let histogram = stages[stage] else { continue }
                let first = stage == "transform"
                print([pad("", 8), pad(first ? "pipeline" : "", 10), pad(first ? fixed(throughput, 0) : "", 10),
                       pad(stage, 12), pad(fixed(histogram.percentile(50), 0), 10), pad(fixed(histogram.percentile(90), 0), 10),
                       pad(fixed(histogram.percentile(99), 0), 10), pad(stage == "total" ? fixed(boundRate / throughput, 3) + "× time" : "", 18)].joined())
            }
            // A sizing summary from failed requests would be a wrong result: stop instead.
            if failures > 0 {
                throw ValidationError("\(failures) of \(clientCount * requests) requests failed with \(clientCount) client(s): no figures (first error: \(firstError(pipeline: pipeline, manager: manager, requests: workload)))")
            }
            if let prometheus, clientCount == clients.last, let file = fopen(prometheus, "w") {
                fputs(pipeline.latencies.prometheusText(pipeline: "home"), file)
                fclose(file)
            }
            sizing.append((clientCount, throughput / Double(min(clientCount, FlatIndex.defaultThreads)), (stages["total"]?.percentile(99) ?? 0) / 1000))
        }

        // The batch entry point: fresh histories scored together (one GEMM) against the same
        // requests one at a time, both through the engine.
        let engine = Engine(models: manager, pipelines: [Pipeline(name: "fresh", preprocessors: [IDMapping(model: "als")],
                                                                  sources: [FoldInSource(model: "als")], postprocessors: [ExcludeSeen()], k: k)])
        let fresh: [PipelineRequest] = (0 ..< batch).map { n in
            PipelineRequest(pipeline: "fresh", request: RecommendationRequest(history: (0 ..< 5).map { Event(item: "i\((n * 31 + $0 * 1013) % items)") }))
        }
        var singleSeconds = Double.infinity, batchSeconds = Double.infinity
        for _ in 0 ..< 3 {
            var t = clock.now
            for request in fresh { _ = try engine.recommend(request.request, pipeline: "fresh") }
            singleSeconds = min(singleSeconds, seconds(since: t))
            t = clock.now
            let answers = engine.recommend(batch: fresh)
            batchSeconds = min(batchSeconds, seconds(since: t))
            if let failed = answers.first(where: { (try? $0.get()) == nil }) { _ = try failed.get() }
        }
        print("\nbatch entry point, \(batch) fresh 5-event histories: one at a time \(fixed(Double(batch) / singleSeconds, 0)) requests/s, "
              + "one batch \(fixed(Double(batch) / batchSeconds, 0)) requests/s: \(fixed(singleSeconds / batchSeconds, 1))× (best of 3)")

        let bytesPerItem = Double(dimensions * 4 + 8)  // the item vector, plus its id map entry and popularity
        print("\nsizing:")
        for row in sizing {
            let verdict = row.p99 <= p99Target ? "within" : "over"
            print("  \(row.clients) client(s): \(fixed(row.perCore, 0)) requests/s per core, p99 \(fixed(row.p99, 2)) ms (\(verdict) the \(fixed(p99Target, 1)) ms target)")
        }
        print("  memory per million items: \(fixed(bytesPerItem * 1e6 / 1e6, 0)) MB of item vectors at \(dimensions) dims (float32), plus the id map")
    }

    /// The first failing request's error, for the message.
    func firstError(pipeline: Pipeline, manager: ModelManager, requests: [RecommendationRequest]) -> String {
        for request in requests {
            do { _ = try pipeline.run(request, models: manager) } catch { return "\(error)" }
        }
        return "none on a second run"
    }

    /// Runs `work` on `count` clients, each through all of it, each call limited to `threads`.
    func runClients(_ count: Int, threads: Int, work: [@Sendable () throws -> Void]) -> (wall: Double, latencies: LatencyHistogram) {
        let histograms = SharedHistograms(count)
        let clock = ContinuousClock(), start = clock.now
        DispatchQueue.concurrentPerform(iterations: count) { client in
            ScoringThreads.$limit.withValue(threads) {
                for call in work {
                    let t = clock.now
                    try? call()
                    histograms.record(client, microseconds: seconds(since: t) * 1e6)
                }
            }
        }
        return (seconds(since: start), histograms.merged)
    }

    func runPipeline(_ count: Int, pipeline: Pipeline, manager: ModelManager, requests: [RecommendationRequest]) -> (wall: Double, failures: Int) {
        let failures = SharedHistograms(count)
        let clock = ContinuousClock(), start = clock.now
        DispatchQueue.concurrentPerform(iterations: count) { client in
            for request in requests {
                // One client runs one request at a time.
                do { _ = try pipeline.run(request, models: manager) } catch { failures.record(client, microseconds: 1) }
            }
        }
        return (seconds(since: start), failures.merged.count)
    }
}

/// One histogram per client, merged at the end.
final class SharedHistograms: @unchecked Sendable {
    private let histograms: UnsafeMutableBufferPointer<LatencyHistogram>
    init(_ count: Int) { histograms = .allocate(capacity: count); histograms.initialize(repeating: LatencyHistogram()) }
    deinit { histograms.deinitialize(); histograms.deallocate() }
    /// Each client writes only its own slot, so no lock is needed.
    func record(_ client: Int, microseconds: Double) { histograms[client].record(microseconds: microseconds) }
    /// Read after the clients finished.
    var merged: LatencyHistogram { histograms.dropFirst().reduce(into: histograms[0]) { $0.merge($1) } }
}
