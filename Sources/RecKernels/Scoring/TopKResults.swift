/// One item of a result: its index in the catalog and its score under the search's metric.
public struct ScoredItem: Sendable, Hashable, CustomStringConvertible {
    /// The item's row in the catalog table.
    public let id: Int
    /// Inner product or cosine (higher is better), or squared Euclidean distance (lower is better).
    public let score: Float

    /// Item `id` with `score`.
    public init(id: Int, score: Float) {
        self.id = id
        self.score = score
    }

    public var description: String { "\(id): \(score)" }
}

/// The best K items for each query of a batch, best first, ties broken by the lower item id.
///
/// Stored flat: query q's entries are `ids[q * k ..< q * k + counts[q]]` and the same range of
/// `scores`. A query has fewer than K entries only when fewer than K items were eligible; the
/// unused slots hold id -1 and a NaN score.
public struct TopKResults: Sendable, Equatable {
    /// Number of queries.
    public let queryCount: Int
    /// Entries reserved per query.
    public let k: Int
    /// Item ids, `queryCount × k`, row-major.
    public let ids: [Int32]
    /// Scores matching `ids`.
    public let scores: [Float]
    /// Entries filled per query (at most k).
    public let counts: [Int32]

    /// Query `query`'s results, best first. - Complexity: O(k).
    public subscript(query: Int) -> [ScoredItem] {
        precondition(query >= 0 && query < queryCount, "query \(query) out of range 0..<\(queryCount)")
        return (0..<Int(counts[query])).map { ScoredItem(id: Int(ids[query * k + $0]), score: scores[query * k + $0]) }
    }

    public static func == (lhs: TopKResults, rhs: TopKResults) -> Bool {
        lhs.queryCount == rhs.queryCount && lhs.k == rhs.k && lhs.counts == rhs.counts
            && (0..<lhs.queryCount).allSatisfy { lhs[$0] == rhs[$0] }
    }
}

/// Why a search was refused. Searches never return partial or garbage results instead.
public enum ScoringError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The catalog has no items.
    case emptyCatalog
    /// K must be at least 1.
    case invalidK(Int)
    /// Queries and items have different dimensions.
    case dimensionMismatch(expected: Int, actual: Int)
    /// A query holds NaN or infinity.
    case nonFiniteQuery(query: Int, dimension: Int)
    /// A catalog item holds NaN or infinity.
    case nonFiniteItem(item: Int, dimension: Int)
    /// Cosine similarity of a zero query vector is undefined.
    case zeroQuery(query: Int)
    /// An item index outside the catalog.
    case itemOutOfRange(item: Int, itemCount: Int)
    /// Exclusion lists for a different number of queries than searched.
    case exclusionCountMismatch(expected: Int, actual: Int)
    /// An allow or deny bitset sized for another catalog.
    case filterCapacityMismatch(expected: Int, actual: Int)
    /// Threads must be at least 1.
    case invalidThreadCount(Int)
    /// A query's scores could exceed the float range: `bound` is ‖query‖ × the largest ‖item‖.
    case scoreOverflow(query: Int, bound: Double)
    /// The results of `queries` searches at `k` (already bounded by the catalog) need `bytes`,
    /// more than the machine's `available` memory.
    case resultTooLarge(queries: Int, k: Int, bytes: Int, available: Int)

    public var description: String {
        switch self {
        case .emptyCatalog: "the catalog is empty: there is nothing to score"
        case let .invalidK(k): "k must be at least 1, got \(k)"
        case let .dimensionMismatch(expected, actual): "dimension mismatch: the catalog has \(expected) dimensions, the query \(actual)"
        case let .nonFiniteQuery(query, dimension): "query \(query) has a NaN or infinite value at dimension \(dimension)"
        case let .nonFiniteItem(item, dimension): "catalog item \(item) has a NaN or infinite value at dimension \(dimension)"
        case let .zeroQuery(query): "query \(query) is the zero vector: its cosine similarity is undefined"
        case let .itemOutOfRange(item, itemCount): "item \(item) is outside the catalog (0..<\(itemCount))"
        case let .exclusionCountMismatch(expected, actual): "exclusion lists for \(actual) queries given for a batch of \(expected)"
        case let .filterCapacityMismatch(expected, actual): "an item filter for \(actual) items given for a catalog of \(expected)"
        case let .invalidThreadCount(threads): "threads must be at least 1, got \(threads)"
        case let .scoreOverflow(query, bound):
            "query \(query): scores could reach \(bound) (its norm × the largest item norm), beyond the float range of \(Float.greatestFiniteMagnitude); rescale the vectors"
        case let .resultTooLarge(queries, k, bytes, available):
            "top-\(k) results for \(queries) queries need \(bytes == Int.max ? "more than 2^63" : "\(bytes)") bytes, more than the \(available) bytes of memory; score fewer queries at a time or lower k"
        }
    }
}

extension TopKResults {
    /// Results assembled from per-query lists already ranked best first (at most `k` each; longer
    /// lists are cut to `k`), for models that rank outside the kernels (e.g. a blend of models).
    ///
    /// - Complexity: O(queries × k).
    public init(rows: [[ScoredItem]], k: Int) {
        var ids = [Int32](repeating: -1, count: rows.count * k), scores = [Float](repeating: .nan, count: rows.count * k)
        var counts = [Int32](repeating: 0, count: rows.count)
        for (query, row) in rows.enumerated() {
            for (rank, item) in row.prefix(k).enumerated() {
                ids[query * k + rank] = Int32(item.id)
                scores[query * k + rank] = item.score
            }
            counts[query] = Int32(min(row.count, k))
        }
        self.init(queryCount: rows.count, k: k, ids: ids, scores: scores, counts: counts)
    }
}
