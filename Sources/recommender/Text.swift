import ArgumentParser
import RecKernels
import RecText

/// Content-based recommendation from text: build an index from a CSV or JSON file of
/// documents, then answer free-text queries and "more like this" requests from it.
struct Text: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Index documents' text (TF-IDF, optional LSI and word2vec) and find the most similar ones.",
        subcommands: [TextIndexCommand.self, TextQueryCommand.self, TextSimilarCommand.self])
}

extension TextRepresentation: ExpressibleByArgument {}

struct TextIndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Build a text index from a CSV/TSV or JSON (array or JSON Lines) file and save it as a model file.")

    @Option(help: "Documents: .csv, .tsv, .json or .jsonl.") var documents: String
    @Option(help: "Id column (field).") var idColumn = "id"
    @Option(parsing: .upToNextOption, help: "Text columns (fields), joined by a space.") var textColumns: [String] = ["text"]
    @Option(help: "Column (field) shown with each result, e.g. a title.") var labelColumn: String?
    @Option(name: .shortAndLong, help: "Where to save the index.") var output: String
    @Option(help: "Smallest n-gram length.") var minNgram = 1
    @Option(help: "Largest n-gram length.") var maxNgram = 2
    @Flag(inversion: .prefixedNo, help: "Remove English stop words.") var stopWords = true
    @Flag(inversion: .prefixedNo, help: "tf = 1 + ln(count).") var sublinearTF = true
    @Option(help: "Drop terms in fewer documents.") var minDf = 1
    @Option(help: "Drop terms in more than this fraction of the documents.") var maxDf = 1.0
    @Option(help: "Drop terms seen fewer times in the corpus.") var minCount = 1
    @Option(help: "Keep at most this many terms (the most frequent).") var maxFeatures: Int?
    @Option(help: "Also build an LSI space with this many topics.") var lsiTopics: Int?
    @Option(help: "Also train word2vec document vectors of this many dimensions.") var word2vecDimensions: Int?
    @Option(help: "Worker threads.") var threads = FlatIndex.defaultThreads

    func run() throws {
        let start = ContinuousClock.now
        let documents = try readDocuments()
        var options = TextIndexOptions()
        options.tfidf.analyzer = AnalyzerOptions(englishStopWords: stopWords, ngrams: minNgram ... max(minNgram, maxNgram))
        options.tfidf.sublinearTF = sublinearTF
        options.tfidf.minimumDocumentFrequency = .count(minDf)
        options.tfidf.maximumDocumentFrequency = .fraction(maxDf)
        options.tfidf.minimumCount = minCount
        options.tfidf.maximumFeatures = maxFeatures
        options.lsiTopics = lsiTopics
        if let word2vecDimensions {
            var skipGram = SkipGramOptions()
            skipGram.dimensions = word2vecDimensions
            options.word2vec = skipGram
        }
        options.threads = threads
        let index = try TextIndex(documents: documents, options: options)
        try index.save(to: output)
        print("indexed \(documents.count) documents, \(index.tfidf.terms.count) terms, \(index.weights.nonzeroCount) weights"
              + (lsiTopics.map { ", LSI \($0) topics" } ?? "") + (word2vecDimensions.map { ", word2vec \($0) dims" } ?? "")
              + " in \(fixed(seconds(since: start), 2)) s → \(output)")
    }

    private func readDocuments() throws -> [TextDocument] {
        if documents.hasSuffix(".json") || documents.hasSuffix(".jsonl") {
            return try TextDocuments.readJSON(path: documents, idField: idColumn, textFields: textColumns, labelField: labelColumn)
        }
        return try TextDocuments.readCSV(path: documents, idColumn: idColumn, textColumns: textColumns, labelColumn: labelColumn,
                                         delimiter: documents.hasSuffix(".tsv") ? "\t" : ",")
    }
}

/// Options shared by the two query commands.
struct TextQueryOptions: ParsableArguments {
    @Option(help: "Index written by `text index`.") var index: String
    @Option(name: .shortAndLong, help: "Results.") var k = 10
    @Option(help: "tfidf, lsi or word2vec.") var using: TextRepresentation = .tfidf

    func validate() throws {
        guard k > 0 else { throw ValidationError("-k must be at least 1, got \(k)") }
    }

    func print(_ matches: [TextMatch]) {
        Swift.print("rank\tid\tscore\tlabel")
        for (rank, match) in matches.enumerated() { Swift.print("\(rank + 1)\t\(match.id)\t\(fixed(Double(match.score), 4))\t\(match.label)") }
    }
}

struct TextQueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "query", abstract: "The documents most similar to a text.")

    @OptionGroup var options: TextQueryOptions
    @Argument(help: "The query text.") var text: String

    func run() throws {
        options.print(try TextIndex(contentsOf: options.index).query(text, k: options.k, using: options.using))
    }
}

struct TextSimilarCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "similar", abstract: "More like this: the documents most similar to a document of the index.")

    @OptionGroup var options: TextQueryOptions
    @Argument(help: "The document's id.") var id: String

    func run() throws {
        options.print(try TextIndex(contentsOf: options.index).similar(toDocument: id, k: options.k, using: options.using))
    }
}
