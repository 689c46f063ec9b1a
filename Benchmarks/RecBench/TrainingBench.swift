import ArgumentParser
import RecKernels
import RecModels
#if canImport(Glibc)
import Glibc
#endif

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
    @Option(help: "Python with implicit 0.7.2 (a scratch virtualenv) to time the peer in the same run; empty: ours only.")
    var python = "/tmp/implicit-venv/bin/python"

    func run() throws {
        let clock = ContinuousClock()
        var start = clock.now
        let log = try Interactions.synthetic(users: users, items: items, interactions: interactions, seed: 7)
        let catalog = try ModelCatalog(training: log)
        print("synthetic set: \(users) users × \(items) items, \(catalog.history.nonzeroCount) interactions (generated in \(fixed(seconds(clock.now - start), 1)) s)")
        print("SIMD level \(SIMDLevel.best); OpenBLAS \(OpenBLAS.coreName)")
        let peers = try peerDirectory(log)
        print()
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
                print("ALS implicit, \(factorCount) factors, CG 3 steps, T=\(threadCount): \(fixed(perIteration, 3)) s/iteration"
                      + (try peer(peers, "--model als --factors \(factorCount) --iterations \(iterations) --threads \(threadCount)",
                                  ours: perIteration, key: "seconds_per_iteration")))
                if threadCount == threads.last { try foldInLatency(model) }
            }
            if let one = perThreads[1], let two = perThreads[2] { print("  speed-up with 2 threads: \(fixed(one / two, 2))×") }
        }
        if !noKNN {
            for threadCount in threads {
                start = clock.now
                let model = try ItemKNNModel(catalog, neighbours: 20, threads: threadCount)
                let taken = seconds(clock.now - start)
                print("item-kNN, cosine, 20 neighbours, T=\(threadCount): \(fixed(taken, 3)) s (\(model.similarities.nonzeroCount) similarities)"
                      + (try peer(peers, "--model cosine --neighbours 20 --threads \(threadCount)", ours: taken, key: "seconds")))
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
                let perEpoch = seconds(clock.now - start) / Double(iterations)
                print("BPR, 64 factors, T=\(threadCount): \(fixed(perEpoch, 3)) s/epoch"
                      + (try peer(peers, "--model bpr --factors 64 --iterations \(iterations) --threads \(threadCount)",
                                  ours: perEpoch, key: "seconds_per_iteration")))
            }
        }
    }

    /// A user's vector from 50 history items with the item factors fixed: what the streaming
    /// mode does per event.
    func foldInLatency(_ model: FactorModel) throws {
        var generator = SeededGenerator(seed: 3)
        var latencies: [Double] = []
        for _ in 0 ..< 300 {
            let history = (0 ..< 50).map { _ in Int.random(in: 0 ..< items, using: &generator) }
            let began = ContinuousClock.now
            _ = try model.foldIn(history: history, weights: [Float](repeating: 1, count: 50))
            latencies.append(elapsed(since: began))
        }
        latencies.sort()
        print("  fold-in, \(model.userFactors.dimensions) factors, 50 history items: p50 \(fixed(latencies[150] * 1e6, 1)) µs, p99 \(fixed(latencies[296] * 1e6, 1)) µs per user")
    }

    /// Writes the set where the peer script reads it, when a peer Python is configured.
    func peerDirectory(_ log: Interactions) throws -> String? {
        guard !python.isEmpty, access(python, X_OK) == 0 else {
            print("peer: none (no executable --python \(python)); ours only")
            return nil
        }
        let directory = "/tmp/recommender-bench-train"
        mkdir(directory, 0o755)
        var lines = ["user,item,value"]
        lines.reserveCapacity(log.count + 1)
        for e in 0 ..< log.count { lines.append("\(log.userIndices[e]),\(log.itemIndices[e]),1") }
        try writeLines(lines, to: directory + "/train-1.csv")
        unlink(directory + "/test-1.csv")
        print("peer: benfred/implicit via \(python), same data, same run")
        return directory
    }

    /// The peer's time for the same work, and ours as a ratio of it.
    func peer(_ directory: String?, _ arguments: String, ours: Double, key: String) throws -> String {
        guard let directory else { return "" }
        let script = String(#filePath.dropLast("RecBench/TrainingBench.swift".count)) + "peers/implicit_als.py"
        let figures = try runJSON("\(python) \(script) \(directory) \(arguments) 2>/dev/null")
        guard let theirs = figures[key] else { return "" }
        return "   implicit \(fixed(theirs, 3)) s → ours \(fixed(ours / theirs, 2))× its time"
    }
}
