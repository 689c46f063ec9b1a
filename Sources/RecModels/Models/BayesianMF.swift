import RecKernels
internal import RealModule

/// Bayesian probabilistic matrix factorization (Salakhutdinov & Mnih, "Bayesian Probabilistic
/// Matrix Factorization using Markov Chain Monte Carlo", ICML 2008) for ratings, sampled by
/// Gibbs, with user and item biases: r ~ N(μ + b_u + b_i + u·v, 1/α), each side's vectors
/// [u, b_u] and [v, b_i] drawn from a Gaussian whose mean and precision have a Normal–Wishart
/// hyper-prior (μ₀ = 0, β₀, ν₀ = d, W₀ = I). μ is the training mean.
///
/// Each sweep draws both sides' hyper-parameters, then every user's vector given the items,
/// then every item's given the users: one small d × d Cholesky per row, rows spread over the
/// threads. After ``burnIn`` sweeps every ``thinning``-th sample is kept, and the model predicts
/// their average, μ + mean(b_u) + mean(b_i + u·v) — the posterior predictive mean. The kept
/// samples are laid side by side so the average stays one inner product: users hold
/// [u₁/S, 1/S, …, u_S/S, 1/S] and items [v₁, b_{i,1}, …, v_S, b_{i,S}], ranked by the same
/// top-K kernel as every factor model.
///
/// Deterministic for a seed at any thread count (each row's noise is seeded by the sweep and
/// the row).
public struct BayesianMF: Sendable {
    /// Latent dimensions per sample (the bias adds one).
    public var factors = 10
    /// Gibbs sweeps in all, burn-in included.
    public var iterations = 100
    /// Sweeps discarded before samples are kept.
    public var burnIn = 20
    /// Keep every n-th sweep after the burn-in.
    public var thinning = 2
    /// Observation precision α (1 / noise variance); 2 is Salakhutdinov & Mnih's choice for 1–5 stars.
    public var precision: Float = 2
    /// β₀ of the Normal–Wishart hyper-prior (how strongly the prior mean is pulled to 0).
    public var priorStrength: Double = 2
    /// Standard deviation of the initial vectors.
    public var initialScale: Float = 0.1
    /// Seed of the initial vectors and of every draw.
    public var seed: UInt64 = 0
    /// Worker threads; the result does not depend on them.
    public var threads = FlatIndex.defaultThreads

    /// The default hyper-parameters.
    public init() {}

    /// Samples kept: one per ``thinning`` sweeps after the burn-in.
    public var keptSamples: Int { max(0, (iterations - burnIn) / thinning) }

    /// Trains on `catalog.history` (users × items ratings). Progress reports the training RMSE
    /// of the current sample.
    ///
    /// - Throws: ``ModelError/emptyTrainingSet``, ``ModelError/invalidParameter(_:)``.
    /// - Complexity: O(iterations × (ratings × d² + (users + items) × d³)) with d = factors + 1;
    ///   the model holds (users + items) × kept samples × d floats.
    public func fit(_ catalog: ModelCatalog, progress: ProgressHandler? = nil) throws -> FactorModel {
        guard factors >= 1, iterations >= 1, burnIn >= 0, thinning >= 1, threads >= 1 else {
            throw ModelError.invalidParameter("Bayesian MF needs factors ≥ 1, iterations ≥ 1, burnIn ≥ 0, thinning ≥ 1, threads ≥ 1")
        }
        guard keptSamples >= 1 else {
            throw ModelError.invalidParameter("Bayesian MF keeps no sample: iterations (\(iterations)) must exceed burnIn (\(burnIn)) by at least thinning (\(thinning))")
        }
        guard precision > 0, precision.isFinite, priorStrength > 0, priorStrength.isFinite, initialScale >= 0 else {
            throw ModelError.invalidParameter("Bayesian MF needs precision > 0 (got \(precision)), priorStrength > 0 (got \(priorStrength)) and initialScale ≥ 0")
        }
        let d = factors + 1, samples = keptSamples
        try checkFactorMemory(catalog, factors: samples * d)
        let matrix = catalog.history
        guard matrix.nonzeroCount > 0 else { throw ModelError.emptyTrainingSet }
        let transposed = matrix.transposed()
        let mean = Float(matrix.values.reduce(0.0) { $0 + Double($1) } / Double(matrix.nonzeroCount))
        // Each row: [factors…, bias].
        var users = EmbeddingTable.gaussian(rows: catalog.users.count, dimensions: d, seed: seed, scale: initialScale)
        var items = EmbeddingTable.gaussian(rows: catalog.items.count, dimensions: d, seed: seed &+ 1, scale: initialScale)
        var userSamples = EmbeddingTable(rows: catalog.users.count, dimensions: samples * d)
        var itemSamples = EmbeddingTable(rows: catalog.items.count, dimensions: samples * d)
        var userBiases = [Float](repeating: 0, count: catalog.users.count)
        var userPriors = EmbeddingTable(rows: samples, dimensions: d + d * d)
        var generator = SeededGenerator(seed: seed &+ 2)
        let hyperPrior = NormalWishart(dimensions: d, strength: priorStrength)
        let clock = ContinuousClock(), start = clock.now
        var kept = 0
        for sweep in 1 ... iterations {
            let userPrior = hyperPrior.posteriorDraw(given: users, using: &generator)
            let itemPrior = hyperPrior.posteriorDraw(given: items, using: &generator)
            let sweepSeed = seed &+ UInt64(sweep) &* 0xD1B5_4A32_D192_ED03
            let (itemRegressors, itemOffsets) = Self.regressors(items)
            try Factorization.gibbsStep(solving: &users, regressors: itemRegressors, matrix: matrix, offsets: itemOffsets, shift: mean,
                                        alpha: precision, priorPrecision: userPrior.precision, priorMean: userPrior.mean,
                                        seed: sweepSeed, threads: threads)
            let (userRegressors, userOffsets) = Self.regressors(users)
            try Factorization.gibbsStep(solving: &items, regressors: userRegressors, matrix: transposed, offsets: userOffsets, shift: mean,
                                        alpha: precision, priorPrecision: itemPrior.precision, priorMean: itemPrior.mean,
                                        seed: sweepSeed ^ 0x5851_F42D_4C95_7F2D, threads: threads)
            if sweep > burnIn, (sweep - burnIn) % thinning == 0, kept < samples {
                // Users: [u/S, 1/S] so the inner product averages u·v + b_i; b_u is averaged apart.
                let scale = 1 / Float(samples)
                Self.place(users, into: &userSamples, block: kept, scale: scale, lastColumn: scale)
                Self.place(items, into: &itemSamples, block: kept, scale: 1, lastColumn: nil)
                users.withUnsafeBufferPointer { u in for r in userBiases.indices { userBiases[r] += scale * u[r * d + factors] } }
                userPriors.withUnsafeMutableBufferPointer { target in
                    let base = kept * (d + d * d)
                    for f in 0 ..< d { target[base + f] = userPrior.mean[f] }
                    userPrior.precision.withUnsafeBufferPointer { p in for e in 0 ..< d * d { target[base + d + e] = p[e] } }
                }
                kept += 1
            }
            if let progress {
                progress(TrainingProgress(iteration: sweep, iterations: iterations, value: Self.trainingRMSE(users, items, matrix, mean: mean),
                                          valueName: "sample train RMSE", elapsed: seconds(clock.now - start)))
            }
        }
        return try FactorModel(algorithm: .bayesianMF(mean: mean, precision: precision), catalog: catalog, userFactors: userSamples,
                               itemFactors: itemSamples, userBiases: userBiases, parameters: parameters(mean: mean), userPriors: userPriors)
    }

    func parameters(mean: Float) -> [String: Double] {
        ["factors": Double(factors), "iterations": Double(iterations), "burnIn": Double(burnIn), "thinning": Double(thinning),
         "precision": Double(precision), "priorStrength": priorStrength, "mean": Double(mean), "seed": Double(seed),
         "samples": Double(keptSamples)]
    }

    /// A side's vectors as the other side multiplies them — [v, 1] — and their biases apart.
    static func regressors(_ table: EmbeddingTable) -> (EmbeddingTable, [Float]) {
        var regressors = table
        let d = table.dimensions
        var biases = [Float](repeating: 0, count: table.rows)
        regressors.withUnsafeMutableBufferPointer { values in
            for r in 0 ..< table.rows {
                biases[r] = values[r * d + d - 1]
                values[r * d + d - 1] = 1
            }
        }
        return (regressors, biases)
    }

    /// Copies `table` (rows × d) into columns block·d ..< (block + 1)·d of `target`, scaled, with
    /// the last column set to `lastColumn` when given.
    static func place(_ table: EmbeddingTable, into target: inout EmbeddingTable, block: Int, scale: Float, lastColumn: Float?) {
        let d = table.dimensions, width = target.dimensions
        target.withUnsafeMutableBufferPointer { out in
            table.withUnsafeBufferPointer { values in
                for r in 0 ..< table.rows {
                    for f in 0 ..< d { out[r * width + block * d + f] = scale * values[r * d + f] }
                    if let lastColumn { out[r * width + block * d + d - 1] = lastColumn }
                }
            }
        }
    }

    /// RMSE over the training ratings of one sample's prediction μ + b_u + b_i + u·v.
    static func trainingRMSE(_ users: EmbeddingTable, _ items: EmbeddingTable, _ matrix: SparseMatrix, mean: Float) -> Double {
        let d = users.dimensions
        var squared = 0.0
        users.withUnsafeBufferPointer { u in
            items.withUnsafeBufferPointer { v in
                for row in 0 ..< matrix.rows {
                    for e in matrix.rowOffsets[row] ..< matrix.rowOffsets[row + 1] {
                        let item = Int(matrix.columnIndices[e])
                        var prediction = mean + u[row * d + d - 1] + v[item * d + d - 1]
                        for f in 0 ..< d - 1 { prediction += u[row * d + f] * v[item * d + f] }
                        let error = Double(matrix.values[e] - prediction)
                        squared += error * error
                    }
                }
            }
        }
        return (squared / Double(max(1, matrix.nonzeroCount))).squareRoot()
    }
}

/// The Normal–Wishart hyper-prior of Bayesian MF over d-dimensional row vectors: μ₀ = 0, β₀,
/// ν₀ = d, W₀ = I. Its conjugate update draws a Gaussian prior (mean, precision) given the rows.
struct NormalWishart {
    let dimensions: Int
    let strength: Double

    init(dimensions: Int, strength: Double) {
        self.dimensions = dimensions
        self.strength = strength
    }

    /// A draw of (μ, Λ) from the posterior given the rows of `table` (Salakhutdinov & Mnih 2008, eq. 14):
    /// Λ ~ Wishart(W*, ν₀ + N), μ ~ N(μ*, (β* Λ)⁻¹).
    func posteriorDraw(given table: EmbeddingTable, using generator: inout SeededGenerator) -> (mean: [Float], precision: EmbeddingTable) {
        let d = dimensions, n = Double(table.rows)
        var average = [Double](repeating: 0, count: d)
        table.withUnsafeBufferPointer { x in
            for r in 0 ..< table.rows { for f in 0 ..< d { average[f] += Double(x[r * d + f]) } }
        }
        for f in 0 ..< d { average[f] /= max(n, 1) }
        // W*⁻¹ = W₀⁻¹ + N·S + β₀N/(β₀ + N)·x̄x̄ᵀ, with N·S the scatter about the mean.
        var inverseScale = [Double](repeating: 0, count: d * d)
        for f in 0 ..< d { inverseScale[f * d + f] = 1 }
        table.withUnsafeBufferPointer { x in
            var centred = [Double](repeating: 0, count: d)
            for r in 0 ..< table.rows {
                for f in 0 ..< d { centred[f] = Double(x[r * d + f]) - average[f] }
                for i in 0 ..< d { for j in 0 ... i { inverseScale[i * d + j] += centred[i] * centred[j] } }
            }
        }
        let shrink = strength * n / (strength + n)
        for i in 0 ..< d { for j in 0 ... i { inverseScale[i * d + j] += shrink * average[i] * average[j] } }
        for i in 0 ..< d { for j in 0 ..< i { inverseScale[j * d + i] = inverseScale[i * d + j] } }
        let degrees = Double(d) + n
        let posteriorStrength = strength + n
        let posteriorMean = average.map { $0 * n / posteriorStrength }
        // Λ = C·A·Aᵀ·Cᵀ with W* = C·Cᵀ and A Bartlett's lower-triangular factor.
        let scale = DenseSymmetric.inverse(inverseScale, d)
        let c = DenseSymmetric.cholesky(scale, d)
        var a = [Double](repeating: 0, count: d * d)
        for i in 0 ..< d {
            a[i * d + i] = (2 * Gamma.draw(shape: (degrees - Double(i)) / 2, using: &generator)).squareRoot()
            for j in 0 ..< i { a[i * d + j] = Double(generator.nextGaussian()) }
        }
        let ca = DenseSymmetric.multiplyLower(c, a, d)  // C·A, lower triangular
        var lambda = [Double](repeating: 0, count: d * d)
        for i in 0 ..< d {
            for j in 0 ... i {
                var s = 0.0
                for k in 0 ... j { s += ca[i * d + k] * ca[j * d + k] }
                lambda[i * d + j] = s
                lambda[j * d + i] = s
            }
        }
        // μ = μ* + L⁻ᵀε with β*Λ = L·Lᵀ.
        let l = DenseSymmetric.cholesky(lambda.map { $0 * posteriorStrength }, d)
        var z = (0 ..< d).map { _ in Double(generator.nextGaussian()) }
        for i in stride(from: d - 1, through: 0, by: -1) {
            var s = z[i]
            for k in i + 1 ..< d { s -= l[k * d + i] * z[k] }
            z[i] = s / l[i * d + i]
        }
        let mean = (0 ..< d).map { Float(posteriorMean[$0] + z[$0]) }
        var precision = EmbeddingTable(rows: d, dimensions: d)
        precision.withUnsafeMutableBufferPointer { p in for e in 0 ..< d * d { p[e] = Float(lambda[e]) } }
        return (mean, precision)
    }
}

/// Small dense symmetric positive definite matrices (row-major doubles) for the hyper-prior draws:
/// d is at most a few hundred, so plain loops are enough.
enum DenseSymmetric {
    /// The lower-triangular L with a = L·Lᵀ (upper part zero). A non-positive pivot is clamped to
    /// a tiny positive value: the matrices here are sums of a positive definite prior and scatters.
    static func cholesky(_ a: [Double], _ d: Int) -> [Double] {
        var l = [Double](repeating: 0, count: d * d)
        for j in 0 ..< d {
            var s = a[j * d + j]
            for k in 0 ..< j { s -= l[j * d + k] * l[j * d + k] }
            let pivot = max(s, 1e-12).squareRoot()
            l[j * d + j] = pivot
            for i in j + 1 ..< d {
                var t = a[i * d + j]
                for k in 0 ..< j { t -= l[i * d + k] * l[j * d + k] }
                l[i * d + j] = t / pivot
            }
        }
        return l
    }

    /// a⁻¹ through its Cholesky factor.
    static func inverse(_ a: [Double], _ d: Int) -> [Double] {
        let l = cholesky(a, d)
        var result = [Double](repeating: 0, count: d * d)
        var column = [Double](repeating: 0, count: d)
        for c in 0 ..< d {
            // L y = e_c, then Lᵀ x = y.
            for i in 0 ..< d {
                var s = i == c ? 1.0 : 0
                for k in 0 ..< i { s -= l[i * d + k] * column[k] }
                column[i] = s / l[i * d + i]
            }
            for i in stride(from: d - 1, through: 0, by: -1) {
                var s = column[i]
                for k in i + 1 ..< d { s -= l[k * d + i] * column[k] }
                column[i] = s / l[i * d + i]
            }
            for i in 0 ..< d { result[i * d + c] = column[i] }
        }
        return result
    }

    /// The product of two lower-triangular matrices (lower triangular).
    static func multiplyLower(_ a: [Double], _ b: [Double], _ d: Int) -> [Double] {
        var result = [Double](repeating: 0, count: d * d)
        for i in 0 ..< d { for j in 0 ... i { var s = 0.0; for k in j ... i { s += a[i * d + k] * b[k * d + j] }; result[i * d + j] = s } }
        return result
    }
}

/// Gamma draws (Marsaglia & Tsang 2000) for the Wishart's Bartlett factor.
enum Gamma {
    /// A Gamma(shape, 1) draw; shapes below 1 use the boost Gamma(shape + 1)·U^(1/shape).
    static func draw(shape: Double, using generator: inout SeededGenerator) -> Double {
        if shape < 1 {
            let u = Double.random(in: Double.ulpOfOne ..< 1, using: &generator)
            return draw(shape: shape + 1, using: &generator) * Double.pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat {
                x = Double(generator.nextGaussian())
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = Double.random(in: Double.ulpOfOne ..< 1, using: &generator)
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if Double.log(u) < 0.5 * x * x + d * (1 - v + Double.log(v)) { return d * v }
        }
    }
}
