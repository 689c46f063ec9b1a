import RecKernels

/// The popularity baseline: every user gets the items most users have interacted with, minus
/// what the user already has. The fallback for cold users and the floor other models must beat.
public struct PopularityModel: Recommender {
    /// The ids and training interactions.
    public let catalog: ModelCatalog
    /// Distinct users per item.
    public let counts: [Float]
    private let ranking: FlatIndex

    /// Always "popularity".
    public var kind: String { "popularity" }

    /// Counts distinct users per item in `catalog.history`.
    public init(_ catalog: ModelCatalog) throws {
        guard catalog.history.nonzeroCount > 0 else { throw ModelError.emptyTrainingSet }
        var counts = [Float](repeating: 0, count: catalog.items.count)
        for item in catalog.history.columnIndices { counts[Int(item)] += 1 }
        try self.init(catalog: catalog, counts: counts)
    }

    private init(catalog: ModelCatalog, counts: [Float]) throws {
        self.catalog = catalog
        self.counts = counts
        // Scoring a one-dimensional table with the query [1] ranks by count through the same
        // kernel as every other model, exclusions and filters included.
        ranking = try FlatIndex(items: EmbeddingTable(rows: counts.count, dimensions: 1, values: counts))
    }

    public func recommend(users: [Int], k: Int, excludeSeen: Bool = true, filter: ItemFilter? = nil) throws -> TopKResults {
        try catalog.checkUsers(users)
        let queries = try EmbeddingTable(rows: users.count, dimensions: 1, values: [Float](repeating: 1, count: users.count))
        return try ranking.search(queries, k: k, excluding: catalog.exclusions(for: users, excludeSeen: excludeSeen), filter: filter)
    }

    public func recommend(history items: [Int], weights: [Float], k: Int, excludeSeen: Bool = true,
                          filter: ItemFilter? = nil) throws -> [ScoredItem] {
        try catalog.checkHistory(items, weights)
        return try ranking.search([1], k: k, excluding: excludeSeen ? items : [], filter: filter)
    }

    /// Popularity has no notion of similarity: the most popular other items.
    public func similarItems(to item: Int, k: Int) throws -> [ScoredItem] {
        guard item >= 0 && item < catalog.items.count else { throw ScoringError.itemOutOfRange(item: item, itemCount: catalog.items.count) }
        return try ranking.search([1], k: k, excluding: [item])
    }

    public func save(to path: String, metrics: [String: Double]) throws {
        var writer = try ModelFileWriter(kind: kind, parameters: [:], catalog: catalog, metrics: metrics)
        try writer.add(EmbeddingTable(rows: counts.count, dimensions: 1, values: counts), named: "counts")
        try writer.write(to: path)
    }

    /// Opens a model saved by ``save(to:)``.
    public init(contentsOf path: String) throws {
        let file = try ModelFile(contentsOf: path)
        let metadata = try ModelMetadata.decode(file, expectedKinds: ["popularity"])
        let catalog = try ModelCatalog(file: file, metadata: metadata)
        let counts = try file.table("counts")
        guard counts.rows == catalog.items.count, counts.dimensions == 1 else {
            throw ModelError.incompatibleFile(path: path, reason: "section 'counts' is \(counts.rows) × \(counts.dimensions), expected \(catalog.items.count) × 1 (one count per item)")
        }
        try self.init(catalog: catalog, counts: counts.withUnsafeBufferPointer(Array.init))
    }
}
