#if canImport(Glibc)
import Glibc
#endif
import RecKernels
import RecModels
import Testing
@testable import RecText

/// A fresh temporary directory.
func temporaryDirectory() -> String {
    var template = Array("/tmp/rectext-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

func write(_ text: String, to path: String) {
    let file = fopen(path, "w")!
    fputs(text, file)
    fclose(file)
}

/// The TMDB overviews, read from ../shared (never copied into the repository).
let tmdbPath = String(#filePath.split(separator: "/").dropLast(3).joined(separator: "/").prepending("/"))
    + "/../shared/datasets/tmdb-5000/tmdb_5000_movies.csv"

extension String {
    func prepending(_ prefix: String) -> String { prefix + self }
}

@Suite("Text index")
struct TextIndexTests {
    static let documents = [
        TextDocument(id: "d1", text: "A young wizard attends a school of magic and fights a dark lord.", label: "Wizards"),
        TextDocument(id: "d2", text: "A school of magic admits a young witch who battles a dark wizard.", label: "Witches"),
        TextDocument(id: "d3", text: "Astronauts travel through a wormhole to find a new home for humanity.", label: "Space"),
        TextDocument(id: "d4", text: "A crew of astronauts is stranded on Mars and must find a way home.", label: "Mars"),
        TextDocument(id: "d5", text: "", label: "Empty"),
    ]

    /// Options that build every part of an index: TF-IDF, LSI and word2vec.
    static let everyPart: TextIndexOptions = {
        var options = TextIndexOptions()
        options.lsiTopics = 3
        var skipGram = SkipGramOptions()
        skipGram.dimensions = 8
        options.word2vec = skipGram
        options.word2vecMinimumCount = 1
        options.threads = 1
        return options
    }()

    @Test("a text query ranks documents sharing its terms by cosine, best first")
    func query() throws {
        let index = try TextIndex(documents: Self.documents)
        let results = try index.query("young wizard at a magic school", k: 3)
        #expect(Set(results.prefix(2).map(\.id)) == ["d1", "d2"])
        #expect(results.map(\.score) == results.map(\.score).sorted(by: >))
        // The top score is the cosine of the query's and the document's TF-IDF rows.
        let query = index.tfidf.transform(["young wizard at a magic school"])
        let document = index.weights
        let row = results[0].row
        var dot: Float = 0
        for (c, v) in zip(query.row(0).columns, query.row(0).values) { dot += v * document[row, Int(c)] }
        #expect(abs(dot - results[0].score) < 1e-5)
    }

    @Test("more like this excludes the document and finds its neighbour")
    func similar() throws {
        let index = try TextIndex(documents: Self.documents)
        let results = try index.similar(toDocument: "d3", k: 2)
        #expect(results.first?.id == "d4")
        #expect(!results.contains { $0.id == "d3" })
    }

    @Test("clear errors: unknown id, k ≤ 0, no known terms, empty corpus, missing model, duplicates")
    func errors() throws {
        let index = try TextIndex(documents: Self.documents)
        #expect(throws: TextModelError.unknownDocument("nope")) { try index.similar(toDocument: "nope", k: 3) }
        #expect(throws: ScoringError.invalidK(0)) { try index.query("wizard", k: 0) }
        #expect(throws: TextModelError.noKnownTerms("zebra quantum")) { try index.query("zebra quantum", k: 3) }
        #expect(throws: TextModelError.missingRepresentation("lsi")) { try index.query("wizard", k: 3, using: .lsi) }
        #expect(throws: TextModelError.emptyCorpus) { try TextIndex(documents: []) }
        #expect(throws: TextModelError.duplicateDocument("d1")) {
            try TextIndex(documents: [Self.documents[0], Self.documents[0]])
        }
    }

    @Test("LSI and word2vec representations answer queries and survive a save and open")
    func saveAndOpen() throws {
        let index = try TextIndex(documents: Self.documents, options: Self.everyPart)
        let directory = temporaryDirectory()
        try index.save(to: directory + "/index.rkm")
        let opened = try TextIndex(contentsOf: directory + "/index.rkm")
        #expect(opened.ids == index.ids && opened.labels == index.labels && opened.weights == index.weights)
        for representation in TextRepresentation.allCases {
            let before = try index.query("astronauts find home", k: 3, using: representation)
            #expect(try opened.query("astronauts find home", k: 3, using: representation) == before)
            #expect(try opened.similar(toDocument: "d1", k: 2, using: representation) ==
                    index.similar(toDocument: "d1", k: 2, using: representation))
        }
        #expect(try index.query("astronauts find home", k: 2, using: .lsi).allSatisfy { ["d3", "d4"].contains($0.id) })
        // A table file is not a text index.
        try EmbeddingTable(rows: 1, dimensions: 1).save(to: directory + "/table.rkm")
        #expect(throws: TextModelError.self) { try TextIndex(contentsOf: directory + "/table.rkm") }
    }

    @Test("documents load from CSV (quoted fields, several text columns) and JSON / JSON Lines")
    func loading() throws {
        let directory = temporaryDirectory()
        write("id,title,overview,tagline\n7,\"Film, The\",\"A \"\"quoted\"\"\nline\",Tag\n8,Other,,\n", to: directory + "/d.csv")
        let csv = try TextDocuments.readCSV(path: directory + "/d.csv", idColumn: "id", textColumns: ["overview", "tagline"],
                                            labelColumn: "title")
        #expect(csv == [TextDocument(id: "7", text: "A \"quoted\"\nline Tag", label: "Film, The"),
                        TextDocument(id: "8", text: "", label: "Other")])
        #expect(throws: DataError.self) { try TextDocuments.readCSV(path: directory + "/d.csv", idColumn: "nope", textColumns: ["overview"]) }
        write(#"[{"id": 1, "body": "first text", "name": "One"}, {"id": "b", "body": null}]"#, to: directory + "/d.json")
        #expect(try TextDocuments.readJSON(path: directory + "/d.json", idField: "id", textFields: ["body"], labelField: "name") ==
                [TextDocument(id: "1", text: "first text", label: "One"), TextDocument(id: "b", text: "", label: nil)])
        write("{\"id\": 1, \"body\": \"x y\"}\n\n{\"id\": 1, \"body\": \"z\"}\n", to: directory + "/d.jsonl")
        #expect(throws: TextModelError.duplicateDocument("1")) {
            try TextDocuments.readJSON(path: directory + "/d.jsonl", idField: "id", textFields: ["body"])
        }
    }

    /// Reads ../shared (never copied into the repository); skipped where it is absent.
    @Test("TMDB: 4,803 overviews index, and each film's own overview retrieves it first",
          .enabled(if: (try? MappedFile(path: tmdbPath)) != nil))
    func tmdb() throws {
        let documents = try TextDocuments.readCSV(path: tmdbPath, idColumn: "id", textColumns: ["overview"], labelColumn: "title")
        #expect(documents.count == 4803)
        #expect(documents.filter { $0.text.allSatisfy(\.isWhitespace) }.count == 4)
        let index = try TextIndex(documents: documents)
        for document in documents.prefix(50) where !document.text.isEmpty {
            #expect(try index.query(document.text, k: 1).first?.id == document.id)
            let similar = try index.similar(toDocument: document.id, k: 10)
            #expect(similar.count == 10 && !similar.contains { $0.id == document.id })
        }
    }

    @Test("word2vec on sentences of item ids places planted co-occurring items nearest each other")
    func item2vec() throws {
        var generator = SeededGenerator(seed: 42)
        var sessions: [[String]] = []
        for _ in 0 ..< 2000 {
            var session: [String] = []
            for _ in 0 ..< 2 {
                let group = Int.random(in: 0 ..< 10, using: &generator)
                session += ["a", "b", "c", "d"].map { "item\(group)\($0)" }.shuffled(using: &generator)
            }
            sessions.append(session)
        }
        var options = SkipGramOptions()
        options.dimensions = 16
        options.window = 3
        options.sample = 0
        // One thread is deterministic; two update shared vectors lock-free and must learn as well.
        for threads in [1, 2] {
            let (model, report) = try Word2Vec.train(sentences: sessions, minimumCount: 1, options: options, threads: threads)
            #expect(report.rawWords == 2000 * 8 * options.epochs)
            #expect(report.trainedWords == report.rawWords)  // sample = 0 keeps every word
            for group in 0 ..< 10 {
                let nearest = try model.mostSimilar(to: "item\(group)a", k: 3).map(\.token)
                #expect(nearest.allSatisfy { $0.hasPrefix("item\(group)") }, "threads \(threads): \(nearest)")
            }
        }
        let (model, _) = try Word2Vec.train(sentences: sessions, minimumCount: 1, options: options, threads: 1)
        #expect(throws: TextModelError.unknownDocument("item99z")) { try model.mostSimilar(to: "item99z", k: 1) }
    }
}
