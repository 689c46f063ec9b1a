import ArgumentParser
import RecKernels
import RecModels

/// Training speed on the project's synthetic implicit-feedback set (Zipf popularity, hidden
/// tastes), the shape the peers' anchors were measured on: seconds per ALS iteration and per
/// BPR epoch at each thread count, and fold-in latency.
struct TrainingBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Seconds per ALS iteration and BPR epoch on a synthetic set, per thread count; fold-in µs per user.")

    @Option(help: "Users in the synthetic set.") var users = 100_000
    @Option(help: "Items in the synthetic set.") var items = 50_000
    @Option(help: "Interactions in the synthetic set.") var interactions = 5_000_000
    @Option(parsing: .upToNextOption, help: "ALS factor counts.") var factors: [Int] = [64, 128]
    @Option(parsing: .upToNextOption, help: "Thread counts.") var threads: [Int] = [1, 2]
    @Option(help: "Timed iterations per configuration.") var iterations = 3
    @Flag(help: "Skip BPR.") var noBPR = false
    @Flag(help: "Skip item-kNN.") var noKNN = false

    func run() throws {
        let clock = ContinuousClock()
        var start = clock.now
        let log = Interactions.synthetic(users: users, items: items, interactions: interactions, seed: 7)
        let catalog = try ModelCatalog(training: log)
        print("synthetic set: \(users) users × \(items) items, \(catalog.history.nonzeroCount) interactions (generated in \(fixed(seconds(clock.now - start), 1)) s)")
        print("SIMD level \(SIMDLevel.best); OpenBLAS \(OpenBLAS.coreName)\n")
        var lastModel: FactorModel? = nil
        for factorCount in factors {
            var perThreads: [Int: Double] = [:]
            for threadCount in threads {
                var als = ImplicitALS()
                als.factors = factorCount
                als.iterations = iterations
                als.threads = threadCount
                start = clock.now
                let model = try als.fit(catalog)
                let perIteration = seconds(clock.now - start) / Double(iterations)
                perThreads[threadCount] = perIteration
                print("ALS implicit, \(factorCount) factors, CG 3 steps, T=\(threadCount): \(fixed(perIteration, 3)) s/iteration")
                lastModel = model
            }
            if let one = perThreads[1], let two = perThreads[2] { print("  speed-up with 2 threads: \(fixed(one / two, 2))×") }
        }
        if let model = lastModel {
            // Fold-in: a user's vector from 50 history items, item factors fixed.
            var generator = SeededGenerator(seed: 3)
            var latencies: [Double] = []
            for _ in 0 ..< 200 {
                let history = (0 ..< 50).map { _ in Int.random(in: 0 ..< items, using: &generator) }
                let began = clock.now
                _ = try model.foldIn(history: history, weights: [Float](repeating: 1, count: 50))
                latencies.append(seconds(clock.now - began))
            }
            latencies.sort()
            print("ALS fold-in, \(model.userFactors.dimensions) factors, 50 history items: p50 \(fixed(latencies[100] * 1e6, 1)) µs, p99 \(fixed(latencies[197] * 1e6, 1)) µs per user")
        }
        if !noKNN {
            for threadCount in threads {
                start = clock.now
                let model = try ItemKNNModel(catalog, neighbours: 20, threads: threadCount)
                print("item-kNN, cosine, 20 neighbours, T=\(threadCount): \(fixed(seconds(clock.now - start), 3)) s (\(model.similarities.nonzeroCount) similarities)")
            }
        }
        if !noBPR {
            for threadCount in threads {
                var bpr = BPR()
                bpr.factors = 64
                bpr.iterations = iterations
                bpr.threads = threadCount
                start = clock.now
                _ = try bpr.fit(catalog)
                print("BPR, 64 factors, T=\(threadCount): \(fixed(seconds(clock.now - start) / Double(iterations), 3)) s/epoch")
            }
        }
    }
}
