import RecKernels

/// EASE, the "embarrassingly shallow autoencoder" (Steck, WWW 2019): an item × item weight
/// matrix B with a zero diagonal, in closed form
///
///     P = (XᵀX + λI)⁻¹,   B = I − P · diagMat(1 / diag(P)),   i.e. B_ij = −P_ij / P_jj (i ≠ j),
///
/// and a user's score for item j is Σᵢ x_ui B_ij: the history times B. X is the users × items
/// training matrix as stored (binarize it first for the paper's setting).
///
/// With `dropout` p > 0 it is EDLAE's full-rank form (Steck 2020): λ + p/(1 − p)·(XᵀX)_ii on
/// item i's diagonal instead of λ, which keeps popular items from predicting themselves through
/// their neighbours.
///
/// Two further options generalize the solve; at 0 (their defaults) each leaves B unchanged:
/// - **Data-adaptive normalization** (DAN; Park et al., "Why is Normalization Necessary for
///   Linear Recommenders?", SIGIR 2025). With user degrees d_u = Σᵢ x_ui and item degrees
///   c_i = Σᵤ x_ui, the Gram matrix is built with each user weighted by d_u^(−β)
///   (`userNormalization` β: long histories count less, which damps neighbourhood bias), and the
///   solved B is rescaled to diagMat(c^α) · B · diagMat(c^(−α)) (`itemNormalization` α: a
///   popular target item's scores shrink by c_j^(−α), a popular source item's grow by c_i^α).
///   The diagonal penalty stays λ + p/(1 − p)·(XᵀX)_ii of the unweighted X.
/// - **Relaxed diagonal constraint** (RDLAE; Moon et al., "It's Enough: Relaxing Diagonal
///   Constraints in Linear Autoencoders for Recommendation", SIGIR 2023), `relaxation` ξ in
///   [0, 1]: with Λ_j = λ + p/(1 − p)·(XᵀX)_jj, column j of B is −P_ij·s_j off the diagonal,
///   where s_j = (1 − ξ)/P_jj when 1 − Λ_j·P_jj > ξ (the constraint diag(B) ≤ ξ is active) and
///   s_j = Λ_j otherwise. ξ = 0 is EASE's zero diagonal, ξ = 1 the unconstrained DLAE solution
///   B = I − P·Λ. The diagonal itself is dropped when scoring (a history item scoring itself
///   says nothing), as in the authors' code.
///
/// **New users are folded in for free**: a score needs nothing of the user but the history, so
/// ``recommend(history:weights:k:excludeSeen:filter:)`` with a user's training row gives exactly
/// what ``recommend(users:k:excludeSeen:filter:)`` gives that user — no solve, no retraining.
///
/// Scoring runs through ``FlatIndex``'s fused top-K kernel: the model stores Bᵀ as an items ×
/// items table (row j holds column j of B), so the history as a dense items-long query scores
/// every item in one product.
///
/// **Memory:** items² floats for the table (and items² more while training): 3,706 items take
/// 55 MB, 20,000 items 1.6 GB, 50,000 items 10 GB. Catalogs that do not fit are refused.
public struct EASEModel: Recommender {
    /// The ids and training interactions.
    public let catalog: ModelCatalog
    /// The L2 penalty λ on B.
    public let regularization: Float
    /// Dropout rate p of EDLAE (Steck, "Autoencoders that don't overfit towards the Identity",
    /// NeurIPS 2020): item i's penalty grows by p/(1 − p)·(XᵀX)_ii; 0 is plain EASE.
    public let dropout: Float
    /// DAN's item exponent α: B becomes diagMat(c^α) · B · diagMat(c^(−α)); 0 leaves B as is.
    public let itemNormalization: Float
    /// DAN's user exponent β: user u's row enters XᵀX weighted by d_u^(−β); 0 is plain XᵀX.
    public let userNormalization: Float
    /// RDLAE's bound ξ on the diagonal of B before it is dropped: 0 is EASE's zero-diagonal
    /// constraint, 1 no constraint at all.
    public let relaxation: Float
    /// items × items: row j is column j of B, so `table · history` = the history's scores.
    public let table: EmbeddingTable
    private let ranking: FlatIndex

    /// Always "ease".
    public var kind: String { "ease" }

    /// Fits B in closed form: the Gram matrix XᵀX from the sparse history (spread over
    /// `threads`), then one Cholesky inverse (LAPACK `spotrf` + `spotri` on `threads` OpenBLAS
    /// threads).
    ///
    /// Single precision is enough here: XᵀX holds whole counts (exact in a float below 2²⁴) and
    /// λ bounds the smallest eigenvalue from below; on ML-1M with λ = 500 the B computed here
    /// differs from a double-precision inverse by under 1e-4 of its largest entry
    /// (`Benchmarks/peers/ease_numpy.py --check`).
    ///
    /// - Throws: ``ModelError/emptyTrainingSet``, ``ModelError/invalidParameter(_:)`` for λ ≤ 0,
    ///   threads < 1, an exponent outside [0, 2], ξ outside [0, 1] or a catalog whose items²
    ///   floats do not fit memory (naming the bytes needed).
    /// - Complexity: O(Σᵤ |items of u|² + items³) time, 2 × items² floats of memory.
    public init(_ catalog: ModelCatalog, regularization: Float = 500, dropout: Float = 0, itemNormalization: Float = 0,
                userNormalization: Float = 0, relaxation: Float = 0, threads: Int = FlatIndex.defaultThreads) throws {
        guard regularization > 0, regularization.isFinite, threads >= 1 else {
            throw ModelError.invalidParameter("EASE needs regularization > 0 (got \(regularization)) and threads ≥ 1 (got \(threads))")
        }
        guard dropout >= 0, dropout < 1 else { throw ModelError.invalidParameter("EASE needs 0 ≤ dropout < 1, got \(dropout)") }
        try Self.checkExtensions(itemNormalization: itemNormalization, userNormalization: userNormalization, relaxation: relaxation)
        guard catalog.history.nonzeroCount > 0 else { throw ModelError.emptyTrainingSet }
        let n = catalog.items.count
        do {
            // The Gram/inverse and the scoring table: two items × items tables at once.
            try EmbeddingTable.checkFits(rows: 2 * n, dimensions: n, what: "EASE's two \(n) × \(n) item tables")
        } catch {
            throw ModelError.invalidParameter("EASE over \(n) items does not fit: \(error)")
        }
        let history = catalog.history
        // The unweighted diagonal (XᵀX)_ii for the penalty, and the degrees DAN normalizes by.
        var squares = [Float](repeating: 0, count: n), itemDegrees = [Float](repeating: 0, count: n)
        for e in 0 ..< history.nonzeroCount {
            let item = Int(history.columnIndices[e]), value = history.values[e]
            squares[item] += value * value
            itemDegrees[item] += value
        }
        let userWeights: [Float]? = userNormalization == 0 ? nil : (0 ..< history.rows).map { user in
            let degree = history.row(user).values.reduce(0, +)
            return degree > 0 ? Float(Double.pow(Double(degree), -Double(userNormalization))) : 0
        }
        var p = Self.gram(history, userWeights: userWeights, threads: threads)
        let emphasis = dropout / (1 - dropout)
        let penalties = squares.map { regularization + emphasis * $0 }
        p.withUnsafeMutableBufferPointer { values in for i in 0 ..< n { values[i * n + i] += penalties[i] } }
        try OpenBLAS.withThreads(threads) { try LinearAlgebra.positiveDefiniteInverse(&p) }
        // c_i^α for DAN; an item without training entries has an all-zero row and column in B,
        // so any finite factor will do for it.
        let sourceScale = itemDegrees.map { $0 > 0 && itemNormalization != 0 ? Float(Double.pow(Double($0), Double(itemNormalization))) : 1 }
        // Row j of the table = column j of B = −P_jᵢ·s_j·c_i^α / c_j^α (P is symmetric), diagonal 0.
        var table = EmbeddingTable(rows: n, dimensions: n)
        p.withUnsafeBufferPointer { source in
            table.withUnsafeMutableBufferPointer { target in
                Parallel.forEach((n + 63) / 64, threads: threads) { block in
                    for j in block * 64 ..< min(n, (block + 1) * 64) {
                        let diagonal = source[j * n + j]
                        let active = 1 - penalties[j] * diagonal > relaxation
                        let columnScale = (active ? (1 - relaxation) / diagonal : penalties[j])
                        let scale = -columnScale / sourceScale[j]
                        if itemNormalization == 0 {
                            for i in 0 ..< n { target[j * n + i] = source[j * n + i] * scale }
                        } else {
                            for i in 0 ..< n { target[j * n + i] = source[j * n + i] * scale * sourceScale[i] }
                        }
                        target[j * n + j] = 0
                    }
                }
            }
        }
        try self.init(catalog: catalog, regularization: regularization, dropout: dropout, itemNormalization: itemNormalization,
                      userNormalization: userNormalization, relaxation: relaxation, table: table)
    }

    private init(catalog: ModelCatalog, regularization: Float, dropout: Float, itemNormalization: Float, userNormalization: Float,
                 relaxation: Float, table: EmbeddingTable) throws {
        self.catalog = catalog
        self.regularization = regularization
        self.dropout = dropout
        self.itemNormalization = itemNormalization
        self.userNormalization = userNormalization
        self.relaxation = relaxation
        self.table = table
        ranking = try FlatIndex(items: table, metric: .innerProduct)
    }

    /// The range checks shared by training and opening a file; the message names the field.
    static func checkExtensions(itemNormalization: Float, userNormalization: Float, relaxation: Float) throws {
        for (name, value) in [("itemNormalization", itemNormalization), ("userNormalization", userNormalization)] where !(0 ... 2 ~= value) {
            throw ModelError.invalidParameter("EASE needs 0 ≤ \(name) ≤ 2, got \(value)")
        }
        guard 0 ... 1 ~= relaxation else { throw ModelError.invalidParameter("EASE needs 0 ≤ relaxation ≤ 1, got \(relaxation)") }
    }

    /// Xᵀ·diagMat(w)·X (items × items, both triangles) from the sparse users × items matrix, with
    /// w = `userWeights` (all ones when nil): each thread owns a band of rows i and adds
    /// w_u · x_ui · x_uj over the users u of item i.
    static func gram(_ history: SparseMatrix, userWeights: [Float]? = nil, threads: Int) -> EmbeddingTable {
        let n = history.columns
        let itemUsers = history.transposed()
        var gram = EmbeddingTable(rows: n, dimensions: n)
        gram.withUnsafeMutableBufferPointer { target in
            Parallel.forEach((n + 31) / 32, threads: threads) { block in
                for i in block * 32 ..< min(n, (block + 1) * 32) {
                    let row = target.baseAddress! + i * n
                    for e in itemUsers.rowOffsets[i] ..< itemUsers.rowOffsets[i + 1] {
                        let user = Int(itemUsers.columnIndices[e])
                        let weight = itemUsers.values[e] * (userWeights?[user] ?? 1)
                        for f in history.rowOffsets[user] ..< history.rowOffsets[user + 1] {
                            row[Int(history.columnIndices[f])] += weight * history.values[f]
                        }
                    }
                }
            }
        }
        return gram
    }

    /// Dense items-long query rows, one per user's training history.
    private func queries(users: [Int]) -> EmbeddingTable {
        let n = catalog.items.count
        var queries = EmbeddingTable(rows: users.count, dimensions: n)
        queries.withUnsafeMutableBufferPointer { target in
            for (row, user) in users.enumerated() {
                let (items, weights) = catalog.history.row(user)
                for (item, weight) in zip(items, weights) { target[row * n + Int(item)] += weight }
            }
        }
        return queries
    }

    /// - Complexity: O(users × items²) in one fused product; users × items floats for the queries.
    public func recommend(users: [Int], k: Int, excludeSeen: Bool = true, filter: ItemFilter? = nil) throws -> TopKResults {
        try catalog.checkUsers(users)
        return try ranking.search(queries(users: users), k: k, excluding: catalog.exclusions(for: users, excludeSeen: excludeSeen), filter: filter)
    }

    /// The history's scores, Σᵢ wᵢ B_ij: exactly what training would give a user with this
    /// history (EASE has no per-user parameters to fit).
    ///
    /// - Complexity: O(items²) (one GEMV over the table).
    public func recommend(history items: [Int], weights: [Float], k: Int, excludeSeen: Bool = true,
                          filter: ItemFilter? = nil) throws -> [ScoredItem] {
        try catalog.checkHistory(items, weights)
        var query = [Float](repeating: 0, count: catalog.items.count)
        for (item, weight) in zip(items, weights) { query[item] += weight }
        return try ranking.search(query, k: k, excluding: excludeSeen ? items : [], filter: filter)
    }

    /// The items a one-item history scores highest: j by B_item,j (the weight with which
    /// `item` predicts j), `item` itself excluded.
    public func similarItems(to item: Int, k: Int) throws -> [ScoredItem] {
        guard item >= 0 && item < catalog.items.count else { throw ScoringError.itemOutOfRange(item: item, itemCount: catalog.items.count) }
        var query = [Float](repeating: 0, count: catalog.items.count)
        query[item] = 1
        return try ranking.search(query, k: k, excluding: [item])
    }

    public func save(to path: String, metrics: [String: Double]) throws {
        let parameters = ["regularization": Double(regularization), "dropout": Double(dropout), "itemNormalization": Double(itemNormalization),
                          "userNormalization": Double(userNormalization), "relaxation": Double(relaxation)]
        var writer = try ModelFileWriter(kind: kind, parameters: parameters, catalog: catalog, metrics: metrics)
        try writer.add(table, named: "ease.table")
        try writer.write(to: path)
    }

    /// Opens a model saved by ``save(to:)``; the table is memory-mapped.
    ///
    /// - Throws: ``ModelError/incompatibleFile(path:reason:)`` for another kind, a missing λ or
    ///   a table whose shape is not items × items; ``ModelFileError`` for a corrupt file.
    public init(contentsOf path: String) throws {
        let file = try ModelFile(contentsOf: path)
        let metadata = try ModelMetadata.decode(file, expectedKinds: ["ease"])
        let catalog = try ModelCatalog(file: file, metadata: metadata)
        guard let lambda = metadata.parameters["regularization"], Float(lambda).isFinite, lambda > 0 else {
            throw ModelError.incompatibleFile(path: path, reason: "EASE parameter 'regularization' is missing or not a positive finite float")
        }
        let dropout = metadata.parameters["dropout"] ?? 0
        guard dropout >= 0, dropout < 1 else {
            throw ModelError.incompatibleFile(path: path, reason: "EASE parameter 'dropout' is \(dropout), expected 0 ≤ dropout < 1")
        }
        // Files written before DAN and RDLAE have neither: 0 is what they were trained with.
        let itemNormalization = Float(metadata.parameters["itemNormalization"] ?? 0), userNormalization = Float(metadata.parameters["userNormalization"] ?? 0)
        let relaxation = Float(metadata.parameters["relaxation"] ?? 0)
        do {
            try Self.checkExtensions(itemNormalization: itemNormalization, userNormalization: userNormalization, relaxation: relaxation)
        } catch let ModelError.invalidParameter(reason) {
            throw ModelError.incompatibleFile(path: path, reason: reason)
        }
        let table = try file.table("ease.table")
        guard table.rows == catalog.items.count, table.dimensions == catalog.items.count else {
            throw ModelError.incompatibleFile(path: path, reason: "section 'ease.table' is \(table.rows) × \(table.dimensions), expected \(catalog.items.count) × \(catalog.items.count) (items × items)")
        }
        try self.init(catalog: catalog, regularization: Float(lambda), dropout: Float(dropout), itemNormalization: itemNormalization,
                      userNormalization: userNormalization, relaxation: relaxation, table: table)
    }
}
