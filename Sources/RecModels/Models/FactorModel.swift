import RecKernels
internal import RealModule

/// A trained matrix-factorization model: user and item vectors whose inner product ranks items
/// for a user. Biases live in an extra column (users hold 1 there), so every algorithm ranks
/// through the same exact top-K kernel.
///
/// Made by ``ImplicitALS``, ``ExplicitALS``, ``BPR`` and ``BiasedMF``; opened with
/// ``FactorModel/init(contentsOf:)``.
public struct FactorModel: Recommender {
    /// The algorithm and what fold-in and rating prediction need of it.
    public enum Algorithm: Sendable, Equatable {
        case implicitALS(alpha: Float, regularization: Float)
        case explicitALS(regularization: Float)
        /// Ranking vectors carry the item bias in their last column.
        case bpr(learningRate: Float, regularization: Float)
        /// Ranking vectors carry the item bias in their last column; `mean` and the user biases
        /// complete a rating prediction.
        case biasedMF(mean: Float, regularization: Float)
        /// Bayesian MF (``BayesianMF``): S kept Gibbs samples side by side, users
        /// [u₁/S, 1/S, …], items [v₁, b_{i,1}, …]; `mean` and the user biases (averaged over the
        /// samples) complete a rating prediction; `precision` is the observation precision α.
        case bayesianMF(mean: Float, precision: Float)
    }

    /// The algorithm that trained the model, with what fold-in and rating prediction need of it.
    public let algorithm: Algorithm
    /// The ids and training interactions.
    public let catalog: ModelCatalog
    /// users × (factors [+ 1]): the vectors items are ranked by.
    public let userFactors: EmbeddingTable
    /// items × (factors [+ 1]).
    public let itemFactors: EmbeddingTable
    /// Per-user rating biases (``Algorithm/biasedMF(mean:regularization:)`` only).
    public let userBiases: [Float]
    /// Bayesian MF only: per kept sample, the users' prior mean (d values) and precision (d × d,
    /// row-major) that sample was drawn under, one row per sample; fold-in uses them.
    public let userPriors: EmbeddingTable?
    /// Hyper-parameters recorded in the model file.
    public let parameters: [String: Double]
    private let ranking: FlatIndex
    /// The compressed (int8) item table single requests and small batches scan, if any: built
    /// at the end of training for catalogs of ``FlatIndex/compressedMinimumItems`` items or more,
    /// and read from the model file when it has one (a file saved without one is not compressed on
    /// open, which stays a memory map).
    public var compressedItems: CompressedTable? { ranking.compressedTable }
    /// How many searches of this model scanned ``compressedItems`` (see
    /// ``FlatIndex/compressedSearchCount``).
    public var compressedSearchCount: Int { ranking.compressedSearchCount }
    private let similarity: FlatIndex
    /// itemsᵀ·items, for implicit-ALS fold-in.
    private let itemGram: EmbeddingTable?

    /// "als", "als-explicit", "bpr", "biased-mf" or "bpmf", by algorithm.
    public var kind: String {
        switch algorithm {
        case .implicitALS: "als"
        case .explicitALS: "als-explicit"
        case .bpr: "bpr"
        case .biasedMF: "biased-mf"
        case .bayesianMF: "bpmf"
        }
    }

    /// Where the compressed item table comes from.
    enum CompressedSource {
        /// Built here when the catalog is large enough for ``ScoringBackend/automatic`` to use it
        /// (a freshly trained model).
        case build
        /// The model file's (nil: it has none).
        case file(CompressedTable?)
    }

    init(algorithm: Algorithm, catalog: ModelCatalog, userFactors: EmbeddingTable, itemFactors: EmbeddingTable,
         userBiases: [Float] = [], parameters: [String: Double], userPriors: EmbeddingTable? = nil,
         compressedItems source: CompressedSource = .build) throws {
        self.algorithm = algorithm
        self.catalog = catalog
        self.userFactors = userFactors
        self.itemFactors = itemFactors
        self.userBiases = userBiases
        self.parameters = parameters
        self.userPriors = userPriors
        let biased: Bool
        switch algorithm {
        case .bpr, .biasedMF: biased = true
        case .implicitALS, .explicitALS, .bayesianMF: biased = false
        }
        // A compressed copy lets single requests read a quarter of the bytes; results stay
        // exactly the float32 ones.
        let exact = try FlatIndex(items: itemFactors, metric: .innerProduct)
        let compressedItems: CompressedTable?
        switch source {
        case .build:
            compressedItems = itemFactors.rows >= FlatIndex.compressedMinimumItems ? CompressedTable(itemFactors, kind: .int8) : nil
        case let .file(table):
            compressedItems = table
        }
        ranking = try compressedItems.map { try exact.attaching($0) } ?? exact
        // Similar items: cosine over the factors alone, without the bias column.
        let factors = biased ? itemFactors.dimensions - 1 : itemFactors.dimensions
        if biased, factors >= 1 {
            var plain = EmbeddingTable(rows: itemFactors.rows, dimensions: factors)
            plain.withUnsafeMutableBufferPointer { target in
                for i in 0 ..< itemFactors.rows {
                    itemFactors.withRow(i) { row in for f in 0 ..< factors { target[i * factors + f] = row[f] } }
                }
            }
            similarity = try FlatIndex(items: plain, metric: .cosine)
        } else {
            similarity = try FlatIndex(items: itemFactors, metric: .cosine)
        }
        if case .implicitALS = algorithm {
            // iALS (Rendle et al. 2022) weighs the Gram term by the unobserved weight α₀.
            var gram = LinearAlgebra.gram(itemFactors)
            if let weight = parameters["unobservedWeight"], weight != 1 {
                gram.withUnsafeMutableBufferPointer { g in for e in g.indices { g[e] *= Float(weight) } }
            }
            itemGram = gram
        } else { itemGram = nil }
    }

    public func recommend(users: [Int], k: Int, excludeSeen: Bool = true, filter: ItemFilter? = nil) throws -> TopKResults {
        try catalog.checkUsers(users)
        let queries = userFactors.gathering(rows: users)
        return try ranking.search(queries, k: k, excluding: catalog.exclusions(for: users, excludeSeen: excludeSeen), filter: filter)
    }

    public func recommend(history items: [Int], weights: [Float], k: Int, excludeSeen: Bool = true,
                          filter: ItemFilter? = nil) throws -> [ScoredItem] {
        let vector = try foldIn(history: items, weights: weights)
        return try ranking.search(vector, k: k, excluding: excludeSeen ? items : [], filter: filter)
    }

    /// Folds every history in, stacks the query vectors and scores them with one search (one
    /// GEMM over the item table), each query with its own exclusions.
    public func recommend(batch queries: [RecommenderQuery], k: Int, excludeSeen: Bool, filter: ItemFilter?) -> [Result<[ScoredItem], any Error>] {
        let d = itemFactors.dimensions
        // Each query's vector (a user's row, or a fold-in solve) into its own slot; fold-ins are
        // independent solves, spread over the scoring threads in pieces of 16.
        var vectors = [Float](repeating: 0, count: queries.count * d)
        var failures = [(any Error)?](repeating: nil, count: queries.count)
        vectors.withUnsafeMutableBufferPointer { slots in
            failures.withUnsafeMutableBufferPointer { errors in
                let piece = 16
                Parallel.forEach((queries.count + piece - 1) / piece, threads: FlatIndex.defaultThreads) { p in
                    for n in p * piece ..< min(queries.count, (p + 1) * piece) {
                        do {
                            let query = queries[n]
                            if let bad = query.excluded.first(where: { $0 < 0 || $0 >= catalog.items.count }) {
                                throw ScoringError.itemOutOfRange(item: bad, itemCount: catalog.items.count)
                            }
                            switch query.subject {
                            case let .user(user):
                                try catalog.checkUsers([user])
                                userFactors.withRow(user) { row in for f in 0 ..< d { slots[n * d + f] = row[f] } }
                            case let .history(items, weights):
                                let vector = try foldIn(history: items, weights: weights)
                                for f in 0 ..< d { slots[n * d + f] = vector[f] }
                            }
                        } catch {
                            errors[n] = error
                        }
                    }
                }
            }
        }
        var results = failures.map { error -> Result<[ScoredItem], any Error> in error.map { .failure($0) } ?? .success([]) }
        let rows = queries.indices.filter { failures[$0] == nil }
        guard !rows.isEmpty else { return results }
        do {
            var stacked = EmbeddingTable(rows: rows.count, dimensions: d)
            stacked.withUnsafeMutableBufferPointer { target in
                for (position, n) in rows.enumerated() { for f in 0 ..< d { target[position * d + f] = vectors[n * d + f] } }
            }
            let exclusions = try ExcludedItems(rows.map { queries[$0].exclusions(excludeSeen: excludeSeen, catalog: catalog) })
            let found = try ranking.search(stacked, k: k, excluding: exclusions, filter: filter)
            for (position, n) in rows.enumerated() { results[n] = .success(found[position]) }
        } catch {
            for n in rows { results[n] = .failure(error) }
        }
        return results
    }

    public func similarItems(to item: Int, k: Int) throws -> [ScoredItem] {
        guard item >= 0 && item < catalog.items.count else { throw ScoringError.itemOutOfRange(item: item, itemCount: catalog.items.count) }
        return try similarity.search(similarity.items.row(item), k: k, excluding: [item])
    }

    /// The user vector a history gives with the item vectors held fixed — what training would
    /// give a user with that history — without retraining. The streaming mode calls this per
    /// event.
    ///
    /// - Throws: ``ModelError/emptyHistory``, ``ScoringError/itemOutOfRange(item:itemCount:)``.
    /// - Complexity: O(d³ + history × d²) for ALS and biased MF; O(epochs × history × d) for BPR.
    public func foldIn(history items: [Int], weights: [Float]) throws -> [Float] {
        try catalog.checkHistory(items, weights)
        switch algorithm {
        case let .implicitALS(alpha, regularization):
            // With frequency scaling the row's λ depends on its history's length, as in training.
            let lambda = ImplicitALS.scaledRegularization(regularization, entries: items.count, otherSide: catalog.items.count,
                                                          unobservedWeight: Float(parameters["unobservedWeight"] ?? 1),
                                                          exponent: Float(parameters["frequencyScaling"] ?? 0))
            return try Factorization.implicitALSFoldIn(items: items.map(Int32.init), weights: weights, fixed: itemFactors,
                                                       gram: itemGram!, alpha: alpha, regularization: lambda)
        case let .explicitALS(regularization):
            return try Factorization.ridgeRegression(rows: itemFactors.gathering(rows: items), targets: weights,
                                                     regularization: regularization * Float(items.count))
        case let .biasedMF(mean, regularization):
            // Solve for [p_u, b_u] against [q_i, 1] with targets r − μ − b_i; rank with [p_u, 1].
            var rows = itemFactors.gathering(rows: items)
            let width = rows.dimensions, last = width - 1
            var targets = weights
            rows.withUnsafeMutableBufferPointer { values in
                for n in items.indices {
                    targets[n] -= mean + values[n * width + last]
                    values[n * width + last] = 1
                }
            }
            var vector = try Factorization.ridgeRegression(rows: rows, targets: targets, regularization: regularization)
            vector[last] = 1
            return vector
        case let .bayesianMF(mean, precision):
            return try bayesianFoldIn(items: items, ratings: weights, mean: mean, precision: precision)
        case let .bpr(learningRate, regularization):
            return bprFoldIn(items: items, learningRate: learningRate, regularization: regularization)
        }
    }

    /// Why implicit ALS scores `item` as it does for a history: the score x·yᵢ split into one
    /// contribution per history item (Hu, Koren & Volinsky 2008, §5; implicit's `explain`).
    /// With W = (YᵀCY + λI)⁻¹ the fold-in solve, x = W Σⱼ cⱼ yⱼ, so x·yᵢ = Σⱼ cⱼ (yᵢᵀ W yⱼ).
    ///
    /// - Returns: the score and the contributions, largest first; they add up to the score.
    /// - Throws: ``ModelError/invalidParameter(_:)`` for a model other than implicit ALS, and
    ///   what ``foldIn(history:weights:)`` throws.
    /// - Complexity: O(d³ + history × d²).
    public func explain(history items: [Int], weights: [Float], item: Int) throws -> (score: Float, contributions: [ScoredItem]) {
        guard case let .implicitALS(alpha, regularization) = algorithm else {
            throw ModelError.invalidParameter("explain is available for implicit ALS models, not '\(kind)'")
        }
        try catalog.checkHistory(items, weights)
        guard item >= 0 && item < catalog.items.count else { throw ScoringError.itemOutOfRange(item: item, itemCount: catalog.items.count) }
        let d = itemFactors.dimensions
        // A = YᵀY + λI + Σ α wⱼ yⱼ yⱼᵀ; solve A z = yᵢ, then contribution j = cⱼ z·yⱼ.
        var a = itemGram!
        let history = itemFactors.gathering(rows: items)
        a.withUnsafeMutableBufferPointer { values in
            for f in 0 ..< d { values[f * d + f] += regularization }
            for (n, _) in items.enumerated() {
                let weight = alpha * weights[n]
                history.withRow(n) { y in
                    for r in 0 ..< d { for c in 0 ..< d { values[r * d + c] += weight * y[r] * y[c] } }
                }
            }
        }
        var z = try EmbeddingTable(rows: 1, dimensions: d, values: itemFactors.row(item))
        try LinearAlgebra.choleskySolve(a, &z)
        let solved = z.row(0)
        var contributions: [ScoredItem] = []
        for (n, historyItem) in items.enumerated() {
            let dot = history.withRow(n) { y in zip(y, solved).reduce(0) { $0 + $1.0 * $1.1 } }
            contributions.append(ScoredItem(id: historyItem, score: (1 + alpha * weights[n]) * dot))
        }
        contributions.sort { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
        return (contributions.reduce(0) { $0 + $1.score }, contributions)
    }

    /// A predicted rating (explicit-feedback models) or preference score.
    public func predict(user: Int, item: Int) -> Float {
        let score = userFactors.withRow(user) { u in itemFactors.withRow(item) { v in zip(u, v).reduce(0) { $0 + $1.0 * $1.1 } } }
        switch algorithm {
        case let .biasedMF(mean, _), let .bayesianMF(mean, _): return mean + userBiases[user] + score
        default: return score
        }
    }

    /// Bayesian MF fold-in: per kept sample s, the conditional posterior mean of [u, b_u] given
    /// that sample's item vectors and user prior — what the next Gibbs draw would centre on —
    /// laid out as training lays out user vectors ([u_s/S, 1/S] per sample).
    private func bayesianFoldIn(items: [Int], ratings: [Float], mean: Float, precision: Float) throws -> [Float] {
        guard let userPriors, userPriors.rows >= 1 else {
            throw ModelError.invalidParameter("this Bayesian MF model has no user priors to fold a history in with")
        }
        let samples = userPriors.rows, width = itemFactors.dimensions, d = width / samples
        let history = itemFactors.gathering(rows: items)
        let rows = (0 ..< Int32(items.count)).map { $0 }
        var vector = [Float](repeating: 0, count: width)
        for s in 0 ..< samples {
            var regressors = EmbeddingTable(rows: items.count, dimensions: d)
            var offsets = [Float](repeating: 0, count: items.count)
            regressors.withUnsafeMutableBufferPointer { out in
                history.withUnsafeBufferPointer { all in
                    for n in items.indices {
                        for f in 0 ..< d { out[n * d + f] = all[n * width + s * d + f] }
                        offsets[n] = out[n * d + d - 1]
                        out[n * d + d - 1] = 1
                    }
                }
            }
            let prior = userPriors.row(s)
            let priorPrecision = try EmbeddingTable(rows: d, dimensions: d, values: prior[d...])
            let solved = try Factorization.gibbsConditionalMean(items: rows, ratings: ratings, regressors: regressors, offsets: offsets,
                                                               shift: mean, alpha: precision, priorPrecision: priorPrecision,
                                                               priorMean: Array(prior[0 ..< d]))
            let scale = 1 / Float(samples)
            for f in 0 ..< d - 1 { vector[s * d + f] = scale * solved[f] }
            vector[s * d + d - 1] = scale
        }
        return vector
    }

    /// BPR has no closed-form fold-in: a deterministic SGD on the user vector alone, items fixed.
    private func bprFoldIn(items: [Int], learningRate: Float, regularization: Float) -> [Float] {
        let d = itemFactors.dimensions, factors = d - 1
        var generator = SeededGenerator(seed: UInt64(items.count) &* 0x9E37_79B9 &+ UInt64(items.first ?? 0))
        var x = [Float](repeating: 0, count: d)
        x[factors] = 1
        let history = Set(items)
        let epochs = 200
        for _ in 0 ..< epochs {
            for i in items {
                var j = Int.random(in: 0 ..< itemFactors.rows, using: &generator)
                var attempts = 0
                while history.contains(j) && attempts < 16 {
                    j = Int.random(in: 0 ..< itemFactors.rows, using: &generator)
                    attempts += 1
                }
                itemFactors.withRow(i) { yi in
                    itemFactors.withRow(j) { yj in
                        var score: Float = 0
                        for f in 0 ..< factors { score += x[f] * (yi[f] - yj[f]) }
                        let z = 1 / (1 + Float.exp(score + yi[factors] - yj[factors]))
                        for f in 0 ..< factors { x[f] += learningRate * (z * (yi[f] - yj[f]) - regularization * x[f]) }
                    }
                }
            }
        }
        return x
    }

    // MARK: Files

    static let kinds: Set<String> = ["als", "als-explicit", "bpr", "biased-mf", "bpmf"]

    public func save(to path: String, metrics: [String: Double]) throws {
        var writer = try ModelFileWriter(kind: kind, parameters: parameters, catalog: catalog, metrics: metrics)
        try writer.add(userFactors, named: "userFactors")
        try writer.add(itemFactors, named: "itemFactors")
        if let table = compressedItems ?? (itemFactors.rows >= FlatIndex.compressedMinimumItems ? CompressedTable(itemFactors, kind: .int8) : nil) {
            try writer.add(table, for: "itemFactors")
        }
        if !userBiases.isEmpty { try writer.add(EmbeddingTable(rows: userBiases.count, dimensions: 1, values: userBiases), named: "userBiases") }
        if let userPriors { try writer.add(userPriors, named: "userPriors") }
        try writer.write(to: path)
    }

    /// Opens a model saved by ``save(to:)``; factor tables are memory-mapped.
    ///
    /// - Throws: ``ModelError/incompatibleFile(path:reason:)`` for another kind of model or a
    ///   newer format, ``ModelFileError`` for a corrupt file.
    public init(contentsOf path: String) throws {
        let file = try ModelFile(contentsOf: path)
        let metadata = try ModelMetadata.decode(file, expectedKinds: Self.kinds)
        let catalog = try ModelCatalog(file: file, metadata: metadata)
        let p = metadata.parameters
        func parameter(_ name: String) throws -> Float {
            guard let value = p[name] else { throw ModelError.incompatibleFile(path: path, reason: "parameter '\(name)' is missing") }
            guard Float(value).isFinite else {
                throw ModelError.incompatibleFile(path: path, reason: "parameter '\(name)' is \(value), expected a finite 32-bit float")
            }
            return Float(value)
        }
        let algorithm: Algorithm
        switch metadata.kind {
        case "als": algorithm = .implicitALS(alpha: try parameter("alpha"), regularization: try parameter("regularization"))
        case "als-explicit": algorithm = .explicitALS(regularization: try parameter("regularization"))
        case "bpr": algorithm = .bpr(learningRate: try parameter("learningRate"), regularization: try parameter("regularization"))
        case "bpmf": algorithm = .bayesianMF(mean: try parameter("mean"), precision: try parameter("precision"))
        default: algorithm = .biasedMF(mean: try parameter("mean"), regularization: try parameter("regularization"))
        }
        let biases = file.section("userBiases") == nil ? [] : try file.table("userBiases").withUnsafeBufferPointer(Array.init)
        let users = try file.table("userFactors"), items = try file.table("itemFactors")
        guard users.rows == catalog.users.count, items.rows == catalog.items.count, users.dimensions == items.dimensions else {
            throw ModelError.incompatibleFile(path: path, reason: "factor shapes do not match the id maps: 'userFactors' is \(users.rows) × \(users.dimensions), 'itemFactors' \(items.rows) × \(items.dimensions), for \(catalog.users.count) users and \(catalog.items.count) items")
        }
        guard biases.isEmpty || biases.count == catalog.users.count else {
            throw ModelError.incompatibleFile(path: path, reason: "section 'userBiases' holds \(biases.count) values, expected one per user (\(catalog.users.count))")
        }
        var priors: EmbeddingTable?
        if case .bayesianMF = algorithm {
            // S samples of d = width / S columns each; a prior row holds d + d² values.
            let table = try file.table("userPriors")
            let samples = table.rows
            guard samples >= 1, items.dimensions % samples == 0, table.dimensions == (items.dimensions / samples) * (items.dimensions / samples + 1),
                  biases.count == catalog.users.count else {
                throw ModelError.incompatibleFile(path: path, reason: "section 'userPriors' is \(table.rows) × \(table.dimensions) and 'userBiases' holds \(biases.count) values; expected S × d(d + 1) for factor tables of S·d = \(items.dimensions) columns, and one bias per user")
            }
            priors = table
        }
        let compressed = try file.compressedTable(for: "itemFactors", kind: .int8, of: items)
        try self.init(algorithm: algorithm, catalog: catalog, userFactors: users, itemFactors: items, userBiases: biases, parameters: p,
                      userPriors: priors, compressedItems: .file(compressed))
    }
}
