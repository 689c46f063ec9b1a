import FoundationEssentials
import RecKernels
import RecModels
import RecText

// The six stages of a request (representation transformation → pre-processing → similarity
// calculation → scoring → post-processing → results), each a small protocol with several
// implementations. A ``Pipeline`` is a named composition of them, declared in a settings file.

/// Stage 1: raw input (a JSON body, a CSV row, a text, a list of events) to a request.
public protocol RepresentationTransformer: Sendable {
    func transform(_ input: String) throws -> RecommendationRequest
}

/// Stage 2: cleans and enriches a request (id mapping, text cleaning, history weighting…).
public protocol PreProcessor: Sendable {
    func process(_ request: inout PreparedRequest, models: ModelSnapshots) throws
}

/// Stage 3: candidates with raw similarities from one model.
public protocol SimilaritySource: Sendable {
    /// The model the source reads.
    var model: String { get }
    /// Up to `count` candidates; an empty list when the request gives this source nothing to
    /// work from (no known user, no history), so another source can answer.
    func candidates(for request: PreparedRequest, count: Int, models: ModelSnapshots) throws -> Candidates
}

/// Stage 4: one score per item from the sources' candidates.
public protocol ScoreCombiner: Sendable {
    func combine(_ sources: [Candidates]) -> [(item: String, score: Float)]
}

/// Stage 5: edits the ranked list (exclusions, filters, diversity, fallbacks).
public protocol PostProcessor: Sendable {
    func process(_ items: inout [(item: String, score: Float)], request: PreparedRequest, k: Int, models: ModelSnapshots) throws
}

/// Stage 6: the final items, with whatever the client needs about them.
public protocol ResultFormatter: Sendable {
    func format(_ items: [(item: String, score: Float)], k: Int) -> [RecommendedItem]
}

// MARK: - Representation transformation

/// A JSON ``RecommendationRequest`` body.
public struct JSONRequestTransformer: RepresentationTransformer {
    /// A JSON request transformer.
    public init() {}
    public func transform(_ input: String) throws -> RecommendationRequest {
        do { return try JSONDecoder().decode(RecommendationRequest.self, from: Data(input.utf8)) } catch {
            throw PipelineError.badRequest("not a JSON request: \(error)")
        }
    }
}

/// A CSV row `user[,k]`: batch jobs feeding user ids.
public struct CSVRowTransformer: RepresentationTransformer {
    /// A CSV row transformer.
    public init() {}
    public func transform(_ input: String) throws -> RecommendationRequest {
        let fields = input.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
        guard let user = fields.first, !user.isEmpty, fields.count <= 2 else {
            throw PipelineError.badRequest("a CSV request row is 'user[,k]', got '\(input)'")
        }
        var request = RecommendationRequest(user: user)
        if fields.count == 2 {
            guard let k = Int(fields[1]) else { throw PipelineError.badRequest("k '\(fields[1])' is not a number") }
            request.k = k
        }
        return request
    }
}

/// The input is the text to search with.
public struct RawTextTransformer: RepresentationTransformer {
    /// A raw text transformer.
    public init() {}
    public func transform(_ input: String) throws -> RecommendationRequest {
        guard !input.trimmingSpaces.isEmpty else { throw PipelineError.badRequest("empty text") }
        return RecommendationRequest(text: input)
    }
}

/// A JSON array of a user's recent ``Event``s (the streaming mode's input).
public struct RecentEventsTransformer: RepresentationTransformer {
    /// A recent-events transformer.
    public init() {}
    public func transform(_ input: String) throws -> RecommendationRequest {
        do { return RecommendationRequest(history: try JSONDecoder().decode([Event].self, from: Data(input.utf8))) } catch {
            throw PipelineError.badRequest("not a JSON array of events: \(error)")
        }
    }
}

// MARK: - Pre-processing

/// Resolves ids against a model's catalog: unknown history and seed items are dropped (and
/// noted), an unknown user is treated as a cold user (noted).
public struct IDMapping: PreProcessor {
    /// The recommender whose catalog ids are resolved against.
    public let model: String
    /// Resolves ids against `model`'s catalog.
    public init(model: String) { self.model = model }

    public func process(_ request: inout PreparedRequest, models: ModelSnapshots) throws {
        let catalog = try models.recommender(model).catalog
        if let user = request.request.user, catalog.users.index(of: user) == nil {
            request.notes.append("unknown user '\(user)': answered as a cold user")
            request.request.user = nil
        }
        let known = request.history.filter { catalog.items.index(of: $0.item) != nil }
        if known.count < request.history.count {
            request.notes.append("dropped \(request.history.count - known.count) events for items '\(model)' does not know")
        }
        request.history = known
        let seeds = request.request.items.filter { catalog.items.index(of: $0) != nil }
        if seeds.count < request.request.items.count {
            request.notes.append("dropped \(request.request.items.count - seeds.count) unknown seed items")
        }
        request.request.items = seeds
    }
}

/// Collapses whitespace, drops control characters and caps the length of a text query.
public struct TextCleaning: PreProcessor {
    /// Longest text kept, in characters; the rest is cut.
    public let maximumCharacters: Int
    /// Cleans text queries, keeping at most `maximumCharacters` (10,000 by default).
    public init(maximumCharacters: Int = 10_000) { self.maximumCharacters = maximumCharacters }

    public func process(_ request: inout PreparedRequest, models: ModelSnapshots) throws {
        guard let text = request.text else { return }
        let cleaned = text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : Character($0) }
        request.text = String(String(cleaned).split(whereSeparator: \.isWhitespace).joined(separator: " ").prefix(maximumCharacters))
    }
}

/// Keeps the latest `maximumEvents` events of the history.
public struct HistoryTruncation: PreProcessor {
    /// Most events kept; older ones are dropped.
    public let maximumEvents: Int
    /// Keeps the latest `maximumEvents` events.
    public init(maximumEvents: Int) { self.maximumEvents = maximumEvents }

    public func process(_ request: inout PreparedRequest, models: ModelSnapshots) throws {
        if request.history.count > maximumEvents {
            request.notes.append("kept the latest \(maximumEvents) of \(request.history.count) events")
            request.history.removeFirst(request.history.count - maximumEvents)
        }
    }
}

/// Multiplies each event's strength by its type's weight (e.g. view 1, cart 3, buy 5);
/// types not listed get `defaultWeight`.
public struct EventTypeWeighting: PreProcessor {
    /// Event type → weight multiplier.
    public let weights: [String: Float]
    /// The multiplier for event types not in ``weights``.
    public let defaultWeight: Float
    /// Weights events by type; unlisted types get `defaultWeight` (1 by default).
    public init(weights: [String: Float], defaultWeight: Float = 1) {
        self.weights = weights
        self.defaultWeight = defaultWeight
    }

    public func process(_ request: inout PreparedRequest, models: ModelSnapshots) throws {
        let types = request.request.history.map(\.type)
        guard types.count == request.history.count else { return }  // history already filtered: types no longer line up
        for index in request.history.indices { request.history[index].weight *= weights[types[index]] ?? defaultWeight }
    }
}

/// Exponential time decay: an event `halfLife` seconds older than the newest counts half.
public struct TimeDecay: PreProcessor {
    /// Seconds after which an event's weight halves, relative to the newest event with a timestamp.
    public let halfLife: Double
    /// Decays events with a half-life of `halfLife` seconds.
    public init(halfLife: Double) { self.halfLife = halfLife }

    public func process(_ request: inout PreparedRequest, models: ModelSnapshots) throws {
        let times = request.request.history.map(\.timestamp)
        guard times.count == request.history.count, let newest = times.compactMap({ $0 }).max() else { return }
        for index in request.history.indices {
            guard let time = times[index] else { continue }
            request.history[index].weight *= Float(exp2(-(newest - time) / halfLife))
        }
    }
}

// MARK: - Similarity calculation

/// A known user's trained vector against the catalog.
public struct UserFactorsSource: SimilaritySource {
    /// The recommender to ask.
    public let model: String
    /// Answers known users from `model`.
    public init(model: String) { self.model = model }

    public func candidates(for request: PreparedRequest, count: Int, models: ModelSnapshots) throws -> Candidates {
        let snapshot = try models.snapshot(model)
        guard let user = request.request.user, request.history.isEmpty else { return Candidates(model: model, version: snapshot.version, items: []) }
        return Candidates(model: model, version: snapshot.version, found: try models.recommender(model).recommend(user: user, k: count))
    }
}

/// The request's history folded into the model on the fly (a new user, or fresh events), added
/// to the user's training history when the user is known.
public struct FoldInSource: SimilaritySource {
    /// The recommender to fold the history into.
    public let model: String
    /// Folds histories into `model`.
    public init(model: String) { self.model = model }

    public func candidates(for request: PreparedRequest, count: Int, models: ModelSnapshots) throws -> Candidates {
        let snapshot = try models.snapshot(model)
        let recommender = try models.recommender(model)
        var history = request.history
        if let user = request.request.user, let index = recommender.catalog.users.index(of: user) {
            let (items, weights) = recommender.catalog.history.row(index)
            history = zip(items, weights).map { (recommender.catalog.items[Int($0.0)], $0.1) } + history
        }
        guard !history.isEmpty else { return Candidates(model: model, version: snapshot.version, items: []) }
        return Candidates(model: model, version: snapshot.version, found: try recommender.recommend(history: history, k: count))
    }
}

/// Items similar to the request's seed items (or, without seeds, to its history), summed.
public struct ItemToItemSource: SimilaritySource {
    /// The recommender to ask for similar items.
    public let model: String
    /// Finds items similar to the seeds in `model`.
    public init(model: String) { self.model = model }

    public func candidates(for request: PreparedRequest, count: Int, models: ModelSnapshots) throws -> Candidates {
        let snapshot = try models.snapshot(model)
        let recommender = try models.recommender(model)
        let seeds = request.request.items.isEmpty ? request.history.map(\.item) : request.request.items
        var totals: [String: Float] = [:]
        for seed in Set(seeds) {
            for match in try recommender.similarItems(to: seed, k: count) { totals[match.item, default: 0] += match.score }
        }
        for seed in seeds { totals[seed] = nil }
        return Candidates(model: model, version: snapshot.version, items: ranked(totals, limit: count))
    }
}

/// A text query against a text index (TF-IDF, LSI or word2vec document vectors).
public struct TextQuerySource: SimilaritySource {
    /// The text index to query.
    public let model: String
    /// Which of the index's vectors answer the query.
    public let representation: TextRepresentation
    /// Queries text index `model` by `representation` (TF-IDF by default).
    public init(model: String, representation: TextRepresentation = .tfidf) {
        self.model = model
        self.representation = representation
    }

    public func candidates(for request: PreparedRequest, count: Int, models: ModelSnapshots) throws -> Candidates {
        let snapshot = try models.snapshot(model)
        guard let text = request.text, !text.isEmpty else { return Candidates(model: model, version: snapshot.version, items: []) }
        let matches = try models.textIndex(model).query(text, k: count, using: representation)
        return Candidates(model: model, version: snapshot.version, items: matches.map { ($0.id, $0.score) })
    }
}

// MARK: - Scoring

/// The first source that produced candidates, scores as they are: a fallback chain.
public struct FirstAvailable: ScoreCombiner {
    /// A first-available combiner.
    public init() {}
    public func combine(_ sources: [Candidates]) -> [(item: String, score: Float)] {
        sources.first { !$0.items.isEmpty }?.items ?? []
    }
}

/// A weighted sum of the sources' scores, each min–max normalized to [0, 1] first so models
/// on different scales blend meaningfully; an item a source did not return gets 0 from it.
public struct WeightedBlend: ScoreCombiner {
    /// One weight per source, in the pipeline's source order; sources beyond the last weight are
    /// ignored.
    public let weights: [Float]
    /// Blends the sources with `weights`.
    public init(weights: [Float]) { self.weights = weights }

    public func combine(_ sources: [Candidates]) -> [(item: String, score: Float)] {
        var totals: [String: Float] = [:]
        for (source, weight) in zip(sources, weights) where !source.items.isEmpty {
            let scores = source.items.map(\.score)
            let low = scores.min()!, span = scores.max()! - low
            for (item, score) in source.items { totals[item, default: 0] += weight * (span > 0 ? (score - low) / span : 1) }
        }
        return ranked(totals, limit: totals.count)
    }
}

// MARK: - Post-processing

/// Leaves out the request's exclusions, its history and the user's training items.
public struct ExcludeSeen: PostProcessor {
    /// The model whose training history counts as seen; nil: the request's own only.
    public let model: String?
    /// Leaves out the request's exclusions and history and, with `model`, the user's training
    /// items in that model.
    public init(model: String? = nil) { self.model = model }

    public func process(_ items: inout [(item: String, score: Float)], request: PreparedRequest, k: Int, models: ModelSnapshots) throws {
        var seen = request.exclude.union(request.history.map(\.item))
        if let model, let user = request.request.user {
            let catalog = try models.recommender(model).catalog
            if let index = catalog.users.index(of: user) {
                seen.formUnion(catalog.history.row(index).columns.map { catalog.items[Int($0)] })
            }
        }
        items.removeAll { seen.contains($0.item) }
    }
}

/// Keeps only allowed items (when an allow list is given) and drops denied ones.
public struct AllowDenyFilter: PostProcessor {
    /// The only items that may be returned; nil allows every item.
    public let allow: Set<String>?
    /// Items never returned.
    public let deny: Set<String>
    /// A filter keeping `allow` (every item when nil) minus `deny`.
    public init(allow: Set<String>? = nil, deny: Set<String> = []) {
        self.allow = allow
        self.deny = deny
    }

    public func process(_ items: inout [(item: String, score: Float)], request: PreparedRequest, k: Int, models: ModelSnapshots) throws {
        items.removeAll { entry in deny.contains(entry.item) || (allow.map { !$0.contains(entry.item) } ?? false) }
    }
}

/// Diversity: at most `maximumPerCategory` items of one category in the top k; items further
/// down move up to fill. Items without a category are not capped.
public struct CategoryCap: PostProcessor {
    /// Most items of one category kept ahead of the overflow.
    public let maximumPerCategory: Int
    /// The item table that gives each item's category.
    public let catalog: ItemMetadata
    /// Caps each category of `catalog` at `maximumPerCategory` items ahead of the rest.
    public init(maximumPerCategory: Int, catalog: ItemMetadata) {
        self.maximumPerCategory = maximumPerCategory
        self.catalog = catalog
    }

    public func process(_ items: inout [(item: String, score: Float)], request: PreparedRequest, k: Int, models: ModelSnapshots) throws {
        var perCategory: [String: Int] = [:]
        var kept: [(item: String, score: Float)] = [], overflow: [(item: String, score: Float)] = []
        for entry in items {
            guard let category = catalog.category(of: entry.item) else { kept.append(entry); continue }
            if perCategory[category, default: 0] < maximumPerCategory {
                perCategory[category, default: 0] += 1
                kept.append(entry)
            } else {
                overflow.append(entry)
            }
        }
        items = kept + overflow  // capped items only fill places nothing else can
    }
}

/// Fills the list up to k with the most popular items not already in it or excluded: the
/// answer for cold users and short lists.
public struct PopularityFallback: PostProcessor {
    /// The popularity model that ranks the filler items.
    public let model: String
    /// Fills short lists from popularity model `model`.
    public init(model: String) { self.model = model }

    public func process(_ items: inout [(item: String, score: Float)], request: PreparedRequest, k: Int, models: ModelSnapshots) throws {
        guard items.count < k else { return }
        let popular = try models.recommender(model)
        let present = Set(items.map(\.item)).union(request.exclude).union(request.history.map(\.item))
        let lowest = items.map(\.score).min() ?? 0
        var rank: Float = 1
        for candidate in try popularItems(popular, count: k + present.count) where !present.contains(candidate) {
            items.append((candidate, lowest - rank))  // below everything personalized, in popularity order
            rank += 1
            if items.count >= k { break }
        }
    }

    private func popularItems(_ model: any Recommender, count: Int) throws -> [String] {
        // Popularity is the same for everyone: the first user's unfiltered list.
        guard model.catalog.users.count > 0 else { return [] }
        return try model.recommend(users: [0], k: min(count, model.catalog.items.count), excludeSeen: false, filter: nil)[0]
            .map { model.catalog.items[$0.id] }
    }
}

// MARK: - Results

/// Ids and scores, best first.
public struct ScoredResults: ResultFormatter {
    /// An ids-and-scores formatter.
    public init() {}
    public func format(_ items: [(item: String, score: Float)], k: Int) -> [RecommendedItem] {
        items.prefix(k).map { RecommendedItem(item: $0.item, score: $0.score, metadata: nil) }
    }
}

/// Ids, scores and each item's metadata from an item table.
public struct ResultsWithMetadata: ResultFormatter {
    /// The item table the metadata comes from.
    public let catalog: ItemMetadata
    /// Attaches each item's fields from `catalog` (nil for items it does not list).
    public init(catalog: ItemMetadata) { self.catalog = catalog }
    public func format(_ items: [(item: String, score: Float)], k: Int) -> [RecommendedItem] {
        items.prefix(k).map { RecommendedItem(item: $0.item, score: $0.score, metadata: catalog.fields(of: $0.item)) }
    }
}

/// Items by score, ties by id, at most `limit`.
func ranked(_ totals: [String: Float], limit: Int) -> [(item: String, score: Float)] {
    totals.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.prefix(limit).map { ($0.key, $0.value) }
}

extension String {
    var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

#if canImport(Glibc)
import Glibc
#endif
