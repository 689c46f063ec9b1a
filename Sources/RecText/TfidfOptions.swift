/// A document-frequency bound: an absolute number of documents or a proportion of them, as
/// scikit-learn's `min_df` / `max_df` take an int or a float.
public enum DocumentFrequency: Codable, Sendable, Equatable {
    /// At least / at most this many documents.
    case count(Int)
    /// At least / at most this proportion of the documents (0 ... 1).
    case fraction(Double)

    /// The bound in documents for a corpus of `documents`.
    func documents(of documents: Int) -> Double {
        switch self {
        case let .count(count): Double(count)
        case let .fraction(fraction): fraction * Double(documents)
        }
    }
}

/// How each document's weight vector is scaled.
public enum TermNorm: String, Codable, Sendable, CaseIterable {
    /// Unit Euclidean length (cosine similarity is then a dot product).
    case l2
    /// Absolute values summing to 1.
    case l1
    /// Raw weights.
    case none
}

/// What the analyzer keeps: the tokenizer's case handling, stop words and n-grams.
public struct AnalyzerOptions: Codable, Sendable, Equatable {
    /// Lowercase before tokenizing (scikit-learn's `lowercase`).
    public var lowercase = true
    /// Remove ``englishStopWords`` (scikit-learn's `stop_words="english"`).
    public var englishStopWords = false
    /// More words to remove, compared with the tokens after lowercasing.
    public var stopWords: [String] = []
    /// Shortest n-gram (in words) to count.
    public var minimumNgram = 1
    /// Longest n-gram (in words) to count.
    public var maximumNgram = 1

    /// Options with scikit-learn's defaults: lowercase, no stop words, unigrams. `ngrams` gives
    /// the shortest and longest n-gram, in words.
    public init(lowercase: Bool = true, englishStopWords: Bool = false, stopWords: [String] = [],
                ngrams: ClosedRange<Int> = 1 ... 1) {
        self.lowercase = lowercase
        self.englishStopWords = englishStopWords
        self.stopWords = stopWords
        self.minimumNgram = ngrams.lowerBound
        self.maximumNgram = ngrams.upperBound
    }
}

/// The options of a TF-IDF model, named and defaulted as scikit-learn's `TfidfVectorizer`.
public struct TfidfOptions: Codable, Sendable, Equatable {
    /// Tokens, stop words and n-grams.
    public var analyzer = AnalyzerOptions()
    /// Terms in fewer documents are dropped (`min_df`).
    public var minimumDocumentFrequency = DocumentFrequency.count(1)
    /// Terms in more documents are dropped (`max_df`).
    public var maximumDocumentFrequency = DocumentFrequency.fraction(1)
    /// Terms seen fewer times in the whole corpus are dropped (the original project's
    /// minimum-count threshold; 1 keeps everything).
    public var minimumCount = 1
    /// Keep only this many terms, the most frequent over the corpus (`max_features`); ties
    /// go to the alphabetically first term.
    public var maximumFeatures: Int? = nil
    /// Weight by inverse document frequency (`use_idf`).
    public var useIDF = true
    /// idf = ln((1 + n) / (1 + df)) + 1 instead of ln(n / df) + 1 (`smooth_idf`).
    public var smoothIDF = true
    /// tf = 1 + ln(count) instead of count (`sublinear_tf`).
    public var sublinearTF = false
    /// Row normalization (`norm`).
    public var norm = TermNorm.l2

    /// scikit-learn's defaults: unigrams, no stop words, smooth idf, raw tf, l2.
    public init() {}

    /// The original project's configuration: English stop words, unigrams and bigrams,
    /// sublinear tf, smooth idf, l2.
    public static var contentRecommendation: TfidfOptions {
        var options = TfidfOptions()
        options.analyzer = AnalyzerOptions(englishStopWords: true, ngrams: 1 ... 2)
        options.sublinearTF = true
        return options
    }

    /// Checks every option. - Throws: ``TextModelError/invalidOption(_:)``.
    func validate() throws {
        guard analyzer.minimumNgram >= 1, analyzer.maximumNgram >= analyzer.minimumNgram else {
            throw TextModelError.invalidOption("n-gram range must be 1 ≤ minimum ≤ maximum, got \(analyzer.minimumNgram)...\(analyzer.maximumNgram)")
        }
        for bound in [minimumDocumentFrequency, maximumDocumentFrequency] {
            switch bound {
            case let .count(count) where count < 0:
                throw TextModelError.invalidOption("document-frequency counts must not be negative, got \(count)")
            case let .fraction(fraction) where !(0 ... 1).contains(fraction):
                throw TextModelError.invalidOption("document-frequency fractions must be within 0...1, got \(fraction)")
            default: break
            }
        }
        guard minimumCount >= 1 else { throw TextModelError.invalidOption("minimum count must be at least 1, got \(minimumCount)") }
        if let maximumFeatures, maximumFeatures < 1 {
            throw TextModelError.invalidOption("maximum features must be at least 1, got \(maximumFeatures)")
        }
    }
}

/// Why a text model refused its input.
public enum TextModelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No documents to learn from.
    case emptyCorpus
    /// No term survived tokenizing, stop words and the frequency bounds.
    case emptyVocabulary
    /// An option outside its range.
    case invalidOption(String)
    /// A query with no term of the vocabulary: it matches nothing.
    case noKnownTerms(String)
    /// A document id that is not in the index.
    case unknownDocument(String)
    /// The same document id twice.
    case duplicateDocument(String)
    /// A model file of another kind or one whose parts disagree.
    case mismatchedModelFile(path: String, reason: String)
    /// The index holds no model of this representation.
    case missingRepresentation(String)

    public var description: String {
        switch self {
        case .emptyCorpus: "the corpus has no documents"
        case .emptyVocabulary: "no terms remain after tokenizing, stop words and the frequency bounds: the documents only hold stop words or the bounds are too tight"
        case let .invalidOption(reason): "invalid option: \(reason)"
        case let .noKnownTerms(text): "the query \"\(text.prefix(80))\" has no term of the vocabulary"
        case let .unknownDocument(id): "no document with id '\(id)' in the index"
        case let .duplicateDocument(id): "document id '\(id)' appears more than once"
        case let .mismatchedModelFile(path, reason): "\(path): not a matching model file: \(reason)"
        case let .missingRepresentation(name): "the index has no \(name) model: build it with that option first"
        }
    }
}
