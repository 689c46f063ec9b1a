@testable import RecKernels
import Dispatch
import Foundation
import Synchronization
import Testing

/// Exact top-K through compressed tables: every result must be the float32 search's at the same
/// SIMD level, bit for bit (ids, order, scores), on random and adversarial data.
@Suite("Compressed tables: exact top-K identical to float32")
struct CompressedSearchTests {
    /// Asserts that the compressed search at `level` returns exactly what `.simd(level)` does.
    func expectIdentical(_ items: EmbeddingTable, queries: EmbeddingTable, k: Int, metric: SimilarityMetric, kind: CompressionKind,
                         level: SIMDLevel, threads: Int, excluding: ExcludedItems? = nil, filter: ItemFilter? = nil,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
        let float32 = try FlatIndex(items: items, metric: metric)
        let compressed = float32.compressing(kind)
        let want = try float32.search(queries, k: k, excluding: excluding, filter: filter, backend: .simd(level), threads: threads)
        let got = try compressed.search(queries, k: k, excluding: excluding, filter: filter, backend: .compressed(level), threads: threads)
        for q in 0 ..< queries.rows {
            let (a, b) = (got[q], want[q])
            let same = a.map(\.id) == b.map(\.id) && a.map(\.score.bitPattern) == b.map(\.score.bitPattern)
            #expect(same, "\(kind) \(metric) \(level) T=\(threads) query \(q): \(a.prefix(5)) vs \(b.prefix(5))", sourceLocation: sourceLocation)
        }
    }

    @Test("random data, every metric, kind and SIMD level, single queries and small batches", arguments: 0 ..< 6)
    func random(seed: Int) throws {
        var generator = SeededGenerator(seed: UInt64(500 + seed))
        let rows = Int.random(in: 1500 ... 5000, using: &generator)   // rarely a multiple of the 16-row panel
        let dimensions = [1, 7, 33, 64, 100][seed % 5]
        let items = EmbeddingTable.gaussian(rows: rows, dimensions: dimensions, seed: UInt64(seed) &+ 10)
        let queryCount = [1, 3, 6, 1, 5, 129][seed]   // 129 at one thread: a 128-query tile and a 1-query tile
        let queries = EmbeddingTable.gaussian(rows: queryCount, dimensions: dimensions, seed: UInt64(seed) &+ 20)
        let k = seed == 2 ? rows + 3 : [1, 10, 50][seed % 3]
        for level in SIMDLevel.supported {
            for metric in SimilarityMetric.allCases {
                for kind in CompressionKind.allCases {
                    for threads in queryCount == 129 ? [1] : [1, 2] {
                        try expectIdentical(items, queries: queries, k: k, metric: metric, kind: kind, level: level, threads: threads)
                    }
                }
            }
        }
    }

    /// Near-ties closer than any quantization step, exact duplicates, rows a thousand million
    /// times larger and smaller than the rest, constant rows, zero rows, subnormal values.
    @Test("adversarial data", arguments: ["near ties", "duplicates", "norms", "constant and zero", "subnormal", "integer ties"])
    func adversarial(kindOfData: String) throws {
        var generator = SeededGenerator(seed: 77)
        let rows = 2_100, dimensions = 24
        let base = EmbeddingTable.gaussian(rows: 1, dimensions: dimensions, seed: 3).row(0)
        var values: [Float] = []
        for r in 0 ..< rows {
            switch kindOfData {
            case "near ties":
                values += base.map { $0 + Float.random(in: -1 ... 1, using: &generator) * 1e-6 * $0 }
            case "duplicates":
                values += r % 3 == 0 ? base : EmbeddingTable.gaussian(rows: 1, dimensions: dimensions, seed: UInt64(r) + 9).row(0)
            case "norms":
                let scale: Float = [1e15, 1e-15, 1, 3e-30, 2e16][r % 5]
                values += EmbeddingTable.gaussian(rows: 1, dimensions: dimensions, seed: UInt64(r) + 9).row(0).map { $0 * scale }
            case "constant and zero":
                values += r % 4 == 0 ? [Float](repeating: 0, count: dimensions)
                    : [Float](repeating: Float(r % 7) - 3, count: dimensions)
            case "subnormal":
                values += (0 ..< dimensions).map { _ in Float(bitPattern: UInt32.random(in: 1 ... 0x0070_0000, using: &generator))
                    * (Bool.random(using: &generator) ? 1 : -1) * (r % 2 == 0 ? 1 : 1e30) }
            default:
                values += (0 ..< dimensions).map { _ in Float(Int.random(in: -2 ... 2, using: &generator)) }
            }
        }
        let items = try EmbeddingTable(rows: rows, dimensions: dimensions, values: values)
        var queries = [base, base.map { -$0 }, EmbeddingTable.gaussian(rows: 1, dimensions: dimensions, seed: 5).row(0)]
        if kindOfData == "integer ties" { queries.append((0 ..< dimensions).map { Float($0 % 3) - 1 }) }
        let queryTable = try EmbeddingTable(queries)
        let exclusions = try ExcludedItems((0 ..< queries.count).map { q in q == 0 ? [] : Array(stride(from: q, to: rows, by: 11)) })
        let filter = ItemFilter(denied: try ItemBitset(capacity: rows, containing: stride(from: 5, to: rows, by: 13)))
        for level in SIMDLevel.supported {
            for metric in SimilarityMetric.allCases {
                for kind in CompressionKind.allCases {
                    for k in [1, 10, 300] {
                        try expectIdentical(items, queries: queryTable, k: k, metric: metric, kind: kind, level: level, threads: 2)
                        // Each query alone, as a single request is served.
                        for q in 0 ..< queries.count {
                            try expectIdentical(items, queries: try EmbeddingTable([queries[q]]), k: k, metric: metric, kind: kind,
                                                level: level, threads: 1)
                        }
                    }
                    try expectIdentical(items, queries: queryTable, k: 10, metric: metric, kind: kind, level: level, threads: 1,
                                        excluding: exclusions, filter: filter)
                }
            }
        }
    }

    /// The identity above would hold trivially if the compressed path fell back to float32; it
    /// must re-score only a small share of the catalog, and `.automatic` must take it.
    @Test("the scan prunes: few candidates are re-scored, and .automatic uses it")
    func prunes() throws {
        let items = EmbeddingTable.gaussian(rows: 40_000, dimensions: 64, seed: 8)
        let queries = EmbeddingTable.gaussian(rows: 3, dimensions: 64, seed: 9)
        for metric in SimilarityMetric.allCases {
            for kind in CompressionKind.allCases {
                let index = try FlatIndex(items: items, metric: metric).compressing(kind)
                for level in SIMDLevel.supported {
                    var counts = [Int](repeating: -1, count: queries.rows)
                    let norms = metric == .innerProduct ? [] : Kernels.squaredRowNorms(queries)
                    let results = index.searchCompressed(index.compressedScan!, queries: queries, k: 10, excluding: nil, eligibility: nil,
                                                         level: level, threads: 2, squaredQueryNorms: norms) { counts[$0] = $1 }
                    let reference = try index.search(queries, k: 10, backend: .simd(level), threads: 2)
                    for q in 0 ..< queries.rows {
                        #expect(counts[q] >= 10 && counts[q] < items.rows / 20, "\(kind) \(metric) \(level): \(counts[q]) re-scored")
                        #expect(results[q] == reference[q])
                    }
                }
                #expect(index.compressedLevel(.automatic, queryCount: 1) == SIMDLevel.best)
                #expect(index.compressedLevel(.automatic, queryCount: 1000) == nil)
                let before = index.compressedSearchCount
                #expect(try index.search(queries.row(0), k: 10) == (try index.search(queries.row(0), k: 10, backend: .simd)))
                #expect(index.compressedSearchCount == before + 1, "automatic did not scan the compressed table")
            }
        }
    }

    /// `.automatic`'s measured tiers (`FlatIndex.compressedQueryLimits`): up to 8 queries from
    /// 4,096 items, 16 from 16,384, 32 from 65,536; never below 4,096.
    @Test(".automatic takes the compressed table within the measured thresholds only")
    func automaticThresholds() throws {
        func index(_ rows: Int) throws -> FlatIndex {
            try FlatIndex(items: EmbeddingTable.gaussian(rows: rows, dimensions: 2, seed: 4)).compressing(.int8)
        }
        #expect(try index(4_095).compressedLevel(.automatic, queryCount: 1) == nil)
        for (rows, limit) in [(4_096, 8), (16_383, 8), (16_384, 16), (65_535, 16), (65_536, 32)] {
            let tier = try index(rows)
            #expect(tier.compressedLevel(.automatic, queryCount: 1) == SIMDLevel.best, "\(rows) items, 1 query")
            #expect(tier.compressedLevel(.automatic, queryCount: limit) == SIMDLevel.best, "\(rows) items, \(limit) queries")
            #expect(tier.compressedLevel(.automatic, queryCount: limit + 1) == nil, "\(rows) items, \(limit + 1) queries")
        }
        #expect(try index(100).compressedLevel(.compressed(.scalar), queryCount: 1000) == .scalar)
        // A search that takes the float32 path does not count as compressed.
        let small = try index(4_096)
        let queries = EmbeddingTable.gaussian(rows: 9, dimensions: 2, seed: 5)
        _ = try small.search(queries, k: 3)
        #expect(small.compressedSearchCount == 0)
        _ = try small.search(queries, k: 3, backend: .compressed(.best))
        #expect(small.compressedSearchCount == 1)
    }

    /// The stored error norm bounds the real reconstruction error, and codes decode as specified.
    @Test("codes decode within the stored error norms")
    func codes() throws {
        let table = EmbeddingTable.gaussian(rows: 37, dimensions: 19, seed: 4, scale: 3)
        for kind in CompressionKind.allCases {
            let compressed = CompressedTable(table, kind: kind)
            let large = CompressedTable(EmbeddingTable.gaussian(rows: 1600, dimensions: 64, seed: 5), kind: kind)
            #expect(large.byteCount <= 1600 * 64 * 4 * (kind == .int8 ? 5 : 9) / 16)   // ≈ ¼ (int8) or ½ (bf16) of float32
            for r in 0 ..< table.rows {
                let row = table.row(r)
                var squared = 0.0
                for j in 0 ..< table.dimensions {
                    let decoded = compressed.decoded(row: r, dimension: j)
                    let difference = Double(row[j]) - decoded
                    squared += difference * difference
                    switch kind {
                    case .int8: #expect(abs(difference) <= Double(compressed.rowScales[r]) / 2 * 1.0001)
                    case .bfloat16: #expect(abs(difference) <= Double(abs(row[j])) / 256)
                    }
                }
                #expect(squared.squareRoot() <= Double(compressed.errorNorms[r]))
                #expect(Double(compressed.errorNorms[r]) <= squared.squareRoot() * 1.001 + 1e-30)
            }
        }
        #expect(CompressedTable.bfloat16(Float.greatestFiniteMagnitude) == 0x7F7F)   // not rounded up to infinity
        #expect(CompressedTable.bfloat16(1 + 0x1p-8) == 0x3F80)                      // a tie goes to even
        #expect(CompressedTable.bfloat16(1 + 0x1p-8 + 0x1p-20) == 0x3F81)
    }

    /// Compressed sections are written beside the float32 table and read back; a file without
    /// them opens as before; the error norms are recomputed on reading, so even scales that lie
    /// cannot make the search inexact.
    @Test("model file sections round-trip, old files open, tampered scales stay exact")
    func modelFile() throws {
        let items = EmbeddingTable.gaussian(rows: 1000, dimensions: 20, seed: 31)
        let path = "/tmp/recommender-compressed-test-\(getpid()).rkm"
        defer { unlink(path) }
        var plain = ModelFileWriter()
        try plain.add(items, named: "items")
        try plain.write(to: path)
        #expect(try ModelFile(contentsOf: path).compressedTable(for: "items", kind: .int8, of: items) == nil)
        for kind in CompressionKind.allCases {
            let built = CompressedTable(items, kind: kind)
            var writer = ModelFileWriter()
            try writer.add(items, named: "items")
            try writer.add(built, for: "items")
            try writer.write(to: path)
            let file = try ModelFile(contentsOf: path)
            let read = try #require(try file.compressedTable(for: "items", kind: kind, of: try file.table("items")))
            #expect(read == built)
            #expect(throws: ModelFileError.self, "codes of another shape are refused") {
                try file.compressedTable(for: "items", kind: kind, of: EmbeddingTable.gaussian(rows: 900, dimensions: 20, seed: 1))
            }
        }
        // Scales that claim every row is a tenth of what it is: the codes decode badly, the
        // recomputed error norms say so, and the results are still float32's.
        let honest = CompressedTable(items, kind: .int8)
        let lying = try CompressedTable(kind: .int8, codes: honest.codes, rowScales: honest.rowScales.map { $0 / 10 }, of: items)
        let index = try FlatIndex(items: items, metric: .innerProduct)
        let queries = EmbeddingTable.gaussian(rows: 4, dimensions: 20, seed: 32)
        for level in SIMDLevel.supported {
            #expect(try index.attaching(lying).search(queries, k: 10, backend: .compressed(level), threads: 1)
                    == (try index.search(queries, k: 10, backend: .simd(level), threads: 1)))
        }
    }
}
