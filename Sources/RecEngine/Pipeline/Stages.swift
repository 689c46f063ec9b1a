import FoundationEssentials
import RealModule
import RecKernels
import Synchronization
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
///
/// Sources answer a whole batch of requests at once, so a factor model scores them with one
/// GEMM; a single request is a batch of one.
public protocol SimilaritySource: Sendable {
    /// The model the source reads.
    var model: String { get }
    /// Whether `request` gives this source something to work from (a known user, a history,
    /// seeds, a text); a source is only asked for requests it applies to.
    func applies(to request: PreparedRequest, models: ModelSnapshots) -> Bool
    /// Up to `count` candidates for each request, each applying `constraints` — in the
    /// scoring kernel where the model allows it (``Candidates/filteredInKernel``).
    func candidates(for requests: [PreparedRequest], count: Int, constraints: ScoringConstraints,
                    models: ModelSnapshots) -> [Result<Candidates, any Error>]
}

/// What post-processing asks of the scoring kernel, applied while scoring so a response has k
/// items whenever k eligible items exist.
public struct ScoringConstraints: Sendable {
    /// Leave out each request's history and, for a known user, the model's training items.
    public var excludeSeen = false
    /// When set, only these items may be returned.
    public var allow: Set<String>?
    /// Items never returned.
    public var deny: Set<String> = []
    /// Catalog bitsets for `allow`/`deny` per model installation, built once.
    let filters: FilterCache

    init(filters: FilterCache) { self.filters = filters }

    /// The allow/deny lists as a kernel filter over `snapshot`'s catalog; nil when there are
    /// none. Built on first use for each installed model version, then reused.
    func itemFilter(for snapshot: ModelSnapshot, catalog: IDMap) throws -> ItemFilter? {
        guard allow != nil || !deny.isEmpty else { return nil }
        return try filters.filter(for: snapshot.generation) {
            let denied = try ItemBitset(capacity: catalog.count, containing: deny.compactMap { catalog.index(of: $0) })
            let allowed = try allow.map { try ItemBitset(capacity: catalog.count, containing: $0.compactMap { catalog.index(of: $0) }) }
            return ItemFilter(allowed: allowed, denied: deny.isEmpty ? nil : denied)
        }
    }

    /// Whether `item` passes the allow/deny lists (for lists filtered after scoring).
    func permits(_ item: String) -> Bool {
        !deny.contains(item) && (allow?.contains(item) ?? true)
    }
}

/// Allow/deny bitsets per model installation (``ModelSnapshot/generation``).
final class FilterCache: Sendable {
    private let filters = Mutex<[Int: ItemFilter]>([:])

    func filter(for generation: Int, build: () throws -> ItemFilter) throws -> ItemFilter {
        if let cached = filters.withLock({ $0[generation] }) { return cached }
        let built = try build()
        filters.withLock { cache in
            if cache.count > 64 { cache.removeAll() }  // old generations of swapped models
            cache[generation] = built
        }
        return built
    }
}

/// Stage 4: one score per item from the sources' candidates.
public protocol ScoreCombiner: Sendable {
    /// Whether every source runs for every request (a blend); false: a fallback chain, where
    /// a later source runs only when the earlier ones gave fewer than k items.
    var needsEverySource: Bool { get }
    /// One ranked list from the sources' candidates, in source order.
    func combine(_ sources: [Candidates]) -> [(item: String, score: Float)]
}

/// Stage 5: edits the ranked list (exclusions, filters, diversity, fallbacks).
public protocol PostProcessor: Sendable {
    /// Adds what this stage asks of the scoring kernel; by default nothing.
    func constrain(_ constraints: inout ScoringConstraints)
    /// Edits the ranked list after scoring.
    func process(_ items: inout [(item: String, score: Float)], request: PreparedRequest, k: Int, models: ModelSnapshots) throws
}

extension PostProcessor {
    public func constrain(_ constraints: inout ScoringConstraints) {}
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

/// Resolves ids once against a model's catalog: unknown history and seed items are dropped
/// (and noted), an unknown user is treated as a cold user (noted). Later stages read the
/// indices.
public struct IDMapping: PreProcessor {
    /// The recommender whose catalog ids are resolved against.
    public let model: String
    /// Resolves ids against `model`'s catalog.
    public init(model: String) { self.model = model }

    public func process(_ request: inout PreparedRequest, models: ModelSnapshots) throws {
        let catalog = try models.recommender(model).catalog
        request.indexedBy = model
        request.userIndex = nil
        if let user = request.user {
            if let index = catalog.users.index(of: user) {
                request.userIndex = index
            } else {
                request.notes.append("unknown user '\(user)': answered as a cold user")
                request.user = nil
            }
        }
        let before = request.events.count
        request.events = request.events.compactMap { event in
            guard let index = catalog.items.index(of: event.item) else { return nil }
            var resolved = event
            resolved.index = index
            return resolved
        }
        if request.events.count < before {
            request.notes.append("dropped \(before - request.events.count) events for items '\(model)' does not know")
        }
        let seeds = request.seeds.compactMap { seed in catalog.items.index(of: seed.item).map { (seed.item, Optional($0)) } }
        if seeds.count < request.seeds.count {
            request.notes.append("dropped \(request.seeds.count - seeds.count) unknown seed items")
        }
        request.seeds = seeds
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
        if request.events.count > maximumEvents {
            request.notes.append("kept the latest \(maximumEvents) of \(request.events.count) events")
            request.events.removeFirst(request.events.count - maximumEvents)
        }
    }
}

/// Multiplies each event's strength by its type's weight (e.g. view 1, cart 3, buy 5);
/// types not listed get `defaultWeight`. Each event carries its own type, so the stage is
/// right in any order relative to id mapping and truncation.
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
        for index in request.events.indices { request.events[index].weight *= weights[request.events[index].type] ?? defaultWeight }
    }
}

/// Exponential time decay: an event `halfLife` seconds older than the newest counts half.
public struct TimeDecay: PreProcessor {
    /// Seconds after which an event's weight halves, relative to the newest event with a timestamp.
    public let halfLife: Double
    /// Decays events with a half-life of `halfLife` seconds.
    public init(halfLife: Double) { self.halfLife = halfLife }

    public func process(_ request: inout PreparedRequest, models: ModelSnapshots) throws {
        guard let newest = request.events.compactMap(\.timestamp).max() else { return }
        for index in request.events.indices {
            guard let time = request.events[index].timestamp else { continue }
            request.events[index].weight *= Float(Double.exp2(-(newest - time) / halfLife))
        }
    }
}

// MARK: - Similarity calculation

/// What a recommender source needs of one request, in its model's catalog.
private struct RecommenderWork {
    let snapshot: ModelSnapshot
    let recommender: any Recommender

    init(_ name: String, models: ModelSnapshots) throws {
        snapshot = try models.snapshot(name)
        recommender = try models.recommender(name)
    }

    /// Makes each request's query with `query` (in `model`'s catalog) and runs them as one
    /// batch; a model that cannot be read fails every request.
    static func answer(_ requests: [PreparedRequest], model: String, count: Int, constraints: ScoringConstraints, models: ModelSnapshots,
                       query: (PreparedRequest, ModelCatalog) throws -> RecommenderQuery) -> [Result<Candidates, any Error>] {
        let work: RecommenderWork
        do { work = try RecommenderWork(model, models: models) } catch { return requests.map { _ in .failure(error) } }
        let catalog = work.recommender.catalog
        return work.run(requests.map { request in Result { try query(request, catalog) } }, count: count, constraints: constraints)
    }

    /// Runs `queries` (one per request) through the model's batch path — one GEMM for a factor
    /// model — with the requests' exclusions and the pipeline's allow/deny bitsets in the kernel.
    func run(_ queries: [Result<RecommenderQuery, any Error>], count: Int, constraints: ScoringConstraints) -> [Result<Candidates, any Error>] {
        let filter: ItemFilter?
        do { filter = try constraints.itemFilter(for: snapshot, catalog: recommender.catalog.items) } catch {
            return queries.map { _ in .failure(error) }
        }
        let valid = queries.compactMap { try? $0.get() }
        var answers = recommender.recommend(batch: valid, k: min(count, recommender.catalog.items.count),
                                            excludeSeen: constraints.excludeSeen, filter: filter).makeIterator()
        let names = CandidateNames.catalog(recommender.catalog.items)
        return queries.map { query in
            query.flatMap { _ in
                answers.next()!.map { Candidates(model: snapshot.name, version: snapshot.version, items: $0, names: names, filteredInKernel: true) }
            }
        }
    }
}

/// A known user's trained vector against the catalog; for a user with fresh events, the
/// fold-in source answers instead.
public struct UserFactorsSource: SimilaritySource {
    /// The recommender to ask.
    public let model: String
    /// Answers known users from `model`.
    public init(model: String) { self.model = model }

    public func applies(to request: PreparedRequest, models: ModelSnapshots) -> Bool {
        guard request.events.isEmpty, let catalog = try? models.recommender(model).catalog else { return false }
        return request.userIndex(in: model, catalog: catalog) != nil
    }

    public func candidates(for requests: [PreparedRequest], count: Int, constraints: ScoringConstraints,
                           models: ModelSnapshots) -> [Result<Candidates, any Error>] {
        RecommenderWork.answer(requests, model: model, count: count, constraints: constraints, models: models) { request, catalog in
            guard let user = request.userIndex(in: model, catalog: catalog) else { throw ModelError.unknownUser(request.user ?? "") }
            return RecommenderQuery(.user(user), excluding: request.excluded(in: catalog))
        }
    }
}

/// The request's history folded into the model on the fly (a new user, or fresh events),
/// appended to the user's training history when the user is known.
public struct FoldInSource: SimilaritySource {
    /// The recommender to fold the history into.
    public let model: String
    /// Folds histories into `model`.
    public init(model: String) { self.model = model }

    public func applies(to request: PreparedRequest, models: ModelSnapshots) -> Bool {
        guard let catalog = try? models.recommender(model).catalog else { return false }
        return !request.events(in: model, catalog: catalog).items.isEmpty || request.userIndex(in: model, catalog: catalog) != nil
    }

    public func candidates(for requests: [PreparedRequest], count: Int, constraints: ScoringConstraints,
                           models: ModelSnapshots) -> [Result<Candidates, any Error>] {
        RecommenderWork.answer(requests, model: model, count: count, constraints: constraints, models: models) { request, catalog in
            var (items, weights) = request.events(in: model, catalog: catalog)
            if let user = request.userIndex(in: model, catalog: catalog) {
                let training = catalog.history.row(user)
                items = training.columns.map(Int.init) + items
                weights = Array(training.values) + weights
            }
            guard !items.isEmpty else { throw ModelError.emptyHistory }
            return RecommenderQuery(.history(items: items, weights: weights), excluding: request.excluded(in: catalog))
        }
    }
}

/// Items similar to the request's seed items (or, without seeds, to its history), summed.
/// Similar-item lists are filtered after scoring (``Candidates/filteredInKernel`` is false).
public struct ItemToItemSource: SimilaritySource {
    /// The recommender to ask for similar items.
    public let model: String
    /// Finds items similar to the seeds in `model`.
    public init(model: String) { self.model = model }

    public func applies(to request: PreparedRequest, models: ModelSnapshots) -> Bool {
        !request.seeds.isEmpty || !request.events.isEmpty
    }

    public func candidates(for requests: [PreparedRequest], count: Int, constraints: ScoringConstraints,
                           models: ModelSnapshots) -> [Result<Candidates, any Error>] {
        requests.map { request in
            Result {
                let snapshot = try models.snapshot(model)
                let recommender = try models.recommender(model)
                let catalog = recommender.catalog
                let seeds = request.seeds.isEmpty ? request.events(in: model, catalog: catalog).items : request.seeds(in: model, catalog: catalog)
                var totals: [Int: Float] = [:]
                for seed in Set(seeds) {
                    for match in try recommender.similarItems(to: seed, k: min(count, catalog.items.count)) { totals[match.id, default: 0] += match.score }
                }
                for seed in seeds { totals[seed] = nil }
                var items: [ScoredItem] = totals.map { ScoredItem(id: $0.key, score: $0.value) }
                items.sort(by: ScoredItem.ranksBefore)
                return Candidates(model: model, version: snapshot.version, items: Array(items.prefix(count)), names: .catalog(catalog.items),
                                  filteredInKernel: false)
            }
        }
    }
}

/// A text query against a text index (TF-IDF, LSI or word2vec document vectors); filtered
/// after scoring.
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

    public func applies(to request: PreparedRequest, models: ModelSnapshots) -> Bool {
        !(request.text ?? "").isEmpty
    }

    public func candidates(for requests: [PreparedRequest], count: Int, constraints: ScoringConstraints,
                           models: ModelSnapshots) -> [Result<Candidates, any Error>] {
        requests.map { request in
            Result {
                let snapshot = try models.snapshot(model)
                let matches = try models.textIndex(model).query(request.text ?? "", k: count, using: representation)
                return Candidates(model: model, version: snapshot.version, items: matches.enumerated().map { ScoredItem(id: $0.offset, score: $0.element.score) },
                                  names: .list(matches.map(\.id)), filteredInKernel: false)
            }
        }
    }
}

extension ModelCatalog {
    /// The external ids of `user`'s training items; empty for a user the catalog lacks.
    func trainingItems(of user: String) -> [String] {
        guard let index = users.index(of: user) else { return [] }
        return history.row(index).columns.map { items[Int($0)] }
    }
}

extension ScoredItem {
    /// Higher scores first, ties by lower id: the kernel's order.
    static func ranksBefore(_ a: ScoredItem, _ b: ScoredItem) -> Bool {
        a.score > b.score || (a.score == b.score && a.id < b.id)
    }
}

// MARK: - Scoring

/// A fallback chain: the first source's items, then — only when it gave fewer than k — the
/// next source's items not already listed, and so on. A later source does not run once the
/// earlier ones gave k.
public struct FirstAvailable: ScoreCombiner {
    /// A first-available combiner.
    public init() {}
    public var needsEverySource: Bool { false }
    public func combine(_ sources: [Candidates]) -> [(item: String, score: Float)] {
        guard sources.count > 1 else { return sources.first.map { list in list.items.map { (list.names[$0.id], $0.score) } } ?? [] }
        var listed = Set<String>(), combined: [(item: String, score: Float)] = []
        for source in sources {
            for entry in source.items {
                let name = source.names[entry.id]
                if listed.insert(name).inserted { combined.append((name, entry.score)) }
            }
        }
        return combined
    }
}

/// A weighted sum of the sources' scores, each min–max normalized to [0, 1] first so models
/// on different scales blend meaningfully; an item a source did not return gets 0 from it.
public struct WeightedBlend: ScoreCombiner {
    /// One weight per source, in the pipeline's source order.
    public let weights: [Float]
    /// Blends the sources with `weights`.
    public init(weights: [Float]) { self.weights = weights }
    public var needsEverySource: Bool { true }

    public func combine(_ sources: [Candidates]) -> [(item: String, score: Float)] {
        var totals: [String: Float] = [:]
        for (source, weight) in zip(sources, weights) {
            for (entry, normalized) in zip(source.items, source.items.minMaxNormalizedScores) {
                totals[source.names[entry.id], default: 0] += weight * normalized
            }
        }
        return ranked(totals, limit: totals.count)
    }
}

// MARK: - Post-processing

/// Leaves out the request's history and, for a known user, the model's training items —
/// inside the scoring kernel (the request's own exclusions are always left out).
public struct ExcludeSeen: PostProcessor {
    /// Kept for settings files; the seen items are each scoring model's own training items.
    public let model: String?
    /// Leaves out what the user has seen.
    public init(model: String? = nil) { self.model = model }

    public func constrain(_ constraints: inout ScoringConstraints) { constraints.excludeSeen = true }
    public func process(_ items: inout [(item: String, score: Float)], request: PreparedRequest, k: Int, models: ModelSnapshots) throws {}
}

/// Keeps only allowed items (when an allow list is given) and drops denied ones — inside the
/// scoring kernel, as catalog bitsets built once per model version.
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

    public func constrain(_ constraints: inout ScoringConstraints) {
        if let allow { constraints.allow = constraints.allow.map { $0.intersection(allow) } ?? allow }
        constraints.deny.formUnion(deny)
    }
    public func process(_ items: inout [(item: String, score: Float)], request: PreparedRequest, k: Int, models: ModelSnapshots) throws {}
}

/// Diversity: at most `maximumPerCategory` items of one category in the top k; items further
/// down move up to fill. Items without a category are not capped. The pipeline fetches more
/// candidates (doubling) until k items satisfy the cap or the catalog is exhausted, so capped
/// items only fill places nothing else can.
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
        let (kept, overflow) = capped(items)
        items = kept + overflow
    }

    /// The items within the caps, in order, and the ones over them.
    func capped(_ items: [(item: String, score: Float)]) -> (kept: [(item: String, score: Float)], overflow: [(item: String, score: Float)]) {
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
        return (kept, overflow)
    }
}

/// Fills the list up to k with the most popular items not already in it, not excluded and
/// allowed: the answer for cold users and short lists. The ranking is computed when the
/// popularity model is installed, so a fill costs O(k + skipped items).
public struct PopularityFallback: PostProcessor {
    /// The popularity model that ranks the filler items.
    public let model: String
    /// Fills short lists from popularity model `model`.
    public init(model: String) { self.model = model }

    public func process(_ items: inout [(item: String, score: Float)], request: PreparedRequest, k: Int, models: ModelSnapshots) throws {
        guard items.count < k else { return }
        let constraints = request.constraints
        let snapshot = try models.snapshot(model)
        let popular = try models.recommender(model)
        guard let ranking = snapshot.popularityRanking else {
            throw PipelineError.wrongModelKind(model: model, expected: "a popularity model", actual: snapshot.model.kind)
        }
        let catalog = popular.catalog
        var present = Set(items.map(\.item)).union(request.exclude)
        if constraints?.excludeSeen ?? true {
            present.formUnion(request.events.map(\.item))
            if let user = request.user { present.formUnion(catalog.trainingItems(of: user)) }
        }
        let lowest = items.map(\.score).min() ?? 0
        var rank: Float = 1
        for index in ranking {
            let candidate = catalog.items[Int(index)]
            guard !present.contains(candidate), constraints?.permits(candidate) ?? true else { continue }
            items.append((candidate, lowest - rank))  // below everything personalized, in popularity order
            rank += 1
            if items.count >= k { break }
        }
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


