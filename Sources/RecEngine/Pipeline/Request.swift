import RecKernels
import RecModels

/// One user event: an item, what happened to it, and when.
public struct Event: Sendable, Codable, Equatable {
    /// The item's external id.
    public var item: String
    /// "view", "cart", "buy", … — weighted by ``EventTypeWeighting``.
    public var type: String
    /// Seconds since 1970; nil when unknown (no time decay applies then).
    public var timestamp: Double?
    /// An explicit strength; 1 when nil.
    public var weight: Float?

    /// An event on `item`, a view by default.
    public init(item: String, type: String = "view", timestamp: Double? = nil, weight: Float? = nil) {
        self.item = item
        self.type = type
        self.timestamp = timestamp
        self.weight = weight
    }
}

/// What a client asks for, after representation transformation: any mix of a known user, a
/// fresh history, seed items and a text.
public struct RecommendationRequest: Sendable, Codable, Equatable {
    /// A known user's external id, to answer from their trained vector and training history.
    public var user: String?
    /// Recent events, oldest first: a fresh history to fold in.
    public var history: [Event]
    /// "More like these items."
    public var items: [String]
    /// A free-text query, for text indexes.
    public var text: String?
    /// Results wanted; the pipeline's default when nil.
    public var k: Int?
    /// Items never to return, besides what post-processing excludes.
    public var exclude: [String]

    /// A request; every part is optional.
    public init(user: String? = nil, history: [Event] = [], items: [String] = [], text: String? = nil, k: Int? = nil,
                exclude: [String] = []) {
        self.user = user
        self.history = history
        self.items = items
        self.text = text
        self.k = k
        self.exclude = exclude
    }

    enum CodingKeys: String, CodingKey { case user, history, items, text, k, exclude }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        user = try c.decodeIfPresent(String.self, forKey: .user)
        history = try c.decodeIfPresent([Event].self, forKey: .history) ?? []
        items = try c.decodeIfPresent([String].self, forKey: .items) ?? []
        text = try c.decodeIfPresent(String.self, forKey: .text)
        k = try c.decodeIfPresent(Int.self, forKey: .k)
        exclude = try c.decodeIfPresent([String].self, forKey: .exclude) ?? []
    }
}

/// A request as the similarity stage sees it: ids resolved against the models' catalogs,
/// history reduced to (item, weight) pairs.
public struct PreparedRequest: Sendable {
    /// The request as the client sent it; pre-processing may clear an unknown user or drop
    /// unknown seed items.
    public var request: RecommendationRequest
    /// The weighted history, oldest first, by external item id.
    public var history: [(item: String, weight: Float)]
    /// Cleaned text, when the request has one.
    public var text: String?
    /// Items the request (or pre-processing) says never to return.
    public var exclude: Set<String>
    /// What pre-processing dropped, for the response (unknown items, truncated events).
    public var notes: [String] = []

    /// Prepares `request` as is: its events with their explicit weights (1 when nil), its text
    /// and its exclusions.
    public init(_ request: RecommendationRequest) {
        self.request = request
        self.history = request.history.map { ($0.item, $0.weight ?? 1) }
        self.text = request.text
        self.exclude = Set(request.exclude)
    }
}

/// Candidate items from one similarity source, with raw scores (higher is better).
public struct Candidates: Sendable {
    /// The model the candidates came from, and the version that answered.
    public var model: String
    /// The model version that answered; nil for a model registered without a store version.
    public var version: Int?
    /// External item ids with raw scores (higher is better), best first.
    public var items: [(item: String, score: Float)]

    /// Candidates from `model` at `version`.
    public init(model: String, version: Int?, items: [(item: String, score: Float)]) {
        self.model = model
        self.version = version
        self.items = items
    }

    /// Candidates from a model's recommendations.
    public init(model: String, version: Int?, found: [Recommendation]) {
        self.init(model: model, version: version, items: found.map { ($0.item, $0.score) })
    }
}

/// One item of the final answer.
public struct RecommendedItem: Sendable, Codable, Equatable {
    /// The item's external id.
    public var item: String
    /// The item's final score (higher is better); its scale depends on the pipeline's scoring stage.
    public var score: Float
    /// Item metadata (title, category, …) when the pipeline has an item table.
    public var metadata: [String: String]?
}

/// The answer: items, which model versions answered, and how long each stage took.
public struct RecommendationResponse: Sendable, Codable {
    /// The name of the pipeline that answered.
    public var pipeline: String
    /// At most k items, best first.
    public var items: [RecommendedItem]
    /// Model name → version that answered (0 for a model registered without a store version).
    public var models: [String: Int]
    /// Stage name → microseconds.
    public var timings: [String: Double]
    /// What pre-processing changed about the request (unknown user or items dropped, history
    /// truncated).
    public var notes: [String]
}

/// Why a request failed in a stage.
public enum PipelineError: Error, Equatable, Sendable, CustomStringConvertible {
    case badRequest(String)
    case modelNotLoaded(String)
    case wrongModelKind(model: String, expected: String, actual: String)
    case nothingToScore(String)

    public var description: String {
        switch self {
        case let .badRequest(reason): "bad request: \(reason)"
        case let .modelNotLoaded(name): "model '\(name)' is not loaded"
        case let .wrongModelKind(model, expected, actual): "model '\(model)' is a \(actual) model; this stage needs \(expected)"
        case let .nothingToScore(reason): "nothing to score: \(reason)"
        }
    }
}
