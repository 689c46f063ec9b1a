import FoundationEssentials
import RecEngine
import RecKernels
import RecModels
import RecText

/// The embedded default: a small synthetic catalog written to a model store, so a fresh machine
/// can start the server with no data set.
///
/// Items belong to genres and carry a title made of genre words; each user prefers one genre
/// (most of their interactions come from it). The store gets an implicit-ALS model `als` (v1
/// active, and a v2 trained with another seed and more factors, inactive, to try activation),
/// a popularity model `popular` (the cold-user fallback), and a text index `docs` over the
/// titles; `settings.json` declares the pipelines `home` (user factors, fold-in, item-to-item,
/// seen items excluded, popularity fallback, metadata in results) and `search` (text).
///
/// - Complexity: O(interactions × factors² × iterations); well under a second at the defaults.
public enum DemoStore {
    /// The genres, each with the words its titles are made of.
    static let genres: [(name: String, words: [String])] = [
        ("space", ["star", "orbit", "nebula", "rocket", "galaxy", "comet"]),
        ("western", ["saloon", "desert", "sheriff", "outlaw", "canyon", "horse"]),
        ("romance", ["heart", "kiss", "wedding", "letter", "summer", "rose"]),
        ("mystery", ["shadow", "clue", "detective", "murder", "secret", "fog"]),
        ("comedy", ["banana", "party", "pickle", "chaos", "prank", "holiday"]),
        ("ocean", ["wave", "island", "pirate", "reef", "storm", "whale"]),
        ("war", ["battle", "soldier", "front", "siege", "general", "trench"]),
        ("fantasy", ["dragon", "wizard", "sword", "castle", "spell", "elf"]),
    ]

    /// The genre of item `index` (items cycle through the genres).
    public static func genre(ofItem index: Int) -> String { genres[index % genres.count].name }

    /// The genre user `index` prefers.
    public static func genre(ofUser index: Int) -> String { genres[(index * 5 + 3) % genres.count].name }

    /// Writes the demo store to `directory` (created; it must not hold a store yet) and returns
    /// the path of its settings file.
    public static func create(at directory: String, items: Int = 2_000, users: Int = 1_000, eventsPerUser: Int = 30,
                              seed: UInt64 = 7) throws -> String {
        precondition(items >= genres.count * 4 && users >= 1 && eventsPerUser >= 2, "the demo catalog needs some items, users and events")
        var generator = SeededGenerator(seed: seed)
        var log = Interactions()
        let byGenre = (0 ..< genres.count).map { g in Array(stride(from: g, to: items, by: genres.count)) }
        for user in 0 ..< users {
            let favourite = (user * 5 + 3) % genres.count
            for _ in 0 ..< eventsPerUser {
                // Nine in ten events from the favourite genre, popular items (low ranks) more often.
                let genre = Int.random(in: 0 ..< 10, using: &generator) < 9 ? favourite : Int.random(in: 0 ..< genres.count, using: &generator)
                let pool = byGenre[genre]
                let rank = Int(Double(pool.count) * pow(Double.random(in: 0 ..< 1, using: &generator), 2))
                log.append(user: "u\(user)", item: "i\(pool[min(rank, pool.count - 1)])")
            }
        }
        let catalog = try ModelCatalog(training: log)
        let fingerprint = log.fingerprint
        let store = try ModelStore(directory: directory)
        var als = ImplicitALS()
        als.factors = 16
        als.iterations = 6
        als.seed = seed
        _ = try store.add(try als.fit(catalog), name: "als", fingerprint: fingerprint, metrics: ["demo": 1], activate: true)
        als.factors = 24
        als.seed = seed &+ 1
        _ = try store.add(try als.fit(catalog), name: "als", fingerprint: fingerprint, metrics: ["demo": 2])
        _ = try store.add(try PopularityModel(catalog), name: "popular", fingerprint: fingerprint, activate: true)

        var rows = "id,title,genre\n"
        var documents: [TextDocument] = []
        for item in 0 ..< items {
            let words = genres[item % genres.count].words
            let title = "The \(words[(item / genres.count) % words.count].capitalized) of the \(words[(item / genres.count / words.count + 1) % words.count].capitalized) \(item)"
            rows += "i\(item),\(title),\(genre(ofItem: item))\n"
            documents.append(TextDocument(id: "i\(item)", text: "\(title) \(genre(ofItem: item))", label: title))
        }
        _ = try store.add(try TextIndex(documents: documents), name: "docs", fingerprint: fingerprint, activate: true)
        let metadataPath = "\(store.directory)/items.csv"
        try Data(rows.utf8).write(to: URL(fileURLWithPath: metadataPath))
        let settings = """
        { "itemMetadata": { "path": "\(metadataPath)", "id": "id", "category": "genre" },
          "pipelines": {
            "home": { "preprocess": [ { "type": "idMapping", "model": "als" },
                                      { "type": "eventWeights", "weights": { "view": 1, "like": 4, "cart": 3, "buy": 5 } } ],
                      "similarity": [ { "type": "userFactors", "model": "als" }, { "type": "foldIn", "model": "als" },
                                      { "type": "itemToItem", "model": "als" } ],
                      "postprocess": [ { "type": "excludeSeen", "model": "als" }, { "type": "popularityFallback", "model": "popular" } ],
                      "results": "metadata", "k": 10 },
            "search": { "preprocess": [ { "type": "cleanText" } ],
                        "similarity": [ { "type": "text", "model": "docs" } ],
                        "results": "metadata", "k": 10 } } }
        """
        let settingsPath = "\(store.directory)/settings.json"
        try Data(settings.utf8).write(to: URL(fileURLWithPath: settingsPath))
        return settingsPath
    }
}

extension String {
    fileprivate var capitalized: String { prefix(1).uppercased() + dropFirst() }
}

#if canImport(Glibc)
import Glibc
#endif
