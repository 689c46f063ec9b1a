import RecKernels
internal import RealModule

/// Top-K ranking quality, averaged over the test users (users with at least one test item).
///
/// For a user u with relevant (test) items R and the model's top-K list L — training items
/// excluded from L, so they can neither help nor hurt — with rel(k) = 1 when the k-th item of L
/// is in R:
/// - **precision@K** = |L ∩ R| / K (K, not |L|: a short list is not rewarded);
/// - **recall@K** = |L ∩ R| / |R|;
/// - **hit rate@K** = 1 when |L ∩ R| > 0;
/// - **MAP@K**: AP = Σₖ precision@k · rel(k) / min(K, |R|), averaged over users;
/// - **NDCG@K** = DCG / IDCG with DCG = Σₖ rel(k) / log₂(k + 1) and IDCG the DCG of min(K, |R|)
///   hits at the top (binary gains);
/// - **AUC**: the share of (relevant, non-relevant) item pairs, among items not in u's training
///   set, that the model orders right, from a full ranking (computed only when asked: it scores
///   every item);
/// - **MRR@K**: 1 / (rank of the first item of L that is in R), 0 when none of L is (mean
///   reciprocal rank, cut at K);
/// - **coverage** = |⋃ᵤ L| / number of items (catalog coverage).
public struct RankingMetrics: Sendable, Equatable {
    /// The list length K the metrics were computed at.
    public var k: Int
    /// Number of test users averaged over (users with at least one test item).
    public var users: Int
    /// Mean precision@K, in 0 ... 1.
    public var precision = 0.0
    /// Mean recall@K, in 0 ... 1.
    public var recall = 0.0
    /// Share of users with at least one hit in their top K.
    public var hitRate = 0.0
    /// MAP@K, in 0 ... 1.
    public var meanAveragePrecision = 0.0
    /// Mean NDCG@K with binary gains, in 0 ... 1.
    public var ndcg = 0.0
    /// Mean reciprocal rank of the first hit within the top K (0 for a user without one), in 0 ... 1.
    public var mrr = 0.0
    /// nil unless requested.
    public var auc: Double? = nil
    /// Share of the catalog that appears in at least one user's top K.
    public var coverage = 0.0

    /// Metric name → value, for tables and model metadata.
    public var named: [(String, Double)] {
        var result = [("P@\(k)", precision), ("R@\(k)", recall), ("MAP@\(k)", meanAveragePrecision), ("NDCG@\(k)", ndcg),
                      ("MRR@\(k)", mrr), ("HR@\(k)", hitRate), ("coverage@\(k)", coverage)]
        if let auc { result.append(("AUC", auc)) }
        return result
    }
}

/// Rating-prediction error over the test entries: RMSE = √(mean (r − r̂)²), MAE = mean |r − r̂|.
/// Predictions are clipped to the training ratings' range (as Surprise does); a user or item
/// with no training data gets the prediction the model gives it (for biased MF: the mean plus
/// whatever bias is known).
public struct RatingMetrics: Sendable, Equatable {
    /// Root-mean-square error, in rating units.
    public var rmse: Double
    /// Mean absolute error, in rating units.
    public var mae: Double
    /// Number of test entries scored.
    public var count: Int
}

/// Scores models against held-out interactions.
public enum Evaluation {
    /// Ranking metrics of `model` on `test` (whose indices share the model's id maps).
    ///
    /// - Parameters:
    ///   - includeAUC: also compute AUC from a full ranking of every item (slower: O(items) per user).
    ///   - batch: users scored per call of the kernel.
    /// - Throws: ``ModelError/invalidParameter(_:)`` when id maps differ in size, ``ScoringError``.
    public static func ranking(_ model: some Recommender, test: Interactions, k: Int, includeAUC: Bool = false,
                               batch: Int = 1024) throws -> RankingMetrics {
        let catalog = model.catalog
        guard test.users.count <= catalog.users.count, test.items.count <= catalog.items.count else {
            throw ModelError.invalidParameter("the test set's id maps are larger than the model's: read it into the training maps")
        }
        guard k >= 1 else { throw ScoringError.invalidK(k) }
        var relevant = [Set<Int32>](repeating: [], count: catalog.users.count)
        for e in 0 ..< test.count { relevant[Int(test.userIndices[e])].insert(test.itemIndices[e]) }
        let users = (0 ..< catalog.users.count).filter { !relevant[$0].isEmpty }
        var metrics = RankingMetrics(k: k, users: users.count)
        guard !users.isEmpty else { return metrics }
        var recommended = [Bool](repeating: false, count: catalog.items.count)
        var aucSum = 0.0
        let depth = includeAUC ? catalog.items.count : k
        for start in stride(from: 0, to: users.count, by: batch) {
            let chunk = Array(users[start ..< min(start + batch, users.count)])
            let results = try model.recommend(users: chunk, k: depth, excludeSeen: true, filter: nil)
            for (row, user) in chunk.enumerated() {
                let list = results[row]
                let truth = relevant[user]
                var hits = 0, averagePrecision = 0.0, dcg = 0.0, reciprocalRank = 0.0
                for (position, item) in list.prefix(k).enumerated() {
                    recommended[item.id] = true
                    if truth.contains(Int32(item.id)) {
                        if hits == 0 { reciprocalRank = 1 / Double(position + 1) }
                        hits += 1
                        averagePrecision += Double(hits) / Double(position + 1)
                        dcg += 1 / Double.log2(Double(position + 2))
                    }
                }
                let ideal = (0 ..< min(k, truth.count)).reduce(0.0) { $0 + 1 / Double.log2(Double($1 + 2)) }
                metrics.precision += Double(hits) / Double(k)
                metrics.recall += Double(hits) / Double(truth.count)
                metrics.hitRate += hits > 0 ? 1 : 0
                metrics.meanAveragePrecision += averagePrecision / Double(min(k, truth.count))
                metrics.ndcg += dcg / ideal
                metrics.mrr += reciprocalRank
                if includeAUC {
                    // Walking the full ranking, each non-relevant item makes a right-ordered pair
                    // with every relevant item ranked above it.
                    var positivesSeen = 0, correctPairs = 0
                    for item in list {
                        if truth.contains(Int32(item.id)) { positivesSeen += 1 } else { correctPairs += positivesSeen }
                    }
                    let negatives = list.count - positivesSeen
                    if positivesSeen > 0 && negatives > 0 {
                        aucSum += Double(correctPairs) / Double(positivesSeen * negatives)
                    }
                }
            }
        }
        let n = Double(users.count)
        metrics.precision /= n
        metrics.recall /= n
        metrics.hitRate /= n
        metrics.meanAveragePrecision /= n
        metrics.ndcg /= n
        metrics.mrr /= n
        if includeAUC { metrics.auc = aucSum / n }
        metrics.coverage = Double(recommended.lazy.filter { $0 }.count) / Double(catalog.items.count)
        return metrics
    }

    /// RMSE and MAE of a rating model on `test`.
    public static func rating(_ model: FactorModel, test: Interactions) throws -> RatingMetrics {
        let history = model.catalog.history
        guard history.nonzeroCount > 0, test.count > 0 else { throw ModelError.emptyTrainingSet }
        let low = history.values.min()!, high = history.values.max()!
        var squared = 0.0, absolute = 0.0
        for e in 0 ..< test.count {
            let user = Int(test.userIndices[e]), item = Int(test.itemIndices[e])
            guard user < model.catalog.users.count, item < model.catalog.items.count else {
                throw ModelError.invalidParameter("test entry \(e) refers to an id outside the model")
            }
            let prediction = min(high, max(low, model.predict(user: user, item: item)))
            let error = Double(test.values[e] - prediction)
            squared += error * error
            absolute += abs(error)
        }
        return RatingMetrics(rmse: (squared / Double(test.count)).squareRoot(), mae: absolute / Double(test.count), count: test.count)
    }
}
