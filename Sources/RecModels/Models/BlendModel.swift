import RecKernels

/// An ensemble of two trained recommenders over the same catalog: each query's items are ranked
/// by a weighted sum of the two models' normalized scores.
///
/// For a query (a known user, a history, or an item's neighbours) each model returns its best
/// `max(k, candidates)` items (``candidatesPerModel`` by default; the whole catalog at most),
/// with the query's exclusions and filter already applied. Each model's list is min–max
/// normalized on its own — its best item gets 1, its last 0, `(s − min) / (max − min)`; a list
/// whose scores are all equal gets 1 — the normalization the engine's `WeightedBlend` stage uses,
/// so models on different scales (EASE's item weights, ALS's inner products) can be summed. An
/// item gets `(1 − weight) · a + weight · b`, with a and b its normalized scores from the first and
/// second model (0 from a model that did not return it). The best `k` by that sum are returned,
/// ties broken by the lower item index, with the blended sum as their score.
///
/// With `weight` 0 the ranking is the first model's top `k` (for k below the candidate count:
/// its lowest candidate and the items only the second model returned all get 0), with `weight`
/// 1 the second's. The weight is meant to be chosen on a validation split carved from the
/// training data (`recommender tune --model blend`), never on the test split.
///
/// - Complexity: both models' queries at depth `max(k, candidates)`, plus O(candidates · log)
///   per query to merge and sort.
/// - Note: a blend is not saved as one model file: ``save(to:metrics:)`` throws. It is served
///   as its two components under an engine pipeline with two sources, a `blend` scoring stage
///   with weights `[1 − weight, weight]` and `candidates` equal to ``candidates``, which ranks
///   as this type does (tested for every user of a catalog).
public struct BlendModel: Recommender {
    /// Items taken from each model per query unless `k` is larger: deep enough that an item
    /// ranked well by either model is seen by both sums, small next to a 3,706-item catalog.
    public static let candidatesPerModel = 200

    /// The model whose normalized scores get `1 − weight`.
    public let first: any Recommender
    /// The model whose normalized scores get `weight`.
    public let second: any Recommender
    /// The second model's share, in 0...1.
    public let weight: Float
    /// Items taken from each model per query (at least `k`).
    public let candidates: Int

    /// Always "blend".
    public var kind: String { "blend" }
    /// The first model's catalog (the second's has the same users and items).
    public var catalog: ModelCatalog { first.catalog }

    /// A blend of `first` and `second`, trained on the same users and items.
    ///
    /// - Throws: ``ModelError/invalidParameter(_:)`` when `weight` is outside 0...1 or not
    ///   finite, `candidates` < 1, or the two catalogs differ in user or item ids.
    public init(first: any Recommender, second: any Recommender, weight: Float, candidates: Int = BlendModel.candidatesPerModel) throws {
        guard weight.isFinite, (0 ... 1).contains(weight) else { throw ModelError.invalidParameter("blend weight \(weight), expected a number in 0...1") }
        guard candidates >= 1 else { throw ModelError.invalidParameter("blend candidates \(candidates), expected ≥ 1") }
        guard first.catalog.users == second.catalog.users, first.catalog.items == second.catalog.items else {
            throw ModelError.invalidParameter("the blended models were trained on different users or items (\(first.kind): \(first.catalog.users.count) × \(first.catalog.items.count), \(second.kind): \(second.catalog.users.count) × \(second.catalog.items.count))")
        }
        self.first = first
        self.second = second
        self.weight = weight
        self.candidates = candidates
    }

    private func depth(_ k: Int) throws -> Int {
        guard k >= 1 else { throw ScoringError.invalidK(k) }
        return min(max(k, candidates), catalog.items.count)
    }

    /// The blended ranking of two candidate lists, best `k` first.
    func merge(_ a: [ScoredItem], _ b: [ScoredItem], k: Int) -> [ScoredItem] {
        var totals: [Int: Float] = [:]
        for (list, share) in [(a, 1 - weight), (b, weight)] {
            for (item, normalized) in zip(list, list.minMaxNormalizedScores) { totals[item.id, default: 0] += share * normalized }
        }
        let ranked = totals.map { ScoredItem(id: $0.key, score: $0.value) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
        return Array(ranked.prefix(k))
    }

    public func recommend(users: [Int], k: Int, excludeSeen: Bool = true, filter: ItemFilter? = nil) throws -> TopKResults {
        let depth = try depth(k)
        let a = try first.recommend(users: users, k: depth, excludeSeen: excludeSeen, filter: filter)
        let b = try second.recommend(users: users, k: depth, excludeSeen: excludeSeen, filter: filter)
        return TopKResults(rows: users.indices.map { merge(a[$0], b[$0], k: k) }, k: k)
    }

    public func recommend(history items: [Int], weights: [Float], k: Int, excludeSeen: Bool = true,
                          filter: ItemFilter? = nil) throws -> [ScoredItem] {
        let depth = try depth(k)
        return merge(try first.recommend(history: items, weights: weights, k: depth, excludeSeen: excludeSeen, filter: filter),
                     try second.recommend(history: items, weights: weights, k: depth, excludeSeen: excludeSeen, filter: filter), k: k)
    }

    public func similarItems(to item: Int, k: Int) throws -> [ScoredItem] {
        let depth = min(try depth(k), catalog.items.count - 1)
        guard depth >= 1 else { return [] }
        return merge(try first.similarItems(to: item, k: depth), try second.similarItems(to: item, k: depth), k: k)
    }

    /// Not supported: a blend is two models; save each component.
    ///
    /// - Throws: always ``ModelError/invalidParameter(_:)``.
    public func save(to path: String, metrics: [String: Double]) throws {
        throw ModelError.invalidParameter("a blend is not saved as one model file (\(path)): save its \(first.kind) and \(second.kind) components and serve them through a pipeline with two sources, \"scoring\": {\"type\": \"blend\", \"weights\": [\(1 - weight), \(weight)]} and \"candidates\": \(candidates) (README: Blend of two models)")
    }
}

extension Array where Element == ScoredItem {
    /// Each item's score min–max normalized over this list, in the list's order: the highest
    /// gets 1, the lowest 0, `(s − min) / (max − min)` between; every item gets 1 when all scores
    /// are equal. How a blend puts models on different scales on one: ``BlendModel`` and the
    /// engine's `WeightedBlend` stage both use it.
    ///
    /// - Complexity: O(count).
    public var minMaxNormalizedScores: [Float] {
        guard let first else { return [] }
        var low = first.score, high = first.score
        for item in self { low = Swift.min(low, item.score); high = Swift.max(high, item.score) }
        let span = high - low
        return map { span > 0 ? ($0.score - low) / span : 1 }
    }
}
