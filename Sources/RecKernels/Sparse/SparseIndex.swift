
/// Exact top-K search of sparse queries against sparse documents (TF-IDF vectors, bags of
/// items), by inner product or cosine, through an inverted index.
///
/// The index keeps the documents in CSR form and their transpose (the postings: for each
/// column, the documents holding it). A query scatters its terms' postings into a dense
/// accumulator and gathers only the documents it reached into the top-K heap (the fused
/// `TopKHeaps`), so one query costs O(postings of its terms + reached × log k), not
/// O(documents): this is what lets it serve 100,000+ documents in well under a millisecond for
/// short queries. Only documents sharing at least one column with the query are returned (a
/// document with no shared column has similarity 0 and is never a match); ties are broken by
/// the lower document id.
///
/// An index is immutable and `Sendable`; batches are split across `threads` workers by queries,
/// each with its own accumulator.
public struct SparseIndex: Sendable {
    /// The documents, one per row.
    public let documents: SparseMatrix
    /// ``SimilarityMetric/innerProduct`` or ``SimilarityMetric/cosine``.
    public let metric: SimilarityMetric
    /// The documents' transpose: row c lists the documents holding column c.
    private let postings: SparseMatrix
    /// 1/‖document‖ for cosine (0 for an empty document); empty for inner product.
    private let scale: [Float]
    /// The largest document norm, in double precision (it may exceed the float range): with a
    /// query's norm it bounds every accumulated inner product (Cauchy–Schwarz), so a search
    /// refuses queries whose scores could overflow instead of silently losing them.
    private let maximumDocumentNorm: Double

    /// Builds the inverted index.
    ///
    /// - Throws: ``ScoringError/emptyCatalog`` for a matrix without rows,
    ///   ``SparseIndexError/unsupportedMetric(_:)`` for squared Euclidean distance (whose best
    ///   matches need not share a column with the query).
    /// - Complexity: O(rows + columns + entries).
    public init(documents: SparseMatrix, metric: SimilarityMetric = .cosine) throws {
        guard documents.rows > 0 else { throw ScoringError.emptyCatalog }
        guard metric != .squaredEuclidean else { throw SparseIndexError.unsupportedMetric(metric) }
        self.documents = documents
        self.metric = metric
        self.postings = documents.transposed()
        let norms = documents.rowNorms()
        let exactNorms = Self.norms(documents, float: norms)
        // A row whose float squared norm over- or underflows takes the double-precision norm,
        // rather than 1/∞ = 0 (or 1/0) silently scoring the document 0 against every query.
        self.scale = metric == .cosine ? zip(norms, exactNorms).map { float, exact in
            if float.isFinite && float > 0 { return 1 / float }
            return exact > 0 ? min(Float(1 / exact), .greatestFiniteMagnitude) : 0
        } : []
        self.maximumDocumentNorm = exactNorms.max() ?? 0
    }

    /// Each row's Euclidean norm in double precision: the float norm where it is finite and not
    /// zero, a double-precision sum for rows whose squares overflow or underflow a float.
    static func norms(_ matrix: SparseMatrix, float: [Float]) -> [Double] {
        float.enumerated().map { row, value in
            if value.isFinite && value > 0 { return Double(value) }
            var sum = 0.0
            for position in matrix.rowOffsets[row] ..< matrix.rowOffsets[row + 1] {
                sum += Double(matrix.values[position]) * Double(matrix.values[position])
            }
            return sum.squareRoot()
        }
    }

    /// The best `k` documents for each row of `queries` (a matrix with the documents' columns).
    ///
    /// - Parameters:
    ///   - excluding: per-query documents that must not be returned.
    ///   - filter: catalog-wide allow and deny sets.
    ///   - threads: workers to use (at most).
    /// - Throws: ``ScoringError`` for k < 1, threads < 1, a column count other than the
    ///   documents', a zero query under cosine, exclusions or filters that do not fit.
    /// - Complexity: O(Σ postings of the query terms + reached documents × log k) per query.
    public func search(_ queries: SparseMatrix, k: Int, excluding: ExcludedItems? = nil, filter: ItemFilter? = nil,
                       threads: Int = FlatIndex.defaultThreads) throws -> TopKResults {
        guard k >= 1 else { throw ScoringError.invalidK(k) }
        guard threads >= 1 else { throw ScoringError.invalidThreadCount(threads) }
        guard queries.columns == documents.columns else {
            throw ScoringError.dimensionMismatch(expected: documents.columns, actual: queries.columns)
        }
        try excluding?.check(queryCount: queries.rows, itemCount: documents.rows)
        let eligibility = try filter?.eligibility(itemCount: documents.rows)
        let floatQueryNorms = queries.rowNorms()
        let exactQueryNorms = Self.norms(queries, float: floatQueryNorms)
        if metric == .cosine, let zero = exactQueryNorms.firstIndex(of: 0) { throw ScoringError.zeroQuery(query: zero) }
        // Finite weights can still accumulate past the float range (1e30 × 1e30), which the
        // heaps would drop: refuse such a query rather than return fewer results than asked.
        for (query, norm) in exactQueryNorms.enumerated() where norm * maximumDocumentNorm > FlatIndex.scoreLimit {
            throw ScoringError.scoreOverflow(query: query, bound: norm * maximumDocumentNorm)
        }
        // The cosine divisor: the float norm, or the double one where the float norm over- or
        // underflowed (a query of tiny weights is not a zero query).
        let queryNorms = zip(floatQueryNorms, exactQueryNorms).map { $0.isFinite && $0 > 0 ? Double($0) : $1 }
        let k = min(k, documents.rows)
        let queryCount = queries.rows
        var ids = [Int32](repeating: -1, count: queryCount * k)
        var scores = [Float](repeating: .nan, count: queryCount * k)
        var counts = [Int32](repeating: 0, count: queryCount)
        // Tiny batches stay on the calling thread. Otherwise queries go out in many small ranges,
        // handed to workers as they free up: query costs are skewed (a popular item's postings
        // are long), and two contiguous halves left one worker with most of the work.
        let pieces = queryCount >= 4 * threads ? min(queryCount, threads * 16) : 1
        ids.withUnsafeMutableBufferPointer { idsOut in
            scores.withUnsafeMutableBufferPointer { scoresOut in
                counts.withUnsafeMutableBufferPointer { countsOut in
                    let output = UncheckedSendable((idsOut, scoresOut, countsOut))
                    Parallel.forEach(pieces, threads: threads) { piece in
                        let range = queryCount * piece / pieces ..< queryCount * (piece + 1) / pieces
                        scoreQueries(queries, range: range, k: k, excluding: excluding, eligibility: eligibility,
                                     queryNorms: queryNorms, ids: output.value.0, scores: output.value.1,
                                     counts: output.value.2)
                    }
                }
            }
        }
        return TopKResults(queryCount: queryCount, k: k, ids: ids, scores: scores, counts: counts)
    }

    /// The best `k` documents for one sparse query given as (column, weight) pairs in any order
    /// (repeated columns add up).
    ///
    /// - Throws: as ``search(_:k:excluding:filter:threads:)``, and
    ///   ``MatrixError/indexOutOfRange(row:column:rows:columns:)`` for a column outside the documents'.
    public func search(columns: [Int], weights: [Float], k: Int, excluding: [Int] = [],
                       filter: ItemFilter? = nil) throws -> [ScoredItem] {
        guard columns.count == weights.count else {
            throw ScoringError.dimensionMismatch(expected: columns.count, actual: weights.count)
        }
        let query = try SparseMatrix(rows: 1, columns: documents.columns,
                                     triples: zip(columns, weights).map { (row: 0, column: $0, value: $1) })
        let exclusions = excluding.isEmpty ? nil : try ExcludedItems([excluding])
        return try search(query, k: k, excluding: exclusions, filter: filter, threads: 1)[0]
    }

    /// "More like this": the best `k` other documents for each of `rows`, using each document's
    /// own vector as the query and never returning the document itself.
    ///
    /// - Throws: ``ScoringError/itemOutOfRange(item:itemCount:)`` for a row outside the index,
    ///   ``ScoringError/zeroQuery(query:)`` for an empty document under cosine, and as ``search(_:k:excluding:filter:threads:)``.
    public func similar(toDocuments rows: [Int], k: Int, filter: ItemFilter? = nil,
                        threads: Int = FlatIndex.defaultThreads) throws -> TopKResults {
        if let bad = rows.first(where: { $0 < 0 || $0 >= documents.rows }) {
            throw ScoringError.itemOutOfRange(item: bad, itemCount: documents.rows)
        }
        let queries = documents.gathering(rows: rows)
        return try search(queries, k: k, excluding: ExcludedItems(rows.map { [$0] }), filter: filter, threads: threads)
    }

    /// "More like this" for one document. - Throws: as ``similar(toDocuments:k:filter:threads:)``.
    public func similar(toDocument row: Int, k: Int, filter: ItemFilter? = nil) throws -> [ScoredItem] {
        try similar(toDocuments: [row], k: k, filter: filter, threads: 1)[0]
    }

    /// Scores `range` of the queries into the flat result arrays.
    private func scoreQueries(_ queries: SparseMatrix, range: Range<Int>, k: Int, excluding: ExcludedItems?,
                              eligibility: [UInt64]?, queryNorms: [Double], ids: UnsafeMutableBufferPointer<Int32>,
                              scores: UnsafeMutableBufferPointer<Float>, counts: UnsafeMutableBufferPointer<Int32>) {
        if range.isEmpty { return }
        let documentCount = documents.rows
        let accumulator = UnsafeMutablePointer<Float>.allocate(capacity: documentCount)
        let touched = UnsafeMutablePointer<UInt8>.allocate(capacity: documentCount)
        let touchedIDs = UnsafeMutablePointer<Int32>.allocate(capacity: documentCount)
        let heaps = TopKHeaps(count: 1, k: k)
        accumulator.initialize(repeating: 0, count: documentCount)
        touched.initialize(repeating: 0, count: documentCount)
        defer {
            for pointer in [UnsafeMutableRawPointer(accumulator), UnsafeMutableRawPointer(touched),
                            UnsafeMutableRawPointer(touchedIDs)] { pointer.deallocate() }
            heaps.deallocate()
        }
        postings.rowOffsets.withUnsafeBufferPointer { postingOffsets in
            postings.columnIndices.withUnsafeBufferPointer { postingDocuments in
                postings.values.withUnsafeBufferPointer { postingValues in
                    queries.columnIndices.withUnsafeBufferPointer { queryTerms in
                        queries.values.withUnsafeBufferPointer { queryWeights in
                            scale.withUnsafeBufferPointer { scale in
                                (eligibility ?? []).withUnsafeBufferPointer { eligible in
                                    (excluding?.ids ?? []).withUnsafeBufferPointer { excludedIDs in
                                        for q in range {
                                            heaps.reset(0)
                                            var filter = FoldFilter(eligible: eligibility == nil ? nil : eligible.baseAddress)
                                            if let excluding, excluding.offsets[q + 1] > excluding.offsets[q] {
                                                filter.excluded = UnsafeBufferPointer(rebasing: excludedIDs[excluding.offsets[q] ..< excluding.offsets[q + 1]])
                                            }
                                            let terms = queries.rowOffsets[q] ..< queries.rowOffsets[q + 1]
                                            heaps.foldSparse(into: 0, filter: filter, terms: UnsafeBufferPointer(rebasing: queryTerms[terms]),
                                                             weights: UnsafeBufferPointer(rebasing: queryWeights[terms]),
                                                             postingOffsets: postingOffsets.baseAddress!, postingDocuments: postingDocuments.baseAddress,
                                                             postingValues: postingValues.baseAddress, scale: metric == .cosine ? scale.baseAddress : nil,
                                                             accumulator: accumulator, touched: touched, touchedIDs: touchedIDs)
                                            heaps.sort(0)
                                            counts[q] = Int32(heaps.entryCount(0))
                                            let divisor = metric == .cosine ? queryNorms[q] : 1
                                            for e in 0 ..< heaps.entryCount(0) {
                                                let (score, id) = heaps.entry(e, of: 0)
                                                ids[q * k + e] = id
                                                scores[q * k + e] = Float(Double(score) / divisor)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Why a sparse index refused a request.
public enum SparseIndexError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The metric cannot be served from postings alone.
    case unsupportedMetric(SimilarityMetric)

    public var description: String {
        switch self {
        case let .unsupportedMetric(metric):
            "a sparse index ranks by inner product or cosine, not \(metric.rawValue): the best matches by distance need not share a column with the query"
        }
    }
}
