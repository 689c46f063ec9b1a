import FoundationEssentials
import RecKernels
import Testing
@testable import RecText

/// scikit-learn's output for a corpus written for this test (Fixtures/make_sklearn_fixture.py).
struct SklearnFixture: Decodable {
    struct Configuration: Decodable {
        let options: [String: OptionValue]
        let vocabulary: [String]
        let idf: [Double]?
        let entries: [[Double]]
    }
    enum OptionValue: Decodable {
        case bool(Bool), number(Double), string(String), list([String]), range([Int]), null
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else if let r = try? c.decode([Int].self) { self = .range(r) }
            else { self = .list(try c.decode([String].self)) }
        }
    }
    let sklearn: String
    let corpus: [String]
    let configurations: [String: Configuration]

    static func load() throws -> SklearnFixture {
        let path = String(#filePath.dropLast("TfidfParityTests.swift".count)) + "Fixtures/sklearn_tfidf.json"
        let file = try MappedFile(path: path)
        return try JSONDecoder().decode(SklearnFixture.self, from: file.withUnsafeBytes { Data($0) })
    }
}

@Suite("TF-IDF parity with scikit-learn")
struct TfidfParityTests {
    /// Our options for a scikit-learn keyword set.
    static func options(_ sklearn: [String: SklearnFixture.OptionValue]) -> TfidfOptions {
        var options = TfidfOptions()
        for (key, value) in sklearn {
            switch (key, value) {
            case ("stop_words", .string("english")): options.analyzer.englishStopWords = true
            case let ("stop_words", .list(words)): options.analyzer.stopWords = words
            case let ("ngram_range", .range(range)):
                options.analyzer.minimumNgram = range[0]
                options.analyzer.maximumNgram = range[1]
            case let ("lowercase", .bool(flag)): options.analyzer.lowercase = flag
            case let ("sublinear_tf", .bool(flag)): options.sublinearTF = flag
            case let ("smooth_idf", .bool(flag)): options.smoothIDF = flag
            case let ("use_idf", .bool(flag)): options.useIDF = flag
            case let ("norm", .string(norm)): options.norm = TermNorm(rawValue: norm)!
            case ("norm", .null): options.norm = TermNorm.none
            case let ("min_df", .number(value)): options.minimumDocumentFrequency = value == value.rounded() && value >= 1 ? .count(Int(value)) : .fraction(value)
            case let ("max_df", .number(value)): options.maximumDocumentFrequency = value < 1 ? .fraction(value) : .count(Int(value))
            case let ("max_features", .number(value)): options.maximumFeatures = Int(value)
            default: Issue.record("option \(key) not mapped")
            }
        }
        return options
    }

    @Test("vocabulary, idf and weights match scikit-learn within 1e-5", arguments: [
        "defaults", "original", "no_smooth_l1_min_df", "raw_counts_max_df", "max_features_custom_stop",
    ])
    func parity(configuration name: String) throws {
        let fixture = try SklearnFixture.load()
        let expected = try #require(fixture.configurations[name])
        let (model, weights) = try TfidfModel.fit(fixture.corpus, options: Self.options(expected.options))
        #expect(model.vocabulary == expected.vocabulary)
        if let idf = expected.idf {
            #expect(model.idf.count == idf.count)
            for (ours, theirs) in zip(model.idf, idf) { #expect(abs(Double(ours) - theirs) <= 1e-5) }
        }
        #expect(weights.nonzeroCount == expected.entries.count)
        for entry in expected.entries {
            let (row, column, value) = (Int(entry[0]), Int(entry[1]), entry[2])
            #expect(abs(Double(weights[row, column]) - value) <= 1e-5, "row \(row) term \(expected.vocabulary[column])")
        }
        // transform of the training texts gives the fit's weights.
        #expect(model.transform(fixture.corpus) == weights)
    }

    @Test("a stored model rebuilt from vocabulary and idf transforms identically")
    func rebuilt() throws {
        let fixture = try SklearnFixture.load()
        let (model, weights) = try TfidfModel.fit(fixture.corpus, options: .contentRecommendation)
        let copy = try TfidfModel(options: model.options, vocabulary: model.vocabulary, idf: model.idf, documentCount: model.documentCount)
        #expect(copy.transform(fixture.corpus) == weights)
    }
}
