#if canImport(Glibc)
import Glibc
#endif
import RecKernels
@testable import RecModels
import Testing

@Suite("MRR on a hand-checked case")
struct ReciprocalRankTests {
    /// Six users a…f, six items; item i was seen by users 0 ..< 6 − i, so popularity ranks
    /// 0 > 1 > … > 5 and user u's training items are 0 ..< 6 − u.
    @Test("the reciprocal rank of the first hit, cut at K, averaged over test users")
    func meanReciprocalRank() throws {
        var train = Interactions(users: try IDMap(["a", "b", "c", "d", "e", "f"]), items: try IDMap(["0", "1", "2", "3", "4", "5"]))
        for item in 0 ..< 6 {
            for user in 0 ..< (6 - item) { train.userIndices.append(Int32(user)); train.itemIndices.append(Int32(item)); train.values.append(1) }
        }
        var test = Interactions(users: train.users, items: train.items)
        // f (5) saw {0}: list [1, 2, 3, 4, 5], relevant {3, 5} → first hit at rank 3.
        // e (4) saw {0, 1}: list [2, 3, 4, 5], relevant {2, 5} → first hit at rank 1.
        // d (3) saw {0, 1, 2}: list [3, 4, 5], relevant {5} → first hit at rank 3.
        test.userIndices = [5, 5, 4, 4, 3]; test.itemIndices = [3, 5, 2, 5, 5]; test.values = [1, 1, 1, 1, 1]
        let model = try PopularityModel(ModelCatalog(training: train))
        let at3 = try Evaluation.ranking(model, test: test, k: 3)
        #expect(at3.users == 3)
        #expect(abs(at3.mrr - (1.0 / 3 + 1 + 1.0 / 3) / 3) < 1e-12)
        // At K = 2 only e's hit is inside the list.
        let at2 = try Evaluation.ranking(model, test: test, k: 2)
        #expect(abs(at2.mrr - 1.0 / 3) < 1e-12)
        #expect(at2.named.contains { $0.0 == "MRR@2" && abs($0.1 - 1.0 / 3) < 1e-12 })
    }
}

@Suite("EASE")
struct EASETests {
    /// A small catalog: 40 users × 12 items with overlapping tastes.
    static let small: ModelCatalog = {
        var log = Interactions()
        var generator = SeededGenerator(seed: 21)
        for u in 0 ..< 40 {
            let group = u % 3
            for i in 0 ..< 12 where (i % 3 == group && Int.random(in: 0 ..< 10, using: &generator) < 8)
                || Int.random(in: 0 ..< 10, using: &generator) == 0 {
                log.append(user: "u\(u)", item: "i\(i)", value: 1)
            }
        }
        return try! ModelCatalog(training: log)
    }()

    /// B from the definition, in double precision by Gauss-Jordan elimination — independent of
    /// LAPACK and of the float path.
    static func referenceB(_ catalog: ModelCatalog, lambda: Double) -> [[Double]] {
        let n = catalog.items.count
        var g = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for u in 0 ..< catalog.users.count {
            let (items, values) = catalog.history.row(u)
            for (a, va) in zip(items, values) { for (b, vb) in zip(items, values) { g[Int(a)][Int(b)] += Double(va * vb) } }
        }
        for i in 0 ..< n { g[i][i] += lambda }
        var inverse = (0 ..< n).map { i in (0 ..< n).map { j in i == j ? 1.0 : 0 } }
        for column in 0 ..< n {
            let pivot = g[column][column]
            for j in 0 ..< n { g[column][j] /= pivot; inverse[column][j] /= pivot }
            for row in 0 ..< n where row != column {
                let factor = g[row][column]
                for j in 0 ..< n { g[row][j] -= factor * g[column][j]; inverse[row][j] -= factor * inverse[column][j] }
            }
        }
        return (0 ..< n).map { i in (0 ..< n).map { j in i == j ? 0 : -inverse[i][j] / inverse[j][j] } }
    }

    @Test("B matches the closed form computed independently in double precision")
    func closedForm() throws {
        let lambda: Float = 3
        let model = try EASEModel(Self.small, regularization: lambda, threads: 2)
        let reference = Self.referenceB(Self.small, lambda: Double(lambda))
        let n = Self.small.items.count
        var worst = 0.0
        for j in 0 ..< n {
            let column = model.table.row(j)   // row j of the table is column j of B
            for i in 0 ..< n { worst = max(worst, abs(Double(column[i]) - reference[i][j])) }
        }
        #expect(worst < 1e-5, "largest difference \(worst)")
        // And a user's scores are their history times B.
        let user = 5
        let (items, values) = Self.small.history.row(user)
        let top = try model.recommend(users: [user], k: n, excludeSeen: false, filter: nil)[0]
        for scored in top {
            let expected = zip(items, values).reduce(0.0) { $0 + Double($1.1) * reference[Int($1.0)][scored.id] }
            #expect(abs(Double(scored.score) - expected) < 1e-4, "item \(scored.id): \(scored.score) vs \(expected)")
        }
    }

    @Test("a fresh history gets exactly what the same user got from training")
    func foldsInForFree() throws {
        let model = try EASEModel(plantedCatalog, regularization: 20, threads: 2)
        let users = Array(0 ..< 30)
        let trained = try model.recommend(users: users, k: 10, excludeSeen: true, filter: nil)
        for (row, user) in users.enumerated() {
            let (items, weights) = plantedCatalog.history.row(user)
            let folded = try model.recommend(history: items.map(Int.init), weights: Array(weights), k: 10, excludeSeen: true, filter: nil)
            #expect(folded.map(\.id) == trained[row].map(\.id))
            #expect(zip(folded, trained[row]).allSatisfy { abs($0.score - $1.score) <= 1e-5 * max(1, abs($1.score)) })
        }
    }

    @Test("a catalog whose items² floats do not fit memory is refused, naming the bytes")
    func refusesHugeCatalogs() throws {
        let n = 400_000   // 2 × n² floats = 1.28 TB
        let items = try IDMap((0 ..< n).map { "i\($0)" })
        let catalog = try ModelCatalog(users: try IDMap(["u"]), items: items,
                                       history: SparseMatrix(rows: 1, columns: n, triples: [(row: 0, column: 0, value: 1)]))
        do {
            _ = try EASEModel(catalog, regularization: 10, threads: 1)
            Issue.record("a 400,000-item EASE was not refused")
        } catch let ModelError.invalidParameter(reason) {
            #expect(reason.contains("400000"), "\(reason)")
            #expect(reason.contains("bytes") || reason.contains("GB") || reason.contains("TB"), "\(reason)")
        }
        #expect(throws: ModelError.self) { try EASEModel(Self.small, regularization: 0) }
    }
}

@Suite("RP3beta")
struct RP3betaTests {
    @Test("weights follow the walk's definition, with the popularity penalty and top-K per row")
    func definition() throws {
        let catalog = EASETests.small
        let (alpha, beta): (Float, Float) = (0.8, 0.4)
        let model = try RP3betaModel(catalog, alpha: alpha, beta: beta, neighbours: 4, threads: 2)
        let n = catalog.items.count, users = catalog.users.count
        var itemUsers = [[Int]](repeating: [], count: n)
        var userItems = [[Int]](repeating: [], count: users)
        for u in 0 ..< users { for i in catalog.history.row(u).columns { itemUsers[Int(i)].append(u); userItems[u].append(Int(i)) } }
        for i in 0 ..< n {
            var expected: [(Int, Double)] = []
            for j in 0 ..< n where j != i && !itemUsers[j].isEmpty {
                var walk = 0.0
                for u in itemUsers[i] where userItems[u].contains(j) {
                    walk += pow(1 / Double(itemUsers[i].count), Double(alpha)) * pow(1 / Double(userItems[u].count), Double(alpha))
                }
                if walk > 0 { expected.append((j, walk / pow(Double(itemUsers[j].count), Double(beta)))) }
            }
            expected.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
            let kept = expected.prefix(4)
            let (columns, values) = model.similarities.row(i)
            #expect(columns.count == kept.count, "row \(i)")
            let stored = Dictionary(uniqueKeysWithValues: zip(columns.map(Int.init), values))
            for (j, weight) in kept {
                #expect(abs(Double(stored[j] ?? -1) - weight) < 1e-5 * max(1, weight), "W[\(i)][\(j)]")
            }
        }
    }

    @Test("a larger β moves recommendations away from popular items")
    func popularityPenalty() throws {
        let plain = try RP3betaModel(plantedCatalog, alpha: 1, beta: 0, neighbours: 50, threads: 2)
        let penalised = try RP3betaModel(plantedCatalog, alpha: 1, beta: 1, neighbours: 50, threads: 2)
        var popularity = [Int](repeating: 0, count: plantedCatalog.items.count)
        for i in plantedCatalog.history.columnIndices { popularity[Int(i)] += 1 }
        func meanPopularity(_ model: RP3betaModel) throws -> Double {
            let lists = try model.recommend(users: Array(0 ..< 200), k: 10, excludeSeen: true, filter: nil)
            let ids = (0 ..< lists.queryCount).flatMap { lists[$0].map(\.id) }
            return Double(ids.reduce(0) { $0 + popularity[$1] }) / Double(ids.count)
        }
        #expect(try meanPopularity(penalised) < 0.8 * meanPopularity(plain))
    }
}
