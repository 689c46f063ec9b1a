import FoundationEssentials
import RecKernels
import RecModels
import RecText

/// A settings file that makes no sense: which file, which key, what is wrong.
public struct SettingsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The settings file's path.
    public let file: String
    /// The key path, e.g. `pipelines.home.similarity[1].model`.
    public let key: String
    /// What is wrong with the value at ``key``.
    public let problem: String

    /// An error about `key` in `file`.
    public init(file: String, key: String, problem: String) {
        self.file = file
        self.key = key
        self.problem = problem
    }

    public var description: String { "\(file): \(key): \(problem)" }
}

/// Pipelines declared in a JSON settings file, checked against the models being served:
///
/// ```json
/// { "itemMetadata": { "path": "items.csv", "id": "id", "category": "genre" },
///   "pipelines": { "home": {
///       "input": "json",                                   // json | csv | text | events
///       "preprocess": [ { "type": "idMapping", "model": "als" },
///                       { "type": "eventWeights", "weights": { "view": 1, "cart": 3, "buy": 5 } },
///                       { "type": "truncateHistory", "maximum": 50 },
///                       { "type": "timeDecay", "halfLifeSeconds": 86400 }, { "type": "cleanText" } ],
///       "similarity": [ { "type": "userFactors", "model": "als" }, { "type": "foldIn", "model": "als" },
///                       { "type": "itemToItem", "model": "knn" }, { "type": "text", "model": "docs", "representation": "lsi" } ],
///       "scoring": { "type": "firstAvailable" },            // or { "type": "blend", "weights": [0.7, 0.3] }
///       "postprocess": [ { "type": "excludeSeen", "model": "als" }, { "type": "allowDeny", "deny": ["x"] },
///                        { "type": "categoryCap", "maximum": 3 }, { "type": "popularityFallback", "model": "pop" } ],
///       "results": "scores",                               // scores | metadata
///       "k": 10, "candidates": 100, "maximumK": 1000, "threadsPerRequest": 1 } } }
/// ```
///
/// Everything is checked at load — unknown stage types or keys, models that are not served or
/// of the wrong kind, k ≤ 0, blend weights that do not match the sources, stages that need the
/// item table without one — and the first problem is reported with the file and key path.
public enum PipelineSettings {
    /// Reads and checks `path` against the models `manager` serves.
    public static func load(_ path: String, models manager: ModelManager) throws -> [Pipeline] {
        let bytes: [UInt8]
        do { bytes = try MappedFile(path: path).withUnsafeBytes { Array($0) } } catch {
            throw SettingsError(file: path, key: "(file)", problem: "cannot be read: \(error)")
        }
        return try parse(bytes, file: path, models: manager)
    }

    /// Checks settings given as JSON bytes (`file` names them in errors).
    public static func parse(_ bytes: [UInt8], file: String, models manager: ModelManager) throws -> [Pipeline] {
        let root: JSONValue
        do { root = try JSONValue(parsing: bytes) } catch {
            throw SettingsError(file: file, key: "(file)", problem: "not valid JSON: \(error)")
        }
        let reader = Reader(file: file, kinds: Dictionary(manager.served.map { ($0.name, $0.kind) } + manager.failed.map { ($0.name, $0.kind) },
                                                               uniquingKeysWith: { a, _ in a }))
        return try reader.pipelines(root)
    }
}

private struct Reader {
    let file: String
    /// Served model name → kind.
    let kinds: [String: String]

    func fail(_ key: String, _ problem: String) -> SettingsError { SettingsError(file: file, key: key, problem: problem) }

    func object(_ value: JSONValue?, _ key: String, allowed: Set<String>) throws -> [String: JSONValue] {
        guard case let .object(fields)? = value else { throw fail(key, "must be an object") }
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw fail("\(key).\(unknown)", "unknown key (expected one of \(allowed.sorted().joined(separator: ", ")))")
        }
        return fields
    }

    func string(_ value: JSONValue?, _ key: String) throws -> String {
        guard case let .string(text)? = value else { throw fail(key, "must be a string") }
        return text
    }

    /// The largest k or candidate count settings may ask for: 1,000,000 results already take
    /// 8 MB per request.
    static let largestK = 1_000_000

    func integer(_ value: JSONValue?, _ key: String, minimum: Int, maximum: Int = 1_000_000_000) throws -> Int {
        guard case let .number(number)? = value, number == number.rounded(), let integer = Int(exactly: number) else {
            throw fail(key, "must be a whole number")
        }
        guard integer >= minimum else { throw fail(key, "must be at least \(minimum), got \(integer)") }
        guard integer <= maximum else { throw fail(key, "must be at most \(maximum), got \(integer)") }
        return integer
    }

    func number(_ value: JSONValue?, _ key: String) throws -> Double {
        guard case let .number(number)? = value, number.isFinite else { throw fail(key, "must be a number") }
        return number
    }

    func array(_ value: JSONValue?, _ key: String) throws -> [JSONValue] {
        guard let value else { return [] }
        guard case let .array(items) = value else { throw fail(key, "must be a list") }
        return items
    }

    /// A served model of one of `kinds`.
    func model(_ value: JSONValue?, _ key: String, kinds accepted: Set<String>, purpose: String) throws -> String {
        let name = try string(value, key)
        guard let kind = kinds[name] else {
            throw fail(key, "model '\(name)' is not loaded (loaded: \(kinds.keys.sorted().joined(separator: ", ")))")
        }
        guard accepted.contains(kind) else {
            throw fail(key, "model '\(name)' is a '\(kind)' model; \(purpose) needs \(accepted.sorted().joined(separator: " or "))")
        }
        return name
    }

    static let recommenders: Set<String> = ["als", "als-explicit", "bpr", "biased-mf", "item-knn", "popularity", "ease", "rp3beta", "bpmf"]
    static let factorModels: Set<String> = ["als", "als-explicit", "bpr", "biased-mf", "bpmf"]

    func pipelines(_ root: JSONValue) throws -> [Pipeline] {
        let top = try object(root, "(root)", allowed: ["pipelines", "itemMetadata"])
        var metadata: ItemMetadata? = nil
        if let table = top["itemMetadata"] {
            let fields = try object(table, "itemMetadata", allowed: ["path", "id", "category", "delimiter"])
            do {
                metadata = try ItemMetadata(path: try string(fields["path"], "itemMetadata.path"), idColumn: try string(fields["id"], "itemMetadata.id"),
                                            categoryColumn: try fields["category"].map { try string($0, "itemMetadata.category") },
                                            delimiter: try fields["delimiter"].map { try string($0, "itemMetadata.delimiter") } ?? ",")
            } catch let error as SettingsError { throw error } catch { throw fail("itemMetadata.path", "\(error)") }
        }
        guard case let .object(declared)? = top["pipelines"] else { throw fail("pipelines", "must be an object of named pipelines") }
        guard !declared.isEmpty else { throw fail("pipelines", "declares no pipeline") }
        return try declared.keys.sorted().map { name in try pipeline(name, declared[name]!, metadata: metadata) }
    }

    func pipeline(_ name: String, _ value: JSONValue, metadata: ItemMetadata?) throws -> Pipeline {
        let base = "pipelines.\(name)"
        let fields = try object(value, base, allowed: ["input", "preprocess", "similarity", "scoring", "postprocess", "results", "k", "candidates",
                                                     "maximumK", "threadsPerRequest"])
        let transformer: any RepresentationTransformer
        switch try fields["input"].map({ try string($0, "\(base).input") }) ?? "json" {
        case "json": transformer = JSONRequestTransformer()
        case "csv": transformer = CSVRowTransformer()
        case "text": transformer = RawTextTransformer()
        case "events": transformer = RecentEventsTransformer()
        case let other: throw fail("\(base).input", "unknown representation '\(other)' (json, csv, text, events)")
        }
        let maximumK = try fields["maximumK"].map { try integer($0, "\(base).maximumK", minimum: 1, maximum: Self.largestK) } ?? Pipeline.defaultMaximumK
        let k = try fields["k"].map { try integer($0, "\(base).k", minimum: 1, maximum: maximumK) } ?? min(10, maximumK)
        let candidates = try fields["candidates"].map { try integer($0, "\(base).candidates", minimum: k, maximum: Self.largestK) }
        let threads = try fields["threadsPerRequest"].map { try integer($0, "\(base).threadsPerRequest", minimum: 1, maximum: 1024) }
        let preprocessors = try array(fields["preprocess"], "\(base).preprocess").enumerated().map { try preprocessor($1, "\(base).preprocess[\($0)]") }
        let sources = try array(fields["similarity"], "\(base).similarity").enumerated().map { try source($1, "\(base).similarity[\($0)]") }
        guard !sources.isEmpty else { throw fail("\(base).similarity", "needs at least one similarity source") }
        let combiner = try scoring(fields["scoring"], "\(base).scoring", sources: sources.count)
        let postprocessors = try array(fields["postprocess"], "\(base).postprocess").enumerated().map {
            try postprocessor($1, "\(base).postprocess[\($0)]", metadata: metadata)
        }
        let formatter: any ResultFormatter
        switch try fields["results"].map({ try string($0, "\(base).results") }) ?? "scores" {
        case "scores": formatter = ScoredResults()
        case "metadata":
            guard let metadata else { throw fail("\(base).results", "'metadata' results need an itemMetadata table") }
            formatter = ResultsWithMetadata(catalog: metadata)
        case let other: throw fail("\(base).results", "unknown results '\(other)' (scores, metadata)")
        }
        return Pipeline(name: name, transformer: transformer, preprocessors: preprocessors, sources: sources, combiner: combiner,
                        postprocessors: postprocessors, formatter: formatter, k: k, candidates: candidates,
                        threadsPerRequest: threads, maximumK: maximumK)
    }

    func stageType(_ value: JSONValue, _ key: String, allowed: Set<String>) throws -> (String, [String: JSONValue]) {
        let fields = try object(value, key, allowed: allowed.union(["type"]))
        return (try string(fields["type"], "\(key).type"), fields)
    }

    func preprocessor(_ value: JSONValue, _ key: String) throws -> any PreProcessor {
        let (type, f) = try stageType(value, key, allowed: ["model", "weights", "default", "maximum", "halfLifeSeconds", "maximumCharacters"])
        switch type {
        case "idMapping": return IDMapping(model: try model(f["model"], "\(key).model", kinds: Self.recommenders, purpose: "id mapping"))
        case "cleanText": return TextCleaning(maximumCharacters: try f["maximumCharacters"].map { try integer($0, "\(key).maximumCharacters", minimum: 1) } ?? 10_000)
        case "truncateHistory": return HistoryTruncation(maximumEvents: try integer(f["maximum"], "\(key).maximum", minimum: 1))
        case "eventWeights":
            guard case let .object(weights)? = f["weights"] else { throw fail("\(key).weights", "must map event types to weights") }
            var parsed: [String: Float] = [:]
            for (eventType, weight) in weights { parsed[eventType] = Float(try number(weight, "\(key).weights.\(eventType)")) }
            return EventTypeWeighting(weights: parsed, defaultWeight: Float(try f["default"].map { try number($0, "\(key).default") } ?? 1))
        case "timeDecay":
            let halfLife = try number(f["halfLifeSeconds"], "\(key).halfLifeSeconds")
            guard halfLife > 0 else { throw fail("\(key).halfLifeSeconds", "must be positive") }
            return TimeDecay(halfLife: halfLife)
        default: throw fail("\(key).type", "unknown pre-processing stage '\(type)' (idMapping, cleanText, truncateHistory, eventWeights, timeDecay)")
        }
    }

    func source(_ value: JSONValue, _ key: String) throws -> any SimilaritySource {
        let (type, f) = try stageType(value, key, allowed: ["model", "representation"])
        switch type {
        case "userFactors": return UserFactorsSource(model: try model(f["model"], "\(key).model", kinds: Self.recommenders, purpose: "userFactors"))
        case "foldIn": return FoldInSource(model: try model(f["model"], "\(key).model", kinds: Self.recommenders, purpose: "foldIn"))
        case "itemToItem": return ItemToItemSource(model: try model(f["model"], "\(key).model", kinds: Self.recommenders, purpose: "itemToItem"))
        case "text":
            let name = try model(f["model"], "\(key).model", kinds: ["text-index"], purpose: "a text query")
            let representationName = try f["representation"].map { try string($0, "\(key).representation") } ?? "tfidf"
            guard let representation = TextRepresentation(rawValue: representationName) else {
                throw fail("\(key).representation", "unknown representation '\(representationName)' (\(TextRepresentation.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return TextQuerySource(model: name, representation: representation)
        default: throw fail("\(key).type", "unknown similarity stage '\(type)' (userFactors, foldIn, itemToItem, text)")
        }
    }

    func scoring(_ value: JSONValue?, _ key: String, sources: Int) throws -> any ScoreCombiner {
        guard let value else { return FirstAvailable() }
        let (type, f) = try stageType(value, key, allowed: ["weights"])
        switch type {
        case "firstAvailable": return FirstAvailable()
        case "blend":
            let weights = try array(f["weights"], "\(key).weights").enumerated().map { (n, value) in
                let weight = try number(value, "\(key).weights[\(n)]")
                guard weight >= 0, weight <= 1e6 else { throw fail("\(key).weights[\(n)]", "must be between 0 and 1e6, got \(weight)") }
                return Float(weight)
            }
            guard weights.contains(where: { $0 > 0 }) || weights.isEmpty else { throw fail("\(key).weights", "at least one weight must be positive") }
            guard weights.count == sources else {
                throw fail("\(key).weights", "\(weights.count) weights for \(sources) similarity sources: dimensions do not match")
            }
            return WeightedBlend(weights: weights)
        default: throw fail("\(key).type", "unknown scoring '\(type)' (firstAvailable, blend)")
        }
    }

    func postprocessor(_ value: JSONValue, _ key: String, metadata: ItemMetadata?) throws -> any PostProcessor {
        let (type, f) = try stageType(value, key, allowed: ["model", "allow", "deny", "maximum"])
        switch type {
        case "excludeSeen":
            return ExcludeSeen(model: try f["model"].map { try model($0, "\(key).model", kinds: Self.recommenders, purpose: "excludeSeen") })
        case "allowDeny":
            let allow = try f["allow"].map { Set(try array($0, "\(key).allow").enumerated().map { try string($1, "\(key).allow[\($0)]") }) }
            let deny = Set(try array(f["deny"], "\(key).deny").enumerated().map { try string($1, "\(key).deny[\($0)]") })
            return AllowDenyFilter(allow: allow, deny: deny)
        case "categoryCap":
            guard let metadata, metadata.categoryColumn != nil else { throw fail(key, "categoryCap needs an itemMetadata table with a category column") }
            return CategoryCap(maximumPerCategory: try integer(f["maximum"], "\(key).maximum", minimum: 1), catalog: metadata)
        case "popularityFallback":
            return PopularityFallback(model: try model(f["model"], "\(key).model", kinds: ["popularity"], purpose: "popularityFallback"))
        default: throw fail("\(key).type", "unknown post-processing stage '\(type)' (excludeSeen, allowDeny, categoryCap, popularityFallback)")
        }
    }
}
