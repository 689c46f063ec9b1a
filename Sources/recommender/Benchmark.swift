import ArgumentParser
import RecEngine
import RecKernels
import RecModels
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// A pipeline end to end and per stage for a named configuration, with a hardware-sizing
/// summary: requests/s per core at a p99 target, and memory per million items.
struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
                abstract: "Throughput and per-stage p50/p99 of a recommendation pipeline; requests/s per core and memory per million items.")

    @Option(help: "Catalog items.") var items = 100_000
    @Option(help: "Users (with training histories).") var users = 20_000
    @Option(help: "Interactions in the synthetic training set.") var interactions = 1_000_000
    @Option(help: "Embedding dimensions (ALS factors).") var dimensions = 64
    @Option(help: "Results per request.") var k = 10
    @Option(parsing: .upToNextOption, help: "Concurrent clients to run with.") var clients: [Int] = [1, 2]
    @Option(help: "Requests per client.") var requests = 2000
    @Option(help: "p99 target for the sizing summary, milliseconds.") var p99Target = 10.0
    @Option(help: "Also write the per-stage latencies in Prometheus text format to this file.") var prometheus: String?

    func validate() throws {
        guard items >= 1, users >= 1, interactions >= 1, dimensions >= 1 else {
            throw ValidationError("--items, --users, --interactions and --dimensions must be at least 1, got \(items), \(users), \(interactions), \(dimensions)")
        }
        guard k >= 1 else { throw ValidationError("--k must be at least 1, got \(k)") }
        guard requests >= 1, !clients.isEmpty, clients.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--requests and every --clients value must be at least 1")
        }
        guard p99Target.isFinite, p99Target > 0 else { throw ValidationError("--p99-target must be a positive number of milliseconds, got \(p99Target)") }
    }

    func run() throws {
        let clock = ContinuousClock()
        var start = clock.now
        let log = Interactions.synthetic(users: users, items: items, interactions: interactions, seed: 5)
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
        // The home-page pipeline: a known user by vector or fresh events by fold-in, seen items
        // out, popular items for the cold.
        let requestsToRun: [RecommendationRequest] = (0 ..< requests).map { n in
            n % 4 == 3 ? RecommendationRequest(history: [Event(item: "i\(n % items)", type: "view"), Event(item: "i\((n * 7) % items)", type: "buy")])
                : RecommendationRequest(user: "u\((n * 13) % users)")
        }
        print("requests: 3 in 4 known users (user factors), 1 in 4 fresh two-event histories (fold-in)")
        print("one client: each request may use every core; several: one core per request (threadsPerRequest 1)\n")
        print([pad("clients", 8), pad("req/s", 10), pad("stage", 12), pad("p50 µs", 10), pad("p90 µs", 10), pad("p99 µs", 10)].joined())
        var sizing: [(clients: Int, perCore: Double, p99: Double)] = []
        for clientCount in clients {
            let pipeline = Pipeline(name: "home", preprocessors: [IDMapping(model: "als"), EventTypeWeighting(weights: ["view": 1, "buy": 5])],
                                    sources: [UserFactorsSource(model: "als"), FoldInSource(model: "als")],
                                    postprocessors: [ExcludeSeen(model: "als"), PopularityFallback(model: "pop")], k: k, candidates: k * 5,
                                    threadsPerRequest: clientCount > 1 ? 1 : nil)
            start = clock.now
            let failures = runClients(clientCount, pipeline: pipeline, manager: manager, requests: requestsToRun)
            let wall = seconds(since: start)
            let throughput = Double(clientCount * requests) / wall
            let stages = pipeline.latencies.current
            for stage in Pipeline.stages + ["total"] {
                guard let histogram = stages[stage] else { continue }
                print([pad(stage == "transform" ? "\(clientCount)" : "", 8), pad(stage == "transform" ? fixed(throughput, 0) : "", 10),
                       pad(stage, 12), pad(fixed(histogram.percentile(50), 0), 10), pad(fixed(histogram.percentile(90), 0), 10),
                       pad(fixed(histogram.percentile(99), 0), 10)].joined())
            }
            // A sizing summary from failed requests would be a wrong result: stop instead.
            if failures > 0 {
                throw ValidationError("\(failures) of \(clientCount * requests) requests failed with \(clientCount) client(s): no sizing summary (first error: \(firstError(pipeline: pipeline, manager: manager, requests: requestsToRun)))")
            }
            if let prometheus, clientCount == clients.last, let file = fopen(prometheus, "w") {
                fputs(pipeline.latencies.prometheusText(pipeline: "home"), file)
                fclose(file)
            }
            sizing.append((clientCount, throughput / Double(min(clientCount, FlatIndex.defaultThreads)), (stages["total"]?.percentile(99) ?? 0) / 1000))
        }
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

    func runClients(_ count: Int, pipeline: Pipeline, manager: ModelManager, requests: [RecommendationRequest]) -> Int {
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: count)
        failures.initialize(repeating: 0, count: count)
        defer { failures.deallocate() }
        let shared = SendablePointer(failures)
        DispatchQueue.concurrentPerform(iterations: count) { client in
            for request in requests {
                // One client runs one request at a time; the kernel itself stays on this thread.
                do { _ = try pipeline.run(request, models: manager) } catch { shared.pointer[client] += 1 }
            }
        }
        return (0 ..< count).reduce(0) { $0 + failures[$1] }
    }
}

struct SendablePointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int>
    init(_ pointer: UnsafeMutablePointer<Int>) { self.pointer = pointer }
}


