// recommender-bench text: our TF-IDF, "more like this", LSI and word2vec against scikit-learn and
// gensim on the same data in the same run (the peers run as a subprocess of this one, on files
// this program writes), printing each figure and the ratio.
import ArgumentParser
import RecKernels
import RecText
#if canImport(Glibc)
import Glibc
#endif

struct TextBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text",
        abstract: "Time RecText against scikit-learn and gensim side by side on TMDB overviews and synthetic data.")

    @Option(help: "Python with scikit-learn and gensim (a scratch virtualenv); empty: ours only.")
    var python = "/tmp/peers/bin/python"
    @Option(help: "TMDB movies CSV.") var tmdb = "../shared/datasets/tmdb-5000/tmdb_5000_movies.csv"
    @Option(help: "Synthetic documents for the TF-IDF and top-K scaling figures.") var syntheticDocuments = 20_000
    @Option(help: "Synthetic sessions for word2vec.") var sessions = 200_000
    @Option(help: "\"More like this\" queries timed per corpus.") var queries = 1000
    @Option(help: "LSI topics.") var topics = 100
    @Flag(help: "Time only word2vec (ours), skipping the other figures and the peers.") var word2vecOnly = false
    @Option(parsing: .upToNextOption, help: "Thread counts for word2vec, in the order they run.") var word2vecThreads: [Int] = [1, 2]
    @Option(help: "Where the generated corpora are written.") var workDirectory = "/tmp/recommender-bench-text"

    func run() throws {
        if word2vecOnly {
            var skipGram = SkipGramOptions()
            skipGram.dimensions = 64
            let corpus = syntheticSessions(count: sessions, seed: 11)
            for threads in word2vecThreads {
                let (_, report) = try Word2Vec.train(sentences: corpus, minimumCount: 1, options: skipGram, threads: threads)
                print("word2vec T=\(threads): training \(fixed(report.seconds, 2)) s = \(withUnit(Double(report.rawWords) / report.seconds, "k/s")), \(report.trainedWords) of \(report.rawWords) words trained")
            }
            return
        }
        mkdir(workDirectory, 0o755)
        let tmdbTexts = try TextDocuments.readCSV(path: tmdb, idColumn: "id", textColumns: ["overview"]).map(\.text)
        let synthetic = syntheticCorpus(documents: syntheticDocuments, seed: 7)
        let sessionCorpus = syntheticSessions(count: sessions, seed: 11)
        try writeLines(synthetic, to: workDirectory + "/synthetic.txt")
        try writeLines(sessionCorpus.map { $0.joined(separator: " ") }, to: workDirectory + "/sessions.txt")
        print("recommender-bench text: TMDB \(tmdbTexts.count) overviews, synthetic \(synthetic.count) documents, \(sessionCorpus.count) sessions")
        print("kernels: SIMD \(SIMDLevel.best), OpenBLAS \(OpenBLAS.coreName); cores \(FlatIndex.defaultThreads)\n")

        var peers: [Int: [String: Double]] = [:]
        if !python.isEmpty {
            let script = String(#filePath.dropLast("RecBench/TextBench.swift".count)) + "peers/text_peers.py"
            for threads in [1, 2] {
                let command = "\(python) \(script) --tmdb \(tmdb) --synthetic \(workDirectory)/synthetic.txt --sessions \(workDirectory)/sessions.txt --threads \(threads) --lsi-topics \(topics) --queries \(queries)" + (threads == 1 ? " --tfidf" : "")
                print("running peers (T=\(threads)): \(command)")
                peers[threads] = try runJSON(command)
            }
            print("")
        }
        var rows: [(String, String, String, String)] = []
        func add(_ name: String, ours: Double, peer: Double?, unit: String, higherIsBetter: Bool = false) {
            let ratio = peer.map { higherIsBetter ? ours / $0 : $0 / ours }
            rows.append((name, withUnit(ours, unit), peer.map { withUnit($0, unit) } ?? "-", ratio.map { fixed($0, 2) + "×" } ?? "-"))
        }

        // TF-IDF fit with the original project's options, single-threaded like scikit-learn.
        let tmdbFit = try best(of: 3) { try TfidfModel.fit(tmdbTexts, options: .contentRecommendation) }
        let syntheticFit = try best(of: 1) { try TfidfModel.fit(synthetic, options: .contentRecommendation) }
        add("TF-IDF fit, TMDB (1,2)-grams, \(tmdbFit.value.model.terms.count) terms", ours: tmdbFit.seconds, peer: peers[1]?["tmdb_tfidf_fit"], unit: "s")
        add("TF-IDF fit, synthetic 20k (1,2)-grams, \(syntheticFit.value.model.terms.count) terms", ours: syntheticFit.seconds,
            peer: peers[1]?["synthetic_tfidf_fit"], unit: "s")

        // "More like this": one document at a time, top 10.
        for (name, weights, key) in [("TMDB", tmdbFit.value.weights, "tmdb_query_seconds"), ("synthetic 20k", syntheticFit.value.weights, "synthetic_query_seconds")] {
            let index = try SparseIndex(documents: weights)
            let rows = (0 ..< queries).map { $0 * (weights.rows - 1) / max(1, queries - 1) }.filter { weights.rowOffsets[$0 + 1] > weights.rowOffsets[$0] }
            var latencies: [Double] = []
            for row in rows {
                let start = ContinuousClock.now
                _ = try index.similar(toDocument: row, k: 10)
                latencies.append(elapsed(since: start))
            }
            latencies.sort()
            add("more like this, \(name), mean per query", ours: latencies.reduce(0, +) / Double(latencies.count),
                peer: peers[1]?[key], unit: "ms")
            print("more like this, \(name): p50 \(withUnit(latencies[latencies.count / 2], "ms")), p99 \(withUnit(latencies[latencies.count * 99 / 100], "ms"))")
        }

        // LSI, 100 topics.
        let syntheticUnigram: TfidfOptions = {
            var options = TfidfOptions.contentRecommendation
            options.analyzer.maximumNgram = 1
            return options
        }()
        let syntheticUnigramWeights = try TfidfModel.fit(synthetic, options: syntheticUnigram).weights
        for threads in [1, 2] {
            for (name, weights, key) in [("TMDB (1,2)-grams", tmdbFit.value.weights, "lsi_tmdb_bigram"),
                                         ("synthetic unigrams", syntheticUnigramWeights, "lsi_synthetic_unigram")] {
                let fit = try best(of: 1) {
                    try OpenBLAS.withThreads(threads) { try TruncatedSVD.randomized(weights, rank: topics, threads: threads) }
                }
                add("LSI \(topics) topics, \(name), T=\(threads)", ours: fit.seconds, peer: peers[threads]?[key], unit: "s")
            }
        }

        // word2vec skip-gram on sessions: 64 dims, window 5, 5 negatives, 5 epochs, min count 1.
        var skipGram = SkipGramOptions()
        skipGram.dimensions = 64
        for threads in word2vecThreads {
            let run = try best(of: 1) { try Word2Vec.train(sentences: sessionCorpus, minimumCount: 1, options: skipGram, threads: threads) }
            let wordsPerSecond = Double(run.value.report.rawWords) / run.seconds
            print("word2vec T=\(threads): \(fixed(run.seconds, 2)) s in all (vocabulary + training), training alone \(fixed(run.value.report.seconds, 2)) s = \(withUnit(Double(run.value.report.rawWords) / run.value.report.seconds, "k/s"))")
            add("word2vec SGNS words/s, T=\(threads)", ours: wordsPerSecond, peer: peers[threads]?["word2vec_words_per_second"],
                unit: "k/s", higherIsBetter: true)
        }

        print("\n| figure | ours | peer | peer/ours (speed-up) |\n|---|---|---|---|")
        for row in rows { print("| \(row.0) | \(row.1) | \(row.2) | \(row.3) |") }
        if let versions = peers[1] { print("\npeers: scikit-learn and gensim from \(python) (features: TMDB \(Int(versions["tmdb_features"] ?? 0)), synthetic \(Int(versions["synthetic_features"] ?? 0)))") }
    }

    /// Zipf-distributed words over a 100,000-word vocabulary, 80 to 240 words a document.
    func syntheticCorpus(documents: Int, seed: UInt64) -> [String] {
        var generator = SeededGenerator(seed: seed)
        let vocabulary = 100_000
        var cumulative = [Double](repeating: 0, count: vocabulary)
        var total = 0.0
        for rank in 0 ..< vocabulary { total += 1 / Double(rank + 1); cumulative[rank] = total }
        let words = (0 ..< vocabulary).map { word(for: $0) }
        return (0 ..< documents).map { _ in
            let length = Int.random(in: 80 ... 240, using: &generator)
            return (0 ..< length).map { _ in
                let target = Double.random(in: 0 ..< total, using: &generator)
                var low = 0, high = vocabulary - 1
                while low < high { let middle = (low + high) / 2; if cumulative[middle] < target { low = middle + 1 } else { high = middle } }
                return words[low]
            }.joined(separator: " ")
        }
    }

    /// Sessions of 2 to 12 items from a 30,000-item catalog where items come in groups of 10
    /// that tend to be viewed together.
    func syntheticSessions(count: Int, seed: UInt64) -> [[String]] {
        var generator = SeededGenerator(seed: seed)
        return (0 ..< count).map { _ in
            let group = Int.random(in: 0 ..< 3000, using: &generator)
            return (0 ..< Int.random(in: 2 ... 12, using: &generator)).map { _ in
                let item = Double.random(in: 0 ..< 1, using: &generator) < 0.8 ? group * 10 + Int.random(in: 0 ..< 10, using: &generator)
                                                                             : Int.random(in: 0 ..< 30_000, using: &generator)
                return "i\(item)"
            }
        }
    }

    func word(for index: Int) -> String {
        var n = index, letters: [Character] = []
        repeat { letters.append(Character(Unicode.Scalar(UInt8(97 + n % 26)))); n /= 26 } while n > 0
        return "w" + String(letters)
    }
}

func best<T>(of repeats: Int, _ body: () throws -> T) rethrows -> (seconds: Double, value: T) {
    var bestSeconds = Double.infinity
    var value: T? = nil
    for _ in 0 ..< repeats {
        let start = ContinuousClock.now
        value = try body()
        bestSeconds = min(bestSeconds, elapsed(since: start))
    }
    return (bestSeconds, value!)
}

func withUnit(_ value: Double, _ unit: String) -> String {
    switch unit {
    case "ms": fixed(value * 1000, 3) + " ms"
    case "k/s": fixed(value / 1000, 0) + "k/s"
    default: fixed(value, 3) + " s"
    }
}

func writeLines(_ lines: [String], to path: String) throws {
    guard let file = fopen(path, "w") else { throw ValidationError("cannot write \(path)") }
    defer { fclose(file) }
    for line in lines { fputs(line + "\n", file) }
}

/// Runs a shell command and parses the last line of its output as a flat JSON object of numbers.
func runJSON(_ command: String) throws -> [String: Double] {
    guard let pipe = popen(command, "r") else { throw ValidationError("cannot run \(command)") }
    var output = "", buffer = [CChar](repeating: 0, count: 65536)
    while fgets(&buffer, Int32(buffer.count), pipe) != nil { output += String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    guard pclose(pipe) == 0, let line = output.split(separator: "\n").last else { throw ValidationError("peers failed: \(command)") }
    var values: [String: Double] = [:]
    for pair in line.trimmingCharacters(in: "{}").split(separator: ",") {
        let parts = pair.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let value = Double(parts[1].trimmingCharacters(in: " \"")) else { continue }
        values[parts[0].trimmingCharacters(in: " \"")] = value
    }
    return values
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let first = s.first, set.contains(first) { s = s.dropFirst() }
        while let last = s.last, set.contains(last) { s = s.dropLast() }
        return String(s)
    }
}
extension String {
    func trimmingCharacters(in set: String) -> String { self[...].trimmingCharacters(in: set) }
}
