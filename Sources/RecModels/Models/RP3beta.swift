import RecKernels
internal import RealModule

/// RP3beta (Paudel, Christoffel, Newell & Bernstein, "Updatable, Accurate, Diverse, and Scalable
/// Recommendations for Interactive Applications", TiiS 2017): a three-step random walk item → user
/// → item on the bipartite interaction graph, with transition probabilities raised to α and the
/// landing item's popularity penalised by β:
///
///     W_ij = (Σᵤ P_iu^α · P_uj^α) / popularity(j)^β,   i ≠ j,
///
/// where P_iu = 1 / |users of i| (each of i's users equally likely), P_uj = x_uj / Σⱼ x_uj (the
/// user's row, L1-normalised) and popularity(j) = |users of j|. Each row i keeps its
/// `neighbours` largest weights (sparse); a history's score for j is Σᵢ h_i W_ij, through the
/// sparse inverted-index kernel (as ``ItemKNNModel``), so an item no history item reaches scores 0
/// and is not returned. The walk is defined by the history alone, so new users fold in exactly.
///
/// Defaults follow Dacrema et al.'s tuned ML-1M setting region (α ≈ 1, β ≈ 0.6, a few hundred
/// neighbours).
public struct RP3betaModel: Recommender {
    /// The ids and training interactions.
    public let catalog: ModelCatalog
    /// Exponent on both transition probabilities (1 = the plain walk).
    public let alpha: Float
    /// Popularity penalty: the landing item's weight is divided by its popularity^β.
    public let beta: Float
    /// Neighbours kept per item.
    public let neighbours: Int
    /// items × items: row i holds i's kept neighbours j with W_ij.
    public let similarities: SparseMatrix
    /// Documents = items as columns of W: a history query scores every item it reaches.
    private let scoring: SparseIndex

    /// Always "rp3beta".
    public var kind: String { "rp3beta" }

    /// Computes W row by row (rows spread over `threads`), keeping each row's top `neighbours`.
    ///
    /// - Throws: ``ModelError/emptyTrainingSet``, ``ModelError/invalidParameter(_:)``.
    /// - Complexity: O(Σᵤ |items of u|² + items × reached × log neighbours) time; one items-long
    ///   accumulator per thread.
    public init(_ catalog: ModelCatalog, alpha: Float = 1, beta: Float = 0.6, neighbours: Int = 200,
                threads: Int = FlatIndex.defaultThreads) throws {
        guard alpha > 0, alpha.isFinite, beta >= 0, beta.isFinite, neighbours >= 1, threads >= 1 else {
            throw ModelError.invalidParameter("RP3beta needs alpha > 0 (got \(alpha)), beta ≥ 0 (got \(beta)), neighbours ≥ 1 (got \(neighbours)) and threads ≥ 1")
        }
        let history = catalog.history
        guard history.nonzeroCount > 0 else { throw ModelError.emptyTrainingSet }
        if let bad = history.values.firstIndex(where: { !($0 >= 0) }) {
            throw ModelError.invalidParameter("RP3beta needs non-negative interaction strengths; entry \(bad) is \(history.values[bad])")
        }
        let n = catalog.items.count
        let itemUsers = history.transposed()
        // P_uj^α for every stored entry, in the history's order.
        var rowTotals = [Float](repeating: 0, count: history.rows)
        for u in 0 ..< history.rows { rowTotals[u] = history.row(u).values.reduce(0, +) }
        var stepToItem = history.values
        for u in 0 ..< history.rows where rowTotals[u] > 0 {
            for e in history.rowOffsets[u] ..< history.rowOffsets[u + 1] { stepToItem[e] = Float.pow(history.values[e] / rowTotals[u], alpha) }
        }
        let popularity = (0 ..< n).map { Float(itemUsers.rowOffsets[$0 + 1] - itemUsers.rowOffsets[$0]) }
        let penalty = popularity.map { $0 > 0 ? Float.pow($0, -beta) : 0 }
        let blockSize = 64
        let blocks = (n + blockSize - 1) / blockSize
        var kept = [[(row: Int, column: Int, value: Float)]](repeating: [], count: blocks)
        kept.withUnsafeMutableBufferPointer { output in
            Parallel.forEach(blocks, threads: threads) { block in
                var accumulator = [Float](repeating: 0, count: n)
                var touched: [Int32] = []
                var triples: [(row: Int, column: Int, value: Float)] = []
                for i in block * blockSize ..< min(n, (block + 1) * blockSize) {
                    let users = itemUsers.rowOffsets[i] ..< itemUsers.rowOffsets[i + 1]
                    guard !users.isEmpty else { continue }
                    let stepToUser = Float.pow(1 / Float(users.count), alpha)
                    for e in users {
                        let u = Int(itemUsers.columnIndices[e])
                        for f in history.rowOffsets[u] ..< history.rowOffsets[u + 1] {
                            let j = Int(history.columnIndices[f]), step = stepToItem[f]
                            guard step > 0 else { continue }
                            if accumulator[j] == 0 { touched.append(Int32(j)) }
                            accumulator[j] += step
                        }
                    }
                    var row: [ScoredItem] = []
                    row.reserveCapacity(touched.count)
                    for j32 in touched {
                        let j = Int(j32)
                        let weight = accumulator[j] * stepToUser * penalty[j]
                        accumulator[j] = 0
                        if j != i && weight > 0 { row.append(ScoredItem(id: j, score: weight)) }
                    }
                    touched.removeAll(keepingCapacity: true)
                    if row.count > neighbours {
                        row.sort { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
                        row.removeLast(row.count - neighbours)
                    }
                    for item in row { triples.append((i, item.id, item.score)) }
                }
                output[block] = triples
            }
        }
        let similarities = try SparseMatrix(rows: n, columns: n, triples: kept.joined())
        try self.init(catalog: catalog, alpha: alpha, beta: beta, neighbours: neighbours, similarities: similarities)
    }

    private init(catalog: ModelCatalog, alpha: Float, beta: Float, neighbours: Int, similarities: SparseMatrix) throws {
        self.catalog = catalog
        self.alpha = alpha
        self.beta = beta
        self.neighbours = neighbours
        self.similarities = similarities
        scoring = try SparseIndex(documents: similarities.transposed(), metric: .innerProduct)
    }

    public func recommend(users: [Int], k: Int, excludeSeen: Bool = true, filter: ItemFilter? = nil) throws -> TopKResults {
        try catalog.checkUsers(users)
        return try scoring.search(catalog.history.gathering(rows: users), k: k,
                                  excluding: catalog.exclusions(for: users, excludeSeen: excludeSeen), filter: filter)
    }

    /// Σᵢ wᵢ W_ij for the history: what a trained user with this history gets (nothing of the
    /// user is fitted).
    public func recommend(history items: [Int], weights: [Float], k: Int, excludeSeen: Bool = true,
                          filter: ItemFilter? = nil) throws -> [ScoredItem] {
        try catalog.checkHistory(items, weights)
        return try scoring.search(columns: items, weights: weights, k: k, excluding: excludeSeen ? items : [], filter: filter)
    }

    /// The walk's strongest landings from `item`: its kept neighbours by W_item,j.
    public func similarItems(to item: Int, k: Int) throws -> [ScoredItem] {
        guard item >= 0 && item < catalog.items.count else { throw ScoringError.itemOutOfRange(item: item, itemCount: catalog.items.count) }
        guard k >= 1 else { throw ScoringError.invalidK(k) }
        let (columns, values) = similarities.row(item)
        let row = zip(columns, values).map { ScoredItem(id: Int($0), score: $1) }
            .sorted { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
        return Array(row.prefix(k))
    }

    public func save(to path: String, metrics: [String: Double]) throws {
        let parameters = ["alpha": Double(alpha), "beta": Double(beta), "neighbours": Double(neighbours)]
        var writer = try ModelFileWriter(kind: kind, parameters: parameters, catalog: catalog, metrics: metrics)
        try writer.add(similarities, named: "similarity")
        try writer.write(to: path)
    }

    /// Opens a model saved by ``save(to:)``.
    public init(contentsOf path: String) throws {
        let file = try ModelFile(contentsOf: path)
        let metadata = try ModelMetadata.decode(file, expectedKinds: ["rp3beta"])
        let catalog = try ModelCatalog(file: file, metadata: metadata)
        func parameter(_ name: String) throws -> Float {
            guard let value = metadata.parameters[name], Float(value).isFinite else {
                throw ModelError.incompatibleFile(path: path, reason: "RP3beta parameter '\(name)' is missing or not a finite float")
            }
            return Float(value)
        }
        guard let neighbours = try metadata.integer("neighbours", in: 1 ... Int(Int32.max), path: path)
        else { throw ModelError.incompatibleFile(path: path, reason: "RP3beta parameter 'neighbours' is missing") }
        let similarities = try SparseMatrix.read(file, named: "similarity", rows: catalog.items.count, columnCount: catalog.items.count)
        try self.init(catalog: catalog, alpha: try parameter("alpha"), beta: try parameter("beta"), neighbours: neighbours,
                      similarities: similarities)
    }
}
