import RecKernels

/// Item-item nearest neighbours (Sarwar et al. 2001; implicit's `ItemItemRecommender`): each
/// item keeps its `neighbours` most similar items by cosine over the users who have them
/// (optionally BM25-weighted first), and a user's score for item i is Σⱼ h_uj · sim(j, i) over
/// the user's history j. Scoring runs through the sparse inverted-index kernel, so an item no
/// history item points to scores 0 and is not returned.
public struct ItemKNNModel: Recommender {
    /// The ids and training interactions.
    public let catalog: ModelCatalog
    /// Neighbours kept per item.
    public let neighbours: Int
    /// How the history was re-weighted before similarities were computed.
    public let weighting: ImplicitALS.Weighting
    /// items × items: row j holds j's neighbours i with sim(j, i).
    public let similarities: SparseMatrix
    /// Documents = items (their rows of Sᵀ): a history query scores every item it reaches.
    private let scoring: SparseIndex
    /// Documents = items as user vectors: exact similar-item queries.
    private let itemVectors: SparseIndex
    /// The history the model scores with (weighted as in training).
    private let weightedHistory: SparseMatrix

    /// Always "item-knn".
    public var kind: String { "item-knn" }

    /// Computes every item's nearest neighbours.
    ///
    /// - Throws: ``ModelError/emptyTrainingSet``, ``ModelError/invalidParameter(_:)``.
    /// - Complexity: O(Σ over users of (items per user)²) to find the neighbours.
    public init(_ catalog: ModelCatalog, neighbours: Int = 20, weighting: ImplicitALS.Weighting = .none,
                threads: Int = FlatIndex.defaultThreads) throws {
        guard neighbours >= 1, threads >= 1 else { throw ModelError.invalidParameter("item-kNN needs neighbours ≥ 1 and threads ≥ 1") }
        guard catalog.history.nonzeroCount > 0 else { throw ModelError.emptyTrainingSet }
        let weighted = try Weights.apply(weighting, to: catalog.history)
        let itemUsers = weighted.transposed()
        let vectors = try SparseIndex(documents: itemUsers, metric: .cosine)
        let items = (0 ..< itemUsers.rows).filter { !itemUsers.row($0).columns.isEmpty }
        let found = try vectors.similar(toDocuments: items, k: neighbours, threads: threads)
        var triples: [(row: Int, column: Int, value: Float)] = []
        triples.reserveCapacity(items.count * neighbours)
        for (row, item) in items.enumerated() {
            for neighbour in found[row] where neighbour.score > 0 { triples.append((item, neighbour.id, neighbour.score)) }
        }
        let similarities = try SparseMatrix(rows: catalog.items.count, columns: catalog.items.count, triples: triples)
        try self.init(catalog: catalog, neighbours: neighbours, weighting: weighting, similarities: similarities,
                      weightedHistory: weighted, itemVectors: vectors)
    }

    private init(catalog: ModelCatalog, neighbours: Int, weighting: ImplicitALS.Weighting, similarities: SparseMatrix,
                 weightedHistory: SparseMatrix, itemVectors: SparseIndex) throws {
        self.catalog = catalog
        self.neighbours = neighbours
        self.weighting = weighting
        self.similarities = similarities
        self.weightedHistory = weightedHistory
        self.itemVectors = itemVectors
        scoring = try SparseIndex(documents: similarities.transposed(), metric: .innerProduct)
    }

    public func recommend(users: [Int], k: Int, excludeSeen: Bool = true, filter: ItemFilter? = nil) throws -> TopKResults {
        try catalog.checkUsers(users)
        let queries = weightedHistory.gathering(rows: users)
        return try scoring.search(queries, k: k, excluding: catalog.exclusions(for: users, excludeSeen: excludeSeen), filter: filter)
    }

    public func recommend(history items: [Int], weights: [Float], k: Int, excludeSeen: Bool = true,
                          filter: ItemFilter? = nil) throws -> [ScoredItem] {
        try catalog.checkHistory(items, weights)
        return try scoring.search(columns: items, weights: weights, k: k, excluding: excludeSeen ? items : [], filter: filter)
    }

    public func similarItems(to item: Int, k: Int) throws -> [ScoredItem] {
        guard item >= 0 && item < catalog.items.count else { throw ScoringError.itemOutOfRange(item: item, itemCount: catalog.items.count) }
        guard !itemVectors.documents.row(item).columns.isEmpty else { return [] }
        return try itemVectors.similar(toDocument: item, k: k)
    }

    public func save(to path: String, metrics: [String: Double]) throws {
        let parameters = ["neighbours": Double(neighbours), "weighting": Double(ImplicitALS.Weighting.allCases.firstIndex(of: weighting)!)]
        var writer = try ModelFileWriter(kind: kind, parameters: parameters, catalog: catalog, metrics: metrics)
        try writer.add(similarities, named: "similarity")
        try writer.write(to: path)
    }

    /// Opens a model saved by ``save(to:)``.
    public init(contentsOf path: String) throws {
        let file = try ModelFile(contentsOf: path)
        let metadata = try ModelMetadata.decode(file, expectedKinds: ["item-knn"])
        let catalog = try ModelCatalog(file: file, metadata: metadata)
        let weightingIndex = try metadata.integer("weighting", in: 0 ... ImplicitALS.Weighting.allCases.count - 1, path: path) ?? 0
        guard let neighbours = try metadata.integer("neighbours", in: 1 ... Int(Int32.max), path: path)
        else { throw ModelError.incompatibleFile(path: path, reason: "item-kNN parameter 'neighbours' is missing") }
        let weighting = ImplicitALS.Weighting.allCases[weightingIndex]
        let similarities = try SparseMatrix.read(file, named: "similarity", rows: catalog.items.count, columnCount: catalog.items.count)
        let weighted = try Weights.apply(weighting, to: catalog.history)
        try self.init(catalog: catalog, neighbours: neighbours, weighting: weighting, similarities: similarities,
                      weightedHistory: weighted, itemVectors: try SparseIndex(documents: weighted.transposed(), metric: .cosine))
    }
}
