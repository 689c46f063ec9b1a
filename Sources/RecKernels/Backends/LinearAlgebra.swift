internal import COpenBLAS

/// Dense linear algebra on ``EmbeddingTable``s (row-major matrices) through OpenBLAS and
/// LAPACKE: products, Gram matrices, Cholesky solves, symmetric eigendecomposition, SVD and QR.
/// The one place RecKernels calls LAPACK.
///
/// Calls run with OpenBLAS's current thread count (one inside ``FlatIndex`` workers; see
/// ``OpenBLAS/withThreads(_:_:)``).
public enum LinearAlgebra {
    /// `op(a) · op(b)`, where `op` transposes when asked.
    ///
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)`` when the inner dimensions differ.
    /// - Complexity: O(m × n × k).
    public static func multiply(_ a: EmbeddingTable, _ b: EmbeddingTable, transposeA: Bool = false,
                                transposeB: Bool = false) throws -> EmbeddingTable {
        let (m, k) = transposeA ? (a.dimensions, a.rows) : (a.rows, a.dimensions)
        let (kb, n) = transposeB ? (b.dimensions, b.rows) : (b.rows, b.dimensions)
        guard k == kb else { throw MatrixError.shapeMismatch(expected: k, actual: kb) }
        var c = EmbeddingTable(rows: m, dimensions: max(n, 1))
        if m == 0 || n == 0 || k == 0 { return c }
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                                blasint(m), blasint(n), blasint(k), 1, pa.baseAddress, blasint(a.dimensions),
                                pb.baseAddress, blasint(b.dimensions), 0, pc.baseAddress, blasint(n))
                }
            }
        }
        return c
    }

    /// The Gram matrix `aᵀ · a` (`a.dimensions` square, both triangles filled), e.g. `YᵀY` for
    /// ALS. - Complexity: O(rows × dimensions²).
    public static func gram(_ a: EmbeddingTable) -> EmbeddingTable {
        let d = a.dimensions
        var g = EmbeddingTable(rows: d, dimensions: d)
        g.withUnsafeMutableBufferPointer { pg in
            a.withUnsafeBufferPointer { pa in
                cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, blasint(d), blasint(a.rows), 1, pa.baseAddress,
                            blasint(d), 0, pg.baseAddress, blasint(d))
            }
            for i in 0 ..< d { for j in 0 ..< i { pg[i * d + j] = pg[j * d + i] } }
        }
        return g
    }

    /// Solves `a · x = b` for symmetric positive definite `a` (Cholesky: spotrf + spotrs),
    /// overwriting `b` with `x`. `b` holds one right-hand side per row.
    ///
    /// - Throws: ``LinearAlgebraError/notPositiveDefinite(leadingMinor:)``,
    ///   ``MatrixError/shapeMismatch(expected:actual:)``.
    /// - Complexity: O(n³ + n² × right-hand sides).
    public static func choleskySolve(_ a: EmbeddingTable, _ b: inout EmbeddingTable) throws {
        let n = a.rows
        guard a.dimensions == n else { throw MatrixError.shapeMismatch(expected: n, actual: a.dimensions) }
        guard b.dimensions == n else { throw MatrixError.shapeMismatch(expected: n, actual: b.dimensions) }
        var factor = a
        let status = factor.withUnsafeMutableBufferPointer { pa in
            LAPACKE_spotrf(LAPACK_ROW_MAJOR, upper, Int32(n), pa.baseAddress, Int32(n))
        }
        try check(status, positiveMeans: { .notPositiveDefinite(leadingMinor: Int($0)) })
        // Each row of b is a right-hand side: solve for the transpose (column-major view).
        let rhs = b.rows
        let solved = factor.withUnsafeBufferPointer { pa in
            b.withUnsafeMutableBufferPointer { pb in
                LAPACKE_spotrs(LAPACK_COL_MAJOR, lower, Int32(n), Int32(rhs), pa.baseAddress, Int32(n),
                               pb.baseAddress, Int32(n))
            }
        }
        try check(solved, positiveMeans: { _ in .didNotConverge })
    }

    /// The inverse of symmetric positive definite `a` (Cholesky: spotrf, then spotri), both
    /// triangles filled, computed in place of `a`. EASE's P = (XᵀX + λI)⁻¹.
    ///
    /// Runs with OpenBLAS's current thread count: wrap it in ``OpenBLAS/withThreads(_:_:)`` to
    /// use several cores.
    ///
    /// - Throws: ``LinearAlgebraError/notPositiveDefinite(leadingMinor:)``,
    ///   ``MatrixError/shapeMismatch(expected:actual:)``.
    /// - Complexity: O(n³) time (n³/3 for the factor, 2n³/3 for the inverse), no memory beyond `a`.
    public static func positiveDefiniteInverse(_ a: inout EmbeddingTable) throws {
        let n = a.rows
        guard a.dimensions == n else { throw MatrixError.shapeMismatch(expected: n, actual: a.dimensions) }
        let status = a.withUnsafeMutableBufferPointer { pa in
            LAPACKE_spotrf(LAPACK_ROW_MAJOR, upper, Int32(n), pa.baseAddress, Int32(n))
        }
        try check(status, positiveMeans: { .notPositiveDefinite(leadingMinor: Int($0)) })
        let inverted = a.withUnsafeMutableBufferPointer { pa in
            LAPACKE_spotri(LAPACK_ROW_MAJOR, upper, Int32(n), pa.baseAddress, Int32(n))
        }
        try check(inverted, positiveMeans: { .notPositiveDefinite(leadingMinor: Int($0)) })
        a.withUnsafeMutableBufferPointer { pa in
            for i in 0 ..< n { for j in 0 ..< i { pa[i * n + j] = pa[j * n + i] } }
        }
    }

    /// Eigenvalues (ascending) and eigenvectors (one per row) of symmetric `a` (ssyevd).
    ///
    /// - Throws: ``LinearAlgebraError/didNotConverge``, ``MatrixError/shapeMismatch(expected:actual:)``.
    /// - Complexity: O(n³).
    public static func symmetricEigen(_ a: EmbeddingTable) throws -> (values: [Float], vectors: EmbeddingTable) {
        let n = a.rows
        guard a.dimensions == n else { throw MatrixError.shapeMismatch(expected: n, actual: a.dimensions) }
        var work = a
        var values = [Float](repeating: 0, count: n)
        let status = work.withUnsafeMutableBufferPointer { pa in
            values.withUnsafeMutableBufferPointer { pw in
                // Column-major on the row-major buffer: the symmetric input is its own transpose,
                // and the eigenvectors come back as columns of the column-major result, which
                // are the rows of the row-major view.
                LAPACKE_ssyevd(LAPACK_COL_MAJOR, vectorsWanted, upper, Int32(n), pa.baseAddress, Int32(n), pw.baseAddress)
            }
        }
        try check(status, positiveMeans: { _ in .didNotConverge })
        return (values, work)
    }

    /// The thin singular value decomposition `a = u · diag(s) · vt` (sgesdd), with
    /// `r = min(rows, dimensions)`: `u` is rows × r, `s` descending, `vt` is r × dimensions.
    ///
    /// - Throws: ``LinearAlgebraError/didNotConverge``.
    /// - Complexity: O(rows × dimensions × r).
    public static func svd(_ a: EmbeddingTable) throws -> (u: EmbeddingTable, singularValues: [Float], vt: EmbeddingTable) {
        let (m, n) = (a.rows, a.dimensions)
        let r = min(m, n)
        var work = a
        var s = [Float](repeating: 0, count: r)
        var u = EmbeddingTable(rows: m, dimensions: max(r, 1))
        var vt = EmbeddingTable(rows: r, dimensions: n)
        if r == 0 { return (u, s, vt) }
        let status = work.withUnsafeMutableBufferPointer { pa in
            s.withUnsafeMutableBufferPointer { ps in
                u.withUnsafeMutableBufferPointer { pu in
                    vt.withUnsafeMutableBufferPointer { pv in
                        LAPACKE_sgesdd(LAPACK_ROW_MAJOR, thin, Int32(m), Int32(n), pa.baseAddress, Int32(n),
                                       ps.baseAddress, pu.baseAddress, Int32(r), pv.baseAddress, Int32(n))
                    }
                }
            }
        }
        try check(status, positiveMeans: { _ in .didNotConverge })
        return (u, s, vt)
    }

    /// An orthonormal basis of the column space of `a` (rows ≥ dimensions): the Q of its QR
    /// decomposition (sgeqrf + sorgqr), the same shape as `a`.
    ///
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)`` when rows < dimensions.
    /// - Complexity: O(rows × dimensions²).
    public static func orthonormalColumns(_ a: EmbeddingTable) throws -> EmbeddingTable {
        let (m, n) = (a.rows, a.dimensions)
        guard m >= n else { throw MatrixError.shapeMismatch(expected: n, actual: m) }
        var q = a
        var tau = [Float](repeating: 0, count: n)
        let status = q.withUnsafeMutableBufferPointer { pq in
            tau.withUnsafeMutableBufferPointer { pt in
                let factored = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, Int32(m), Int32(n), pq.baseAddress, Int32(n), pt.baseAddress)
                if factored != 0 { return factored }
                return LAPACKE_sorgqr(LAPACK_ROW_MAJOR, Int32(m), Int32(n), Int32(n), pq.baseAddress,
                                      Int32(n), pt.baseAddress)
            }
        }
        try check(status, positiveMeans: { _ in .didNotConverge })
        return q
    }

    private static let upper = CChar(UInt8(ascii: "U"))
    private static let lower = CChar(UInt8(ascii: "L"))
    private static let vectorsWanted = CChar(UInt8(ascii: "V"))
    private static let thin = CChar(UInt8(ascii: "S"))

    private static func check(_ status: Int32, positiveMeans: (Int32) -> LinearAlgebraError) throws {
        if status < 0 { throw LinearAlgebraError.invalidArgument(position: Int(-status)) }
        if status > 0 { throw positiveMeans(status) }
    }
}

/// Why a LAPACK routine failed.
public enum LinearAlgebraError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The matrix is not positive definite: its leading minor of this order is not.
    case notPositiveDefinite(leadingMinor: Int)
    /// The iterative algorithm did not converge.
    case didNotConverge
    /// LAPACK rejected an argument (a bug here, not in the input).
    case invalidArgument(position: Int)

    public var description: String {
        switch self {
        case let .notPositiveDefinite(minor): "the matrix is not positive definite (leading minor of order \(minor))"
        case .didNotConverge: "the decomposition did not converge"
        case let .invalidArgument(position): "LAPACK rejected argument \(position)"
        }
    }
}
