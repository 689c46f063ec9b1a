import Testing
@testable import RecKernels

@Suite("Skip-gram with negative sampling")
struct SkipGramTests {
    /// Sessions drawn from planted groups: items 4g ..< 4g + 4 always appear together (in a
    /// random order), two random groups per session, so an item shares almost all its contexts
    /// with its group mates and few with anything else.
    static func plantedSessions(groups: Int, sessions: Int, seed: UInt64) -> (corpus: [Int32], offsets: [Int], counts: [Int]) {
        var generator = SeededGenerator(seed: seed)
        var corpus: [Int32] = [], offsets = [0]
        var counts = [Int](repeating: 0, count: 4 * groups)
        for _ in 0 ..< sessions {
            for _ in 0 ..< 2 {
                let group = Int.random(in: 0 ..< groups, using: &generator)
                for item in (4 * group ..< 4 * group + 4).shuffled(using: &generator) {
                    corpus.append(Int32(item))
                    counts[item] += 1
                }
            }
            offsets.append(corpus.count)
        }
        return (corpus, offsets, counts)
    }

    static func nearest(_ vectors: EmbeddingTable, to item: Int) throws -> Int {
        let index = try FlatIndex(items: vectors, metric: .cosine)
        return try index.search(vectors.withRow(item) { Array($0) }, k: 1, excluding: [item])[0].id
    }

    @Test("planted co-occurring items end up nearest each other", arguments: [1, 2])
    func plantedGroups(threads: Int) throws {
        let (corpus, offsets, counts) = Self.plantedSessions(groups: 10, sessions: 3000, seed: 5)
        var options = SkipGramOptions()
        options.dimensions = 16
        options.window = 3
        options.sample = 0
        let result = try SkipGram.train(corpus: corpus, sentenceOffsets: offsets, counts: counts, options: options, threads: threads)
        #expect(result.trainedWords == corpus.count * options.epochs)
        for item in 0 ..< 40 { #expect(try Self.nearest(result.vectors, to: item) / 4 == item / 4, "item \(item)") }
    }

    @Test("one thread and a seed give the same vectors every time")
    func deterministic() throws {
        let (corpus, offsets, counts) = Self.plantedSessions(groups: 5, sessions: 200, seed: 1)
        var options = SkipGramOptions()
        options.dimensions = 8
        let a = try SkipGram.train(corpus: corpus, sentenceOffsets: offsets, counts: counts, options: options, threads: 1)
        let b = try SkipGram.train(corpus: corpus, sentenceOffsets: offsets, counts: counts, options: options, threads: 1)
        #expect(a.vectors == b.vectors)
    }

    @Test("subsampling keeps rare words and thins frequent ones as gensim's formula does")
    func subsampling() {
        let thresholds = SkipGram.keepThresholds(counts: [1, 1_000_000], sample: 1e-3)
        #expect(thresholds[0] == UInt32.max)
        let keep = Double(thresholds[1]) / Double(UInt32.max)
        let t = 1e-3 * 1_000_001.0, v = 1_000_000.0
        #expect(abs(keep - ((v / t).squareRoot() + 1) * t / v) < 1e-6)
    }

    @Test("bad input is refused")
    func errors() {
        #expect(throws: SkipGramError.idOutOfRange(id: 3, vocabularySize: 2)) {
            try SkipGram.train(corpus: [0, 3], sentenceOffsets: [0, 2], counts: [1, 1], options: SkipGramOptions())
        }
        #expect(throws: SkipGramError.emptyCorpus) {
            try SkipGram.train(corpus: [], sentenceOffsets: [0], counts: [0], options: SkipGramOptions())
        }
    }
}
