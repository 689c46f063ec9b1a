internal import RealModule
import RecKernels

/// Turns the training texts into feature ids: tokens (``Tokenizer``), stop-word removal, then
/// word n-grams over the remaining tokens (scikit-learn's `_word_ngrams`: an n-gram may span a
/// removed stop word). Features are keyed by token-id sequences, so an n-gram's text is only
/// built for the terms finally kept. Used while fitting; a fitted model looks terms up in its
/// ``TermTable`` (``QueryAnalyzer``).
struct TermLookup: Sendable {
    let options: AnalyzerOptions
    private let tokenizer: Tokenizer
    private(set) var tokens = InternTable<UInt8>()
    private var isStopWord: [Bool] = []
    /// Feature keys: the token ids of each n-gram.
    private(set) var features = InternTable<Int32>()

    init(options: AnalyzerOptions) {
        self.options = options
        self.tokenizer = Tokenizer(lowercase: options.lowercase)
        for word in (options.englishStopWords ? englishStopWords : []) + options.stopWords {
            let id = tokens.insert(Array(word.utf8))
            if id == isStopWord.count { isStopWord.append(true) } else { isStopWord[id] = true }
        }
    }

    /// Appends the feature id of every n-gram occurrence in `text` to `out`, adding new tokens
    /// and features to the tables.
    mutating func analyzeInserting(_ text: String, into out: inout [Int32], scratch: inout [Int32]) {
        scratch.removeAll(keepingCapacity: true)
        tokenizer.forEachToken(in: text) { bytes in
            let id = tokens.insert(bytes)
            if id == isStopWord.count { isStopWord.append(false) }
            if !isStopWord[id] { scratch.append(Int32(id)) }
        }
        Self.forEachNgram(scratch, options) { key in out.append(Int32(features.insert(key))) }
    }

    /// The text of feature `id`: its tokens joined by single spaces, as scikit-learn names n-grams.
    func termBytes(_ id: Int, into out: inout [UInt8]) {
        for (position, token) in features.key(id).enumerated() {
            if position > 0 { out.append(0x20) }
            out.append(contentsOf: tokens.key(Int(token)))
        }
    }

    private static func forEachNgram(_ sequence: [Int32], _ options: AnalyzerOptions,
                                     _ body: (UnsafeBufferPointer<Int32>) -> Void) {
        sequence.withUnsafeBufferPointer { all in
            let count = all.count
            guard options.minimumNgram <= count else { return }
            for n in options.minimumNgram ... min(options.maximumNgram, count) {
                for start in 0 ... count - n { body(UnsafeBufferPointer(rebasing: all[start ..< start + n])) }
            }
        }
    }
}

/// A fitted TF-IDF model, equivalent to scikit-learn's `TfidfVectorizer`: the vocabulary
/// (terms sorted by code point, as scikit-learn's `vocabulary_` indices are) and the idf of each
/// term. For the same corpus and options, vocabulary and weights match scikit-learn's to within
/// float precision (a committed fixture checks 1e-5).
///
/// Weights: tf is the count (or 1 + ln count with ``TfidfOptions/sublinearTF``), times idf
/// (ln((1 + n) / (1 + df)) + 1 smoothed, ln(n / df) + 1 otherwise, 1 without idf), then each
/// row scaled by ``TfidfOptions/norm``. The model is immutable and `Sendable`.
public struct TfidfModel: Sendable {
    /// The options it was fitted with.
    public let options: TfidfOptions
    /// Term of each column, searched in place (read from the model file's mapping when opened).
    public let terms: TermTable
    /// Term of each column, decoded. - Complexity: O(terms); look terms up with ``column(ofTerm:)``.
    public var vocabulary: [String] { Array(terms) }
    /// Inverse document frequency of each column (all 1 without idf).
    public let idf: [Float]
    /// Number of documents it was fitted on.
    public let documentCount: Int
    private let analyzer: QueryAnalyzer

    /// Fits the model on `texts` and returns it with their weight matrix (scikit-learn's
    /// `fit_transform`): one row per text, one column per term.
    ///
    /// - Throws: ``TextModelError/emptyCorpus``, ``TextModelError/emptyVocabulary``,
    ///   ``TextModelError/invalidOption(_:)``.
    /// - Complexity: O(characters + n-grams × log(n-grams per document) + terms × log terms).
    public static func fit(_ texts: [String], options: TfidfOptions = TfidfOptions()) throws -> (model: TfidfModel, weights: SparseMatrix) {
        try options.validate()
        guard !texts.isEmpty else { throw TextModelError.emptyCorpus }
        var lookup = TermLookup(options: options.analyzer)
        var flat: [Int32] = []
        var offsets = [0]
        var scratch: [Int32] = []
        offsets.reserveCapacity(texts.count + 1)
        for text in texts {
            lookup.analyzeInserting(text, into: &flat, scratch: &scratch)
            offsets.append(flat.count)
        }
        // Document frequency and total count of every feature.
        let featureCount = lookup.features.count
        var documentFrequency = [Int32](repeating: 0, count: featureCount)
        var totalCount = [Int](repeating: 0, count: featureCount)
        var unique: [Int32] = []
        for d in 0 ..< texts.count {
            unique.removeAll(keepingCapacity: true)
            unique.append(contentsOf: flat[offsets[d] ..< offsets[d + 1]])
            unique.sort()
            var previous: Int32 = -1
            for feature in unique {
                totalCount[Int(feature)] += 1
                if feature != previous { documentFrequency[Int(feature)] += 1 }
                previous = feature
            }
        }
        let n = texts.count
        let high = options.maximumDocumentFrequency.documents(of: n), low = options.minimumDocumentFrequency.documents(of: n)
        guard high >= low else {
            throw TextModelError.invalidOption("the maximum document frequency (\(high) documents) is below the minimum (\(low))")
        }
        var kept = (0 ..< featureCount).filter { f in
            let df = Double(documentFrequency[f])
            return df >= low && df <= high && totalCount[f] >= options.minimumCount
        }
        guard !kept.isEmpty else { throw TextModelError.emptyVocabulary }
        // Term texts, sorted by UTF-8 bytes (= code points, Python's str order).
        var bytes: [UInt8] = [], starts: [Int] = [0]
        for feature in kept {
            lookup.termBytes(feature, into: &bytes)
            starts.append(bytes.count)
        }
        var order = Array(0 ..< kept.count)
        bytes.withUnsafeBufferPointer { b in
            order.sort { lexicographicallyPrecedes(b, starts[$0] ..< starts[$0 + 1], starts[$1] ..< starts[$1 + 1]) }
        }
        if let limit = options.maximumFeatures, limit < order.count {
            // The most frequent terms; among equal counts the alphabetically first (stable sort).
            let byCount = order.enumerated().sorted { (totalCount[kept[$0.element]], -$0.offset) > (totalCount[kept[$1.element]], -$1.offset) }
            order = byCount.prefix(limit).map(\.element).sorted { a, b in
                bytes.withUnsafeBufferPointer { lexicographicallyPrecedes($0, starts[a] ..< starts[a + 1], starts[b] ..< starts[b + 1]) }
            }
        }
        var featureColumns = [Int32](repeating: -1, count: featureCount)
        var termBytes: [UInt8] = [], termOffsets: [Int64] = [0]
        var idf: [Float] = []
        for (column, position) in order.enumerated() {
            let feature = kept[position]
            featureColumns[feature] = Int32(column)
            termBytes.append(contentsOf: bytes[starts[position] ..< starts[position + 1]])
            termOffsets.append(Int64(termBytes.count))
            idf.append(inverseDocumentFrequency(Int(documentFrequency[feature]), documents: n, options: options))
        }
        kept = []
        let terms = try TermTable(bytes: MappedElements(termBytes), offsets: MappedElements(termOffsets))
        let model = try TfidfModel(options: options, terms: terms, idf: idf, documentCount: n)
        for i in flat.indices { flat[i] = featureColumns[Int(flat[i])] }
        return (model, try model.weigh(columns: flat, offsets: offsets))
    }

    /// A model from its vocabulary (terms in column order) and idf.
    ///
    /// - Throws: ``TextModelError/invalidOption(_:)`` when the parts disagree or a term repeats.
    public init(options: TfidfOptions, vocabulary: [String], idf: [Float], documentCount: Int) throws {
        try self.init(options: options, terms: try TermTable(vocabulary), idf: idf, documentCount: documentCount)
    }

    /// A model over a term table (as read from a model file, see ``TextIndex/save(to:)``).
    ///
    /// - Throws: ``TextModelError/invalidOption(_:)`` when the parts disagree.
    public init(options: TfidfOptions, terms: TermTable, idf: [Float], documentCount: Int) throws {
        guard terms.count == idf.count, !terms.isEmpty else {
            throw TextModelError.invalidOption("a vocabulary of \(terms.count) terms with \(idf.count) idf values")
        }
        self.options = options
        self.terms = terms
        self.idf = idf
        self.documentCount = documentCount
        self.analyzer = QueryAnalyzer(options: options.analyzer)
    }

    /// The weight rows of new texts with the fitted vocabulary and idf (scikit-learn's
    /// `transform`); terms outside the vocabulary are ignored, so a row may be empty.
    ///
    /// - Complexity: O(characters + n-grams × log(n-grams per text)).
    public func transform(_ texts: [String]) -> SparseMatrix {
        var flat: [Int32] = [], offsets = [0], scratch = QueryAnalyzer.Scratch()
        for text in texts {
            analyzer.analyze(text, terms: terms, into: &flat, scratch: &scratch)
            offsets.append(flat.count)
        }
        // Weights of known terms are finite by construction.
        return try! weigh(columns: flat, offsets: offsets)
    }

    /// The column of `term` (a token or space-joined n-gram as in ``vocabulary``), or nil.
    public func column(ofTerm term: String) -> Int? { terms.column(of: term) }

    /// The analyzer's tokens of `text` after stop-word removal (unigrams), for models that
    /// work on words (word2vec).
    public func words(_ text: String) -> [String] {
        var words: [String] = []
        analyzer.forEachKeptToken(in: text) { words.append(String(decoding: $0, as: UTF8.self)) }
        return words
    }

    /// Counts, weights and normalizes per-document column lists (-1: a feature not kept).
    private func weigh(columns features: [Int32], offsets: [Int]) throws -> SparseMatrix {
        var rowOffsets = [0], columns: [Int32] = [], values: [Float] = []
        columns.reserveCapacity(features.count)
        values.reserveCapacity(features.count)
        var row: [Int32] = []
        for d in 0 ..< offsets.count - 1 {
            row.removeAll(keepingCapacity: true)
            for column in features[offsets[d] ..< offsets[d + 1]] where column >= 0 { row.append(column) }
            row.sort()
            let start = values.count
            var i = 0
            while i < row.count {
                var j = i + 1
                while j < row.count && row[j] == row[i] { j += 1 }
                let count = Float(j - i)
                let tf = options.sublinearTF ? 1 + .log(count) : count
                columns.append(row[i])
                values.append(tf * idf[Int(row[i])])
                i = j
            }
            normalize(&values[start...])
            rowOffsets.append(values.count)
        }
        return try SparseMatrix(rows: offsets.count - 1, columns: terms.count, rowOffsets: rowOffsets,
                                columnIndices: columns, values: values)
    }

    private func normalize(_ row: inout ArraySlice<Float>) {
        var total: Double = 0
        switch options.norm {
        case .none: return
        case .l1: for v in row { total += Double(abs(v)) }
        case .l2:
            for v in row { total += Double(v) * Double(v) }
            total = total.squareRoot()
        }
        guard total > 0 else { return }
        for i in row.indices { row[i] = Float(Double(row[i]) / total) }
    }

    private static func inverseDocumentFrequency(_ df: Int, documents n: Int, options: TfidfOptions) -> Float {
        guard options.useIDF else { return 1 }
        let smooth = options.smoothIDF ? 1.0 : 0.0
        return Float(.log((Double(n) + smooth) / (Double(df) + smooth)) + 1)
    }
}

/// Whether bytes `a` order before bytes `b` (unsigned, shorter prefix first).
private func lexicographicallyPrecedes(_ bytes: UnsafeBufferPointer<UInt8>, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
    let common = min(a.count, b.count)
    for i in 0 ..< common {
        let x = bytes[a.lowerBound + i], y = bytes[b.lowerBound + i]
        if x != y { return x < y }
    }
    return a.count < b.count
}

/// Turns a text into the columns of its known terms, looked up in a ``TermTable`` in place:
/// tokens, stop-word removal, then each n-gram's bytes (tokens joined by single spaces, as the
/// terms are spelled) hashed and probed. No table of the vocabulary is built.
struct QueryAnalyzer: Sendable {
    let options: AnalyzerOptions
    private let tokenizer: Tokenizer
    private var stopWords = InternTable<UInt8>()

    /// Reusable buffers of one caller.
    struct Scratch {
        var tokenBytes: [UInt8] = []
        var tokenEnds: [Int] = []
        var key: [UInt8] = []
    }

    init(options: AnalyzerOptions) {
        self.options = options
        self.tokenizer = Tokenizer(lowercase: options.lowercase)
        for word in (options.englishStopWords ? englishStopWords : []) + options.stopWords { stopWords.insert(Array(word.utf8)) }
    }

    /// Calls `body` with each token of `text` that is not a stop word.
    func forEachKeptToken(in text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        tokenizer.forEachToken(in: text) { bytes in if stopWords.find(bytes) == nil { body(bytes) } }
    }

    /// Appends the column of every n-gram occurrence of `text` that is a term of `terms` to `out`.
    /// - Complexity: O(characters + n-grams × n-gram length) expected.
    func analyze(_ text: String, terms: TermTable, into out: inout [Int32], scratch: inout Scratch) {
        scratch.tokenBytes.removeAll(keepingCapacity: true)
        scratch.tokenEnds.removeAll(keepingCapacity: true)
        forEachKeptToken(in: text) { bytes in
            scratch.tokenBytes.append(contentsOf: bytes)
            scratch.tokenEnds.append(scratch.tokenBytes.count)
        }
        let count = scratch.tokenEnds.count
        guard options.minimumNgram <= count else { return }
        for n in options.minimumNgram ... min(options.maximumNgram, count) {
            for first in 0 ... count - n {
                scratch.key.removeAll(keepingCapacity: true)
                for token in first ..< first + n {
                    if token > first { scratch.key.append(0x20) }
                    scratch.key.append(contentsOf: scratch.tokenBytes[(token == 0 ? 0 : scratch.tokenEnds[token - 1]) ..< scratch.tokenEnds[token]])
                }
                if let column = scratch.key.withUnsafeBufferPointer({ terms.column(ofUTF8: $0) }) { out.append(Int32(column)) }
            }
        }
    }
}
