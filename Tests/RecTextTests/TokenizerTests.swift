import Testing
@testable import RecText

@Suite("Tokenizer and analyzer")
struct TokenizerTests {
    let tokenizer = Tokenizer()

    @Test("runs of two or more word characters, lowercased; punctuation separates")
    func punctuation() {
        #expect(tokenizer.tokens("Don't panic: the answer is 42, e-mail x-ray...") ==
                ["don", "panic", "the", "answer", "is", "42", "mail", "ray"])
        #expect(tokenizer.tokens("snake_case kebab-case CamelCase") == ["snake_case", "kebab", "case", "camelcase"])
    }

    @Test("empty, blank and one-character documents give no tokens; one word gives one")
    func degenerate() {
        #expect(tokenizer.tokens("").isEmpty)
        #expect(tokenizer.tokens("  \n\t ").isEmpty)
        #expect(tokenizer.tokens("I a ½ Ⅻ !").isEmpty)
        #expect(tokenizer.tokens("Word") == ["word"])
    }

    @Test("unicode letters and numbers are word characters; marks, symbols and emoji are not")
    func unicode() {
        #expect(tokenizer.tokens("Café naïve RÉSUMÉ Straße") == ["café", "naïve", "résumé", "straße"])
        #expect(tokenizer.tokens("東京タワー and ２０２４") == ["東京タワー", "and", "２０２４"])
        #expect(tokenizer.tokens("tokens🙂apart") == ["tokens", "apart"])
        // Decomposed é: the combining acute (Mn) is not \w, so it splits as in Python.
        #expect(tokenizer.tokens("cafe\u{301}s") == ["cafe"])
        // İ lowercases to i + U+0307 (Python's str.lower), which splits "stanbul" off.
        #expect(tokenizer.tokens("İstanbul") == ["stanbul"])
    }

    @Test("final sigma lowercases to ς at the end of a word, σ inside")
    func finalSigma() {
        #expect(tokenizer.tokens("ΟΔΥΣΣΕΥΣ ΣΑ") == ["οδυσσευς", "σα"])
    }

    @Test("case is kept when lowercasing is off")
    func keepCase() {
        #expect(Tokenizer(lowercase: false).tokens("CamelCase Straße") == ["CamelCase", "Straße"])
    }

    @Test("stop words are removed before n-grams, so an n-gram spans them")
    func stopWordsAndNgrams() throws {
        var options = TfidfOptions()
        options.analyzer = AnalyzerOptions(englishStopWords: true, stopWords: ["fox"], ngrams: 1 ... 2)
        let (model, _) = try TfidfModel.fit(["the quick brown fox jumps over the lazy dog"], options: options)
        #expect(model.vocabulary == ["brown", "brown jumps", "dog", "jumps", "jumps lazy", "lazy", "lazy dog", "quick", "quick brown"])
        #expect(model.column(ofTerm: "the") == nil)
        #expect(model.column(ofTerm: "brown jumps") == 1)
    }

    @Test("n-gram ranges without unigrams, and longer than the document")
    func ngramRanges() throws {
        var options = TfidfOptions()
        options.analyzer = AnalyzerOptions(ngrams: 2 ... 5)
        let (model, weights) = try TfidfModel.fit(["one two three", "alpha"], options: options)
        #expect(model.vocabulary == ["one two", "one two three", "two three"])
        #expect(weights.row(1).columns.isEmpty)
    }

    @Test("documents of stop words only leave an empty vocabulary, which is an error")
    func emptyVocabulary() {
        var options = TfidfOptions()
        options.analyzer.englishStopWords = true
        #expect(throws: TextModelError.emptyVocabulary) { try TfidfModel.fit(["the and of", "a"], options: options) }
        #expect(throws: TextModelError.emptyCorpus) { try TfidfModel.fit([], options: options) }
    }

    @Test("minimum count drops rare terms; maximum features keeps the most frequent")
    func frequencyLimits() throws {
        var options = TfidfOptions()
        options.minimumCount = 2
        let texts = ["apple apple banana", "banana cherry", "apple date"]
        #expect(try TfidfModel.fit(texts, options: options).model.vocabulary == ["apple", "banana"])
        options.minimumCount = 1
        options.maximumFeatures = 1
        #expect(try TfidfModel.fit(texts, options: options).model.vocabulary == ["apple"])
        options.maximumFeatures = 0
        #expect(throws: TextModelError.self) { try TfidfModel.fit(texts, options: options) }
    }
}
