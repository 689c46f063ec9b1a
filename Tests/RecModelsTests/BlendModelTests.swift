import RecKernels
@testable import RecModels
import Testing

/// A model with a fixed users × items score table (higher is better), so the blend's arithmetic
/// can be checked on planted scores.
struct BlendTestTableModel: Recommender {
    let catalog: ModelCatalog
    let scores: [[Float]]
    var kind: String { "table" }

    func ranked(_ row: [Float], excluding: Set<Int>, k: Int) -> [ScoredItem] {
        Array(row.enumerated().filter { !excluding.contains($0.offset) }.map { ScoredItem(id: $0.offset, score: $0.element) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }.prefix(k))
    }

    func recommend(users: [Int], k: Int, excludeSeen: Bool, filter: ItemFilter?) throws -> TopKResults {
        TopKResults(rows: users.map { user in
            ranked(scores[user], excluding: excludeSeen ? Set(catalog.history.row(user).columns.map(Int.init)) : [], k: k)
        }, k: k)
    }

    func recommend(history items: [Int], weights: [Float], k: Int, excludeSeen: Bool, filter: ItemFilter?) throws -> [ScoredItem] {
        ranked(scores[0], excluding: excludeSeen ? Set(items) : [], k: k)
    }

    func similarItems(to item: Int, k: Int) throws -> [ScoredItem] { ranked(scores[0], excluding: [item], k: k) }
    func save(to path: String, metrics: [String: Double]) throws {}
}

@Suite("Blend of two models")
struct BlendModelTests {
    /// One user who has seen item 6; items 0…5 unseen. The truth is {0, 2}: the first model ranks
    /// 0 and 1 on top (it misses 2), the second 2 and 3 (it misses 0).
    static let catalog: ModelCatalog = {
        var log = Interactions()
        log.append(user: "u", item: "i6", value: 1)
        for i in 0 ..< 6 { _ = log.items.insert("i\(i)") }
        return try! ModelCatalog(training: log)
    }()

    /// Scores for items in the catalog's index order.
    static func table(_ byName: [String: Float]) -> BlendTestTableModel {
        BlendTestTableModel(catalog: catalog, scores: [(0 ..< catalog.items.count).map { byName[catalog.items[$0]]! }])
    }

    static let first = table(["i0": 10, "i1": 9, "i2": 5, "i3": 1, "i4": 0, "i5": 0.5, "i6": 100])
    static let second = table(["i0": 0.5, "i1": 0, "i2": 1, "i3": 0.9, "i4": 0.1, "i5": 0.2, "i6": 100])

    static func names(_ items: [ScoredItem]) -> [String] { items.map { catalog.items[$0.id] } }

    @Test("at an intermediate weight the blend recovers the truth each model alone half misses")
    func recoversBoth() throws {
        #expect(Self.names(try Self.first.recommend(users: [0], k: 2, excludeSeen: true, filter: nil)[0]) == ["i0", "i1"])
        #expect(Self.names(try Self.second.recommend(users: [0], k: 2, excludeSeen: true, filter: nil)[0]) == ["i2", "i3"])
        let blend = try BlendModel(first: Self.first, second: Self.second, weight: 0.5)
        // Min–max normalized: first {i0: 1, i1: 0.9, i2: 0.5, …}, second {i2: 1, i3: 0.9, i0: 0.5, …}:
        // i0 and i2 both sum to 0.75, i3 to 0.5, i1 to 0.45; the seen i6 is left out.
        let top = try blend.recommend(users: [0], k: 3, excludeSeen: true, filter: nil)[0]
        #expect(Self.names(top) == ["i0", "i2", "i3"])
        #expect(top.map(\.score) == [0.75, 0.75, 0.5])
        #expect(Self.names(try blend.recommend(history: [Self.catalog.item("i6")], weights: [1], k: 2, excludeSeen: true, filter: nil)) == ["i0", "i2"])
    }

    @Test("weight 0 ranks as the first model, weight 1 as the second")
    func endpointsAreTheComponents() throws {
        for (weight, component) in [(Float(0), Self.first), (1, Self.second)] {
            let blend = try BlendModel(first: Self.first, second: Self.second, weight: weight)
            let alone = try component.recommend(users: [0], k: 5, excludeSeen: true, filter: nil)[0].map(\.id)
            #expect(try blend.recommend(users: [0], k: 5, excludeSeen: true, filter: nil)[0].map(\.id) == alone)
        }
        // Real models too: EASE and popularity on a 40-user catalog, every user.
        let catalog = EASETests.small
        let ease = try EASEModel(catalog, regularization: 10), popularity = try PopularityModel(catalog)
        let users = Array(0 ..< catalog.users.count)
        for (weight, component) in [(Float(0), ease as any Recommender), (1, popularity)] {
            let blend = try BlendModel(first: ease, second: popularity, weight: weight)
            let got = try blend.recommend(users: users, k: 4, excludeSeen: true, filter: nil)
            let alone = try component.recommend(users: users, k: 4, excludeSeen: true, filter: nil)
            for user in users { #expect(got[user].map(\.id) == alone[user].map(\.id), "user \(user) at weight \(weight)") }
        }
    }

    @Test("a weight outside 0...1 and models over different catalogs are refused")
    func refusals() throws {
        #expect(throws: ModelError.self) { try BlendModel(first: Self.first, second: Self.second, weight: 1.5) }
        #expect(throws: ModelError.self) { try BlendModel(first: Self.first, second: PopularityModel(EASETests.small), weight: 0.5) }
        #expect(throws: ModelError.self) { try BlendModel(first: Self.first, second: Self.second, weight: 0.5).save(to: "/dev/null") }
    }
}
