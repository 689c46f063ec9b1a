import ArgumentParser
import RecKernels

/// The embedded default: a synthetic catalog whose items belong to genres and users who each
/// prefer a genre, scored end to end, so the output can be checked by eye (recommendations
/// should come from the user's genre) and the timings size the machine.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a synthetic catalog and users, recommend, and print results with timings (no set-up needed).")

    @Option(help: "Items in the synthetic catalog.") var items = 200_000
    @Option(help: "Users to recommend for.") var users = 2_000
    @Option(help: "Embedding dimensions.") var dimensions = 64
    @Option(help: "Genres items and users are drawn from.") var genres = 20
    @Option(name: .shortAndLong, help: "Recommendations per user.") var k = 10
    @Option(help: "Items each user has already seen (excluded from results).") var seen = 50
    @Option(help: "Worker threads (default: all available cores).") var threads = FlatIndex.defaultThreads
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "Where to save the catalog as a model file.") var catalogPath = "/tmp/recommender-demo-catalog.rkm"

    func validate() throws {
        guard items > 0, users > 0, dimensions > 0, genres > 0, k > 0, seen >= 0, threads > 0 else {
            throw ValidationError("items, users, dimensions, genres, k and threads must be positive; seen must not be negative")
        }
        try EmbeddingTable.checkFits(rows: items, dimensions: dimensions, what: "--items × --dimensions (the catalog)")
        try EmbeddingTable.checkFits(rows: users, dimensions: dimensions, what: "--users × --dimensions (the queries)")
        try EmbeddingTable.checkFits(rows: users, dimensions: max(1, seen * 2), what: "--users × --seen (the histories)")
        guard genres <= items else { throw ValidationError("--genres (\(genres)) must not exceed --items (\(items))") }
    }

    func run() throws {
        print("recommender demo: \(items) items × \(dimensions) dims in \(genres) genres, \(users) users, top-\(k), \(threads) threads")
        print("kernels: OpenBLAS (\(OpenBLAS.coreName)) and SIMD (\(SIMDLevel.best))\n")

        // Each genre has a centre; an item is its genre's centre plus noise, a user is their
        // favourite genre's centre plus more noise.
        var start = ContinuousClock.now
        var generator = SeededGenerator(seed: seed)
        let centres = EmbeddingTable.gaussian(rows: genres, dimensions: dimensions, seed: seed &+ 1)
        let itemGenre = (0 ..< items).map { _ in Int.random(in: 0 ..< genres, using: &generator) }
        let userGenre = (0 ..< users).map { _ in Int.random(in: 0 ..< genres, using: &generator) }
        let catalog = planted(rows: items, around: itemGenre, centres: centres, noise: 0.8, generator: &generator)
        let queries = planted(rows: users, around: userGenre, centres: centres, noise: 1.2, generator: &generator)
        let history = (0 ..< users).map { _ in (0 ..< seen).map { _ in Int.random(in: 0 ..< items, using: &generator) } }
        report("generated the catalog and users", "\(fixed(seconds(since: start) * 1000, 1)) ms")

        start = ContinuousClock.now
        try catalog.save(to: catalogPath)
        let saved = seconds(since: start)
        start = ContinuousClock.now
        let mapped = try EmbeddingTable(contentsOf: catalogPath)
        let opened = seconds(since: start)
        report("saved the catalog to \(catalogPath)", "\(fixed(saved * 1000, 1)) ms")
        report("reopened it by memory-mapping, CRC checked", "\(fixed(opened * 1000, 1)) ms for \(fixed(Double(items * dimensions * 4) / 1e6, 1)) MB")

        start = ContinuousClock.now
        let index = try FlatIndex(items: mapped, metric: .innerProduct)
        report("built the index", "\(fixed(seconds(since: start) * 1000, 1)) ms")

        start = ContinuousClock.now
        let results = try index.search(queries, k: k, excluding: try ExcludedItems(history), threads: threads)
        let batch = seconds(since: start)
        report("recommended for all \(users) users", "\(fixed(batch * 1000, 1)) ms (\(fixed(Double(users) / batch, 0)) users/s)")

        var latencies: [Double] = []
        for user in 0 ..< min(users, 200) {
            let query = queries.row(user)
            start = ContinuousClock.now
            _ = try index.search(query, k: k, excluding: history[user], threads: threads)
            latencies.append(seconds(since: start))
        }
        latencies.sort()
        report("one user at a time (\(latencies.count) users)", "p50 \(fixed(latencies[latencies.count / 2] * 1e6, 0)) µs, p99 \(fixed(latencies[min(latencies.count - 1, latencies.count * 99 / 100)] * 1e6, 0)) µs")

        // How well the planted structure comes back: the share of recommendations from each
        // user's own genre (1/genres would be chance).
        var sameGenre = 0, total = 0
        for user in 0 ..< users {
            for item in results[user] {
                total += 1
                if itemGenre[item.id] == userGenre[user] { sameGenre += 1 }
                if history[user].contains(item.id) { throw ValidationError("an excluded item was recommended: a kernel bug") }
            }
        }
        report("recommendations from the user's own genre", "\(fixed(100 * Double(sameGenre) / Double(max(total, 1)), 1))% (chance: \(fixed(100 / Double(genres), 1))%)")
        print()

        for user in 0 ..< min(users, 3) {
            print("user \(user) (likes genre \(userGenre[user])):")
            for (rank, item) in results[user].enumerated() {
                print("  \(rank + 1). item \(item.id) (genre \(itemGenre[item.id]))  score \(fixed(Double(item.score), 3))")
            }
        }
    }

    private func report(_ label: String, _ value: String) {
        print(label + String(repeating: " ", count: max(1, 46 - label.count)) + value)
    }

    private func planted(rows: Int, around genre: [Int], centres: EmbeddingTable, noise: Float,
                         generator: inout SeededGenerator) -> EmbeddingTable {
        var table = EmbeddingTable(rows: rows, dimensions: dimensions)
        let d = dimensions
        table.withUnsafeMutableBufferPointer { values in
            for row in 0 ..< rows {
                centres.withRow(genre[row]) { centre in
                    for j in 0 ..< d { values[row * d + j] = centre[j] + noise * generator.nextGaussian() }
                }
            }
        }
        return table
    }
}
