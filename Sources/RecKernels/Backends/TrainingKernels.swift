internal import CRecKernels

/// Wrappers over the training C kernels (`rec_kernels.h`, `rec_sparse.h`): labeled Swift
/// arguments in, one C call out. Pointers are the callers' buffers, valid for the call; each
/// kernel runs at ``SIMDLevel/best``.
extension Kernels {
    /// How ``solveNormalEquations(dimensions:gram:diagonal:factors:rows:weights:count:weighting:solution:scratch:)``
    /// weights row k of the fixed factors, given its stored weight wₖ.
    enum NormalEquationWeighting {
        /// Implicit ALS: curvature α·wₖ beyond the Gram matrix, target 1 + α·wₖ (confidence).
        case implicitConfidence(alpha: Float)
        /// Least squares: curvature 1, target wₖ (explicit ALS, ridge regression).
        case leastSquares
    }

    /// `steps` conjugate-gradient steps of implicit ALS from the current `solution` (d floats)
    /// on (G + Σ (cₖ − 1) y yᵀ) x = Σ cₖ y, cₖ = 1 + α·wₖ, over factor rows `rows[k]`.
    /// `gram` is G = YᵀY + λI; `scratch` holds 3·d floats.
    static func alsConjugateGradient(dimensions d: Int, gram: UnsafePointer<Float>, factors: UnsafePointer<Float>,
                                     rows: UnsafePointer<Int32>?, weights: UnsafePointer<Float>?, count: Int, alpha: Float,
                                     solution: UnsafeMutablePointer<Float>, steps: Int, scratch: UnsafeMutablePointer<Float>) {
        rk_als_cg(isa, d, gram, factors, rows, weights, count, alpha, solution, Int32(steps), scratch)
    }

    /// Solves (G + diagonal·I + Σ aₖ y yᵀ) x = Σ bₖ y exactly (Cholesky), aₖ and bₖ from
    /// `weighting`; a nil `gram` is zero. `scratch` holds d·d + d floats.
    ///
    /// - Returns: nil, or the order of the first leading minor that is not positive definite
    ///   (`solution` is then unchanged).
    static func solveNormalEquations(dimensions d: Int, gram: UnsafePointer<Float>?, diagonal: Float,
                                     factors: UnsafePointer<Float>, rows: UnsafePointer<Int32>?,
                                     weights: UnsafePointer<Float>?, count: Int, weighting: NormalEquationWeighting,
                                     solution: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) -> Int? {
        let failure = switch weighting {
        case let .implicitConfidence(alpha):
            rk_normal_solve(isa, d, gram, diagonal, factors, rows, weights, count, 1, alpha, 1, alpha, solution, scratch)
        case .leastSquares:
            rk_normal_solve(isa, d, gram, diagonal, factors, rows, weights, count, 0, 0, 0, 1, solution, scratch)
        }
        return failure == 0 ? nil : Int(failure)
    }

    /// One Gibbs draw x ~ N(A⁻¹b, A⁻¹), A = precision + α Σ y yᵀ, b = linear + α Σ (r − shift −
    /// offsetₖ) y over `count` entries (`rows` into `factors`, ratings in `ratings`); a nil
    /// `normals` gives the mean A⁻¹b. `scratch` holds d·d + d floats.
    ///
    /// - Returns: nil, or the order of the first leading minor that is not positive definite.
    static func gibbsRow(dimensions d: Int, precision: UnsafePointer<Float>, linear: UnsafePointer<Float>, alpha: Float,
                         factors: UnsafePointer<Float>, rows: UnsafePointer<Int32>?, ratings: UnsafePointer<Float>?,
                         offsets: UnsafePointer<Float>?, shift: Float, count: Int, normals: UnsafePointer<Float>?,
                         solution: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) -> Int? {
        let failure = rk_gibbs_row(isa, d, precision, linear, alpha, factors, rows, ratings, offsets, shift, count, normals,
                                   solution, scratch)
        return failure == 0 ? nil : Int(failure)
    }

    /// `samples` BPR SGD steps on users' factors and items' (d columns each, the last an item
    /// bias users hold at 1), positives from the CSR rows, negatives uniform.
    /// - Returns: how many triples were ranked right before their update.
    static func bprSteps(dimensions d: Int, users: UnsafeMutablePointer<Float>, items: UnsafeMutablePointer<Float>,
                         rowOffsets: UnsafePointer<Int64>?, columns: UnsafePointer<Int32>?, entryRows: UnsafePointer<Int32>?,
                         entries: Int, itemCount: Int, samples: Int, learningRate: Float, regularization: Float,
                         seed: UInt64) -> Int {
        rk_bpr(isa, d, users, items, rowOffsets, columns, entryRows, entries, itemCount, samples, learningRate,
               regularization, seed)
    }

    /// One SGD pass of biased matrix factorization over `order` (entry indices).
    /// - Returns: the sum of squared errors seen.
    static func biasedFactorizationPass(dimensions d: Int, userFactors: UnsafeMutablePointer<Float>,
                                        itemFactors: UnsafeMutablePointer<Float>, userBiases: UnsafeMutablePointer<Float>,
                                        itemBiases: UnsafeMutablePointer<Float>, mean: Float, users: UnsafePointer<Int32>?,
                                        items: UnsafePointer<Int32>?, ratings: UnsafePointer<Float>?,
                                        order: UnsafeBufferPointer<Int64>,
                                        learningRate: (bias: Float, factor: Float),
                                        regularization: (bias: Float, factor: Float)) -> Double {
        rk_sgd_mf(isa, d, userFactors, itemFactors, userBiases, itemBiases, mean, users, items, ratings, order.baseAddress,
                  order.count, learningRate.bias, regularization.bias, learningRate.factor, regularization.factor)
    }

    /// The implicit-ALS data term Σ_u Σ_i c_ui (p_ui − x_u·y_i)² over CSR `rows`, with
    /// `gram` = YᵀY (no λ). `scratch` holds d floats.
    static func alsDataLoss(dimensions d: Int, gram: UnsafePointer<Float>, users: UnsafePointer<Float>,
                            items: UnsafePointer<Float>, rowOffsets: [Int64], columns: [Int32], weights: [Float],
                            rows: Range<Int>, alpha: Float, scratch: UnsafeMutablePointer<Float>) -> Double {
        rk_als_loss(isa, d, gram, users, items, rowOffsets, columns, weights, rows.lowerBound, rows.upperBound, alpha, scratch)
    }

    /// Σ (value − x_u·y_i)² over the stored entries of CSR `rows`.
    static func squaredResiduals(dimensions d: Int, users: UnsafePointer<Float>, items: UnsafePointer<Float>,
                                 rowOffsets: [Int64], columns: [Int32], values: [Float], rows: Range<Int>) -> Double {
        rk_squared_residuals(isa, d, users, items, rowOffsets, columns, values, rows.lowerBound, rows.upperBound)
    }

    /// The level every training kernel runs at.
    private static var isa: Int32 { Int32(SIMDLevel.best.rawValue) }
}
