@testable import RecKernels
import Testing

/// The naive row-major product, in Double.
private func naiveProduct(_ a: [[Float]], _ b: [[Float]]) -> [[Double]] {
    a.map { row in (0 ..< b[0].count).map { j in zip(row, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1[j]) } } }
}

private func rows(_ t: EmbeddingTable) -> [[Float]] { (0 ..< t.rows).map { t.row($0) } }

private func transpose(_ m: [[Float]]) -> [[Float]] { (0 ..< m[0].count).map { j in m.map { $0[j] } } }

private func expectClose(_ actual: EmbeddingTable, _ expected: [[Double]], tolerance: Double = 1e-3,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.rows == expected.count, sourceLocation: sourceLocation)
    for (r, row) in expected.enumerated() {
        for (c, value) in row.enumerated() {
            #expect(abs(Double(actual.row(r)[c]) - value) <= tolerance * max(1, abs(value)), "(\(r), \(c))", sourceLocation: sourceLocation)
        }
    }
}

@Suite("LinearAlgebra over OpenBLAS and LAPACKE")
struct LinearAlgebraTests {
    @Test("products with every transpose combination equal the naive product")
    func products() throws {
        let a = EmbeddingTable.gaussian(rows: 7, dimensions: 5, seed: 1), b = EmbeddingTable.gaussian(rows: 5, dimensions: 3, seed: 2)
        expectClose(try LinearAlgebra.multiply(a, b), naiveProduct(rows(a), rows(b)))
        let at = try EmbeddingTable(transpose(rows(a))), bt = try EmbeddingTable(transpose(rows(b)))
        expectClose(try LinearAlgebra.multiply(at, b, transposeA: true), naiveProduct(rows(a), rows(b)))
        expectClose(try LinearAlgebra.multiply(a, bt, transposeB: true), naiveProduct(rows(a), rows(b)))
        expectClose(try LinearAlgebra.multiply(at, bt, transposeA: true, transposeB: true), naiveProduct(rows(a), rows(b)))
        #expect(throws: MatrixError.shapeMismatch(expected: 5, actual: 7)) { try LinearAlgebra.multiply(a, a) }
        expectClose(LinearAlgebra.gram(a), naiveProduct(transpose(rows(a)), rows(a)))
    }

    @Test("Cholesky solves a positive definite system; an indefinite one is an error")
    func cholesky() throws {
        let x = EmbeddingTable.gaussian(rows: 40, dimensions: 6, seed: 3)
        var a = LinearAlgebra.gram(x)  // positive definite with probability 1
        let truth = EmbeddingTable.gaussian(rows: 3, dimensions: 6, seed: 4)  // three right-hand sides
        var b = try LinearAlgebra.multiply(truth, a)  // rows of b are A·x (A symmetric)
        try LinearAlgebra.choleskySolve(a, &b)
        expectClose(b, rows(truth).map { $0.map(Double.init) })
        a.withUnsafeMutableBufferPointer { $0[0] = -1 }
        var rhs = truth
        #expect(throws: LinearAlgebraError.notPositiveDefinite(leadingMinor: 1)) { try LinearAlgebra.choleskySolve(a, &rhs) }
    }

    @Test("symmetric eigendecomposition: A v = λ v for each pair, ascending")
    func eigen() throws {
        let a = LinearAlgebra.gram(EmbeddingTable.gaussian(rows: 30, dimensions: 5, seed: 5))
        let (values, vectors) = try LinearAlgebra.symmetricEigen(a)
        #expect(values == values.sorted())
        for i in 0 ..< 5 {
            let v = vectors.row(i)
            let av = naiveProduct(rows(a), v.map { [$0] }).map { $0[0] }
            for j in 0 ..< 5 { #expect(abs(av[j] - Double(values[i]) * Double(v[j])) <= 1e-3 * Double(values.last!)) }
        }
    }

    @Test("the SVD reconstructs the matrix with orthonormal factors", arguments: [(9, 4), (4, 9), (6, 6)])
    func svd(shape: (Int, Int)) throws {
        let a = EmbeddingTable.gaussian(rows: shape.0, dimensions: shape.1, seed: 6)
        let (u, s, vt) = try LinearAlgebra.svd(a)
        let r = min(shape.0, shape.1)
        #expect(s.count == r && s == s.sorted(by: >))
        let us = try EmbeddingTable(rows(u).map { row in zip(row, s).map { $0 * $1 } })
        expectClose(try LinearAlgebra.multiply(us, vt), rows(a).map { $0.map(Double.init) })
        let identity = (0 ..< r).map { i in (0 ..< r).map { Double(i == $0 ? 1 : 0) } }
        expectClose(LinearAlgebra.gram(u), identity)
        expectClose(try LinearAlgebra.multiply(vt, vt, transposeB: true), identity)
    }

    @Test("orthonormal columns span the input's column space")
    func qr() throws {
        let a = EmbeddingTable.gaussian(rows: 12, dimensions: 4, seed: 7)
        let q = try LinearAlgebra.orthonormalColumns(a)
        expectClose(LinearAlgebra.gram(q), (0 ..< 4).map { i in (0 ..< 4).map { Double(i == $0 ? 1 : 0) } })
        // Projecting a onto span(q) gives a back: q qᵀ a = a.
        let projected = try LinearAlgebra.multiply(q, try LinearAlgebra.multiply(q, a, transposeA: true))
        expectClose(projected, rows(a).map { $0.map(Double.init) })
        #expect(throws: MatrixError.shapeMismatch(expected: 12, actual: 4)) { try LinearAlgebra.orthonormalColumns(try EmbeddingTable(transpose(rows(a)))) }
    }
}
