import RecKernels

/// An item in a result, by external id.
public struct Recommendation: Sendable, Hashable, CustomStringConvertible {
    /// The item's external id.
    public let item: String
    /// The model's score (higher is better); comparable only within one model.
    public let score: Float

    public var description: String { "\(item): \(score)" }
}

extension Recommender {
    /// The best `k` items for user `id` (external ids in and out).
    ///
    /// - Throws: ``ModelError/unknownUser(_:)``, ``ScoringError``.
    public func recommend(user id: String, k: Int, excludeSeen: Bool = true, filter: ItemFilter? = nil) throws -> [Recommendation] {
        let user = try catalog.user(id)
        return named(try recommend(users: [user], k: k, excludeSeen: excludeSeen, filter: filter)[0])
    }

    /// The best `k` items for a fresh history of (item id, strength) pairs: a new user, or a
    /// known user's latest events folded in without retraining.
    ///
    /// - Throws: ``ModelError/unknownItem(_:)`` naming the first unknown item,
    ///   ``ModelError/emptyHistory``.
    public func recommend(history: [(item: String, weight: Float)], k: Int, excludeSeen: Bool = true,
                          filter: ItemFilter? = nil) throws -> [Recommendation] {
        let items = try history.map { try catalog.item($0.item) }
        return named(try recommend(history: items, weights: history.map(\.weight), k: k, excludeSeen: excludeSeen, filter: filter))
    }

    /// The `k` items most similar to item `id`.
    public func similarItems(to id: String, k: Int) throws -> [Recommendation] {
        named(try similarItems(to: try catalog.item(id), k: k))
    }

    /// Recommends for every user, `batch` users per kernel call, handing each batch's results
    /// to `body` as they are ready — memory stays O(batch × k) whatever the user count.
    ///
    /// - Parameter body: receives the batch's first user index and its results.
    public func recommendAll(k: Int, batch: Int = 4096, excludeSeen: Bool = true, filter: ItemFilter? = nil,
                             _ body: (_ firstUser: Int, _ results: TopKResults) throws -> Void) throws {
        guard batch >= 1 else { throw ModelError.invalidParameter("batch must be at least 1") }
        for start in stride(from: 0, to: catalog.users.count, by: batch) {
            let users = Array(start ..< min(start + batch, catalog.users.count))
            try body(start, try recommend(users: users, k: k, excludeSeen: excludeSeen, filter: filter))
        }
    }

    private func named(_ items: [ScoredItem]) -> [Recommendation] {
        items.map { Recommendation(item: catalog.items[$0.id], score: $0.score) }
    }
}
