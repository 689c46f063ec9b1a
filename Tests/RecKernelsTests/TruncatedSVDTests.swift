import Testing
@testable import RecKernels

@Suite("Truncated SVD")
struct TruncatedSVDTests {
    /// A sparse rows × columns matrix of exact rank `rank` (a product of sparse random factors).
    static func lowRank(rows: Int, columns: Int, rank: Int, seed: UInt64) throws -> SparseMatrix {
        var generator = SeededGenerator(seed: seed)
        let left = (0 ..< rows * rank).map { _ in Float.random(in: -1 ... 1, using: &generator) }
        let right = (0 ..< rank * columns).map { _ in Double.random(in: 0 ..< 1, using: &generator) < 0.3 ? Float.random(in: -1 ... 1, using: &generator) : 0 }
        var triples: [(row: Int, column: Int, value: Float)] = []
        for r in 0 ..< rows {
            for c in 0 ..< columns {
                var v: Float = 0
                for j in 0 ..< rank { v += left[r * rank + j] * right[j * columns + c] }
                if v != 0 { triples.append((r, c, v)) }
            }
        }
        return try SparseMatrix(rows: rows, columns: columns, triples: triples)
    }

    static func maximumReconstructionError(_ svd: TruncatedSVD, _ matrix: SparseMatrix) -> Float {
        var worst: Float = 0
        for r in 0 ..< matrix.rows {
            for c in 0 ..< matrix.columns {
                var v: Float = 0
                for j in 0 ..< svd.rank {
                    v += svd.left.withRow(r) { $0[j] } * svd.singularValues[j] * svd.right.withRow(c) { $0[j] }
                }
                worst = max(worst, abs(v - matrix[r, c]))
            }
        }
        return worst
    }

    @Test("exact and randomized SVD reconstruct a small matrix of rank 5")
    func reconstructs() throws {
        let matrix = try Self.lowRank(rows: 60, columns: 40, rank: 5, seed: 3)
        let exact = try TruncatedSVD.exact(matrix, rank: 5)
        let randomized = try TruncatedSVD.randomized(matrix, rank: 5, oversampling: 10, seed: 1, threads: 2)
        #expect(Self.maximumReconstructionError(exact, matrix) < 1e-4)
        #expect(Self.maximumReconstructionError(randomized, matrix) < 1e-3)
        for (a, b) in zip(exact.singularValues, randomized.singularValues) { #expect(abs(a - b) <= 1e-3 * exact.singularValues[0]) }
        #expect(exact.singularValues == exact.singularValues.sorted(by: >))
    }

    @Test("folding a row of the matrix in gives its coordinates U·S")
    func foldIn() throws {
        let matrix = try Self.lowRank(rows: 30, columns: 50, rank: 4, seed: 9)
        let svd = try TruncatedSVD.randomized(matrix, rank: 4, threads: 1)
        let projected = try svd.project(matrix)
        let coordinates = svd.rowCoordinates()
        projected.withUnsafeBufferPointer { p in
            coordinates.withUnsafeBufferPointer { c in
                for i in p.indices { #expect(abs(p[i] - c[i]) < 1e-3) }
            }
        }
    }

    @Test("ranks outside 1 ... min(rows, columns) are refused")
    func invalidRank() throws {
        let matrix = try Self.lowRank(rows: 6, columns: 4, rank: 2, seed: 1)
        #expect(throws: TruncatedSVDError.invalidRank(0, maximum: 4)) { try TruncatedSVD.exact(matrix, rank: 0) }
        #expect(throws: TruncatedSVDError.invalidRank(5, maximum: 4)) { try TruncatedSVD.randomized(matrix, rank: 5) }
    }
}
