import RecKernels
import RecModels

/// One user event: an item, what happened to it, and when.
public struct Event: Sendable, Codable, Equatable {
    public var item: String
    /// "view", "cart", "buy", … — weighted by ``EventTypeWeighting``.
    public var type: String
    /// Seconds since 1970; nil when unknown (no time decay applies then).
    public var timestamp: Double?
    /// An explicit strength; 1 when nil.
    public var weight: Float?

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
    public var user: String?
    public var history: [Event]
    /// "More like these items."
    public var items: [String]
    public var text: String?
    /// Results wanted; the pipeline's default when nil.
    public var k: Int?
    /// Items never to return, besides what post-processing excludes.
    public var exclude: [String]

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
    public var request: RecommendationRequest
    /// The weighted history, oldest first, by external item id.
    public var history: [(item: String, weight: Float)]
    /// Cleaned text, when the request has one.
    public var text: String?
    /// Items the request (or pre-processing) says never to return.
    public var exclude: Set<String>
    /// What pre-processing dropped, for the response (unknown items, truncated events).
    public var notes: [String] = []

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
    public var version: Int?
    public var items: [(item: String, score: Float)]

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
    public var item: String
    public var score: Float
    /// Item metadata (title, category, …) when the pipeline has an item table.
    public var metadata: [String: String]?
}

/// The answer: items, which model versions answered, and how long each stage took.
public struct RecommendationResponse: Sendable, Codable {
    public var pipeline: String
    public var items: [RecommendedItem]
    /// Model name → version that answered (0 for a model registered without a store version).
    public var models: [String: Int]
    /// Stage name → microseconds.
    public var timings: [String: Double]
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
