// recommender-bench: sizes hardware for exact top-K scoring. For each shape it times the fused
// top-K search (OpenBLAS and SIMD backends) and, in the same run, the bare OpenBLAS call for the
// same product (sgemm for a batch, sgemv for one query), and prints the ratio: the machine's
// noise cancels out of a ratio, not out of an absolute time.
import ArgumentParser
import Foundation
import RecKernels
#if canImport(Glibc)
import Glibc
#endif

struct Shape: ExpressibleByArgument, CustomStringConvertible {
    let queries: Int, items: Int, dimensions: Int

    init?(argument: String) {
        let parts = argument.split(separator: "x").compactMap { Int($0.filter { $0 != "_" && $0 != "," }) }
        guard parts.count == 3, parts.allSatisfy({ $0 > 0 }) else { return nil }
        (queries, items, dimensions) = (parts[0], parts[1], parts[2])
    }

    var description: String { "\(queries)x\(items)x\(dimensions)" }
}

/// Durations of repeated runs, in seconds.
struct Timings {
    var samples: [Double] = []

    mutating func measure(_ body: () throws -> Void) rethrows {
        let clock = ContinuousClock()
        let start = clock.now
        try body()
        let elapsed = clock.now - start
        samples.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }

    func percentile(_ p: Double) -> Double {
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, Int((p / 100 * Double(sorted.count - 1)).rounded()))]
    }

    var median: Double { percentile(50) }
}

func milliseconds(_ seconds: Double) -> String { fixed(seconds * 1000, 3) }

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

struct KernelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "Exact top-K scoring throughput and latency, as ratios to the bare OpenBLAS call timed in the same run.")

    @Option(name: .long, parsing: .upToNextOption, help: "Shapes as QUERIESxITEMSxDIMS.")
    var shapes: [Shape] = [Shape(argument: "1024x100000x64")!, Shape(argument: "256x1000000x64")!, Shape(argument: "1x1000000x64")!]

    @Option(name: .long, parsing: .upToNextOption, help: "Thread counts to run each shape with.")
    var threads: [Int] = [1, 2]

    @Option(name: .shortAndLong, help: "Results per query.")
    var k: Int = 10

    @Option(name: .long, help: "Timed runs of each batch (after one warm-up).")
    var repeats: Int = 7

    @Option(name: .long, help: "Single queries timed for latency percentiles (shapes with one query).")
    var singleQueries: Int = 200

    @Flag(name: .long, help: "Skip the SIMD backend.")
    var noSIMD = false

    @Option(name: .long, help: "Items of the compressed-table figures (one query, top-k, against bare sgemv); 0 skips them.")
    var compressedItems: Int = 1_000_000

    @Option(name: .long, help: "Items of the small cache-resident single-query figure at 2 threads; 0 skips it.")
    var smallItems: Int = 50_000

    @Flag(name: .long, help: "Only sweep the compressed int8 path against the float32 path over query counts × catalog sizes (sets FlatIndex's .automatic thresholds).")
    var sweepCompressed = false

    @Option(name: .long, parsing: .upToNextOption, help: "Query counts of --sweep-compressed.")
    var sweepQueries: [Int] = [1, 2, 4, 8, 16, 32]

    @Option(name: .long, parsing: .upToNextOption, help: "Catalog sizes of --sweep-compressed.")
    var sweepItems: [Int] = [4_096, 16_384, 65_536, 262_144, 1_048_576]

    @Option(name: .long, help: "Threads of --sweep-compressed.")
    var sweepThreads: Int = 1

    func run() throws {
        if sweepCompressed { return try compressedSweep(dimensions: 64) }
        print("recommender-bench — exact top-\(k), inner product; \(FlatIndex.defaultThreads) cores available")
        print("OpenBLAS: \(OpenBLAS.configuration); SIMD level: \(SIMDLevel.best)")
        print("blocks: \(FlatIndex.queryBlock) queries × \(FlatIndex.itemBlock) items; ratio = fused top-K time / bare BLAS time\n")
        print([pad("shape", 16), pad("T", 2), pad("path", 18), pad("p50 ms", 10), pad("p99 ms", 10), pad("queries/s", 11), pad("GFLOP/s", 8), pad("ratio", 6)].joined(separator: " "))
        var verdicts: [String] = []
        for shape in shapes {
            let items = EmbeddingTable.gaussian(rows: shape.items, dimensions: shape.dimensions, seed: 1)
            let queries = EmbeddingTable.gaussian(rows: shape.queries, dimensions: shape.dimensions, seed: 2)
            let index = try FlatIndex(items: items, metric: .innerProduct)
            for threadCount in threads {
                if shape.queries == 1 {
                    verdicts += try single(shape: shape, index: index, threads: threadCount)
                } else {
                    verdicts += try batch(shape: shape, index: index, queries: queries, threads: threadCount)
                }
            }
        }
        if compressedItems > 0 { verdicts += try compressedFigures(items: compressedItems, dimensions: shapes.first?.dimensions ?? 64) }
        if smallItems > 0 { verdicts += try smallSingleQuery(items: smallItems, dimensions: shapes.first?.dimensions ?? 64) }
        try fileTimings(rows: shapes.map(\.items).max() ?? 1_000_000, dimensions: shapes.first?.dimensions ?? 64)
        print("\nTargets (issue 2): batched top-\(k) ≤ 1.25× bare sgemm; single query ≤ 1.3× bare sgemv; SIMD ≤ 3× bare sgemm on the batched shape")
        verdicts.forEach { print($0) }
    }

    func row(_ shape: Shape, _ threads: Int, _ path: String, _ timings: Timings, perRun queries: Int, ratio: Double?) {
        let flops = 2.0 * Double(queries) * Double(shape.items) * Double(shape.dimensions)
        print([pad(shape.description, 16), pad("\(threads)", 2), pad(path, 18), pad(milliseconds(timings.median), 10),
               pad(milliseconds(timings.percentile(99)), 10), pad(fixed(Double(queries) / timings.median, 0), 11),
               pad(fixed(flops / timings.median / 1e9, 1), 8), pad(ratio.map { fixed($0, 3) } ?? "1", 6)].joined(separator: " "))
    }

    func batch(shape: Shape, index: FlatIndex, queries: EmbeddingTable, threads: Int) throws -> [String] {
        var scores = [Float](repeating: 0, count: shape.queries * shape.items)
        var bare = Timings()
        OpenBLAS.withThreads(threads) {
            OpenBLAS.multiply(queries, transposed: index.items, into: &scores)  // warm-up, and pages touched
            for _ in 0 ..< repeats { bare.measure { OpenBLAS.multiply(queries, transposed: index.items, into: &scores) } }
        }
        scores = []
        row(shape, threads, "bare sgemm", bare, perRun: shape.queries, ratio: nil)
        var verdicts: [String] = []
        let backends: [(String, ScoringBackend)] = [("top-K OpenBLAS", .blas)] + (noSIMD ? [] : [("top-K SIMD \(SIMDLevel.best)", .simd)])
        for (name, backend) in backends {
            var fused = Timings()
            _ = try index.search(queries, k: k, backend: backend, threads: threads)
            for _ in 0 ..< repeats { try fused.measure { _ = try index.search(queries, k: k, backend: backend, threads: threads) } }
            let ratio = fused.median / bare.median
            row(shape, threads, name, fused, perRun: shape.queries, ratio: ratio)
            let limit = backend == .blas ? 1.25 : 3.0
            verdicts.append("  \(shape) T=\(threads) \(name): \(fixed(ratio, 3))× bare sgemm (target ≤ \(limit)): \(ratio <= limit ? "met" : "MISSED")")
        }
        return verdicts
    }

    /// Save and memory-mapped open of the largest catalog, with and without payload checksums.
    func fileTimings(rows: Int, dimensions: Int) throws {
        let table = EmbeddingTable.gaussian(rows: rows, dimensions: dimensions, seed: 3)
        let path = "/tmp/recommender-bench-\(rows)x\(dimensions).rkm"
        var save = Timings(), full = Timings(), structure = Timings()
        for _ in 0 ..< 3 { save.measure { try! table.save(to: path) } }
        for _ in 0 ..< repeats {
            try full.measure { _ = try EmbeddingTable(contentsOf: path, verification: .full) }
            try structure.measure { _ = try EmbeddingTable(contentsOf: path, verification: .structure) }
        }
        unlink(path)
        let megabytes = Double(rows * dimensions * 4) / 1e6
        print("\nmodel file, \(rows) × \(dimensions) (\(fixed(megabytes, 1)) MB): save \(milliseconds(save.median)) ms; "
            + "open by mmap with every checksum \(milliseconds(full.median)) ms (\(fixed(megabytes / 1000 / full.median, 1)) GB/s), "
            + "structure only \(milliseconds(structure.median)) ms")
    }

    func single(shape: Shape, index: FlatIndex, threads: Int) throws -> [String] {
        let queries = (0 ..< singleQueries).map { EmbeddingTable.gaussian(rows: 1, dimensions: shape.dimensions, seed: UInt64(100 + $0)).row(0) }
        var scores = [Float](repeating: 0, count: shape.items)
        var bare = Timings()
        OpenBLAS.withThreads(threads) {
            OpenBLAS.multiply(index.items, vector: queries[0], into: &scores)
            for query in queries { bare.measure { OpenBLAS.multiply(index.items, vector: query, into: &scores) } }
        }
        row(shape, threads, "bare sgemv", bare, perRun: 1, ratio: nil)
        var verdicts: [String] = []
        let backends: [(String, ScoringBackend)] = [("top-K OpenBLAS", .blas)] + (noSIMD ? [] : [("top-K SIMD \(SIMDLevel.best)", .simd)])
        for (name, backend) in backends {
            var fused = Timings()
            _ = try index.search(queries[0], k: k, backend: backend, threads: threads)
            for query in queries { try fused.measure { _ = try index.search(query, k: k, backend: backend, threads: threads) } }
            let ratio = fused.median / bare.median
            row(shape, threads, name, fused, perRun: 1, ratio: ratio)
            verdicts.append("  \(shape) T=\(threads) \(name): p50 \(fixed(ratio, 3))× bare sgemv (target ≤ 1.3): \(ratio <= 1.3 ? "met" : "MISSED")")
        }
        return verdicts
    }

    /// Resident memory of this process in bytes (/proc/self/statm).
    func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    /// One query against `items` × `dimensions`, top-k: p50/p99 of the float32 SIMD search and of
    /// the int8 and bf16 compressed searches against the bare sgemv, each checked against the
    /// float32 result on every query; then resident memory per million items of each table kind.
    func compressedFigures(items count: Int, dimensions: Int) throws -> [String] {
        let before = residentBytes()
        let items = EmbeddingTable.gaussian(rows: count, dimensions: dimensions, seed: 1)
        let floatBytes = residentBytes() - before
        let float32 = try FlatIndex(items: items, metric: .innerProduct)
        var kinds: [(CompressionKind, FlatIndex, Int)] = []
        for kind in CompressionKind.allCases {
            let start = residentBytes()
            let index = float32.compressing(kind)
            kinds.append((kind, index, residentBytes() - start))
        }
        let queries = (0 ..< singleQueries).map { EmbeddingTable.gaussian(rows: 1, dimensions: dimensions, seed: UInt64(100 + $0)).row(0) }
        let shape = Shape(argument: "1x\(count)x\(dimensions)")!
        print("\ncompressed tables, one query, top-\(k), T=1, \(queries.count) queries; ratio = p50 / bare sgemv p50 (p99 ratio in brackets)")
        var scores = [Float](repeating: 0, count: count)
        var bare = Timings()
        OpenBLAS.withThreads(1) {
            OpenBLAS.multiply(items, vector: queries[0], into: &scores)
            for query in queries { bare.measure { OpenBLAS.multiply(items, vector: query, into: &scores) } }
        }
        row(shape, 1, "bare sgemv", bare, perRun: 1, ratio: nil)
        var expected: [[ScoredItem]] = []
        var fused = Timings()
        for query in queries {
            var result: [ScoredItem] = []
            try fused.measure { result = try float32.search(query, k: k, backend: .simd, threads: 1) }
            expected.append(result)
        }
        row(shape, 1, "top-K float32 SIMD", fused, perRun: 1, ratio: fused.median / bare.median)
        var verdicts: [String] = []
        for (kind, index, _) in kinds {
            var timings = Timings()
            var identical = true
            _ = try index.search(queries[0], k: k, backend: .compressed(.best), threads: 1)
            for (q, query) in queries.enumerated() {
                var result: [ScoredItem] = []
                try timings.measure { result = try index.search(query, k: k, backend: .compressed(.best), threads: 1) }
                identical = identical && result.map(\.id) == expected[q].map(\.id) && result.map(\.score.bitPattern) == expected[q].map(\.score.bitPattern)
            }
            let ratio = timings.median / bare.median, tail = timings.percentile(99) / bare.percentile(99)
            row(shape, 1, "top-K \(kind)", timings, perRun: 1, ratio: ratio)
            let target = kind == .int8 ? 0.40 : 0.60
            verdicts.append("  \(shape) T=1 \(kind): p50 \(fixed(ratio, 3))× (p99 \(fixed(tail, 3))×) bare sgemv (target ≤ \(target)): "
                + "\(ratio <= target ? "met" : "MISSED"); identical to float32 exact on all \(queries.count) queries: \(identical ? "yes" : "NO")")
        }
        let perMillion = { (bytes: Int) in fixed(Double(bytes) / Double(count) * 1e6 / 1_048_576, 1) }
        print("resident memory per million items × \(dimensions) dims: float32 \(perMillion(floatBytes)) MiB"
            + kinds.map { ", \($0.0) +\(perMillion($0.2)) MiB (codes and bound terms, beside float32)" }.joined())
        return verdicts
    }

    /// One query against a small cache-resident catalog with 2 threads, against the bare sgemv.
    func smallSingleQuery(items count: Int, dimensions: Int) throws -> [String] {
        let items = EmbeddingTable.gaussian(rows: count, dimensions: dimensions, seed: 1)
        let index = try FlatIndex(items: items, metric: .innerProduct)
        let queries = (0 ..< max(singleQueries, 500)).map { EmbeddingTable.gaussian(rows: 1, dimensions: dimensions, seed: UInt64(100 + $0)).row(0) }
        let shape = Shape(argument: "1x\(count)x\(dimensions)")!
        var scores = [Float](repeating: 0, count: count)
        var bare = Timings()
        OpenBLAS.withThreads(1) {
            OpenBLAS.multiply(items, vector: queries[0], into: &scores)
            for query in queries { bare.measure { OpenBLAS.multiply(items, vector: query, into: &scores) } }
        }
        print("")
        row(shape, 1, "bare sgemv", bare, perRun: 1, ratio: nil)
        var verdicts: [String] = []
        for threads in [1, 2] {
            var timings = Timings()
            _ = try index.search(queries[0], k: k, threads: threads)
            for query in queries { try timings.measure { _ = try index.search(query, k: k, threads: threads) } }
            let ratio = timings.median / bare.median
            row(shape, threads, "top-K automatic", timings, perRun: 1, ratio: ratio)
            if threads == 2 {
                verdicts.append("  \(shape) T=2 automatic: p50 \(fixed(ratio, 3))× bare sgemv (target ≤ 1.0): \(ratio <= 1.0 ? "met" : "MISSED")")
            }
        }
        return verdicts
    }

    /// Median time of `body` over at least 5 runs, more (up to 200) while under a quarter second.
    func quickMedian(_ body: () throws -> Void) rethrows -> Double {
        try body()  // warm-up
        var timings = Timings()
        var total = 0.0
        while timings.samples.count < 5 || (total < 0.25 && timings.samples.count < 200) {
            try timings.measure(body)
            total += timings.samples.last!
        }
        return timings.median
    }

    /// The compressed int8 path against the float32 path `.automatic` takes without a compressed
    /// table, at every query count × catalog size: the ratio table behind
    /// ``FlatIndex/compressedQueryLimits``. Each cell
    /// also checks the two results are identical.
    func compressedSweep(dimensions: Int) throws {
        print("compressed int8 vs float32 (.automatic without a compressed table), top-\(k), inner product, \(dimensions) dims, "
            + "T=\(sweepThreads), Gaussian data; cell = compressed p50 / float32 p50 (< 1: compressed wins); * = results differ")
        print(([pad("items \\ queries", 16)] + sweepQueries.map { pad("\($0)", 8) }).joined(separator: " "))
        for count in sweepItems {
            let items = EmbeddingTable.gaussian(rows: count, dimensions: dimensions, seed: 1)
            let float32 = try FlatIndex(items: items, metric: .innerProduct)
            let int8 = float32.compressing(.int8)
            var cells: [String] = []
            for queryCount in sweepQueries {
                let queries = EmbeddingTable.gaussian(rows: queryCount, dimensions: dimensions, seed: UInt64(7 + queryCount))
                var want: TopKResults?, got: TopKResults?
                let plain = try quickMedian { want = try float32.search(queries, k: k, backend: .automatic, threads: sweepThreads) }
                let compressed = try quickMedian { got = try int8.search(queries, k: k, backend: .compressed(.best), threads: sweepThreads) }
                // The float32 reference at the compressed path's arithmetic (.simd), for the identity check.
                let exact = try float32.search(queries, k: k, backend: .simd, threads: sweepThreads)
                let same = (0 ..< queryCount).allSatisfy { q in
                    got![q].map(\.id) == exact[q].map(\.id) && got![q].map(\.score.bitPattern) == exact[q].map(\.score.bitPattern)
                }
                _ = want
                cells.append(pad(fixed(compressed / plain, 2) + (same ? " " : "*"), 8))
            }
            print(([pad("\(count)", 16)] + cells).joined(separator: " "))
        }
        print("thresholds in use (FlatIndex.compressedQueryLimits): "
            + FlatIndex.compressedQueryLimits.map { "≤ \($0.maximumQueries) queries from \($0.minimumItems) items" }.joined(separator: ", "))
    }
}
