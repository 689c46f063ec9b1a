import Synchronization
/// A compressed table with one metric's per-row key and error-bound terms (see `rk_cq_table`).
struct CompressedScan: Sendable {
    let table: CompressedTable
    /// key = product × multiplier[r] (+ offset[r]); empty = 1 (offset: empty = none).
    let multiplier: [Float]
    let offset: [Float]
    /// |float32 key − compressed key| ≤ ‖q‖ × radius[r] + absolute (before the kernel's slack).
    let radius: [Float]
    let absolute: Float
}

extension FlatIndex {
    // The thresholds below were measured on the development machine (2 cores of a Cooper Lake
    // Xeon, AVX-512, OpenBLAS 0.3.21), top-10, inner product, 64 dims, Gaussian data, with
    //   recommender-bench kernel --sweep-compressed [--sweep-threads 2]
    //   recommender-bench kernel --sweep-compressed --sweep-queries 16 32 48 64 128 --sweep-items 1024 2048 4096 16384 65536 1048576
    // Compressed int8 p50 / float32 `.automatic` p50 (< 1: compressed wins), T=1 | T=2:
    //   items \ queries   1           2           4           8           16          32          48    64    128 (T=1)
    //   1,024                                                             1.13        1.37        2.39  2.28  3.65
    //   2,048                                                             0.99        1.28        1.22  1.43  2.11
    //   4,096          0.63 | 0.81  0.23 | 0.21  0.29 | 0.39  0.53 | 0.69  0.92 | 1.19  1.84 | 2.78  1.26  1.84  2.07
    //   16,384         0.60 | 0.83  0.19 | 0.21  0.38 | 0.45  0.57 | 0.68  0.67 | 0.87  1.15 | 1.04  1.12  1.24  1.34
    //   65,536         0.46 | 0.72  0.13 | 0.14  0.15 | 0.15  0.29 | 0.33  0.58 | 0.42  0.63 | 0.60  0.91  0.99  0.94
    //   262,144        0.32 | 0.33  0.15 | 0.16  0.19 | 0.17  0.31 | 0.31  0.48 | 0.46  0.70 | 0.49
    //   1,048,576      0.41 | 0.36  0.15 | 0.16  0.18 | 0.20  0.30 | 0.29  0.43 | 0.58  0.69 | 0.48  0.81  0.91  1.06
    // (2 to 8 queries gain most because the float32 path's alternative there is a thin sgemm.)
    // Each tier below is where compressed wins at both thread counts; 48 and 64 queries win only
    // by 0.8–1.0× at T=1, within this shared machine's noise, so the GEMM keeps them.

    /// Where ``ScoringBackend/automatic`` scans a compressed table: for at most `maximumQueries`
    /// queries on a catalog of at least `minimumItems` items (the last tier that applies), the
    /// float32 path otherwise. Measured (see the table above this declaration): up to 8 queries
    /// win from 4,096 items (0.21–0.81× the float32 time), 16 from 16,384 (0.67–0.87×; 1.19× at
    /// 4,096 with two threads), 32 from 65,536 (0.48–0.70×; 1.04–1.15× at 16,384).
    public static let compressedQueryLimits: [(minimumItems: Int, maximumQueries: Int)] = [(4_096, 8), (16_384, 16), (65_536, 32)]

    /// Below this many items ``ScoringBackend/automatic`` never scans a compressed table, and
    /// `FactorModel` neither builds nor saves one: the first tier of ``compressedQueryLimits``.
    public static var compressedMinimumItems: Int { compressedQueryLimits[0].minimumItems }

    /// The most queries ``ScoringBackend/automatic`` sends through a compressed table of `items`
    /// rows (0 below ``compressedMinimumItems``).
    public static func compressedMaximumQueries(items: Int) -> Int {
        compressedQueryLimits.last { items >= $0.minimumItems }?.maximumQueries ?? 0
    }

    /// The attached compressed table, if any.
    public var compressedTable: CompressedTable? { compressedScan?.table }

    /// How many searches through this index — and through the copies it was made from or made
    /// into (``attaching(_:)``, ``compressing(_:)``) — scanned a compressed table: which path
    /// ``ScoringBackend/automatic`` took, observable without timing.
    ///
    /// - Complexity: O(1).
    public var compressedSearchCount: Int { statistics.compressedSearches.load(ordering: .relaxed) }

    /// This index with a compressed copy of its items of `kind` built and attached.
    ///
    /// - Complexity: O(items × dimensions).
    public func compressing(_ kind: CompressionKind) -> FlatIndex {
        try! attaching(CompressedTable(items, kind: kind))
    }

    /// This index with `table` (a compressed copy of ``items``, e.g. read from a model file)
    /// attached: ``ScoringBackend/automatic`` then scans it for one query or a few on a large
    /// catalog, and ``ScoringBackend/compressed(_:)`` always; results stay exactly those of the
    /// float32 search.
    ///
    /// - Throws: ``ScoringError/dimensionMismatch(expected:actual:)`` when the table's shape is
    ///   not the catalog's.
    /// - Complexity: O(items × dimensions) (the per-row bounds).
    public func attaching(_ table: CompressedTable) throws -> FlatIndex {
        guard table.dimensions == items.dimensions else {
            throw ScoringError.dimensionMismatch(expected: items.dimensions, actual: table.dimensions)
        }
        guard table.rows == items.rows else { throw ScoringError.dimensionMismatch(expected: items.rows, actual: table.rows) }
        var index = self
        index.compressedScan = scanTerms(table)
        return index
    }

    /// The metric's key and bound terms for `table`.
    ///
    /// Let f be the float32 product a search computes (any summation order, FMA or not) and g the
    /// float product of the query with the codes. Then |f − q·x| ≤ γ‖q‖‖x‖ + η,
    /// |q·x − q·x̂| ≤ ‖q‖‖x − x̂‖, |s·g − q·x̂| ≤ γ‖q‖‖x̂‖ + sη (γ = γ_{d+8} + 4u covers every
    /// rounding of a d-term sum and of the scale and key multiplications, η = (d+8)·2⁻¹⁴⁹ the
    /// subnormal roundings), and ‖x̂‖ ≤ ‖x‖ + ‖x − x̂‖. In key space (cosine multiplies by 1/‖x‖)
    /// radius = S·(ε + γ(‖x‖ + ‖x̂‖)) and absolute = max 2η·S·(1 + s) + 2⁻¹⁴⁰; the kernel adds
    /// 16u of the bound and of |key| for the offset addition and its own arithmetic.
    func scanTerms(_ table: CompressedTable) -> CompressedScan {
        let d = Double(items.dimensions), u = 0x1p-24
        let terms = Double(items.dimensions + 8) * u
        let gamma = terms / (1 - terms) + 4 * u
        let eta = (d + 8) * 0x1p-149
        var radius = [Float](repeating: 0, count: items.rows)
        var multiplier = [Float]()
        var absolute = 0x1p-140
        let dims = items.dimensions
        items.withUnsafeBufferPointer { values in
            for r in 0 ..< items.rows {
                var squares = 0.0
                for j in 0 ..< dims { squares += Double(values[r * dims + j]) * Double(values[r * dims + j]) }
                let norm = squares.squareRoot() * (1 + 1e-12)
                let error = Double(table.errorNorms[r])
                let keyScale = metric == .cosine ? Double(itemTerms[r]) : 1
                let rowScale = table.kind == .int8 ? Double(table.rowScales[r]) : 1
                radius[r] = CompressedTable.roundedUp(keyScale * (error + gamma * (2 * norm + error)) * (1 + 1e-12))
                absolute = max(absolute, 2 * eta * keyScale * (1 + rowScale))
            }
        }
        switch (metric, table.kind) {
        case (.cosine, .int8): multiplier = zip(table.rowScales, itemTerms).map { $0 * $1 }
        case (.cosine, .bfloat16): multiplier = itemTerms
        case (_, .int8): multiplier = table.rowScales
        case (_, .bfloat16): multiplier = []
        }
        return CompressedScan(table: table, multiplier: multiplier, offset: metric == .squaredEuclidean ? itemTerms : [],
                              radius: radius, absolute: CompressedTable.roundedUp(absolute))
    }

    /// The SIMD level a search with `backend` scans the compressed table at, or nil for the
    /// float32 path.
    func compressedLevel(_ backend: ScoringBackend, queryCount: Int) -> SIMDLevel? {
        switch backend {
        case let .compressed(level): min(level, SIMDLevel.best)
        case .automatic:
            queryCount <= Self.compressedMaximumQueries(items: items.rows) ? SIMDLevel.best : nil
        case .blas, .simd: nil
        }
    }

    /// Exact top-K through the compressed table: scan it keeping every item whose upper bound can
    /// reach the K-th best lower bound (a floor under the K-th best float32 key), then re-score
    /// those from float32 with the arithmetic ``ScoringBackend/simd(_:)`` at `level` would use for
    /// that query, so keys, ids and order are that search's, bit for bit.
    func searchCompressed(_ scan: CompressedScan, queries: EmbeddingTable, k: Int, excluding: ExcludedItems?,
                          eligibility: [UInt64]?, level: SIMDLevel, threads: Int, squaredQueryNorms: [Float],
                          rescored: ((_ query: Int, _ candidates: Int) -> Void)? = nil) -> TopKResults {
        statistics.compressedSearches.wrappingAdd(1, ordering: .relaxed)
        let m = queries.rows, n = items.rows, d = items.dimensions
        let reference = SearchPlan(queryCount: m, itemCount: n, dimensions: d, k: k, backend: .simd(level), threads: threads)
        let panels = (n + CompressedTable.panelRows - 1) / CompressedTable.panelRows
        let chunkPanels = FlatIndex.itemBlock / CompressedTable.panelRows
        let chunks = (panels + chunkPanels - 1) / chunkPanels
        let work = m.multipliedReportingOverflow(by: n).partialValue.multipliedReportingOverflow(by: d)
        let workers = work.overflow || work.partialValue >= FlatIndex.parallelMinimumMultiplyAdds ? max(1, min(threads, chunks)) : 1
        let queryNorms: [Float] = queries.withUnsafeBufferPointer { values in
            (0 ..< m).map { q in
                var squares = 0.0
                for j in 0 ..< d { squares += Double(values[q * d + j]) * Double(values[q * d + j]) }
                return CompressedTable.roundedUp(squares.squareRoot() * (1 + 1e-12))
            }
        }
        let excludedIDs = excluding?.ids ?? []
        let lower = TopKHeaps(count: workers * m, k: k)
        let exact = TopKHeaps(count: m, k: k)
        defer {
            lower.deallocate()
            exact.deallocate()
        }
        let candidates = (0 ..< workers * m).map { _ in CandidateList() }
        return (eligibility ?? []).withUnsafeBufferPointer { eligible in
            excludedIDs.withUnsafeBufferPointer { excludedIDs in
                let filters: [FoldFilter] = (0 ..< m).map { q in
                    var filter = FoldFilter(eligible: eligibility == nil ? nil : eligible.baseAddress)
                    if let offsets = excluding?.offsets, offsets[q + 1] > offsets[q] {
                        filter.excluded = UnsafeBufferPointer(rebasing: excludedIDs[offsets[q] ..< offsets[q + 1]])
                    }
                    return filter
                }
                scan.table.codes.withUnsafeBytes { codes in
                    scan.multiplier.withUnsafeBufferPointer { multiplier in
                        scan.offset.withUnsafeBufferPointer { offset in
                            scan.radius.withUnsafeBufferPointer { radius in
                                queries.withUnsafeBufferPointer { queryValues in
                                    queryNorms.withUnsafeBufferPointer { norms in
                                        let table = CompressedScanTable(
                                            kind: scan.table.kind, codes: codes.baseAddress!, dimensions: d, rows: n,
                                            multiplier: scan.multiplier.isEmpty ? nil : multiplier.baseAddress,
                                            offset: scan.offset.isEmpty ? nil : offset.baseAddress,
                                            radius: radius.baseAddress!, absolute: scan.absolute)
                                        Parallel.forEach(workers) { worker in
                                            let mine = candidates[(worker * m) ..< (worker * m + m)]
                                            let first = chunks * worker / workers, end = chunks * (worker + 1) / workers
                                            for chunk in first ..< end {
                                                let range = (chunk * chunkPanels) ..< min(panels, (chunk + 1) * chunkPanels)
                                                for list in mine { list.reserve(range.count * CompressedTable.panelRows) }
                                                lower.scanCompressed(table, panels: range, queries: queryValues.baseAddress!, queryCount: m,
                                                                     queryNorms: norms.baseAddress!, firstHeap: worker * m,
                                                                     candidates: mine, filters: filters, level: level)
                                                for (q, list) in mine.enumerated() where list.count > 4096 + 4 * k {
                                                    list.compact(below: lower.threshold(worker * m + q))
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                for worker in 1 ..< max(1, workers) {
                    for q in 0 ..< m { lower.merge(worker * m + q, into: q) }
                }
                items.withUnsafeBufferPointer { itemValues in
                    queries.withUnsafeBufferPointer { queryValues in
                        itemTerms.withUnsafeBufferPointer { terms in
                            for q in 0 ..< m {
                                let tau = lower.threshold(q)
                                var ids: [Int32] = []
                                for worker in 0 ..< workers {
                                    let list = candidates[worker * m + q]
                                    for c in 0 ..< list.count where !(list.upper[c] < tau) { ids.append(list.ids[c]) }
                                }
                                ids.sort()
                                rescored?(q, ids.count)
                                let tileArithmetic = level != .scalar && reference.tileRows(containing: q) > 1
                                ids.withUnsafeBufferPointer { ids in
                                    exact.rescore(into: q, ids: ids, items: itemValues.baseAddress!, dimensions: d,
                                                  query: queryValues.baseAddress! + q * d,
                                                  scale: metric == .cosine ? terms.baseAddress : nil,
                                                  offset: metric == .squaredEuclidean ? terms.baseAddress : nil,
                                                  level: level, tileArithmetic: tileArithmetic)
                                }
                            }
                        }
                    }
                }
                return exact.sortedResults(queryCount: m) { key, q in
                    finalScore(key: key, squaredQueryNorm: squaredQueryNorms.isEmpty ? 0 : squaredQueryNorms[q])
                }
            }
        }
    }
}

extension SearchPlan {
    /// Rows of the tile that holds query `q` when a search runs this plan: 1 means the GEMV dot
    /// scores it, more the tile kernels.
    func tileRows(containing q: Int) -> Int {
        var range = 0 ..< queryCount
        if split == .byQueries {
            for worker in 0 ..< workers where share(worker, of: queryCount, granule: 1).contains(q) {
                range = share(worker, of: queryCount, granule: 1)
            }
        }
        let block = min(FlatIndex.queryBlock, range.count)
        let start = range.lowerBound + (q - range.lowerBound) / block * block
        return min(block, range.upperBound - start)
    }
}
