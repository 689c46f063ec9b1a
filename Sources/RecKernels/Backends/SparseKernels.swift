internal import CRecKernels

/// Wrappers over the sparse and training C kernels (`rec_sparse.h`).
extension Kernels {
    /// `out = matrix[rows] · dense` for a range of CSR rows; `out` points at the first row's output.
    static func sparseDenseMultiply(_ matrix: SparseMatrix, rows: Range<Int>, dense: UnsafePointer<Float>,
                                    dimensions: Int, out: UnsafeMutablePointer<Float>, level: SIMDLevel = .best) {
        matrix.rowOffsets.withUnsafeBufferPointer { offsets in
            matrix.columnIndices.withUnsafeBufferPointer { indices in
                matrix.values.withUnsafeBufferPointer { values in
                    rk_csr_dense_multiply(Int32(level.rawValue), rows.lowerBound, rows.upperBound, offsets.baseAddress!,
                                          indices.baseAddress, values.baseAddress, dense, dimensions, out)
                }
            }
        }
    }

    /// Adds `A · (Aᵀ · q)` over the given rows of `transposed` (= Aᵀ, so columns of A) into `y`.
    static func sparseGramApply(transposed: SparseMatrix, columns: Range<Int>, q: UnsafePointer<Float>, dimensions: Int,
                                y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                level: SIMDLevel = .best) {
        transposed.rowOffsets.withUnsafeBufferPointer { offsets in
            transposed.columnIndices.withUnsafeBufferPointer { indices in
                transposed.values.withUnsafeBufferPointer { values in
                    rk_sparse_gram_apply(Int32(level.rawValue), columns.lowerBound, columns.upperBound, offsets.baseAddress!,
                                         indices.baseAddress, values.baseAddress, q, dimensions, y, scratch)
                }
            }
        }
    }
}
