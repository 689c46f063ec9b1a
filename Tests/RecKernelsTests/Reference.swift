import RecKernels
import Testing

/// The naive reference the kernels are checked against: every score in Double, a full sort.
enum Reference {
    static func score(_ query: [Float], _ item: [Float], _ metric: SimilarityMetric) -> Double {
        let q = query.map(Double.init), x = item.map(Double.init)
        let dot = zip(q, x).reduce(0) { $0 + $1.0 * $1.1 }
        switch metric {
        case .innerProduct: return dot
        case .cosine:
            let qn = q.reduce(0) { $0 + $1 * $1 }.squareRoot(), xn = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return xn == 0 ? 0 : dot / (qn * xn)
        case .squaredEuclidean: return zip(q, x).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        }
    }

    /// The best k eligible items for `query`, best first, ties broken by the lower id.
    static func topK(_ query: [Float], items: EmbeddingTable, metric: SimilarityMetric, k: Int,
                     excluded: Set<Int> = [], eligible: (Int) -> Bool = { _ in true }) -> [(id: Int, score: Double)] {
        let ascending = metric == .squaredEuclidean
        var scored: [(id: Int, score: Double)] = []
        for id in 0..<items.rows where !excluded.contains(id) && eligible(id) {
            scored.append((id, score(query, items.row(id), metric)))
        }
        func better(_ a: (id: Int, score: Double), _ b: (id: Int, score: Double)) -> Bool {
            if a.score != b.score { return ascending ? a.score < b.score : a.score > b.score }
            return a.id < b.id
        }
        return Array(scored.sorted(by: better).prefix(k))
    }

    /// Checks `actual` against the reference.
    ///
    /// With `exact`, ids and scores must match exactly (integer-valued data, where float sums are
    /// exact and ties are real). Otherwise near-ties may swap, so the check is: same count,
    /// scores position by position within `tolerance`, every id eligible, unique and scored
    /// correctly.
    static func expectMatches(_ actual: [ScoredItem], _ expected: [(id: Int, score: Double)], query: [Float],
                              items: EmbeddingTable, metric: SimilarityMetric, excluded: Set<Int>,
                              eligible: (Int) -> Bool, exact: Bool, tolerance: Double = 1e-3,
                              sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(actual.count == expected.count, sourceLocation: sourceLocation)
        guard actual.count == expected.count else { return }
        if exact {
            #expect(actual.map(\.id) == expected.map(\.id), sourceLocation: sourceLocation)
            #expect(actual.map { Double($0.score) } == expected.map(\.score), sourceLocation: sourceLocation)
            return
        }
        #expect(Set(actual.map(\.id)).count == actual.count, "duplicate ids", sourceLocation: sourceLocation)
        for (got, want) in zip(actual, expected) {
            let scale = max(1, abs(want.score))
            #expect(abs(Double(got.score) - want.score) <= tolerance * scale, "score \(got.score) vs \(want.score)", sourceLocation: sourceLocation)
            #expect(!excluded.contains(got.id) && eligible(got.id), "ineligible id \(got.id)", sourceLocation: sourceLocation)
            let truth = score(query, items.row(got.id), metric)
            #expect(abs(Double(got.score) - truth) <= tolerance * max(1, abs(truth)), "id \(got.id) scored \(got.score), truly \(truth)", sourceLocation: sourceLocation)
        }
    }
}

/// Integer-valued tables: every float sum is exact, so ties are real and results comparable bit for bit.
func integerTable(rows: Int, dimensions: Int, range: ClosedRange<Int>, seed: UInt64) -> EmbeddingTable {
    var generator = SeededGenerator(seed: seed)
    let values = (0..<(rows * dimensions)).map { _ in Float(Int.random(in: range, using: &generator)) }
    return try! EmbeddingTable(rows: rows, dimensions: dimensions, values: values)
}

/// Every backend the machine can run: OpenBLAS and each supported SIMD level.
let allBackends: [ScoringBackend] = [.blas] + SIMDLevel.supported.map { .simd($0) }
