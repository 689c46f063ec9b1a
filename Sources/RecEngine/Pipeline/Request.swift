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

/// One event of a prepared request: the item (its external id and, once resolved, its index
/// in the catalog of ``PreparedRequest/indexedBy``) with everything that weights it, in one
/// value — so truncation, dropping unknown items, type weighting and time decay can never get
/// out of step with each other.
public struct PreparedEvent: Sendable, Equatable {
    /// The item's external id.
    public var item: String
    /// The item's index in the catalog of the request's ``PreparedRequest/indexedBy`` model;
    /// nil before id mapping.
    public var index: Int?
    /// The event type ("view", "buy", …).
    public var type: String
    /// The event's strength so far: its explicit weight (1 when none), times what weighting
    /// stages applied.
    public var weight: Float
    /// Seconds since 1970, when known.
    public var timestamp: Double?

    /// The prepared form of `event`.
    public init(_ event: Event) {
        item = event.item
        index = nil
        type = event.type
        weight = event.weight ?? 1
        timestamp = event.timestamp
    }
}

/// A request as the similarity stage sees it: ids resolved once against a model's catalog
/// (``indexedBy``), events carrying their own weights.
public struct PreparedRequest: Sendable {
    /// The request as the client sent it (after the engine added the user's recent events).
    public var request: RecommendationRequest
    /// The known user's external id; nil for an anonymous request or a user id mapping did not
    /// find (answered as a cold user).
    public var user: String?
    /// The user's index in the catalog of ``indexedBy``.
    public var userIndex: Int?
    /// The fresh history, oldest first.
    public var events: [PreparedEvent]
    /// "More like these" seed items, by external id, with their indices once resolved.
    public var seeds: [(item: String, index: Int?)]
    /// Cleaned text, when the request has one.
    public var text: String?
    /// Items never to return, by external id.
    public var exclude: [String]
    /// The model whose catalog the indices refer to; nil before id mapping.
    public var indexedBy: String?
    /// Results wanted.
    public var k: Int
    /// What pre-processing dropped, for the response (unknown items, truncated events).
    public var notes: [String] = []
    /// What the pipeline's post-processing asks of scoring (set by the pipeline before the
    /// similarity stage); nil outside a pipeline.
    public var constraints: ScoringConstraints?

    /// Prepares `request` as is: its events with their explicit weights (1 when nil), its seeds,
    /// its text and its exclusions; `k` when the request does not say.
    public init(_ request: RecommendationRequest, k: Int = 10) {
        self.request = request
        self.user = request.user
        self.userIndex = nil
        self.events = request.history.map(PreparedEvent.init)
        self.seeds = request.items.map { ($0, nil) }
        self.text = request.text
        self.exclude = request.exclude
        self.indexedBy = nil
        self.k = request.k ?? k
    }

    /// The history as (item, weight) pairs by external id.
    public var history: [(item: String, weight: Float)] { events.map { ($0.item, $0.weight) } }

    /// The user's index in `catalog` (the model `model`); nil for an anonymous or unknown user.
    func userIndex(in model: String, catalog: ModelCatalog) -> Int? {
        guard let user else { return nil }
        return indexedBy == model ? userIndex : catalog.users.index(of: user)
    }

    /// The events' item indices in `catalog` (the model `model`), with their weights; events for
    /// items that catalog lacks are left out.
    func events(in model: String, catalog: ModelCatalog) -> (items: [Int], weights: [Float]) {
        var items: [Int] = [], weights: [Float] = []
        items.reserveCapacity(events.count)
        weights.reserveCapacity(events.count)
        for event in events {
            guard let index = indexedBy == model ? event.index : catalog.items.index(of: event.item) else { continue }
            items.append(index)
            weights.append(event.weight)
        }
        return (items, weights)
    }

    /// The seed items' indices in `catalog` (the model `model`).
    func seeds(in model: String, catalog: ModelCatalog) -> [Int] {
        seeds.compactMap { indexedBy == model ? $0.index : catalog.items.index(of: $0.item) }
    }

    /// The request's exclusions' indices in `catalog`.
    func excluded(in catalog: ModelCatalog) -> [Int] {
        exclude.compactMap { catalog.items.index(of: $0) }
    }
}

/// How a candidate list names its items: indices into a recommender's catalog, or into a list
/// of ids (a text index's documents).
public enum CandidateNames: Sendable {
    /// Indices into a model catalog's item ids.
    case catalog(IDMap)
    /// Indices into these ids.
    case list([String])

    /// The external id of item `index`.
    public subscript(index: Int) -> String {
        switch self {
        case let .catalog(map): map[index]
        case let .list(ids): ids[index]
        }
    }
}

/// Candidate items from one similarity source, with raw scores (higher is better).
public struct Candidates: Sendable {
    /// The model the candidates came from.
    public var model: String
    /// The model version that answered; nil for a model registered without a store version.
    public var version: Int?
    /// Items by index into ``names``, best first.
    public var items: [ScoredItem]
    /// How ``items``' indices map to external ids.
    public var names: CandidateNames
    /// Whether the source applied the request's exclusions and the pipeline's allow/deny lists
    /// while scoring; when false, the pipeline filters the list by id afterwards.
    public var filteredInKernel: Bool

    /// Candidates from `model` at `version`.
    public init(model: String, version: Int?, items: [ScoredItem], names: CandidateNames, filteredInKernel: Bool) {
        self.model = model
        self.version = version
        self.items = items
        self.names = names
        self.filteredInKernel = filteredInKernel
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
    /// The store holds the model but its active version could not be loaded; `reason` says why.
    case modelFailedToLoad(model: String, reason: String)
    case wrongModelKind(model: String, expected: String, actual: String)
    case nothingToScore(String)

    public var description: String {
        switch self {
        case let .badRequest(reason): "bad request: \(reason)"
        case let .modelNotLoaded(name): "model '\(name)' is not loaded"
        case let .modelFailedToLoad(name, reason): "model '\(name)' is not served: its active version failed to load: \(reason)"
        case let .wrongModelKind(model, expected, actual): "model '\(model)' is a \(actual) model; this stage needs \(expected)"
        case let .nothingToScore(reason): "nothing to score: \(reason)"
        }
    }
}
