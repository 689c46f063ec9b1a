import RecEngine
import RecKernels
import RecModels

/// Why a model would recommend an item from a history: the history items behind it, each with
/// its share, for every model that has a natural explanation.
///
/// - implicit ALS (`als`): each history item's additive contribution (Hu, Koren & Volinsky
///   2008, §5); the contributions add up to the fold-in score.
/// - item-kNN (`item-knn`): each history item's weight × its similarity to the item; the
///   contributions add up to the score `recommend(history:weights:)` gives the item.
/// - BPR, biased MF, explicit ALS (`bpr`, `biased-mf`, `als-explicit`): no additive
///   decomposition exists; the history items most similar to the item (cosine of the item
///   factors, bias left out) are given, with that similarity.
/// - popularity and text indexes: no explanation (a popularity score does not depend on the
///   history; text results are explained by the query itself) — a 422 says so.
enum Explanations {
    /// The method an explanation used.
    enum Method: String {
        /// Additive shares of the score.
        case contribution
        /// Similarity of each history item to the explained one.
        case similarity
    }

    /// An explanation: the score (for additive methods) and each history item's share, largest first.
    struct Explanation {
        var method: Method
        var score: Float?
        var because: [ScoredItem]
    }

    /// The kinds of model with an explanation.
    static let explainedKinds = ["als", "item-knn", "bpr", "biased-mf", "als-explicit"]

    /// Explains `item` for the history `items` (catalog indices) weighted by `weights`.
    ///
    /// - Throws: ``APIError`` 422 for a model without explanations; what the model throws.
    /// - Complexity: ALS O(d³ + h·d²); item-kNN O(h·neighbours); similarity O(h·d).
    static func explain(_ model: any Recommender, name: String, history items: [Int], weights: [Float], item: Int) throws -> Explanation {
        switch model {
        case let model as FactorModel:
            if case .implicitALS = model.algorithm {
                let (score, contributions) = try model.explain(history: items, weights: weights, item: item)
                return Explanation(method: .contribution, score: score, because: contributions)
            }
            return Explanation(method: .similarity, score: nil, because: factorSimilarities(model, history: items, item: item))
        case let model as ItemKNNModel:
            var because: [ScoredItem] = []
            var score: Float = 0
            for (historyItem, weight) in zip(items, weights) {
                let (columns, values) = model.similarities.row(historyItem)
                guard let at = columns.firstIndex(of: Int32(item)) else { continue }
                because.append(ScoredItem(id: historyItem, score: weight * values[at]))
                score += weight * values[at]
            }
            return Explanation(method: .contribution, score: score, because: sorted(because))
        default:
            throw APIError(.unprocessableContent, field: "model",
                           "model '\(name)' is a '\(model.kind)' model, which has no explanation; explanations exist for \(explainedKinds.joined(separator: ", "))")
        }
    }

    /// Cosine of each distinct history item's factors with `item`'s (the bias column of BPR and
    /// biased MF left out, as the model's own similar-items search does), largest first.
    static func factorSimilarities(_ model: FactorModel, history items: [Int], item: Int) -> [ScoredItem] {
        let table = model.itemFactors
        let dimensions: Int
        switch model.algorithm {
        case .bpr, .biasedMF: dimensions = max(1, table.dimensions - 1)
        case .implicitALS, .explicitALS, .bayesianMF: dimensions = table.dimensions
        }
        func cosine(_ a: Int, _ b: Int) -> Float {
            table.withRow(a) { x in
                table.withRow(b) { y in
                    var dot: Float = 0, xx: Float = 0, yy: Float = 0
                    for f in 0 ..< dimensions { dot += x[f] * y[f]; xx += x[f] * x[f]; yy += y[f] * y[f] }
                    return xx > 0 && yy > 0 ? dot / (xx.squareRoot() * yy.squareRoot()) : 0
                }
            }
        }
        var seen = Set<Int>()
        return sorted(items.filter { $0 != item && seen.insert($0).inserted }.map { ScoredItem(id: $0, score: cosine($0, item)) })
    }

    static func sorted(_ items: [ScoredItem]) -> [ScoredItem] {
        items.sorted { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
    }
}
