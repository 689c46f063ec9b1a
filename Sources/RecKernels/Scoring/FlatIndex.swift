import Synchronization

/// A scoped budget of worker threads for kernel calls that use their default thread count.
///
/// A server running many requests at once wants each on one thread (parallelism across
/// requests); a batch job wants every core on each call. Bind the budget around the work:
/// `ScoringThreads.$limit.withValue(1) { … }`. It applies to the current task, or to the current
/// thread outside any task.
public enum ScoringThreads {
    @TaskLocal public static var limit: Int? = nil
}

/// How query-item similarity is measured.
public enum SimilarityMetric: String, Sendable, CaseIterable, Codable {
    /// `q · x`; higher is better.
    case innerProduct
    /// `q · x / (‖q‖ ‖x‖)`; higher is better. A zero catalog vector scores 0 against any query;
    /// a zero query is an error.
    case cosine
    /// `‖q − x‖²`; lower is better, and results come nearest first.
    case squaredEuclidean
}

/// Which code computes the query × item products.
public enum ScoringBackend: Sendable, Equatable, CustomStringConvertible {
    /// OpenBLAS: sgemm for a block of queries, sgemv for one.
    case blas
    /// The C SIMD kernels at the given instruction set; no BLAS call.
    case simd(SIMDLevel)
    /// SIMD for one query (memory-bound: the SIMD dot kernel outruns sgemv) and for problems
    /// below ``FlatIndex/blasMinimumMultiplyAdds``, where a BLAS call's fixed cost dominates;
    /// BLAS otherwise.
    case automatic
    /// The index's compressed table (``FlatIndex/compressing(_:)``) scanned with the SIMD kernels
    /// at the given level, its candidates re-scored from float32: the same results as
    /// ``simd(_:)`` at that level, bit for bit. Without a compressed table, ``simd(_:)``.
    case compressed(SIMDLevel)

    /// The SIMD kernels at the best level this machine supports.
    public static var simd: ScoringBackend { .simd(.best) }

    public var description: String {
        switch self {
        case .blas: "OpenBLAS"
        case let .simd(level): "SIMD (\(level))"
        case .automatic: "automatic"
        case let .compressed(level): "compressed (\(level))"
        }
    }
}

/// Exact (brute-force) top-K search over a table of item vectors, like faiss's IndexFlat: every
/// item is scored, so results are exact, and ties are broken by the lower item id.
///
/// Scores are computed a block at a time (``queryBlock`` queries × ``itemBlock`` items) into a
/// cache-resident tile, and each tile is folded straight into per-query top-K heaps: the full
/// queries × items score matrix is never materialized. Filters (per-query exclusions, global
/// allow/deny sets) are applied inside the fold, so a result has K items whenever K eligible
/// items exist.
///
/// Work is spread over `threads` workers (by query ranges for batches, by item ranges for a few
/// queries), with OpenBLAS single-threaded inside each worker.
///
/// An index is immutable and `Sendable`: any number of threads may search it at once.
public struct FlatIndex: Sendable {
    /// The catalog.
    public let items: EmbeddingTable
    /// The similarity the index ranks by.
    public let metric: SimilarityMetric
    /// Per-item terms of the metric's key: 1/‖x‖ for cosine (0 for a zero vector), −‖x‖²/2 for
    /// squared Euclidean, none for inner product. Maximizing `q·x · scale + offset` ranks items.
    let itemTerms: [Float]
    /// The largest item norm ‖x‖, in double precision (it may exceed the float range): with a
    /// query's norm it bounds every inner product (Cauchy–Schwarz), so a search can refuse
    /// queries whose scores could overflow instead of silently losing them.
    private let maximumItemNorm: Double
    /// The compressed copy of ``items`` and this metric's bound terms, when one is attached
    /// (``compressing(_:)``, ``attaching(_:)``).
    var compressedScan: CompressedScan? = nil
    /// Counts searches that scanned the compressed table; shared by the copies of this index.
    let statistics = SearchStatistics()

    /// Items scored per tile: the tile of `queryBlock × itemBlock` scores stays in L2.
    public static let itemBlock = 1024
    /// Queries scored per tile.
    public static let queryBlock = 128
    /// Below this many multiply-adds (queries × items × dimensions) ``ScoringBackend/automatic``
    /// uses the SIMD kernels, whose per-call cost is lower than a BLAS call's.
    public static let blasMinimumMultiplyAdds = 1 << 22
    /// Below this many multiply-adds a search runs on the calling thread alone: waking a second
    /// worker costs more than it saves.
    public static let parallelMinimumMultiplyAdds = 1 << 20
    /// Batches of at least this many queries per worker are split by queries; smaller ones by
    /// item ranges, whose per-worker heaps are merged at the end.
    public static let minimumQueriesPerWorker = 16

    /// The default for every `threads` parameter: the ``ScoringThreads/limit`` bound for the
    /// current task or thread, or else the number of cores this process may use.
    public static var defaultThreads: Int { ScoringThreads.limit ?? SystemCalls.onlineProcessors }

    /// Builds the index: checks that every item is finite and computes the metric's per-item
    /// terms.
    ///
    /// - Throws: ``ScoringError/emptyCatalog``, ``ScoringError/nonFiniteItem(item:dimension:)``.
    /// - Complexity: O(items × dimensions).
    public init(items: EmbeddingTable, metric: SimilarityMetric = .innerProduct) throws {
        guard items.rows > 0 else { throw ScoringError.emptyCatalog }
        if let (row, column) = items.firstNonFinite() { throw ScoringError.nonFiniteItem(item: row, dimension: column) }
        self.items = items
        self.metric = metric
        let squared = Kernels.squaredRowNorms(items)
        let norms = Self.norms(items, squared: squared)
        maximumItemNorm = norms.max() ?? 0
        switch metric {
        case .innerProduct:
            itemTerms = []
        case .cosine:
            // Rows whose float squared norm overflows take the double-precision norm.
            itemTerms = zip(squared, norms).map { $0.isFinite ? ($0 > 0 ? 1 / $0.squareRoot() : 0) : Float(1 / $1) }
        case .squaredEuclidean:
            // Overflowing rows give -inf here; a search refuses every query against them.
            itemTerms = squared.map { -0.5 * $0 }
        }
    }

    /// The largest score magnitude a search accepts: half the float range, leaving room for
    /// rounding in the accumulated products.
    static let scoreLimit = Double(Float.greatestFiniteMagnitude) / 2

    /// Each row's Euclidean norm in double precision: the float kernel's squared norm where it is
    /// finite, a double-precision sum for rows whose squares overflow a float.
    static func norms(_ table: EmbeddingTable, squared: [Float]? = nil) -> [Double] {
        let squared = squared ?? Kernels.squaredRowNorms(table)
        let d = table.dimensions
        return table.withUnsafeBufferPointer { values in
            squared.enumerated().map { row, value in
                if value.isFinite { return Double(value).squareRoot() }
                var sum = 0.0
                for j in 0 ..< d { sum += Double(values[row * d + j]) * Double(values[row * d + j]) }
                return sum.squareRoot()
            }
        }
    }

    /// The entries reserved per query and the bytes a search of `queryCount` queries needs for
    /// them: k is bounded by the catalog, so any k ≥ 1 is accepted.
    ///
    /// - Throws: ``ScoringError/resultTooLarge(queries:k:bytes:available:)`` when the result
    ///   buffers would not fit this machine's memory.
    func resultSize(queryCount: Int, k: Int, heapSets: Int = 1) throws -> Int {
        let k = min(k, items.rows)
        // Heaps (score + id per entry, per heap set) and the returned arrays (the same again).
        let (entries, o1) = queryCount.multipliedReportingOverflow(by: k)
        let (bytes, o2) = entries.multipliedReportingOverflow(by: 8 * (heapSets + 1))
        let available = SystemCalls.physicalMemory
        if o1 || o2 || bytes > available {
            throw ScoringError.resultTooLarge(queries: queryCount, k: k, bytes: o1 || o2 ? Int.max : bytes, available: available)
        }
        return k
    }

    /// The best `k` items for each row of `queries`.
    ///
    /// - Parameters:
    ///   - excluding: per-query items that must not be returned (one list per query).
    ///   - filter: catalog-wide allow and deny sets.
    ///   - backend: what computes the products; every backend returns the same ids and scores
    ///     within float rounding.
    ///   - threads: workers to use (at most).
    /// k above the catalog size is treated as the catalog size (so `Int.max` means "all items").
    ///
    /// - Throws: ``ScoringError`` for k < 1, mismatched dimensions, NaN or infinite queries,
    ///   zero queries under cosine, exclusions or filters that do not fit, a query whose scores
    ///   could overflow a float (``ScoringError/scoreOverflow(query:bound:)``), results that
    ///   would not fit memory (``ScoringError/resultTooLarge(queries:k:bytes:available:)``).
    /// - Complexity: O(queries × items × dimensions) time; O(queries × min(k, items) + threads × tile) memory.
    public func search(_ queries: EmbeddingTable, k: Int, excluding: ExcludedItems? = nil, filter: ItemFilter? = nil,
                       backend: ScoringBackend = .automatic, threads: Int = FlatIndex.defaultThreads) throws -> TopKResults {
        guard k >= 1 else { throw ScoringError.invalidK(k) }
        guard threads >= 1 else { throw ScoringError.invalidThreadCount(threads) }
        guard queries.dimensions == items.dimensions else {
            throw ScoringError.dimensionMismatch(expected: items.dimensions, actual: queries.dimensions)
        }
        if let (row, column) = queries.firstNonFinite() { throw ScoringError.nonFiniteQuery(query: row, dimension: column) }
        try excluding?.check(queryCount: queries.rows, itemCount: items.rows)
        let eligibility = try filter?.eligibility(itemCount: items.rows)
        let squaredQueryNorms = metric == .innerProduct ? [] : Kernels.squaredRowNorms(queries)
        if metric == .cosine, let zero = squaredQueryNorms.firstIndex(of: 0) { throw ScoringError.zeroQuery(query: zero) }
        // Finite vectors can still give infinite products (3.4e38 × 3.4e38), which the heaps
        // would drop: refuse such a query rather than return fewer results than asked.
        for (query, norm) in Self.norms(queries).enumerated() {
            let bound = norm * maximumItemNorm
            let squaredBound = metric == .squaredEuclidean ? max(norm * norm, maximumItemNorm * maximumItemNorm) : 0
            if bound > Self.scoreLimit || squaredBound > Self.scoreLimit {
                throw ScoringError.scoreOverflow(query: query, bound: max(bound, squaredBound))
            }
        }
        let k = min(k, items.rows)
        let plan = SearchPlan(queryCount: queries.rows, itemCount: items.rows, dimensions: items.dimensions,
                              k: k, backend: backend, threads: threads)
        _ = try resultSize(queryCount: queries.rows, k: k, heapSets: plan.split == .byQueries ? 1 : plan.workers)
        if let scan = compressedScan, let level = compressedLevel(backend, queryCount: queries.rows) {
            return searchCompressed(scan, queries: queries, k: k, excluding: excluding, eligibility: eligibility, level: level,
                                    threads: threads, squaredQueryNorms: squaredQueryNorms)
        }
        _ = OpenBLAS.singleThreaded
        return queries.withUnsafeBufferPointer { queryValues in
            items.withUnsafeBufferPointer { itemValues in
                itemTerms.withUnsafeBufferPointer { terms in
                    (eligibility ?? []).withUnsafeBufferPointer { eligible in
                        (excluding?.ids ?? []).withUnsafeBufferPointer { excludedIDs in
                            let context = SearchContext(
                                queries: queryValues.baseAddress!, items: itemValues.baseAddress!, dimensions: items.dimensions,
                                scale: metric == .cosine ? terms.baseAddress : nil,
                                offset: metric == .squaredEuclidean ? terms.baseAddress : nil,
                                eligible: eligibility == nil ? nil : eligible.baseAddress,
                                exclusionOffsets: excluding?.offsets, excludedIDs: excludedIDs.baseAddress, plan: plan)
                            return context.run(finalize: { heap, query in
                                finalScore(key: heap, squaredQueryNorm: squaredQueryNorms.isEmpty ? 0 : squaredQueryNorms[query])
                            })
                        }
                    }
                }
            }
        }
    }

    /// The best `k` items for one query.
    ///
    /// - Parameter excluding: items that must not be returned, in any order.
    /// - Throws: as ``search(_:k:excluding:filter:backend:threads:)``.
    public func search(_ query: [Float], k: Int, excluding: [Int] = [], filter: ItemFilter? = nil,
                       backend: ScoringBackend = .automatic, threads: Int = FlatIndex.defaultThreads) throws -> [ScoredItem] {
        guard query.count == items.dimensions else {
            throw ScoringError.dimensionMismatch(expected: items.dimensions, actual: query.count)
        }
        let table: EmbeddingTable
        do { table = try EmbeddingTable(rows: 1, dimensions: query.count, values: query) } catch let MatrixError.nonFinite(_, column) {
            throw ScoringError.nonFiniteQuery(query: 0, dimension: column)
        }
        let exclusions = excluding.isEmpty ? nil : try ExcludedItems([excluding])
        return try search(table, k: k, excluding: exclusions, filter: filter, backend: backend, threads: threads)[0]
    }

    /// Converts a kept key back to the metric's score.
    func finalScore(key: Float, squaredQueryNorm: Float) -> Float {
        switch metric {
        case .innerProduct: key
        case .cosine: key / squaredQueryNorm.squareRoot()
        case .squaredEuclidean: max(0, squaredQueryNorm - 2 * key)
        }
    }
}

/// What a ``FlatIndex`` and its copies count about their searches.
final class SearchStatistics: Sendable {
    let compressedSearches = Atomic<Int>(0)
}

/// How one search splits its work.
struct SearchPlan {
    enum Split { case byQueries, byItems }
    let queryCount: Int, itemCount: Int, k: Int
    let level: SIMDLevel?  // nil: BLAS
    let workers: Int
    let split: Split

    init(queryCount: Int, itemCount: Int, dimensions: Int, k: Int, backend: ScoringBackend, threads: Int) {
        self.queryCount = queryCount
        self.itemCount = itemCount
        self.k = k
        let work = queryCount.multipliedReportingOverflow(by: itemCount).partialValue.multipliedReportingOverflow(by: dimensions)
        let multiplyAdds = work.overflow ? Int.max : work.partialValue
        switch backend {
        case .blas: level = nil
        case let .simd(requested), let .compressed(requested): level = min(requested, SIMDLevel.best)
        case .automatic:
            // One query is memory-bound, and the SIMD dot kernel streams the table faster than
            // sgemv (measured 0.75× sgemv's time at 1M × 64); a tiny batch does not repay a BLAS call.
            level = queryCount == 1 || multiplyAdds < FlatIndex.blasMinimumMultiplyAdds ? SIMDLevel.best : nil
        }
        let useful = multiplyAdds < FlatIndex.parallelMinimumMultiplyAdds ? 1 : threads
        if queryCount >= useful * FlatIndex.minimumQueriesPerWorker {
            split = .byQueries
            workers = max(1, min(useful, queryCount))
        } else {
            split = .byItems
            let itemBlocks = (itemCount + FlatIndex.itemBlock - 1) / FlatIndex.itemBlock
            workers = max(1, min(useful, itemBlocks))
        }
    }

    /// Worker `w`'s share of `0 ..< total` in whole `granule`s.
    func share(_ w: Int, of total: Int, granule: Int) -> Range<Int> {
        let granules = (total + granule - 1) / granule
        let start = granules * w / workers * granule, end = granules * (w + 1) / workers * granule
        return min(start, total) ..< min(end, total)
    }
}

/// The raw pointers one search reads, valid for the duration of `run`.
struct SearchContext {
    let queries: UnsafePointer<Float>
    let items: UnsafePointer<Float>
    let dimensions: Int
    let scale: UnsafePointer<Float>?
    let offset: UnsafePointer<Float>?
    let eligible: UnsafePointer<UInt64>?
    let exclusionOffsets: [Int]?
    let excludedIDs: UnsafePointer<Int32>?
    let plan: SearchPlan

    /// Scores everything and returns the sorted results; `finalize` maps a key to a score.
    func run(finalize: (Float, Int) -> Float) -> TopKResults {
        let (queryCount, k) = (plan.queryCount, plan.k)
        let heapSets = plan.split == .byQueries ? 1 : plan.workers
        let heaps = TopKHeaps(count: heapSets * queryCount, k: k)
        defer { heaps.deallocate() }
        let work = { (worker: Int) in
            switch plan.split {
            case .byQueries:
                score(queries: plan.share(worker, of: queryCount, granule: 1), items: 0 ..< plan.itemCount, heaps: heaps, firstHeap: 0)
            case .byItems:
                score(queries: 0 ..< queryCount, items: plan.share(worker, of: plan.itemCount, granule: FlatIndex.itemBlock),
                      heaps: heaps, firstHeap: worker * queryCount)
            }
        }
        Parallel.forEach(plan.workers, work)
        if heapSets > 1 {
            for set in 1 ..< heapSets {
                for q in 0 ..< queryCount { heaps.merge(set * queryCount + q, into: q) }
            }
        }
        return heaps.sortedResults(queryCount: queryCount, finalScore: finalize)
    }

    /// Scores `queries × items` tile by tile into `heaps` (query q into heap firstHeap + q).
    private func score(queries: Range<Int>, items: Range<Int>, heaps: TopKHeaps, firstHeap: Int) {
        if queries.isEmpty || items.isEmpty { return }
        // Scratch sized to this worker's problem: a one-query search needs one tile row, not a
        // 512 KB tile whose fresh pages would fault in on every call.
        let queryBlock = min(FlatIndex.queryBlock, queries.count), itemBlock = min(FlatIndex.itemBlock, items.count)
        let tile = UnsafeMutableRawPointer.allocate(byteCount: queryBlock * itemBlock * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: queryBlock * itemBlock)
        let packFloats = plan.level == nil || queryBlock == 1 ? 1 : Kernels.packFloats(items: itemBlock, dimensions: dimensions)
        let pack = UnsafeMutableRawPointer.allocate(byteCount: packFloats * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: packFloats)
        defer {
            tile.deallocate()
            pack.deallocate()
        }
        let level = plan.level ?? .best
        for q0 in stride(from: queries.lowerBound, to: queries.upperBound, by: queryBlock) {
            let qb = min(queryBlock, queries.upperBound - q0)
            let queryRows = self.queries + q0 * dimensions
            for i0 in stride(from: items.lowerBound, to: items.upperBound, by: itemBlock) {
                let ib = min(itemBlock, items.upperBound - i0)
                let itemRows = self.items + i0 * dimensions
                if let level = plan.level {
                    Kernels.tileProduct(level: level, queries: queryRows, queryCount: qb, items: itemRows, itemCount: ib,
                                        dimensions: dimensions, scores: tile, pack: pack)
                } else if qb == 1 {
                    OpenBLAS.gemv(items: itemRows, itemCount: ib, dimensions: dimensions, query: queryRows, scores: tile)
                } else {
                    OpenBLAS.gemmNT(queries: queryRows, queryCount: qb, items: itemRows, itemCount: ib,
                                    dimensions: dimensions, scores: tile, scoresStride: ib)
                }
                for r in 0 ..< qb {
                    let q = q0 + r
                    var filter = FoldFilter(scale: scale.map { $0 + i0 }, offset: offset.map { $0 + i0 }, eligible: eligible)
                    if let exclusionOffsets, exclusionOffsets[q + 1] > exclusionOffsets[q] {
                        filter.excluded = UnsafeBufferPointer(start: excludedIDs! + exclusionOffsets[q],
                                                              count: exclusionOffsets[q + 1] - exclusionOffsets[q])
                    }
                    heaps.fold(into: firstHeap + q, scores: UnsafeBufferPointer(start: tile + r * ib, count: ib), firstID: i0,
                               filter: filter, level: level)
                }
            }
        }
    }
}
