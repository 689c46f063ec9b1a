@testable import RecKernels
import Testing

@Suite("FlatIndex: exact top-K against the naive reference")
struct FlatIndexTests {
    /// Random shapes, metrics, filters and exclusions; every backend and thread count must agree
    /// with the reference.
    @Test("random shapes agree with the reference", arguments: 0 ..< 10)
    func randomShapes(seed: Int) throws {
        var generator = SeededGenerator(seed: UInt64(1000 + seed))
        let rows = Bool.random(using: &generator) ? Int.random(in: 1 ... 40, using: &generator) : Int.random(in: 900 ... 2200, using: &generator)
        let dimensions = Int.random(in: 1 ... 40, using: &generator)
        let queryCount = Int.random(in: 0 ..< 4, using: &generator) == 0 ? Int.random(in: 129 ... 140, using: &generator) : Int.random(in: 1 ... 40, using: &generator)
        let k = Int.random(in: 0 ..< 5, using: &generator) == 0 ? rows + Int.random(in: 1 ... 10, using: &generator) : Int.random(in: 1 ... 20, using: &generator)
        let items = EmbeddingTable.gaussian(rows: rows, dimensions: dimensions, seed: UInt64(seed) &* 7 &+ 1)
        let queries = EmbeddingTable.gaussian(rows: queryCount, dimensions: dimensions, seed: UInt64(seed) &* 7 &+ 2)
        // Exclusions: none for some queries, a few for most, nearly everything for one.
        let lists: [[Int]] = (0 ..< queryCount).map { q in
            if q == 0 { return Array(0 ..< max(0, rows - 2)) }
            return (0 ..< Int.random(in: 0 ... 8, using: &generator)).map { _ in Int.random(in: 0 ..< rows, using: &generator) }
        }
        let useFilter = Bool.random(using: &generator)
        let allowed = try ItemBitset(capacity: rows, containing: (0 ..< rows).filter { _ in Int.random(in: 0 ..< 10, using: &generator) != 0 })
        let denied = try ItemBitset(capacity: rows, containing: (0 ..< rows).filter { _ in Int.random(in: 0 ..< 10, using: &generator) == 0 })
        let filter = useFilter ? ItemFilter(allowed: allowed, denied: denied) : nil
        let eligible: (Int) -> Bool = { !useFilter || (allowed.contains($0) && !denied.contains($0)) }
        let exclusions = try ExcludedItems(lists)

        for metric in SimilarityMetric.allCases {
            let index = try FlatIndex(items: items, metric: metric)
            let expected = (0 ..< queryCount).map {
                Reference.topK(queries.row($0), items: items, metric: metric, k: k, excluded: Set(lists[$0]), eligible: eligible)
            }
            for backend in allBackends {
                for threads in [1, 2] {
                    let results = try index.search(queries, k: k, excluding: exclusions, filter: filter, backend: backend, threads: threads)
                    #expect(results.queryCount == queryCount && results.k == min(k, rows))  // k is bounded by the catalog
                    for q in 0 ..< queryCount {
                        Reference.expectMatches(results[q], expected[q], query: queries.row(q), items: items, metric: metric,
                                                excluded: Set(lists[q]), eligible: eligible, exact: false)
                    }
                }
            }
        }
    }

    /// Integer data makes every sum exact: ties are real, and ids and scores must match the
    /// reference exactly, ties going to the lower id, across block and worker boundaries.
    @Test("ties are broken by the lower id, exactly, on every backend",
          arguments: [(queries: 20, items: 3000, dimensions: 3), (queries: 1, items: 20_000, dimensions: 64),
                      (queries: 64, items: 1100, dimensions: 16), (queries: 130, items: 70, dimensions: 5)])
    func exactTies(shape: (queries: Int, items: Int, dimensions: Int)) throws {
        let items = integerTable(rows: shape.items, dimensions: shape.dimensions, range: -1 ... 1, seed: 11)
        let queries = integerTable(rows: shape.queries, dimensions: shape.dimensions, range: -2 ... 2, seed: 12)
        for metric in [SimilarityMetric.innerProduct, .squaredEuclidean] {
            let index = try FlatIndex(items: items, metric: metric)
            let expected = (0 ..< shape.queries).map { Reference.topK(queries.row($0), items: items, metric: metric, k: 25) }
            for backend in allBackends {
                for threads in [1, 2] {
                    let results = try index.search(queries, k: 25, backend: backend, threads: threads)
                    for q in 0 ..< shape.queries {
                        Reference.expectMatches(results[q], expected[q], query: queries.row(q), items: items, metric: metric,
                                                excluded: [], eligible: { _ in true }, exact: true)
                    }
                }
            }
        }
    }

    @Test("a result has K items whenever K eligible items exist, and only eligible ones")
    func kLargerThanEligible() throws {
        let items = EmbeddingTable.gaussian(rows: 30, dimensions: 8, seed: 3)
        let index = try FlatIndex(items: items)
        let queries = EmbeddingTable.gaussian(rows: 3, dimensions: 8, seed: 4)
        let exclusions = try ExcludedItems([Array(0 ..< 10), [], Array(0 ..< 30)])
        for backend in allBackends {
            let results = try index.search(queries, k: 50, excluding: exclusions, backend: backend)
            #expect(results.counts == [20, 30, 0])
            #expect(results[0].allSatisfy { $0.id >= 10 })
            #expect(Set(results[1].map(\.id)) == Set(0 ..< 30))
            #expect(results[2].isEmpty)
            // Unused slots are marked, not left as garbage; k = 50 is bounded by the 30 items.
            #expect(results.k == 30)
            #expect(results.ids[2 * 30 ..< 3 * 30].allSatisfy { $0 == -1 })
            #expect(results.scores[2 * 30 ..< 3 * 30].allSatisfy { $0.isNaN })
            // Exactly K eligible among many excluded: still K.
            let exactlyK = try index.search(queries, k: 5, excluding: try ExcludedItems([Array(0 ..< 25), [], []]), backend: backend)
            #expect(exactlyK[0].map(\.id).sorted() == [25, 26, 27, 28, 29])
        }
    }

    @Test("a deny-all filter returns nothing; an allow list returns only its items")
    func globalFilters() throws {
        let items = EmbeddingTable.gaussian(rows: 2500, dimensions: 12, seed: 5)
        let index = try FlatIndex(items: items, metric: .cosine)
        let queries = EmbeddingTable.gaussian(rows: 4, dimensions: 12, seed: 6)
        let all = try ItemBitset(capacity: 2500, containing: 0 ..< 2500)
        let few = try ItemBitset(capacity: 2500, containing: [7, 1500, 2499])
        for backend in allBackends {
            let none = try index.search(queries, k: 10, filter: ItemFilter(denied: all), backend: backend)
            #expect(none.counts == [0, 0, 0, 0])
            let only = try index.search(queries, k: 10, filter: ItemFilter(allowed: few), backend: backend)
            for q in 0 ..< 4 { #expect(Set(only[q].map(\.id)) == [7, 1500, 2499]) }
        }
    }

    @Test("one item of one dimension, one query")
    func singleRowAndColumn() throws {
        let index = try FlatIndex(items: try EmbeddingTable([[2]]), metric: .squaredEuclidean)
        for backend in allBackends {
            #expect(try index.search([5], k: 3, backend: backend) == [ScoredItem(id: 0, score: 9)])
        }
        let cosine = try FlatIndex(items: try EmbeddingTable([[-2]]), metric: .cosine)
        #expect(try cosine.search([5], k: 1) == [ScoredItem(id: 0, score: -1)])
    }

    @Test("the single-query call equals the batch call's row")
    func singleQueryMatchesBatch() throws {
        // Integer data: gemv and gemm then give bit-identical sums.
        let items = integerTable(rows: 5000, dimensions: 32, range: -3 ... 3, seed: 8)
        let queries = integerTable(rows: 3, dimensions: 32, range: -3 ... 3, seed: 9)
        let index = try FlatIndex(items: items)
        let batch = try index.search(queries, k: 10, excluding: try ExcludedItems([[1, 2], [], [4999]]), backend: .blas)
        #expect(try index.search(queries.row(0), k: 10, excluding: [2, 1, 1], backend: .blas) == batch[0])
        #expect(try index.search(queries.row(2), k: 10, excluding: [4999], backend: .blas) == batch[2])
    }

    @Test("a zero catalog vector scores 0 under cosine")
    func zeroItemUnderCosine() throws {
        let index = try FlatIndex(items: try EmbeddingTable([[0, 0], [1, 0], [-1, 0]]), metric: .cosine)
        #expect(try index.search([1, 0], k: 3) == [ScoredItem(id: 1, score: 1), ScoredItem(id: 0, score: 0), ScoredItem(id: 2, score: -1)])
    }

    @Test("bad input is an error, not a crash or garbage")
    func errors() throws {
        let items = EmbeddingTable.gaussian(rows: 10, dimensions: 4, seed: 1)
        let index = try FlatIndex(items: items, metric: .cosine)
        #expect(throws: ScoringError.invalidK(0)) { try index.search([1, 2, 3, 4], k: 0) }
        #expect(throws: ScoringError.invalidK(-3)) { try index.search([1, 2, 3, 4], k: -3) }
        #expect(throws: ScoringError.dimensionMismatch(expected: 4, actual: 3)) { try index.search([1, 2, 3], k: 1) }
        #expect(throws: ScoringError.nonFiniteQuery(query: 0, dimension: 2)) { try index.search([1, 2, .nan, 4], k: 1) }
        #expect(throws: ScoringError.nonFiniteQuery(query: 0, dimension: 0)) { try index.search([.infinity, 2, 3, 4], k: 1) }
        #expect(throws: ScoringError.zeroQuery(query: 0)) { try index.search([0, 0, 0, 0], k: 1) }
        #expect(throws: ScoringError.itemOutOfRange(item: 10, itemCount: 10)) { try index.search([1, 2, 3, 4], k: 1, excluding: [10]) }
        #expect(throws: ScoringError.invalidThreadCount(0)) { try index.search([1, 2, 3, 4], k: 1, threads: 0) }
        #expect(throws: ScoringError.exclusionCountMismatch(expected: 2, actual: 1)) {
            try index.search(EmbeddingTable.gaussian(rows: 2, dimensions: 4, seed: 2), k: 1, excluding: try ExcludedItems([[1]]))
        }
        #expect(throws: ScoringError.filterCapacityMismatch(expected: 10, actual: 11)) {
            try index.search([1, 2, 3, 4], k: 1, filter: ItemFilter(denied: ItemBitset(capacity: 11)))
        }
        #expect(throws: ScoringError.emptyCatalog) { try FlatIndex(items: EmbeddingTable(rows: 0, dimensions: 4)) }
        var poisoned = items
        poisoned.withUnsafeMutableBufferPointer { $0[4 * 7 + 1] = .nan }
        #expect(throws: ScoringError.nonFiniteItem(item: 7, dimension: 1)) { try FlatIndex(items: poisoned) }
        #expect(throws: ScoringError.itemOutOfRange(item: -1, itemCount: EmbeddingTable.maximumRows)) { try ExcludedItems([[-1]]) }
    }

    @Test("concurrent searches of one index from many tasks give the sequential results")
    func concurrentSearches() async throws {
        let items = EmbeddingTable.gaussian(rows: 8000, dimensions: 32, seed: 21)
        let index = try FlatIndex(items: items)
        let queries = EmbeddingTable.gaussian(rows: 48, dimensions: 32, seed: 22)
        let backends: [ScoringBackend] = [.blas, .simd]
        let expected = try backends.map { try index.search(queries, k: 10, backend: $0, threads: 2) }
        let results = try await withThrowingTaskGroup(of: (Int, TopKResults).self) { group in
            for task in 0 ..< 8 {
                group.addTask { (task % 2, try index.search(queries, k: 10, backend: backends[task % 2], threads: 2)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 8)
        for (backend, result) in results { #expect(result == expected[backend]) }
    }
}
