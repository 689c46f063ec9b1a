import RecKernels
internal import RealModule

/// Progress callbacks get one report per iteration.
public typealias ProgressHandler = @Sendable (TrainingProgress) -> Void

/// Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with benfred/implicit's conjugate-gradient
/// solver (or exact Cholesky): confidence 1 + α·r, optional BM25 or TF-IDF weighting of the
/// interaction matrix first.
public struct ImplicitALS: Sendable {
    /// How to re-weight interaction strengths before training.
    public enum Weighting: String, Sendable, CaseIterable {
        case none, bm25, tfidf
    }

    /// Latent dimensions per vector (implicit defaults to 100).
    public var factors = 64
    /// ALS sweeps, each solving users then items (implicit's default).
    public var iterations = 15
    /// Confidence scale α in 1 + α·r (implicit's default).
    public var alpha: Float = 1
    /// L2 penalty λ on every vector (implicit's default).
    public var regularization: Float = 0.01
    /// How each row is solved; 3 conjugate-gradient steps is implicit's default.
    public var solver = Factorization.Solver.conjugateGradient(steps: 3)
    /// Re-weighting of the interactions before training; none by default.
    public var weighting = Weighting.none
    /// iALS's unobserved weight α₀ (Rendle et al., "Revisiting the Performance of iALS on Item
    /// Recommendation Benchmarks", RecSys 2022): every item enters each row's Gram term with
    /// weight α₀, stored entries with α₀ + α·r. 1 is Hu et al.'s model.
    public var unobservedWeight: Float = 1
    /// Frequency-scaled regularization exponent ν (Rendle et al. 2022): a row with n stored
    /// entries gets λ·(n + α₀·N)^ν, N the other side's count; 0 (the default) is a plain λ.
    public var frequencyScaling: Float = 0
    /// Seed of the initial vectors (Gaussian, standard deviation 0.01).
    public var seed: UInt64 = 0
    /// Worker threads (default: ``ScoringThreads/limit``, else every core); ALS gives the same
    /// result at any count.
    public var threads = FlatIndex.defaultThreads

    /// The default hyper-parameters.
    public init() {}

    /// Trains on `catalog.history` (users × items strengths).
    ///
    /// - Throws: ``ModelError/emptyTrainingSet``, ``ModelError/invalidParameter(_:)``.
    /// - Complexity: O(iterations × (entries × factors × steps + (users + items) × factors²)).
    public func fit(_ catalog: ModelCatalog, progress: ProgressHandler? = nil) throws -> FactorModel {
        guard factors >= 1, iterations >= 1, alpha >= 0, regularization >= 0, threads >= 1 else {
            throw ModelError.invalidParameter("ALS needs factors ≥ 1, iterations ≥ 1, alpha ≥ 0, regularization ≥ 0, threads ≥ 1")
        }
        guard unobservedWeight > 0, unobservedWeight.isFinite, frequencyScaling >= 0, frequencyScaling.isFinite else {
            throw ModelError.invalidParameter("ALS needs unobservedWeight > 0 (got \(unobservedWeight)) and frequencyScaling ≥ 0 (got \(frequencyScaling))")
        }
        try checkFactorMemory(catalog, factors: factors)
        guard catalog.history.nonzeroCount > 0 else { throw ModelError.emptyTrainingSet }
        let matrix = try Weights.apply(weighting, to: catalog.history)
        let transposed = matrix.transposed()
        var users = EmbeddingTable.gaussian(rows: catalog.users.count, dimensions: factors, seed: seed, scale: 0.01)
        var items = EmbeddingTable.gaussian(rows: catalog.items.count, dimensions: factors, seed: seed &+ 1, scale: 0.01)
        let clock = ContinuousClock(), start = clock.now
        let userRegularization = rowRegularization(matrix), itemRegularization = rowRegularization(transposed)
        for iteration in 1 ... iterations {
            try Factorization.implicitALSStep(solving: &users, fixed: items, matrix: matrix, alpha: alpha, regularization: regularization,
                                              unobservedWeight: unobservedWeight, rowRegularization: userRegularization,
                                              solver: solver, threads: threads)
            try Factorization.implicitALSStep(solving: &items, fixed: users, matrix: transposed, alpha: alpha, regularization: regularization,
                                              unobservedWeight: unobservedWeight, rowRegularization: itemRegularization,
                                              solver: solver, threads: threads)
            if let progress {
                let elapsed = seconds(clock.now - start)
                let loss = try Factorization.implicitALSLoss(users: users, items: items, matrix: matrix, alpha: alpha,
                                                             regularization: regularization, threads: threads)
                progress(TrainingProgress(iteration: iteration, iterations: iterations, value: loss, valueName: "loss", elapsed: elapsed))
            }
        }
        return try FactorModel(algorithm: .implicitALS(alpha: alpha, regularization: regularization), catalog: catalog,
                               userFactors: users, itemFactors: items, parameters: parameters)
    }

    /// λ·(n + α₀·N)^ν per row of `matrix` (n its stored entries, N its columns), or nil for a
    /// plain λ (ν = 0).
    func rowRegularization(_ matrix: SparseMatrix) -> [Float]? {
        guard frequencyScaling != 0 else { return nil }
        return (0 ..< matrix.rows).map { row in
            ImplicitALS.scaledRegularization(regularization, entries: matrix.rowOffsets[row + 1] - matrix.rowOffsets[row],
                                             otherSide: matrix.columns, unobservedWeight: unobservedWeight, exponent: frequencyScaling)
        }
    }

    /// Rendle et al.'s frequency-scaled λ for a row with `entries` stored entries.
    static func scaledRegularization(_ lambda: Float, entries: Int, otherSide: Int, unobservedWeight: Float, exponent: Float) -> Float {
        exponent == 0 ? lambda : lambda * Float.pow(Float(entries) + unobservedWeight * Float(otherSide), exponent)
    }

    var parameters: [String: Double] {
        var result: [String: Double] = ["factors": Double(factors), "iterations": Double(iterations), "alpha": Double(alpha),
                                        "regularization": Double(regularization), "seed": Double(seed),
                                        "weighting": Double(Weighting.allCases.firstIndex(of: weighting)!)]
        if case let .conjugateGradient(steps) = solver { result["cgSteps"] = Double(steps) } else { result["cholesky"] = 1 }
        if unobservedWeight != 1 { result["unobservedWeight"] = Double(unobservedWeight) }
        if frequencyScaling != 0 { result["frequencyScaling"] = Double(frequencyScaling) }
        return result
    }
}

/// Explicit-feedback ALS with weighted-λ regularization (Zhou et al. 2008) for ratings.
public struct ExplicitALS: Sendable {
    /// Latent dimensions per vector.
    public var factors = 32
    /// ALS sweeps, each solving users then items.
    public var iterations = 15
    /// L2 penalty λ, scaled per row by its number of ratings (weighted-λ).
    public var regularization: Float = 0.05
    /// Seed of the initial vectors (Gaussian, standard deviation 0.1).
    public var seed: UInt64 = 0
    /// Worker threads (default: ``ScoringThreads/limit``, else every core); ALS gives the same
    /// result at any count.
    public var threads = FlatIndex.defaultThreads

    /// The default hyper-parameters.
    public init() {}

    /// Trains on `catalog.history` (users × items ratings). Progress reports training RMSE.
    public func fit(_ catalog: ModelCatalog, progress: ProgressHandler? = nil) throws -> FactorModel {
        guard factors >= 1, iterations >= 1, regularization > 0, threads >= 1 else {
            throw ModelError.invalidParameter("explicit ALS needs factors ≥ 1, iterations ≥ 1, regularization > 0, threads ≥ 1")
        }
        try checkFactorMemory(catalog, factors: factors)
        guard catalog.history.nonzeroCount > 0 else { throw ModelError.emptyTrainingSet }
        let matrix = catalog.history, transposed = matrix.transposed()
        var users = EmbeddingTable.gaussian(rows: catalog.users.count, dimensions: factors, seed: seed, scale: 0.1)
        var items = EmbeddingTable.gaussian(rows: catalog.items.count, dimensions: factors, seed: seed &+ 1, scale: 0.1)
        let clock = ContinuousClock(), start = clock.now
        for iteration in 1 ... iterations {
            try Factorization.explicitALSStep(solving: &users, fixed: items, matrix: matrix, regularization: regularization, threads: threads)
            try Factorization.explicitALSStep(solving: &items, fixed: users, matrix: transposed, regularization: regularization, threads: threads)
            if let progress {
                let rmse = try Factorization.rootMeanSquaredError(users: users, items: items, matrix: matrix, threads: threads)
                progress(TrainingProgress(iteration: iteration, iterations: iterations, value: rmse, valueName: "train RMSE",
                                          elapsed: seconds(clock.now - start)))
            }
        }
        return try FactorModel(algorithm: .explicitALS(regularization: regularization), catalog: catalog, userFactors: users,
                               itemFactors: items, parameters: ["factors": Double(factors), "iterations": Double(iterations),
                                                                "regularization": Double(regularization), "seed": Double(seed)])
    }
}

/// Bayesian personalized ranking (Rendle et al. 2009) by SGD for implicit feedback, with an
/// item bias, as benfred/implicit trains it.
public struct BPR: Sendable {
    /// Latent dimensions per vector, plus one for the item bias (implicit defaults to 100).
    public var factors = 64
    /// SGD epochs over the stored interactions (implicit's default).
    public var iterations = 100
    /// SGD step size (implicit's default).
    public var learningRate: Float = 0.01
    /// L2 penalty (implicit's default).
    public var regularization: Float = 0.01
    /// Seed of the initial vectors (Gaussian, standard deviation 0.01) and of triple sampling.
    public var seed: UInt64 = 0
    /// Several threads update shared factors lock-free (Hogwild): fast, not bit-reproducible.
    public var threads = FlatIndex.defaultThreads

    /// The default hyper-parameters.
    public init() {}

    /// Trains on which (user, item) pairs `catalog.history` stores. Progress reports the share
    /// of sampled triples already ranked right.
    public func fit(_ catalog: ModelCatalog, progress: ProgressHandler? = nil) throws -> FactorModel {
        guard factors >= 1, iterations >= 1, learningRate > 0, regularization >= 0, threads >= 1 else {
            throw ModelError.invalidParameter("BPR needs factors ≥ 1, iterations ≥ 1, learningRate > 0, regularization ≥ 0, threads ≥ 1")
        }
        try checkFactorMemory(catalog, factors: factors)
        guard catalog.history.nonzeroCount > 0 else { throw ModelError.emptyTrainingSet }
        var users = EmbeddingTable.gaussian(rows: catalog.users.count, dimensions: factors + 1, seed: seed, scale: 0.01)
        var items = EmbeddingTable.gaussian(rows: catalog.items.count, dimensions: factors + 1, seed: seed &+ 1, scale: 0.01)
        let d = factors + 1
        users.withUnsafeMutableBufferPointer { x in for u in 0 ..< catalog.users.count { x[u * d + factors] = 1 } }
        items.withUnsafeMutableBufferPointer { y in for i in 0 ..< catalog.items.count { y[i * d + factors] = 0 } }
        let clock = ContinuousClock(), start = clock.now
        for iteration in 1 ... iterations {
            let correct = try Factorization.bprEpoch(users: &users, items: &items, matrix: catalog.history, learningRate: learningRate,
                                                     regularization: regularization, seed: seed &+ UInt64(iteration) &* 7919, threads: threads)
            progress?(TrainingProgress(iteration: iteration, iterations: iterations, value: correct, valueName: "correct",
                                       elapsed: seconds(clock.now - start)))
        }
        return try FactorModel(algorithm: .bpr(learningRate: learningRate, regularization: regularization), catalog: catalog,
                               userFactors: users, itemFactors: items,
                               parameters: ["factors": Double(factors), "iterations": Double(iterations), "learningRate": Double(learningRate),
                                            "regularization": Double(regularization), "seed": Double(seed)])
    }
}

/// Biased matrix factorization by SGD for ratings (Koren 2008; Surprise's SVD): r̂ = μ + b_u +
/// b_i + p_u·q_i, entries visited in a fresh seeded order each epoch.
public struct BiasedMF: Sendable {
    /// Latent dimensions per vector (Surprise's `n_factors`).
    public var factors = 100
    /// SGD passes over the ratings (Surprise's `n_epochs`).
    public var epochs = 20
    /// SGD step size for the factors, and for the biases unless ``biasLearningRate`` is set
    /// (Surprise's `lr_all`).
    public var learningRate: Float = 0.005
    /// L2 penalty on the factors, and on the biases unless ``biasRegularization`` is set
    /// (Surprise's `reg_all`).
    public var regularization: Float = 0.02
    /// SGD step size for the biases; nil uses ``learningRate`` (Surprise's `lr_bu`/`lr_bi`).
    public var biasLearningRate: Float? = nil
    /// L2 penalty on the biases; nil uses ``regularization`` (Surprise's `reg_bu`/`reg_bi`).
    public var biasRegularization: Float? = nil
    /// Standard deviation of the initial factors.
    public var initialScale: Float = 0.1
    /// Seed of the initial factors and of each epoch's visiting order.
    public var seed: UInt64 = 0
    /// One thread reproduces a run exactly; several update lock-free (Hogwild).
    public var threads = 1

    /// The default hyper-parameters (Surprise's `SVD` defaults).
    public init() {}

    /// Trains on `catalog.history` (users × items ratings). Progress reports training RMSE.
    public func fit(_ catalog: ModelCatalog, progress: ProgressHandler? = nil) throws -> FactorModel {
        guard factors >= 1, epochs >= 1, learningRate > 0, regularization >= 0, threads >= 1 else {
            throw ModelError.invalidParameter("biased MF needs factors ≥ 1, epochs ≥ 1, learningRate > 0, regularization ≥ 0, threads ≥ 1")
        }
        try checkFactorMemory(catalog, factors: factors)
        let history = catalog.history
        guard history.nonzeroCount > 0 else { throw ModelError.emptyTrainingSet }
        let userIndex = history.entryRows
        let mean = Float(history.values.reduce(0.0) { $0 + Double($1) } / Double(history.nonzeroCount))
        var p = EmbeddingTable.gaussian(rows: catalog.users.count, dimensions: factors, seed: seed, scale: initialScale)
        var q = EmbeddingTable.gaussian(rows: catalog.items.count, dimensions: factors, seed: seed &+ 1, scale: initialScale)
        var userBiases = [Float](repeating: 0, count: catalog.users.count), itemBiases = [Float](repeating: 0, count: catalog.items.count)
        var generator = SeededGenerator(seed: seed &+ 2)
        var order = (0 ..< Int64(history.nonzeroCount)).map { $0 }
        let clock = ContinuousClock(), start = clock.now
        for epoch in 1 ... epochs {
            order.shuffle(using: &generator)
            let rmse = Factorization.sgdEpoch(userFactors: &p, itemFactors: &q, userBiases: &userBiases, itemBiases: &itemBiases,
                                              mean: mean, users: userIndex, items: history.columnIndices, ratings: history.values,
                                              order: order, learningRate: (biasLearningRate ?? learningRate, learningRate),
                                              regularization: (biasRegularization ?? regularization, regularization), threads: threads)
            progress?(TrainingProgress(iteration: epoch, iterations: epochs, value: rmse, valueName: "train RMSE",
                                       elapsed: seconds(clock.now - start)))
        }
        // Ranking vectors: users [p, 1], items [q, b_i].
        let users = try augment(p, with: [Float](repeating: 1, count: p.rows))
        let items = try augment(q, with: itemBiases)
        return try FactorModel(algorithm: .biasedMF(mean: mean, regularization: regularization), catalog: catalog,
                               userFactors: users, itemFactors: items, userBiases: userBiases,
                               parameters: ["factors": Double(factors), "epochs": Double(epochs), "learningRate": Double(learningRate),
                                            "regularization": Double(regularization), "mean": Double(mean), "seed": Double(seed)])
    }

    private func augment(_ table: EmbeddingTable, with column: [Float]) throws -> EmbeddingTable {
        var result = EmbeddingTable(rows: table.rows, dimensions: table.dimensions + 1)
        let d = table.dimensions
        result.withUnsafeMutableBufferPointer { target in
            for r in 0 ..< table.rows {
                table.withRow(r) { row in for f in 0 ..< d { target[r * (d + 1) + f] = row[f] } }
                target[r * (d + 1) + d] = column[r]
            }
        }
        return result
    }
}

/// Re-weightings of an interaction matrix, as implicit's `bm25_weight` and `tfidf_weight`.
enum Weights {
    static func apply(_ weighting: ImplicitALS.Weighting, to matrix: SparseMatrix, k1: Float = 100, b: Float = 0.8) throws -> SparseMatrix {
        if weighting == .none { return matrix }
        // Items are the "terms", users the "documents": idf over users per item.
        var itemUsers = [Int](repeating: 0, count: matrix.columns)
        for column in matrix.columnIndices { itemUsers[Int(column)] += 1 }
        let users = Float(matrix.rows)
        let idf = itemUsers.map { count -> Float in
            weighting == .bm25 ? Float.log(users / Float(max(1, count))) : Float.log(users / Float(1 + count))
        }
        var values = matrix.values
        switch weighting {
        case .bm25:
            let lengths = (0 ..< matrix.rows).map { u in matrix.row(u).values.reduce(0, +) }
            let average = lengths.reduce(0, +) / max(1, Float(lengths.count))
            for u in 0 ..< matrix.rows {
                let norm = k1 * (1 - b + b * lengths[u] / max(average, .leastNormalMagnitude))
                for e in matrix.rowOffsets[u] ..< matrix.rowOffsets[u + 1] {
                    values[e] = values[e] * (k1 + 1) / (norm + values[e]) * idf[Int(matrix.columnIndices[e])]
                }
            }
        case .tfidf:
            for e in values.indices { values[e] = values[e].squareRoot() * idf[Int(matrix.columnIndices[e])] }
        case .none: break
        }
        return try SparseMatrix(rows: matrix.rows, columns: matrix.columns, rowOffsets: matrix.rowOffsets,
                                columnIndices: matrix.columnIndices, values: values)
    }
}

/// Refuses factor counts whose tables cannot fit in memory, saying how much they would need:
/// the user and item tables ((users + items) × (factors + 1) floats) and one factors × factors
/// system per solve.
func checkFactorMemory(_ catalog: ModelCatalog, factors: Int) throws {
    do {
        try EmbeddingTable.checkFits(rows: catalog.users.count + catalog.items.count, dimensions: factors + 1, what: "the factor tables")
        try EmbeddingTable.checkFits(rows: factors, dimensions: factors, what: "one factors × factors system")
    } catch {
        throw ModelError.invalidParameter("\(factors) factors do not fit: \(error)")
    }
}
