
/// The numeric steps of matrix-factorization training — alternating least squares (implicit and
/// explicit feedback), BPR and biased SGD — on ``EmbeddingTable`` factors and a ``SparseMatrix``
/// of interactions, in C SIMD kernels spread over `threads` workers. Models (hyper-parameters,
/// iteration loops, ids, files) live above this, in RecModels.
///
/// Deterministic for a given seed with `threads: 1`. ALS is deterministic at any thread count
/// (rows are independent); BPR and SGD with several threads update shared factors lock-free
/// (Hogwild, as implicit and gensim do), so their results vary run to run.
public enum Factorization {
    /// How implicit ALS solves each row's least-squares problem.
    public enum Solver: Sendable, Equatable {
        /// A few conjugate-gradient steps from the current value (benfred/implicit's default,
        /// 3 steps): O(steps × (d² + entries × d)) per row.
        case conjugateGradient(steps: Int)
        /// The exact solution by Cholesky: O(d³ + entries × d²) per row.
        case cholesky
    }

    /// One half-step of implicit-feedback ALS (Hu, Koren & Volinsky 2008): every row x of
    /// `solving` is re-fitted to its row of `matrix` with `fixed` held, minimizing
    /// Σᵢ cᵢ (pᵢ − x·yᵢ)² + λ‖x‖² with confidence cᵢ = 1 + α·wᵢ for stored entries (p = 1)
    /// and 1 elsewhere (p = 0).
    ///
    /// - Parameters:
    ///   - solving: rows to re-fit (users when `matrix` is users × items).
    ///   - fixed: the other side's factors; `fixed.rows == matrix.columns`.
    ///   - matrix: interaction strengths wᵢ (not yet confidences).
    ///   - unobservedWeight: the weight α₀ of every item in the Gram term (iALS as Rendle et al.
    ///     2022 write it): rows solve (α₀YᵀY + λI + Σ (cᵢ − 1) yᵢyᵢᵀ) x = Σ cᵢ yᵢ; 1 is Hu et al.
    ///   - rowRegularization: per-row λ replacing `regularization` (frequency-scaled
    ///     regularization), one per row of `matrix`; nil uses `regularization` for every row.
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)``,
    ///   ``LinearAlgebraError/notPositiveDefinite(leadingMinor:)`` (Cholesky with λ = 0 only).
    public static func implicitALSStep(solving: inout EmbeddingTable, fixed: EmbeddingTable, matrix: SparseMatrix,
                                       alpha: Float, regularization: Float, unobservedWeight: Float = 1,
                                       rowRegularization: [Float]? = nil, solver: Solver = .conjugateGradient(steps: 3),
                                       threads: Int) throws {
        try checkShapes(solving: solving, fixed: fixed, matrix: matrix)
        if let rowRegularization, rowRegularization.count != matrix.rows {
            throw MatrixError.shapeMismatch(expected: matrix.rows, actual: rowRegularization.count)
        }
        var gram = LinearAlgebra.gram(fixed)
        let d = fixed.dimensions
        let base = rowRegularization == nil ? regularization : 0
        gram.withUnsafeMutableBufferPointer { g in
            if unobservedWeight != 1 { for e in g.indices { g[e] *= unobservedWeight } }
            for f in 0 ..< d { g[f * d + f] += base }
        }
        let failure = solveRows(solving: &solving, fixed: fixed, matrix: matrix, threads: threads) { row, items, weights, count, x, scratch, y in
            let extra = rowRegularization?[row] ?? 0
            switch solver {
            case let .conjugateGradient(steps):
                gram.withUnsafeBufferPointer { g in
                    var system = g.baseAddress!
                    if extra != 0 {
                        // The row's own G + λᵤI in the scratch past CG's 3·d floats (it holds d² + 3·d).
                        let copy = scratch + 3 * d
                        copy.update(from: g.baseAddress!, count: d * d)
                        for f in 0 ..< d { copy[f * d + f] += extra }
                        system = UnsafePointer(copy)
                    }
                    Kernels.alsConjugateGradient(dimensions: d, gram: system, factors: y, rows: items, weights: weights, count: count,
                                                  alpha: alpha, solution: x, steps: steps, scratch: scratch)
                }
                return nil
            case .cholesky:
                return gram.withUnsafeBufferPointer { g in
                    Kernels.solveNormalEquations(dimensions: d, gram: g.baseAddress, diagonal: extra, factors: y, rows: items, weights: weights,
                                                 count: count, weighting: .implicitConfidence(alpha: alpha), solution: x, scratch: scratch)
                }
            }
        }
        if let minor = failure { throw LinearAlgebraError.notPositiveDefinite(leadingMinor: minor) }
    }

    /// One half-step of explicit-feedback ALS with weighted-λ regularization (Zhou et al.
    /// 2008): each row x minimizes Σᵢ (rᵢ − x·yᵢ)² + λ·nₓ‖x‖² over its nₓ stored ratings. Rows
    /// with no ratings become zero.
    public static func explicitALSStep(solving: inout EmbeddingTable, fixed: EmbeddingTable, matrix: SparseMatrix,
                                       regularization: Float, threads: Int) throws {
        try checkShapes(solving: solving, fixed: fixed, matrix: matrix)
        let d = fixed.dimensions
        let failure = solveRows(solving: &solving, fixed: fixed, matrix: matrix, threads: threads) { _, items, weights, count, x, scratch, y in
            if count == 0 {
                x.update(repeating: 0, count: d)
                return nil
            }
            return Kernels.solveNormalEquations(dimensions: d, gram: nil, diagonal: regularization * Float(count), factors: y, rows: items,
                                                weights: weights, count: count, weighting: .leastSquares, solution: x, scratch: scratch)
        }
        if let minor = failure { throw LinearAlgebraError.notPositiveDefinite(leadingMinor: minor) }
    }

    /// One Gibbs half-sweep of Bayesian matrix factorization (Salakhutdinov & Mnih 2008): every
    /// row x of `solving` is replaced by a draw from its conditional posterior
    /// N(A⁻¹b, A⁻¹), A = Λ + α Σᵢ yᵢyᵢᵀ, b = Λμ + α Σᵢ (rᵢ − shift − offsetᵢ) yᵢ over the row's
    /// stored ratings rᵢ, with yᵢ the rows of `regressors` and (μ, Λ) the Gaussian prior.
    ///
    /// Row r's noise comes from a generator seeded by (`seed`, r): the result is the same at any
    /// thread count.
    ///
    /// - Parameters:
    ///   - regressors: the other side's vectors as the model multiplies them; `regressors.rows == matrix.columns`.
    ///   - offsets: a per-column term subtracted from each rating (e.g. item biases), or nil.
    ///   - priorPrecision: Λ, d × d, symmetric positive definite.
    ///   - priorMean: μ, d values.
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)``,
    ///   ``LinearAlgebraError/notPositiveDefinite(leadingMinor:)``.
    /// - Complexity: O(entries × d² + rows × d³).
    public static func gibbsStep(solving: inout EmbeddingTable, regressors: EmbeddingTable, matrix: SparseMatrix, offsets: [Float]?,
                                 shift: Float, alpha: Float, priorPrecision: EmbeddingTable, priorMean: [Float], seed: UInt64,
                                 threads: Int) throws {
        try checkShapes(solving: solving, fixed: regressors, matrix: matrix)
        let d = regressors.dimensions
        guard priorPrecision.rows == d, priorPrecision.dimensions == d else { throw MatrixError.shapeMismatch(expected: d, actual: priorPrecision.rows) }
        guard priorMean.count == d else { throw MatrixError.shapeMismatch(expected: d, actual: priorMean.count) }
        if let offsets, offsets.count != matrix.columns { throw MatrixError.shapeMismatch(expected: matrix.columns, actual: offsets.count) }
        let linear = priorTimesMean(priorPrecision, priorMean)
        let failure = priorPrecision.withUnsafeBufferPointer { precision in
            linear.withUnsafeBufferPointer { h in
                (offsets ?? []).withUnsafeBufferPointer { shifts in
                    solveRows(solving: &solving, fixed: regressors, matrix: matrix, threads: threads) { row, items, ratings, count, x, scratch, y in
                        // The normals sit past the kernel's d·d + d floats of scratch (it holds d² + 3·d).
                        let normals = scratch + d * d + d
                        var generator = SeededGenerator(seed: seed ^ (UInt64(row) &* 0x9E37_79B9_7F4A_7C15))
                        for f in 0 ..< d { normals[f] = generator.nextGaussian() }
                        return Kernels.gibbsRow(dimensions: d, precision: precision.baseAddress!, linear: h.baseAddress!, alpha: alpha,
                                                factors: y, rows: items, ratings: ratings, offsets: offsets == nil ? nil : shifts.baseAddress,
                                                shift: shift, count: count, normals: normals, solution: x, scratch: scratch)
                    }
                }
            }
        }
        if let minor = failure { throw LinearAlgebraError.notPositiveDefinite(leadingMinor: minor) }
    }

    /// The conditional posterior mean A⁻¹b of one new row under
    /// ``gibbsStep(solving:regressors:matrix:offsets:shift:alpha:priorPrecision:priorMean:seed:threads:)``'s
    /// model, for ratings `ratings` of regressor rows `items` (fold-in of a Bayesian MF sample).
    ///
    /// - Throws: ``ScoringError/itemOutOfRange(item:itemCount:)``, ``MatrixError``,
    ///   ``LinearAlgebraError/notPositiveDefinite(leadingMinor:)``.
    /// - Complexity: O(d³ + entries × d²).
    public static func gibbsConditionalMean(items: [Int32], ratings: [Float], regressors: EmbeddingTable, offsets: [Float]?,
                                            shift: Float, alpha: Float, priorPrecision: EmbeddingTable,
                                            priorMean: [Float]) throws -> [Float] {
        let d = regressors.dimensions
        guard priorPrecision.rows == d, priorPrecision.dimensions == d else { throw MatrixError.shapeMismatch(expected: d, actual: priorPrecision.rows) }
        guard priorMean.count == d else { throw MatrixError.shapeMismatch(expected: d, actual: priorMean.count) }
        if let offsets, offsets.count != regressors.rows { throw MatrixError.shapeMismatch(expected: regressors.rows, actual: offsets.count) }
        let linear = priorTimesMean(priorPrecision, priorMean)
        return try foldIn(items: items, weights: ratings, fixed: regressors) { d, y, x, scratch in
            priorPrecision.withUnsafeBufferPointer { precision in
                linear.withUnsafeBufferPointer { h in
                    (offsets ?? []).withUnsafeBufferPointer { shifts in
                        ratings.withUnsafeBufferPointer { r in
                            Kernels.gibbsRow(dimensions: d, precision: precision.baseAddress!, linear: h.baseAddress!, alpha: alpha,
                                             factors: y, rows: items, ratings: r.baseAddress, offsets: offsets == nil ? nil : shifts.baseAddress,
                                             shift: shift, count: items.count, normals: nil, solution: x, scratch: scratch)
                        }
                    }
                }
            }
        }
    }

    /// The implicit-ALS vector of one new row (a user folded in from fresh events) with `fixed`
    /// held, solved exactly: what ``implicitALSStep(solving:fixed:matrix:alpha:regularization:solver:threads:)``
    /// would give that row with the Cholesky solver.
    ///
    /// - Parameters:
    ///   - gram: `fixed`ᵀ`fixed` (``LinearAlgebra/gram(_:)``), computed once for many fold-ins.
    /// - Throws: ``ScoringError/itemOutOfRange(item:itemCount:)``, ``MatrixError``.
    /// - Complexity: O(d³ + entries × d²).
    public static func implicitALSFoldIn(items: [Int32], weights: [Float], fixed: EmbeddingTable, gram: EmbeddingTable,
                                         alpha: Float, regularization: Float) throws -> [Float] {
        try foldIn(items: items, weights: weights, fixed: fixed) { d, y, x, scratch in
            var regularized = gram
            regularized.withUnsafeMutableBufferPointer { g in for f in 0 ..< d { g[f * d + f] += regularization } }
            return regularized.withUnsafeBufferPointer { g in
                Kernels.solveNormalEquations(dimensions: d, gram: g.baseAddress, diagonal: 0, factors: y, rows: items, weights: weights,
                                             count: items.count, weighting: .implicitConfidence(alpha: alpha), solution: x, scratch: scratch)
            }
        }
    }

    /// Ridge regression: the x minimizing Σᵢ (targetᵢ − x·rowᵢ)² + λ‖x‖² over the given rows
    /// (explicit-ALS fold-in with λ = λ₀·n, biased-MF fold-in), solved exactly.
    ///
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)``, ``MatrixError/nonFinite(row:column:)``.
    /// - Complexity: O(d³ + rows × d²).
    public static func ridgeRegression(rows: EmbeddingTable, targets: [Float], regularization: Float) throws -> [Float] {
        guard targets.count == rows.rows else { throw MatrixError.shapeMismatch(expected: rows.rows, actual: targets.count) }
        let indices = (0 ..< Int32(rows.rows)).map { $0 }
        return try foldIn(items: indices, weights: targets, fixed: rows) { d, y, x, scratch in
            Kernels.solveNormalEquations(dimensions: d, gram: nil, diagonal: regularization, factors: y, rows: indices, weights: targets,
                                         count: indices.count, weighting: .leastSquares, solution: x, scratch: scratch)
        }
    }

    /// One BPR epoch (Rendle et al. 2009): `matrix.nonzeroCount` SGD steps on (user, positive,
    /// negative) triples. The last column of both tables is the item bias: users hold 1 there.
    ///
    /// - Returns: the share of sampled triples ranked right before their update (a training
    ///   AUC estimate, as implicit reports).
    public static func bprEpoch(users: inout EmbeddingTable, items: inout EmbeddingTable, matrix: SparseMatrix,
                                learningRate: Float, regularization: Float, seed: UInt64, threads: Int) throws -> Double {
        guard users.rows == matrix.rows, items.rows == matrix.columns, users.dimensions == items.dimensions,
              users.dimensions >= 2
        else { throw MatrixError.shapeMismatch(expected: matrix.rows, actual: users.rows) }
        let entries = matrix.nonzeroCount
        guard entries > 0 else { return 0 }
        let entryUsers = matrix.entryRows
        let offsets = matrix.rowOffsets.map(Int64.init)
        let workers = max(1, min(threads, entries / 10_000 + 1))
        let d = users.dimensions, itemCount = items.rows
        let correct = users.withUnsafeMutableBufferPointer { x in
            items.withUnsafeMutableBufferPointer { y in
                offsets.withUnsafeBufferPointer { o in
                    matrix.columnIndices.withUnsafeBufferPointer { columns in
                        entryUsers.withUnsafeBufferPointer { owners in
                            var counts = [Int](repeating: 0, count: workers)
                            let shared = UncheckedSendable((x.baseAddress!, y.baseAddress!))
                            counts.withUnsafeMutableBufferPointer { counted in
                                Parallel.forEach(workers) { w in
                                    let samples = entries * (w + 1) / workers - entries * w / workers
                                    counted[w] = Kernels.bprSteps(dimensions: d, users: shared.value.0, items: shared.value.1, rowOffsets: o.baseAddress,
                                                                  columns: columns.baseAddress, entryRows: owners.baseAddress, entries: entries,
                                                                  itemCount: itemCount, samples: samples, learningRate: learningRate,
                                                                  regularization: regularization, seed: seed &+ UInt64(w) &* 0x9E37_79B9_7F4A_7C15)
                                }
                            }
                            return counts.reduce(0, +)
                        }
                    }
                }
            }
        }
        return Double(correct) / Double(entries)
    }

    /// One epoch of biased matrix factorization by SGD over the ratings in `order` (Koren 2008;
    /// Surprise's SVD): r̂ = mean + b_u + b_i + p_u·q_i.
    ///
    /// - Returns: the root mean squared training error seen during the pass.
    public static func sgdEpoch(userFactors: inout EmbeddingTable, itemFactors: inout EmbeddingTable,
                                userBiases: inout [Float], itemBiases: inout [Float], mean: Float,
                                users: [Int32], items: [Int32], ratings: [Float], order: [Int64],
                                learningRate: (bias: Float, factor: Float), regularization: (bias: Float, factor: Float),
                                threads: Int) -> Double {
        precondition(users.count == items.count && items.count == ratings.count, "parallel arrays differ in length")
        let d = userFactors.dimensions, n = order.count
        let workers = max(1, min(threads, n / 50_000 + 1))
        var errors = [Double](repeating: 0, count: workers)
        userFactors.withUnsafeMutableBufferPointer { p in
            itemFactors.withUnsafeMutableBufferPointer { q in
                userBiases.withUnsafeMutableBufferPointer { bu in
                    itemBiases.withUnsafeMutableBufferPointer { bi in
                        users.withUnsafeBufferPointer { us in
                            items.withUnsafeBufferPointer { its in
                                ratings.withUnsafeBufferPointer { rs in
                                    order.withUnsafeBufferPointer { os in
                                        errors.withUnsafeMutableBufferPointer { err in
                                            let shared = UncheckedSendable((p.baseAddress!, q.baseAddress!, bu.baseAddress!, bi.baseAddress!))
                                            Parallel.forEach(workers) { w in
                                                let start = n * w / workers, end = n * (w + 1) / workers
                                                err[w] = Kernels.biasedFactorizationPass(
                                                    dimensions: d, userFactors: shared.value.0, itemFactors: shared.value.1,
                                                    userBiases: shared.value.2, itemBiases: shared.value.3, mean: mean, users: us.baseAddress,
                                                    items: its.baseAddress, ratings: rs.baseAddress, order: UnsafeBufferPointer(rebasing: os[start ..< end]),
                                                    learningRate: learningRate, regularization: regularization)
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
        return (errors.reduce(0, +) / Double(max(n, 1))).squareRoot()
    }

    /// The implicit-ALS objective per cell, Σ_u,i c_ui (p_ui − x_u·y_i)² + λ(‖X‖² + ‖Y‖²)
    /// divided by users × items: what the trainer reports as its loss.
    /// - Complexity: O(users × d² + entries × d).
    public static func implicitALSLoss(users: EmbeddingTable, items: EmbeddingTable, matrix: SparseMatrix,
                                       alpha: Float, regularization: Float, threads: Int) throws -> Double {
        try checkShapes(solving: users, fixed: items, matrix: matrix)
        let gram = LinearAlgebra.gram(items), d = items.dimensions
        let offsets = matrix.rowOffsets.map(Int64.init)
        let data = sumOverRows(rows: matrix.rows, threads: threads) { begin, end in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: d)
            defer { scratch.deallocate() }
            return gram.withUnsafeBufferPointer { g in
                users.withUnsafeBufferPointer { x in
                    items.withUnsafeBufferPointer { y in
                        Kernels.alsDataLoss(dimensions: d, gram: g.baseAddress!, users: x.baseAddress!, items: y.baseAddress!, rowOffsets: offsets,
                                            columns: matrix.columnIndices, weights: matrix.values, rows: begin ..< end, alpha: alpha,
                                            scratch: scratch)
                    }
                }
            }
        }
        let norms = Kernels.squaredRowNorms(users).reduce(0.0) { $0 + Double($1) } + Kernels.squaredRowNorms(items).reduce(0.0) { $0 + Double($1) }
        return (data + Double(regularization) * norms) / Double(max(1, matrix.rows * matrix.columns))
    }

    /// The root mean squared error of x_u·y_i against the stored values.
    public static func rootMeanSquaredError(users: EmbeddingTable, items: EmbeddingTable, matrix: SparseMatrix,
                                            threads: Int) throws -> Double {
        try checkShapes(solving: users, fixed: items, matrix: matrix)
        let offsets = matrix.rowOffsets.map(Int64.init), d = items.dimensions
        let total = sumOverRows(rows: matrix.rows, threads: threads) { begin, end in
            users.withUnsafeBufferPointer { x in
                items.withUnsafeBufferPointer { y in
                    Kernels.squaredResiduals(dimensions: d, users: x.baseAddress!, items: y.baseAddress!, rowOffsets: offsets,
                                             columns: matrix.columnIndices, values: matrix.values, rows: begin ..< end)
                }
            }
        }
        return (total / Double(max(1, matrix.nonzeroCount))).squareRoot()
    }

    // MARK: Internals

    /// Λ·μ for a d × d prior precision and a d-vector mean.
    private static func priorTimesMean(_ precision: EmbeddingTable, _ mean: [Float]) -> [Float] {
        (0 ..< mean.count).map { r in precision.withRow(r) { row in zip(row, mean).reduce(0) { $0 + $1.0 * $1.1 } } }
    }

    /// Σ of `part(begin, end)` over contiguous row ranges, one per worker.
    private static func sumOverRows(rows: Int, threads: Int, _ part: (Int, Int) -> Double) -> Double {
        let workers = max(1, min(threads, rows / 256 + 1))
        var sums = [Double](repeating: 0, count: workers)
        sums.withUnsafeMutableBufferPointer { out in
            Parallel.forEach(workers) { w in out[w] = part(rows * w / workers, rows * (w + 1) / workers) }
        }
        return sums.reduce(0, +)
    }

    private static func checkShapes(solving: EmbeddingTable, fixed: EmbeddingTable, matrix: SparseMatrix) throws {
        guard solving.rows == matrix.rows else { throw MatrixError.shapeMismatch(expected: matrix.rows, actual: solving.rows) }
        guard fixed.rows == matrix.columns else { throw MatrixError.shapeMismatch(expected: matrix.columns, actual: fixed.rows) }
        guard solving.dimensions == fixed.dimensions else {
            throw MatrixError.shapeMismatch(expected: fixed.dimensions, actual: solving.dimensions)
        }
    }

    /// Runs `solve(row, items, weights, count, x, scratch, y)` for every row, spread over
    /// workers in contiguous ranges; returns the first failure code (a non-positive-definite
    /// minor), if any.
    private static func solveRows(
        solving: inout EmbeddingTable, fixed: EmbeddingTable, matrix: SparseMatrix, threads: Int,
        _ solve: (Int, UnsafePointer<Int32>?, UnsafePointer<Float>?, Int, UnsafeMutablePointer<Float>,
                  UnsafeMutablePointer<Float>, UnsafePointer<Float>) -> Int?
    ) -> Int? {
        let d = fixed.dimensions, rows = matrix.rows
        // Rows cost O(d² + entries·d): popular items have far more entries than the rest, so
        // rows are cut into chunks of equal cost, many per worker, handed out dynamically.
        let chunks = threads == 1 ? [0, rows] : costBalancedChunks(matrix: matrix, dimensions: d, count: threads * 32)
        let pieces = chunks.count - 1
        var failures = [Int](repeating: 0, count: pieces)
        solving.withUnsafeMutableBufferPointer { x in
            fixed.withUnsafeBufferPointer { y in
                matrix.columnIndices.withUnsafeBufferPointer { columns in
                    matrix.values.withUnsafeBufferPointer { values in
                        failures.withUnsafeMutableBufferPointer { failed in
                            let target = UncheckedSendable(x.baseAddress!)
                            Parallel.forEach(pieces, threads: threads) { w in
                                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: d * d + 3 * d)
                                defer { scratch.deallocate() }
                                for row in chunks[w] ..< chunks[w + 1] {
                                    let start = matrix.rowOffsets[row], count = matrix.rowOffsets[row + 1] - start
                                    let minor = solve(row, columns.baseAddress.map { $0 + start }, values.baseAddress.map { $0 + start },
                                                      count, target.value + row * d, scratch, y.baseAddress!)
                                    if let minor, failed[w] == 0 { failed[w] = minor }
                                }
                            }
                        }
                    }
                }
            }
        }
        return failures.first { $0 != 0 }
    }

    /// Row boundaries cutting `matrix` into about `count` ranges of equal cost d + entries.
    private static func costBalancedChunks(matrix: SparseMatrix, dimensions: Int, count: Int) -> [Int] {
        let total = matrix.rows * dimensions + matrix.nonzeroCount
        let target = max(1, total / max(1, count))
        var bounds = [0], accumulated = 0
        for row in 0 ..< matrix.rows {
            accumulated += dimensions + matrix.rowOffsets[row + 1] - matrix.rowOffsets[row]
            if accumulated >= target && row + 1 < matrix.rows {
                bounds.append(row + 1)
                accumulated = 0
            }
        }
        bounds.append(matrix.rows)
        return bounds
    }

    private static func foldIn(items: [Int32], weights: [Float], fixed: EmbeddingTable,
                               _ solve: (Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Int?) throws -> [Float] {
        guard items.count == weights.count else { throw MatrixError.shapeMismatch(expected: items.count, actual: weights.count) }
        if let bad = items.first(where: { $0 < 0 || Int($0) >= fixed.rows }) {
            throw ScoringError.itemOutOfRange(item: Int(bad), itemCount: fixed.rows)
        }
        if let bad = weights.firstIndex(where: { !$0.isFinite }) { throw MatrixError.nonFinite(row: 0, column: bad) }
        let d = fixed.dimensions
        var x = [Float](repeating: 0, count: d)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: d * d + 3 * d)
        defer { scratch.deallocate() }
        let failure = fixed.withUnsafeBufferPointer { y in x.withUnsafeMutableBufferPointer { solve(d, y.baseAddress!, $0.baseAddress!, scratch) } }
        if let minor = failure { throw LinearAlgebraError.notPositiveDefinite(leadingMinor: minor) }
        return x
    }
}
