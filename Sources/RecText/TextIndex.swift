import FoundationEssentials
import RecKernels

/// Which vectors a text query is answered with.
public enum TextRepresentation: String, Codable, Sendable, CaseIterable {
    /// Sparse TF-IDF vectors, exact cosine through the inverted index.
    case tfidf
    /// Dense LSI coordinates (truncated SVD of the TF-IDF matrix), cosine.
    case lsi
    /// TF-IDF-weighted means of word2vec vectors, cosine.
    case word2vec
}

/// One result of a text query.
public struct TextMatch: Sendable, Equatable, CustomStringConvertible {
    /// The document's row in the index.
    public let row: Int
    /// The document's id.
    public let id: String
    /// The document's label (title), empty when none was given.
    public let label: String
    /// Cosine similarity with the query.
    public let score: Float

    public var description: String { "\(id)\t\(score)\t\(label)" }
}

/// What to build besides the TF-IDF model.
public struct TextIndexOptions: Sendable, Equatable {
    /// The TF-IDF model's options (the original project's by default).
    public var tfidf = TfidfOptions.contentRecommendation
    /// Build an LSI space of this many topics (nil: none).
    public var lsiTopics: Int? = nil
    /// Train word2vec on the documents' words with these options (nil: none).
    public var word2vec: SkipGramOptions? = nil
    /// Words seen fewer times are left out of word2vec.
    public var word2vecMinimumCount = 5
    /// Seed of the randomized SVD.
    public var seed: UInt64 = 0
    /// Worker threads for SVD and word2vec.
    public var threads = FlatIndex.defaultThreads

    /// TF-IDF only, with the default options.
    public init() {}
}

/// Content-based "more like this" over a collection of documents: a TF-IDF model and the
/// documents' weight matrix served by a ``SparseIndex`` (exact cosine top-K), optionally with
/// an LSI space and word2vec document vectors served by ``FlatIndex``.
///
/// Queries are a free text (``query(_:k:using:)``) or a document of the index
/// (``similar(toDocument:k:using:)``, which never returns the document itself). Results are
/// the top K by cosine, best first, ties broken by the lower row. An index is immutable and
/// `Sendable`; it saves to and opens from one model file.
public struct TextIndex: Sendable {
    /// Document ids, one per row.
    public let ids: [String]
    /// Document labels (empty strings when none).
    public let labels: [String]
    /// The fitted TF-IDF model.
    public let tfidf: TfidfModel
    /// The documents' TF-IDF weights: rows are documents, columns the vocabulary.
    public let weights: SparseMatrix
    /// The LSI space, when built.
    public let lsi: LatentSemanticSpace?
    /// The word2vec model and document vectors, when built.
    public let word2vec: DocumentEmbeddings?
    private let sparse: SparseIndex
    private let rows: [String: Int]

    /// Fits the models on `documents`.
    ///
    /// - Throws: ``TextModelError`` (empty corpus or vocabulary, duplicate ids, invalid
    ///   options), ``TruncatedSVDError``, ``SkipGramError``.
    /// - Complexity: TF-IDF O(characters + n-grams log n-grams); LSI and word2vec as
    ///   ``TruncatedSVD`` and ``SkipGram``.
    public init(documents: [TextDocument], options: TextIndexOptions = TextIndexOptions()) throws {
        guard !documents.isEmpty else { throw TextModelError.emptyCorpus }
        try TextDocuments.checkUniqueIDs(documents)
        let (model, weights) = try TfidfModel.fit(documents.map(\.text), options: options.tfidf)
        let lsi = try options.lsiTopics.map {
            try LatentSemanticSpace(weights: weights, topics: $0, seed: options.seed, threads: options.threads)
        }
        let word2vec = try options.word2vec.map { skipGram in
            let sentences = documents.map { model.words($0.text) }
            let (words, _) = try Word2Vec.train(sentences: sentences, minimumCount: options.word2vecMinimumCount,
                                                options: skipGram, threads: options.threads)
            return try DocumentEmbeddings(words: words, tfidf: model, weights: weights)
        }
        try self.init(ids: documents.map(\.id), labels: documents.map { $0.label ?? "" }, tfidf: model, weights: weights,
                      lsi: lsi, word2vec: word2vec)
    }

    /// Assembles an index from its parts (as read from a model file).
    ///
    /// - Throws: ``TextModelError/mismatchedModelFile(path:reason:)``-style
    ///   ``TextModelError/invalidOption(_:)`` when the parts disagree.
    init(ids: [String], labels: [String], tfidf: TfidfModel, weights: SparseMatrix, lsi: LatentSemanticSpace?,
         word2vec: DocumentEmbeddings?) throws {
        guard ids.count == weights.rows, labels.count == ids.count, weights.columns == tfidf.terms.count,
              lsi.map({ $0.documentVectors.rows == ids.count && $0.projection.rows == weights.columns }) ?? true,
              word2vec.map({ $0.documentVectors.rows == ids.count }) ?? true
        else { throw TextModelError.invalidOption("index parts of different sizes") }
        let rows = try positions(of: ids) { TextModelError.duplicateDocument($0) }
        self.ids = ids
        self.labels = labels
        self.tfidf = tfidf
        self.weights = weights
        self.lsi = lsi
        self.word2vec = word2vec
        self.rows = rows
        self.sparse = try SparseIndex(documents: weights, metric: .cosine)
    }

    /// The row of document `id`, or nil.
    public func row(of id: String) -> Int? { rows[id] }

    /// The `k` documents most similar to `text`.
    ///
    /// - Throws: ``TextModelError/noKnownTerms(_:)`` when the text has no term of the
    ///   vocabulary (or, for word2vec, no known word), ``TextModelError/missingRepresentation(_:)``,
    ///   ``ScoringError/invalidK(_:)``.
    /// - Complexity: TF-IDF: O(text + postings of its terms); dense: O(documents × dimensions).
    public func query(_ text: String, k: Int, using representation: TextRepresentation = .tfidf) throws -> [TextMatch] {
        guard k >= 1 else { throw ScoringError.invalidK(k) }
        let row = tfidf.transform([text])
        guard row.nonzeroCount > 0 else { throw TextModelError.noKnownTerms(text) }
        switch representation {
        case .tfidf:
            return matches(try sparse.search(row, k: k, threads: 1)[0])
        case .lsi:
            let space = try require(lsi, representation)
            let vector = try space.foldIn(row)
            guard vector.contains(where: { $0 != 0 }) else { throw TextModelError.noKnownTerms(text) }
            return matches(try space.index.search(vector, k: k, threads: 1))
        case .word2vec:
            let embeddings = try require(word2vec, representation)
            guard let vector = embeddings.documentVector(weights: row, row: 0) else { throw TextModelError.noKnownTerms(text) }
            return matches(try embeddings.index.search(vector, k: k, threads: 1))
        }
    }

    /// "More like this": the `k` documents most similar to document `id`, never itself.
    ///
    /// - Throws: ``TextModelError/unknownDocument(_:)``, ``TextModelError/noKnownTerms(_:)``
    ///   for a document without terms, ``TextModelError/missingRepresentation(_:)``,
    ///   ``ScoringError/invalidK(_:)``.
    public func similar(toDocument id: String, k: Int, using representation: TextRepresentation = .tfidf) throws -> [TextMatch] {
        guard k >= 1 else { throw ScoringError.invalidK(k) }
        guard let row = rows[id] else { throw TextModelError.unknownDocument(id) }
        guard weights.rowOffsets[row + 1] > weights.rowOffsets[row] else { throw TextModelError.noKnownTerms(labels[row]) }
        switch representation {
        case .tfidf:
            return matches(try sparse.similar(toDocument: row, k: k))
        case .lsi:
            let space = try require(lsi, representation)
            return matches(try space.index.search(space.documentVectors.withRow(row) { Array($0) }, k: k, excluding: [row], threads: 1))
        case .word2vec:
            let embeddings = try require(word2vec, representation)
            let vector = embeddings.documentVectors.withRow(row) { Array($0) }
            guard vector.contains(where: { $0 != 0 }) else { throw TextModelError.noKnownTerms(labels[row]) }
            return matches(try embeddings.index.search(vector, k: k, excluding: [row], threads: 1))
        }
    }

    private func require<T>(_ model: T?, _ representation: TextRepresentation) throws -> T {
        guard let model else { throw TextModelError.missingRepresentation(representation.rawValue) }
        return model
    }

    private func matches(_ items: [ScoredItem]) -> [TextMatch] {
        items.map { TextMatch(row: $0.id, id: ids[$0.id], label: labels[$0.id], score: $0.score) }
    }
}

/// Documents in LSI coordinates: the truncated SVD `A ≈ U·S·Vᵀ` of the TF-IDF matrix A keeps
/// V (terms × topics) to fold any TF-IDF row in as `x·V`, and the documents' coordinates `U·S`
/// (= A·V), served by a cosine ``FlatIndex``. New documents fold in without refitting.
public struct LatentSemanticSpace: Sendable {
    /// Singular values, descending.
    public let singularValues: [Float]
    /// V: terms × topics.
    public let projection: EmbeddingTable
    /// Documents × topics: U·S.
    public let documentVectors: EmbeddingTable
    let index: FlatIndex

    /// Matrices up to this many elements are decomposed exactly (dense LAPACK); larger ones
    /// by randomized SVD.
    public static let exactMaximumElements = 1 << 22

    /// Decomposes `weights` into `topics` topics.
    ///
    /// - Throws: ``TruncatedSVDError/invalidRank(_:maximum:)``, ``LinearAlgebraError``.
    public init(weights: SparseMatrix, topics: Int, seed: UInt64 = 0, threads: Int = FlatIndex.defaultThreads) throws {
        let svd = weights.rows * weights.columns <= Self.exactMaximumElements
            ? try TruncatedSVD.exact(weights, rank: topics)
            : try TruncatedSVD.randomized(weights, rank: topics, seed: seed, threads: threads)
        try self.init(singularValues: svd.singularValues, projection: svd.right, documentVectors: svd.rowCoordinates())
    }

    /// Adopts stored matrices. - Throws: ``ScoringError`` for non-finite vectors,
    /// ``TextModelError/invalidOption(_:)`` for disagreeing shapes.
    public init(singularValues: [Float], projection: EmbeddingTable, documentVectors: EmbeddingTable) throws {
        guard projection.dimensions == singularValues.count, documentVectors.dimensions == singularValues.count else {
            throw TextModelError.invalidOption("LSI parts with different topic counts")
        }
        self.singularValues = singularValues
        self.projection = projection
        self.documentVectors = documentVectors
        self.index = try FlatIndex(items: documentVectors, metric: .cosine)
    }

    /// LSI coordinates of one TF-IDF row (row 0 of `row`).
    func foldIn(_ row: SparseMatrix) throws -> [Float] {
        let svd = try TruncatedSVD(singularValues: singularValues, left: EmbeddingTable(rows: 0, dimensions: singularValues.count),
                                   right: projection)
        return try svd.project(row).withRow(0) { Array($0) }
    }
}

/// Word2vec vectors of an index's documents: the TF-IDF-weighted mean of the vectors of each
/// document's words (unigram terms found in the word2vec vocabulary), served by a cosine
/// ``FlatIndex``. A document without such words gets the zero vector and is never matched.
public struct DocumentEmbeddings: Sendable {
    /// The word vectors.
    public let words: Word2Vec
    /// Documents × dimensions.
    public let documentVectors: EmbeddingTable
    /// TF-IDF column → word2vec id, -1 for n-grams and words word2vec dropped.
    private let wordOfColumn: [Int32]
    let index: FlatIndex

    /// Computes the documents' vectors from their TF-IDF `weights`.
    public init(words: Word2Vec, tfidf: TfidfModel, weights: SparseMatrix) throws {
        let wordOfColumn = Self.wordIDs(words, tfidf)
        var vectors = EmbeddingTable(rows: weights.rows, dimensions: words.vectors.dimensions)
        for row in 0 ..< weights.rows {
            if let vector = Self.meanVector(words, wordOfColumn, weights, row) { try vectors.setRow(row, to: vector) }
        }
        try self.init(words: words, tfidf: tfidf, documentVectors: vectors)
    }

    /// Adopts stored document vectors.
    public init(words: Word2Vec, tfidf: TfidfModel, documentVectors: EmbeddingTable) throws {
        self.words = words
        self.wordOfColumn = Self.wordIDs(words, tfidf)
        self.documentVectors = documentVectors
        self.index = try FlatIndex(items: documentVectors, metric: .cosine)
    }

    /// The weighted mean vector of row `row` of TF-IDF `weights`, or nil when no word is known.
    func documentVector(weights: SparseMatrix, row: Int) -> [Float]? {
        Self.meanVector(words, wordOfColumn, weights, row)
    }

    private static func wordIDs(_ words: Word2Vec, _ tfidf: TfidfModel) -> [Int32] {
        tfidf.terms.map { term in Int32(words.id(of: term) ?? -1) }
    }

    private static func meanVector(_ words: Word2Vec, _ wordOfColumn: [Int32], _ weights: SparseMatrix, _ row: Int) -> [Float]? {
        var ids: [Int] = [], wordWeights: [Float] = []
        for p in weights.rowOffsets[row] ..< weights.rowOffsets[row + 1] {
            let word = wordOfColumn[Int(weights.columnIndices[p])]
            guard word >= 0 else { continue }
            ids.append(Int(word))
            wordWeights.append(weights.values[p])
        }
        return words.meanVector(ids: ids, weights: wordWeights)
    }
}
