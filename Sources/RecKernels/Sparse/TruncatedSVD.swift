/// The leading singular triplets of a sparse matrix: `A ≈ U · diag(s) · Vᵀ` with `rank` columns,
/// the decomposition behind latent semantic indexing.
///
/// Two ways to compute it: ``exact(_:rank:)`` densifies the matrix and calls LAPACK's sgesdd (for
/// small matrices and tests), ``randomized(_:rank:oversampling:powerIterations:seed:threads:)``
/// runs Halko–Martinsson–Tropp's randomized range finder with power iterations on GEMM and the
/// sparse kernels, never forming a dense rows × columns or columns × sample matrix.
public struct TruncatedSVD: Sendable {
    /// Singular values, descending, `rank` of them.
    public let singularValues: [Float]
    /// Left singular vectors U: rows × rank, orthonormal columns.
    public let left: EmbeddingTable
    /// Right singular vectors V (not transposed): columns × rank, orthonormal columns. A new
    /// row `x` of the matrix's column space is folded in as `x · V` (its coordinates, comparable
    /// with the rows of `U · diag(s)`).
    public let right: EmbeddingTable

    /// Number of singular triplets.
    public var rank: Int { singularValues.count }

    /// The rows' coordinates `U · diag(s)` (= `A · V`). - Complexity: O(rows × rank).
    public func rowCoordinates() -> EmbeddingTable {
        var coordinates = left
        let k = rank
        coordinates.withUnsafeMutableBufferPointer { values in
            for r in 0 ..< left.rows { for j in 0 ..< k { values[r * k + j] *= singularValues[j] } }
        }
        return coordinates
    }

    /// Folds new rows (with the decomposed matrix's columns) into the space: `x · V`.
    ///
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)`` when the column counts differ.
    /// - Complexity: O(entries × rank).
    public func project(_ rows: SparseMatrix) throws -> EmbeddingTable {
        guard rows.columns == right.rows else { throw MatrixError.shapeMismatch(expected: right.rows, actual: rows.columns) }
        var out = EmbeddingTable(rows: rows.rows, dimensions: rank)
        right.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                Kernels.sparseDenseMultiply(rows, rows: 0 ..< rows.rows, dense: v.baseAddress!, dimensions: rank,
                                            out: o.baseAddress!)
            }
        }
        return out
    }

    /// Adopts stored factors (as saved in a model file).
    ///
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)`` unless both tables have
    ///   `singularValues.count` columns.
    public init(singularValues: [Float], left: EmbeddingTable, right: EmbeddingTable) throws {
        guard left.dimensions == singularValues.count else {
            throw MatrixError.shapeMismatch(expected: singularValues.count, actual: left.dimensions)
        }
        guard right.dimensions == singularValues.count else {
            throw MatrixError.shapeMismatch(expected: singularValues.count, actual: right.dimensions)
        }
        self.singularValues = singularValues
        self.left = left
        self.right = right
    }

    /// The exact leading `rank` triplets through a dense SVD (LAPACK sgesdd).
    ///
    /// - Throws: ``TruncatedSVDError/invalidRank(_:maximum:)`` unless 1 ≤ rank ≤ min(rows, columns);
    ///   ``LinearAlgebraError`` when LAPACK fails.
    /// - Complexity: O(rows × columns × min(rows, columns)) time, O(rows × columns) memory.
    public static func exact(_ matrix: SparseMatrix, rank: Int) throws -> TruncatedSVD {
        try checkRank(rank, of: matrix)
        var dense = EmbeddingTable(rows: matrix.rows, dimensions: matrix.columns)
        dense.withUnsafeMutableBufferPointer { values in
            for r in 0 ..< matrix.rows {
                for p in matrix.rowOffsets[r] ..< matrix.rowOffsets[r + 1] {
                    values[r * matrix.columns + Int(matrix.columnIndices[p])] = matrix.values[p]
                }
            }
        }
        let (u, s, vt) = try LinearAlgebra.svd(dense)
        return try TruncatedSVD(singularValues: Array(s.prefix(rank)), left: leadingColumns(u, rank),
                                right: leadingColumns(transpose(vt), rank))
    }

    /// The leading `rank` triplets by randomized SVD.
    ///
    /// A sample of `rank + oversampling` directions (capped at min(rows, columns)) is drawn
    /// as `(A·Aᵀ)^(powerIterations + 1) · G` for a seeded Gaussian G, re-orthonormalized (QR)
    /// between steps; the small symmetric problem `Qᵀ·A·Aᵀ·Q` is then solved exactly (ssyevd).
    /// Each `A·Aᵀ·Q` product runs column by column through the fused sparse kernel on `threads`
    /// workers, so memory stays at O(rows × sample × threads + columns × rank). With gensim's
    /// defaults (oversampling 100, 2 power iterations) the leading triplets match the exact
    /// ones to float precision on matrices of modest rank.
    ///
    /// - Throws: ``TruncatedSVDError/invalidRank(_:maximum:)``, ``LinearAlgebraError``.
    /// - Complexity: O((powerIterations + 2) × (entries × sample + rows × sample²)) + O(sample³).
    public static func randomized(_ matrix: SparseMatrix, rank: Int, oversampling: Int = 100, powerIterations: Int = 2,
                                  seed: UInt64 = 0, threads: Int = FlatIndex.defaultThreads) throws -> TruncatedSVD {
        try checkRank(rank, of: matrix)
        let sample = min(rank + max(0, oversampling), min(matrix.rows, matrix.columns))
        let transposed = matrix.transposed()
        var basis = EmbeddingTable.gaussian(rows: matrix.rows, dimensions: sample, seed: seed)
        var product = gramApply(transposed: transposed, rows: matrix.rows, basis, threads: threads)
        for _ in 0 ..< max(0, powerIterations) {
            basis = try LinearAlgebra.orthonormalColumns(product)
            product = gramApply(transposed: transposed, rows: matrix.rows, basis, threads: threads)
        }
        basis = try LinearAlgebra.orthonormalColumns(product)
        product = gramApply(transposed: transposed, rows: matrix.rows, basis, threads: threads)
        // T = Qᵀ·A·Aᵀ·Q = (Qᵀ·A)(Qᵀ·A)ᵀ: its eigenpairs are the squared singular values and the
        // left singular vectors in Q's coordinates.
        var small = try LinearAlgebra.multiply(basis, product, transposeA: true)
        small.withUnsafeMutableBufferPointer { t in
            for i in 0 ..< sample {
                for j in 0 ..< i {
                    let mean = (t[i * sample + j] + t[j * sample + i]) / 2
                    t[i * sample + j] = mean
                    t[j * sample + i] = mean
                }
            }
        }
        let (eigenvalues, eigenvectors) = try LinearAlgebra.symmetricEigen(small)
        var leading = EmbeddingTable(rows: rank, dimensions: sample)  // eigenvectors, largest first
        var singularValues = [Float](repeating: 0, count: rank)
        eigenvectors.withUnsafeBufferPointer { source in
            leading.withUnsafeMutableBufferPointer { target in
                for j in 0 ..< rank {
                    let from = sample - 1 - j
                    singularValues[j] = max(eigenvalues[from], 0).squareRoot()
                    for c in 0 ..< sample { target[j * sample + c] = source[from * sample + c] }
                }
            }
        }
        let left = try LinearAlgebra.multiply(basis, leading, transposeB: true)
        // V = Aᵀ·U·diag(1/s): each column of A (a row of Aᵀ) projected on U.
        var right = EmbeddingTable(rows: matrix.columns, dimensions: rank)
        left.withUnsafeBufferPointer { u in
            right.withUnsafeMutableBufferPointer { v in
                let shared = UncheckedSendable((u.baseAddress!, v.baseAddress!))
                let workers = min(threads, max(1, transposed.rows / 4096))
                Parallel.forEach(workers) { w in
                    let rows = transposed.rows * w / workers ..< transposed.rows * (w + 1) / workers
                    Kernels.sparseDenseMultiply(transposed, rows: rows, dense: shared.value.0, dimensions: rank,
                                                out: shared.value.1 + rows.lowerBound * rank)
                }
                let inverse = singularValues.map { $0 > 0 ? 1 / $0 : 0 }
                for r in 0 ..< matrix.columns { for j in 0 ..< rank { v[r * rank + j] *= inverse[j] } }
            }
        }
        return try TruncatedSVD(singularValues: singularValues, left: left, right: right)
    }

    /// `A · (Aᵀ · basis)` with A given by its transpose, split by columns of A over workers
    /// that each accumulate into their own rows × sample buffer.
    private static func gramApply(transposed: SparseMatrix, rows: Int, _ basis: EmbeddingTable, threads: Int) -> EmbeddingTable {
        let sample = basis.dimensions
        let workers = max(1, min(threads, transposed.rows / 1024))
        var partials = (0 ..< workers).map { _ in EmbeddingTable(rows: rows, dimensions: sample) }
        basis.withUnsafeBufferPointer { q in
            let buffers = (0 ..< workers).map { w in partials[w].withUnsafeMutableBufferPointer { $0.baseAddress! } }
            let shared = UncheckedSendable((q.baseAddress!, buffers))
            Parallel.forEach(workers) { w in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: sample)
                defer { scratch.deallocate() }
                let columns = transposed.rows * w / workers ..< transposed.rows * (w + 1) / workers
                Kernels.sparseGramApply(transposed: transposed, columns: columns, q: shared.value.0, dimensions: sample,
                                        y: shared.value.1[w], scratch: scratch)
            }
        }
        var total = partials[0]
        if workers > 1 {
            total.withUnsafeMutableBufferPointer { sum in
                for w in 1 ..< workers {
                    partials[w].withUnsafeBufferPointer { part in
                        for i in 0 ..< sum.count { sum[i] += part[i] }
                    }
                }
            }
        }
        return total
    }

    private static func checkRank(_ rank: Int, of matrix: SparseMatrix) throws {
        let maximum = min(matrix.rows, matrix.columns)
        guard rank >= 1, rank <= maximum else { throw TruncatedSVDError.invalidRank(rank, maximum: maximum) }
    }

    private static func leadingColumns(_ table: EmbeddingTable, _ count: Int) -> EmbeddingTable {
        var out = EmbeddingTable(rows: table.rows, dimensions: count)
        table.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for r in 0 ..< table.rows {
                    for c in 0 ..< count { target[r * count + c] = source[r * table.dimensions + c] }
                }
            }
        }
        return out
    }

    private static func transpose(_ table: EmbeddingTable) -> EmbeddingTable {
        var out = EmbeddingTable(rows: table.dimensions, dimensions: table.rows)
        table.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for r in 0 ..< table.rows {
                    for c in 0 ..< table.dimensions { target[c * table.rows + r] = source[r * table.dimensions + c] }
                }
            }
        }
        return out
    }
}

/// Why a truncated SVD was refused.
public enum TruncatedSVDError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The rank must be between 1 and min(rows, columns).
    case invalidRank(Int, maximum: Int)

    public var description: String {
        switch self {
        case let .invalidRank(rank, maximum): "the rank must be between 1 and \(maximum) (min of rows and columns), got \(rank)"
        }
    }
}
