import RecKernels

/// Word (or item) embeddings learned by skip-gram with negative sampling (``SkipGram``), with
/// gensim's `Word2Vec(sg=1)` vocabulary rules: tokens seen fewer than `minimumCount` times are
/// dropped before training, the rest are numbered by descending count (ties by first
/// appearance). The same trainer learns item2vec embeddings from sessions of item ids: pass
/// each session's ids (as strings) as a sentence.
public struct Word2Vec: Sendable {
    /// Tokens by descending count.
    public let vocabulary: [String]
    /// Each token's count in the training corpus.
    public let counts: [Int]
    /// vocabulary × dimensions.
    public let vectors: EmbeddingTable
    /// The options it was trained with.
    public let options: SkipGramOptions
    private let ids: [String: Int]
    private let index: FlatIndex

    /// What one training run did.
    public struct TrainingReport: Sendable {
        /// Corpus tokens read over all epochs (including those dropped by minimum count).
        public let rawWords: Int
        /// Tokens trained on after minimum count and subsampling, over all epochs.
        public let trainedWords: Int
        /// Wall-clock seconds of the training passes (not of building the vocabulary).
        public let seconds: Double
    }

    /// Trains on `sentences`.
    ///
    /// - Throws: ``TextModelError/emptyVocabulary`` when no token reaches `minimumCount`,
    ///   ``SkipGramError`` for invalid options.
    /// - Complexity: O(epochs × tokens × window × (negatives + 1) × dimensions).
    public static func train(sentences: [[String]], minimumCount: Int = 5, options: SkipGramOptions = SkipGramOptions(),
                             threads: Int = FlatIndex.defaultThreads) throws -> (model: Word2Vec, report: TrainingReport) {
        guard minimumCount >= 1 else { throw TextModelError.invalidOption("minimum count must be at least 1") }
        var firstSeen: [String: Int] = [:], rawCounts: [Int] = [], tokens: [String] = []
        var raw = 0
        for sentence in sentences {
            raw += sentence.count
            for token in sentence {
                if let id = firstSeen[token] { rawCounts[id] += 1 } else {
                    firstSeen[token] = tokens.count
                    tokens.append(token)
                    rawCounts.append(1)
                }
            }
        }
        let order = tokens.indices.filter { rawCounts[$0] >= minimumCount }.sorted { (rawCounts[$0], -$0) > (rawCounts[$1], -$1) }
        guard !order.isEmpty else { throw TextModelError.emptyVocabulary }
        var remap = [Int32](repeating: -1, count: tokens.count)
        for (id, old) in order.enumerated() { remap[old] = Int32(id) }
        var corpus: [Int32] = [], offsets = [0]
        corpus.reserveCapacity(raw)
        for sentence in sentences {
            for token in sentence {
                let id = remap[firstSeen[token]!]
                if id >= 0 { corpus.append(id) }
            }
            if corpus.count > offsets.last! { offsets.append(corpus.count) }
        }
        let counts = order.map { rawCounts[$0] }
        let start = ContinuousClock.now
        let result = try SkipGram.train(corpus: corpus, sentenceOffsets: offsets, counts: counts, options: options, threads: threads)
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let model = try Word2Vec(vocabulary: order.map { tokens[$0] }, counts: counts, vectors: result.vectors, options: options)
        return (model, TrainingReport(rawWords: raw * options.epochs, trainedWords: result.trainedWords, seconds: seconds))
    }

    /// Adopts stored vectors.
    ///
    /// - Throws: ``TextModelError/invalidOption(_:)`` when the parts disagree,
    ///   ``ScoringError/nonFiniteItem(item:dimension:)``.
    public init(vocabulary: [String], counts: [Int], vectors: EmbeddingTable, options: SkipGramOptions) throws {
        guard vocabulary.count == vectors.rows, counts.count == vocabulary.count, !vocabulary.isEmpty else {
            throw TextModelError.invalidOption("\(vocabulary.count) tokens, \(counts.count) counts and \(vectors.rows) vectors")
        }
        let ids = try positions(of: vocabulary) { TextModelError.invalidOption("token '\($0)' appears twice in the vocabulary") }
        self.vocabulary = vocabulary
        self.counts = counts
        self.vectors = vectors
        self.options = options
        self.ids = ids
        self.index = try FlatIndex(items: vectors, metric: .cosine)
    }

    /// The id of `token`, or nil when it is not in the vocabulary.
    public func id(of token: String) -> Int? { ids[token] }

    /// The vector of `token`, or nil.
    public func vector(for token: String) -> [Float]? {
        ids[token].map { id in vectors.withRow(id) { Array($0) } }
    }

    /// The `k` tokens nearest to `token` by cosine, excluding itself.
    ///
    /// - Throws: ``TextModelError/unknownDocument(_:)`` for a token outside the vocabulary,
    ///   ``ScoringError/invalidK(_:)``.
    public func mostSimilar(to token: String, k: Int) throws -> [(token: String, score: Float)] {
        guard let id = ids[token] else { throw TextModelError.unknownDocument(token) }
        let query = vectors.withRow(id) { Array($0) }
        return try index.search(query, k: k, excluding: [id], threads: 1).map { (vocabulary[$0.id], $0.score) }
    }

    /// The weighted mean of the vectors of `tokens` that are in the vocabulary (weights default
    /// to 1), or nil when none is. - Complexity: O(tokens × dimensions).
    public func meanVector(of tokens: [String], weights: [Float]? = nil) -> [Float]? {
        var known: [Int] = [], knownWeights: [Float] = []
        for (position, token) in tokens.enumerated() {
            guard let id = ids[token] else { continue }
            known.append(id)
            knownWeights.append(weights?[position] ?? 1)
        }
        return meanVector(ids: known, weights: knownWeights)
    }

    /// The weighted mean of the vectors of `ids`, or nil when the weights sum to zero.
    func meanVector(ids: [Int], weights: [Float]) -> [Float]? {
        var sum = [Float](repeating: 0, count: vectors.dimensions)
        var total: Float = 0
        for (id, weight) in zip(ids, weights) {
            vectors.withRow(id) { row in for j in row.indices { sum[j] += weight * row[j] } }
            total += weight
        }
        guard total > 0 else { return nil }
        return sum.map { $0 / total }
    }
}
