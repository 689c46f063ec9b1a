import ArgumentParser
import Dispatch
import Foundation
import Logging
import RecEngine
import RecKernels
import RecModels
import RecRegistry
import RecServer
import Synchronization

/// `recommender serve`: the engine over HTTP (JSON API, feedback, web page, metrics).
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the engine over HTTP: JSON API under /v1, a web page at /, /metrics, /health/live and /health/ready.",
        discussion: """
        Without --store it serves an embedded demo catalog (a small synthetic store written to a temporary \
        directory). Model management routes need a bearer token: --admin-token-file or the environment \
        variable RECOMMENDER_ADMIN_TOKEN (never logged). SIGTERM or SIGINT: stop accepting, finish the \
        requests in flight, exit 0. The load benchmark's helpers are the subcommands.
        """,
        subcommands: Serve.subcommandsForLoad)

    @Option(help: "Model store directory (default: the embedded demo catalog).") var store: String?
    @Option(help: "Pipeline settings (JSON); default: one pipeline per served model.") var settings: String?
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port (0: a free one; the bound port is printed).") var port = 8080
    @Option(help: "A file holding the bearer token for model management.") var adminTokenFile: String?
    @Option(help: "Largest k a request may ask for.") var maximumK = 100
    @Option(help: "Most items or events in one session.") var maximumSessionItems = 200
    @Option(help: "Largest JSON body, bytes.") var maximumBodyBytes = 1 << 20
    @Option(help: "Engine worker threads (default: one per core).") var workers: Int?
    @Option(help: "Engine calls allowed to wait for a worker before 503.") var maximumQueued = 1024
    @Option(help: "Requests for one pipeline queued behind each other that the engine answers together, in one batch (1: each alone).") var gather = EngineOptions().gatheredRequests
    @Option(help: "How much lower the engine workers' CPU priority is than the HTTP threads' (Linux niceness, 0...19), so reading requests and writing answers never waits behind a scan.") var workerNiceness = 10
    @Option(help: "HTTP event loop threads; the route handlers' tasks run on them too (see --handlers-on-cooperative-pool). Default: one per 4 cores, at least 1.") var eventLoops = max(1, SystemInfo.cores / 4)
    @Flag(help: "Run route handlers on Swift's cooperative pool instead of the event loops (one more thread hop per request; for comparison).") var handlersOnCooperativePool = false
    @Flag(help: "Run each connection's route handlers on Swift's global executor instead of with the connection's event loop as task executor (a second enqueue on the loop at each resume; for comparison).") var handlersOnGlobalExecutor = false
    @Option(help: "Feedback events kept per user.") var recentEventsPerUser = 50
    @Option(help: "Users whose feedback is kept.") var recentEventsUsers = 100_000
    @Option(help: "Demo catalog items (without --store).") var demoItems = 2_000
    @Option(help: "Demo catalog users (without --store).") var demoUsers = 1_000
    @OptionGroup var registry: RegistryOptions

    func validate() throws {
        guard (0 ... 65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard maximumK >= 1, maximumSessionItems >= 1, gather >= 1, eventLoops >= 1, (0 ... 19).contains(workerNiceness), maximumBodyBytes >= 1024, maximumQueued >= 0, (workers ?? 1) >= 1,
              recentEventsPerUser >= 1, recentEventsUsers >= 1 else {
            throw ValidationError("limits must be positive (--maximum-body-bytes at least 1024, --worker-niceness 0...19)")
        }
        if store == nil, settings != nil { throw ValidationError("--settings needs --store (the demo catalog brings its own)") }
        if store == nil, registry.registry != nil { throw ValidationError("--registry needs --store (the registry's local cache)") }
    }

    func run() throws {
        // First, before any task exists: the tasks of route handlers then run on the event loops.
        if !RecommenderServer.setUpEventLoops(eventLoops, runningTasks: !handlersOnCooperativePool), !handlersOnCooperativePool {
            print("note: this Swift runtime cannot run tasks on the event loops; route handlers run on the cooperative pool")
        }
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.maximumK = maximumK
        configuration.handlersOnConnectionEventLoop = !handlersOnCooperativePool && !handlersOnGlobalExecutor
        configuration.maximumSessionItems = maximumSessionItems
        configuration.maximumBodyBytes = maximumBodyBytes
        configuration.engine.maximumQueuedRequests = maximumQueued
        configuration.engine.gatheredRequests = gather
        configuration.engine.workerNiceness = workerNiceness
        configuration.engine.workerThreads = workers ?? SystemInfo.cores
        configuration.engine.recentEventsPerUser = recentEventsPerUser
        configuration.engine.recentEventsUsers = recentEventsUsers
        if let adminTokenFile {
            let token = try String(contentsOfFile: adminTokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw ValidationError("\(adminTokenFile): the token file is empty") }
            configuration.adminToken = token
        } else if let token = ProcessInfo.processInfo.environment["RECOMMENDER_ADMIN_TOKEN"], !token.isEmpty {
            configuration.adminToken = token
        }

        var demoDirectory: String? = nil
        let storePath: String, settingsPath: String?
        if let store {
            (storePath, settingsPath) = (store, settings)
        } else {
            let directory = NSTemporaryDirectory() + "recommender-demo-\(ProcessInfo.processInfo.processIdentifier)"
            try? FileManager.default.removeItem(atPath: directory)
            let start = ContinuousClock.now
            settingsPath = try DemoStore.create(at: directory, items: demoItems, users: demoUsers)
            storePath = directory
            demoDirectory = directory
            print("demo catalog: \(demoItems) items, \(demoUsers) users in \(directory) (\(fixed(seconds(since: start), 2)) s); pipelines home and search")
        }
        defer { if let demoDirectory { try? FileManager.default.removeItem(atPath: demoDirectory) } }

        var logger = Logger(label: "recommender.server")
        logger.logLevel = .info
        let service = RecommenderService(configuration: configuration, logger: logger)
        let server = RecommenderServer(service: service)
        let host = self.host
        let failure = Mutex<(any Error)?>(nil)
        let finished = DispatchSemaphore(value: 0)
        // With a registry: its active versions are downloaded before the engine loads, and
        // followed (LISTEN, hot swap) once it has; readiness and /metrics report the follower.
        let follower = try registry.location.map { location in
            try prepareFollower(location, store: storePath, engine: { [service] in service.engine })
        }
        if let follower {
            service.addReadinessReport("registry") {
                let status = follower.status
                return ReadinessReport(ready: status.connected,
                                       detail: status.connected ? "following \(follower.location.redacted)"
                                           : "not ready for updates: \(status.lastError ?? "connecting to \(follower.location.redacted)")")
            }
            follower.start()
        }
        defer { follower?.stop() }
        // The root command is synchronous: the server runs in a task while this thread waits.
        Task {
            do {
                try await server.run(store: storePath, settings: settingsPath) { port in
                    print("listening on http://\(host):\(port)")
                    fflush(nil)  // every stream: scripts wait for this line
                }
            } catch {
                failure.withLock { $0 = error }
            }
            finished.signal()
        }
        finished.wait()
        if let error = failure.withLock({ $0 }) { throw error }
        print("stopped")
    }
}

extension Serve {
    static let subcommandsForLoad: [any ParsableCommand.Type] = [LoadStore.self, KernelBound.self]

    /// Writes the load benchmark's store: 100,000 items × 64 factors, 20,000 users.
    struct LoadStore: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "load-store",
            abstract: "Write the load benchmark's store: implicit ALS on synthetic interactions (v1 active, v2 to activate mid-run) and a popularity model.")
        @Option(help: "Store directory to create.") var directory: String
        @Option(help: "Items.") var items = 100_000
        @Option(help: "Users.") var users = 20_000
        @Option(help: "Interactions.") var interactions = 1_000_000
        @Option(help: "Factors.") var factors = 64

        func run() throws {
            let start = ContinuousClock.now
            let log = try Interactions.synthetic(users: users, items: items, interactions: interactions, seed: 5)
            let catalog = try ModelCatalog(training: log)
            let modelStore = try ModelStore(directory: directory)
            var als = ImplicitALS()
            als.factors = factors
            als.iterations = 2
            _ = try modelStore.add(try als.fit(catalog), name: "als", fingerprint: log.fingerprint, activate: true)
            als.seed = 2
            _ = try modelStore.add(try als.fit(catalog), name: "als", fingerprint: log.fingerprint)
            _ = try modelStore.add(try PopularityModel(catalog), name: "popular", fingerprint: log.fingerprint, activate: true)
            print("wrote \(directory): als v1 (active) and v2, popular; \(items) items × \(factors) factors, \(users) users, \(catalog.history.nonzeroCount) interactions (\(fixed(seconds(since: start), 1)) s)")
        }
    }

    /// The kernel-only bound: the same requests as the load test, as model calls alone (no HTTP,
    /// no pipeline), from as many threads as the server has workers, one core per request. It
    /// scores the table the server scores (the model file's int8 copy when it has one: both go
    /// through the same automatic backend choice) and reports it, with the CPU it used.
    struct KernelBound: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kernel-bound",
            abstract: "Time the load test's requests as bare model calls (top-K for a known user; fold-in + top-K for a 5-item session) from N threads.")
        @Option(help: "Store directory (from load-store).") var directory: String
        @Option(help: "Model name.") var model = "als"
        @Option(help: "Concurrent threads (the server's worker count).") var threads = 2
        @Option(help: "Seconds per measurement.") var duration = 10.0
        @Option(name: .shortAndLong, help: "Results per request.") var k = 10
        @Option(help: "Requests per model call (1: each alone; more: that many together through the model's batch path, as the server's --gather forms them).") var batch = 1

        func validate() throws {
            guard threads >= 1, batch >= 1, k >= 1, duration > 0 else { throw ValidationError("--threads, --batch, -k and --duration must be positive") }
        }

        func run() throws {
            let modelStore = try ModelStore(directory: directory)
            guard let active = try modelStore.activeVersion(of: model), case let .recommender(recommender) = try modelStore.load(active) else {
                throw ValidationError("\(model) has no active recommender version in \(directory)")
            }
            let table = (recommender as? FactorModel)?.compressedItems.map { "\($0.kind) compressed table, exact" } ?? "float32 table"
            let users = recommender.catalog.users.count, items = recommender.catalog.items.count
            for kind in ["user", "session"] {
                let latencies = Mutex<[Double]>([])
                let failure = Mutex<(any Error)?>(nil)
                let clock = ContinuousClock(), begin = clock.now, cpuBefore = processCPUSeconds()
                let budget = duration, k = self.k, threads = self.threads, batch = self.batch
                DispatchQueue.concurrentPerform(iterations: threads) { thread in
                    var mine: [Double] = []
                    var n = thread
                    ScoringThreads.$limit.withValue(1) {
                        do {
                            while seconds(since: begin) < budget {
                                let start = clock.now
                                if batch > 1 {
                                    let queries = (0 ..< batch).map { b in
                                        let m = n + b * threads
                                        return kind == "user" ? RecommenderQuery(.user((m * 7919) % users))
                                            : RecommenderQuery(.history(items: (0 ..< 5).map { (m * 104_729 + $0 * 7_907) % items }, weights: [Float](repeating: 1, count: 5)))
                                    }
                                    for answer in recommender.recommend(batch: queries, k: k, excludeSeen: true, filter: nil) { _ = try answer.get() }
                                } else if kind == "user" {
                                    _ = try recommender.recommend(users: [(n * 7919) % users], k: k, excludeSeen: true, filter: nil)
                                } else {
                                    let history = (0 ..< 5).map { (n * 104_729 + $0 * 7_907) % items }
                                    _ = try recommender.recommend(history: history, weights: [Float](repeating: 1, count: 5), k: k, excludeSeen: true, filter: nil)
                                }
                                // Each request of a batch waited for the whole batch.
                                mine += repeatElement(seconds(since: start), count: batch)
                                n += threads * batch
                            }
                        } catch { failure.withLock { $0 = error } }
                    }
                    latencies.withLock { $0 += mine }
                }
                // A failed call must not count as a fast one.
                if let error = failure.withLock({ $0 }) { throw error }
                let wall = seconds(since: begin), cores = (processCPUSeconds() - cpuBefore) / wall
                let sorted = latencies.withLock { $0 }.sorted()
                let p = { (q: Double) in sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] * 1000 }
                print("kernel-only \(kind): \(fixed(Double(sorted.count) / wall, 0)) requests/s, p50 \(fixed(p(0.5), 3)) ms, p99 \(fixed(p(0.99), 3)) ms (\(threads) threads, \(sorted.count) requests\(batch > 1 ? " in batches of \(batch)" : ""), \(fixed(cores, 2)) cores busy, k \(k), \(table))")
            }
        }

        /// User + system CPU seconds this process has used.
        private func processCPUSeconds() -> Double {
            var usage = rusage()
            getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
            return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        }
    }
}
