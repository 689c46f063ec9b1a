import RecKernels
@testable import RecModels
import Testing

/// A freshly trained factor model (never saved) scans a compressed item table on its single-query
/// paths, with results identical to the float32 exact search.
@Suite("Trained factor models carry a compressed item table")
struct CompressedFactorModelTests {
    static let catalog = try! ModelCatalog(training: Interactions.synthetic(
        users: 400, items: FlatIndex.compressedMinimumItems + 904, interactions: 24_000, tasteDimensions: 4, seed: 21))

    func expectSameAsFloat32(_ got: [ScoredItem], _ want: [ScoredItem], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(got.map(\.id) == want.map(\.id) && got.map(\.score.bitPattern) == want.map(\.score.bitPattern),
                "\(what): \(got.prefix(3)) vs \(want.prefix(3))", sourceLocation: sourceLocation)
    }

    @Test("ALS and BPR: single-query paths use the compressed table and return the float32 results")
    func trainedUnsaved() throws {
        var als = ImplicitALS(); als.factors = 16; als.iterations = 3; als.threads = 2
        var bpr = BPR(); bpr.factors = 16; bpr.iterations = 2; bpr.threads = 1
        for model in [try als.fit(Self.catalog), try bpr.fit(Self.catalog)] {
            let table = try #require(model.compressedItems, "\(model.kind): no compressed table after training")
            #expect(table.kind == .int8 && table.rows == model.itemFactors.rows)
            let exact = try FlatIndex(items: model.itemFactors, metric: .innerProduct)
            var count = model.compressedSearchCount
            for user in [0, 7, 399] {
                let got = try model.recommend(users: [user], k: 10, excludeSeen: false)[0]
                #expect(model.compressedSearchCount == count + 1, "\(model.kind) user \(user): the compressed table was not scanned")
                count = model.compressedSearchCount
                expectSameAsFloat32(got, try exact.search(model.userFactors.row(user), k: 10, backend: .simd), "\(model.kind) user \(user)")
            }
            let batch = model.recommend(batch: [RecommenderQuery(.user(5))], k: 10, excludeSeen: false, filter: nil)
            #expect(model.compressedSearchCount == count + 1, "\(model.kind): the one-query batch did not scan the compressed table")
            expectSameAsFloat32(try batch[0].get(), try exact.search(model.userFactors.row(5), k: 10, backend: .simd), "\(model.kind) batch")
            count = model.compressedSearchCount
            _ = try model.recommend(history: [1, 2, 3], weights: [1, 1, 1], k: 10)
            #expect(model.compressedSearchCount == count + 1, "\(model.kind): the history path did not scan the compressed table")
            // A large batch stays on the float32 GEMM path.
            count = model.compressedSearchCount
            _ = try model.recommend(users: Array(0 ..< 200), k: 10)
            #expect(model.compressedSearchCount == count)
        }
    }

    @Test("a catalog below the threshold gets no compressed table")
    func smallCatalog() throws {
        let small = try ModelCatalog(training: Interactions.synthetic(users: 100, items: 300, interactions: 3_000, seed: 3))
        var als = ImplicitALS(); als.factors = 8; als.iterations = 2; als.threads = 1
        let model = try als.fit(small)
        #expect(model.compressedItems == nil)
        _ = try model.recommend(users: [1], k: 5)
        #expect(model.compressedSearchCount == 0)
    }
}
