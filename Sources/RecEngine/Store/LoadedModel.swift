import RecModels
import RecText

/// A loaded model of any kind the engine serves.
public enum LoadedModel: Sendable {
    case recommender(any Recommender)
    case text(TextIndex)

    /// The model's kind as stored in its file ("als", "item-knn", "popularity", "text-index", …).
    public var kind: String {
        switch self {
        case let .recommender(model): model.kind
        case .text: "text-index"
        }
    }
}
