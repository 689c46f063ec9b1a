import Testing
@testable import RecKernels

@Suite("Sparse top-K")
struct SparseIndexTests {
    /// A random sparse matrix with about `density` of its entries set, values in 0.1 ... 1.
    static func randomMatrix(rows: Int, columns: Int, density: Double, seed: UInt64) throws -> SparseMatrix {
        var generator = SeededGenerator(seed: seed)
        var triples: [(row: Int, column: Int, value: Float)] = []
        for r in 0 ..< rows {
            for c in 0 ..< columns where Double.random(in: 0 ..< 1, using: &generator) < density {
                triples.append((r, c, Float.random(in: 0.1 ... 1, using: &generator)))
            }
        }
        return try SparseMatrix(rows: rows, columns: columns, triples: triples)
    }

    /// Brute force in double precision: documents sharing a column, best first, lower id on ties.
    static func reference(_ documents: SparseMatrix, query: SparseMatrix, row q: Int, k: Int, cosine: Bool,
                          excluded: Set<Int> = []) -> [(Int, Double)] {
        let norms = documents.rowNorms()
        let queryNorm = Double(query.rowNorms()[q])
        var scored: [(Int, Double)] = []
        for d in 0 ..< documents.rows where !excluded.contains(d) {
            var dot = 0.0, shared = false
            let (qc, qv) = query.row(q)
            for (c, v) in zip(qc, qv) where documents[d, Int(c)] != 0 || documents.row(d).columns.contains(c) {
                dot += Double(v) * Double(documents[d, Int(c)])
                shared = true
            }
            guard shared else { continue }
            scored.append((d, cosine ? (norms[d] > 0 ? dot / Double(norms[d]) / queryNorm : 0) : dot))
        }
        return Array(scored.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(k))
    }

    @Test("matches brute force for inner product and cosine, any thread count", arguments: [1, 2])
    func bruteForce(threads: Int) throws {
        let documents = try Self.randomMatrix(rows: 300, columns: 80, density: 0.05, seed: 7)
        let queries = try Self.randomMatrix(rows: 40, columns: 80, density: 0.08, seed: 8)
        for metric in [SimilarityMetric.innerProduct, .cosine] {
            let index = try SparseIndex(documents: documents, metric: metric)
            let nonEmpty = (0 ..< queries.rows).filter { !queries.row($0).columns.isEmpty }
            let subset = try SparseMatrix(rows: nonEmpty.count, columns: 80, triples: nonEmpty.enumerated().flatMap { i, q in
                zip(queries.row(q).columns, queries.row(q).values).map { (row: i, column: Int($0), value: $1) }
            })
            let results = try index.search(subset, k: 7, threads: threads)
            for q in 0 ..< subset.rows {
                let expected = Self.reference(documents, query: subset, row: q, k: 7, cosine: metric == .cosine)
                let got = results[q]
                #expect(got.map(\.id) == expected.map(\.0))
                for (g, e) in zip(got, expected) { #expect(abs(Double(g.score) - e.1) < 1e-5) }
            }
        }
    }

    @Test("more like this never returns the document itself and honours filters")
    func similar() throws {
        let documents = try Self.randomMatrix(rows: 200, columns: 30, density: 0.15, seed: 11)
        let index = try SparseIndex(documents: documents)
        let rows = (0 ..< 200).filter { !documents.row($0).columns.isEmpty }
        let results = try index.similar(toDocuments: rows, k: 5, threads: 2)
        for (q, row) in rows.enumerated() {
            #expect(!results[q].contains { $0.id == row })
            let expected = Self.reference(documents, query: documents, row: row, k: 5, cosine: true, excluded: [row])
            #expect(results[q].map(\.id) == expected.map(\.0))
        }
        let denied = try ItemBitset(capacity: 200, containing: results[0].map(\.id))
        let filtered = try index.similar(toDocument: rows[0], k: 5, filter: ItemFilter(denied: denied))
        #expect(Set(filtered.map(\.id)).isDisjoint(with: results[0].map(\.id)))
    }

    @Test("only documents sharing a column are returned, even when k is larger")
    func fewerThanK() throws {
        let triples: [(row: Int, column: Int, value: Float)] = [(0, 0, 1), (1, 1, 1), (2, 0, 2), (3, 2, 1)]
        let documents = try SparseMatrix(rows: 4, columns: 3, triples: triples)
        let index = try SparseIndex(documents: documents, metric: .innerProduct)
        let top = try index.search(columns: [0], weights: [1], k: 10)
        #expect(top.map { $0.id } == [2, 0])
        #expect(top.map { $0.score } == [2, 1])
    }

    @Test("bad requests are refused with a reason")
    func errors() throws {
        let triples: [(row: Int, column: Int, value: Float)] = [(0, 0, 1), (1, 1, 1)]
        let documents = try SparseMatrix(rows: 2, columns: 3, triples: triples)
        let index = try SparseIndex(documents: documents)
        #expect(throws: ScoringError.invalidK(0)) { try index.search(columns: [0], weights: [1], k: 0) }
        #expect(throws: ScoringError.zeroQuery(query: 0)) { try index.search(columns: [0], weights: [0], k: 1) }
        #expect(throws: ScoringError.itemOutOfRange(item: 5, itemCount: 2)) { try index.similar(toDocument: 5, k: 1) }
        #expect(throws: SparseIndexError.unsupportedMetric(.squaredEuclidean)) {
            try SparseIndex(documents: documents, metric: .squaredEuclidean)
        }
        #expect(throws: ScoringError.emptyCatalog) { try SparseIndex(documents: SparseMatrix(rows: 0, columns: 3, triples: [])) }
    }
}
