internal import RealModule

/// Hyper-parameters of skip-gram training with negative sampling. The defaults are gensim's
/// `Word2Vec(sg=1)` defaults, so results are comparable with it.
public struct SkipGramOptions: Sendable, Codable, Equatable {
    /// Vector length.
    public var dimensions = 100
    /// Largest distance between a word and a context word; each position draws its own window
    /// uniformly from 1 ... window (word2vec's "reduced window").
    public var window = 5
    /// Noise words drawn per (word, context) pair.
    public var negatives = 5
    /// Passes over the corpus.
    public var epochs = 5
    /// Learning rate at the start; it decays linearly to ``minimumAlpha`` over all epochs.
    public var alpha: Float = 0.025
    /// Learning rate at the end.
    public var minimumAlpha: Float = 0.0001
    /// Frequent-word subsampling threshold (gensim's `sample`; 0 keeps every word).
    public var sample: Double = 1e-3
    /// Exponent of the counts in the noise distribution.
    public var negativeExponent: Double = 0.75
    /// Seed of the initial vectors and of every worker's random stream.
    public var seed: UInt64 = 1

    /// Options with gensim's `Word2Vec(sg=1)` defaults.
    public init() {}
}

/// Why training was refused.
public enum SkipGramError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An option outside its range.
    case invalidOption(String)
    /// An id in the corpus outside 0 ..< vocabulary size.
    case idOutOfRange(id: Int, vocabularySize: Int)
    /// No words to train on.
    case emptyCorpus

    public var description: String {
        switch self {
        case let .invalidOption(reason): "invalid skip-gram option: \(reason)"
        case let .idOutOfRange(id, size): "corpus id \(id) is outside the vocabulary (0..<\(size))"
        case .emptyCorpus: "the corpus has no words to train on"
        }
    }
}

/// Skip-gram with negative sampling (word2vec, item2vec) over an integer-coded corpus: the
/// numeric core of word and item embeddings.
///
/// The inner loop is C with AVX-512/AVX2 dot products and axpys (`Kernels.trainSkipGram`), following
/// gensim's `fast_sentence_sg_neg`: reduced windows, the word2vec 48-bit LCG, a 1,000-entry
/// sigmoid table on [-6, 6], gensim's subsampling formula and a count^0.75 noise table. Workers
/// take contiguous shares of the sentences and update the shared tables without locks
/// (Hogwild), as gensim and word2vec do; with one thread a given seed always gives the same vectors.
public enum SkipGram {
    /// The trained input vectors and what was trained on.
    public struct Result: Sendable {
        /// vocabulary × dimensions: the embedding of each id.
        public let vectors: EmbeddingTable
        /// Words trained on over all epochs, after subsampling.
        public let trainedWords: Int
        /// Words read over all epochs (corpus length × epochs).
        public let rawWords: Int
    }

    /// Trains vectors for ids `0 ..< counts.count`.
    ///
    /// - Parameters:
    ///   - corpus: the sentences' ids back to back.
    ///   - sentenceOffsets: sentence s is `corpus[sentenceOffsets[s] ..< sentenceOffsets[s + 1]]`.
    ///   - counts: each id's frequency (drives subsampling and the noise distribution).
    /// - Throws: ``SkipGramError``.
    /// - Complexity: O(epochs × words × window × (negatives + 1) × dimensions).
    public static func train(corpus: [Int32], sentenceOffsets: [Int], counts: [Int], options: SkipGramOptions,
                             threads: Int = FlatIndex.defaultThreads) throws -> Result {
        guard options.dimensions >= 1, options.window >= 1, options.negatives >= 1, options.epochs >= 1, threads >= 1,
              options.alpha > 0, options.minimumAlpha >= 0, options.sample >= 0
        else { throw SkipGramError.invalidOption("dimensions, window, negatives, epochs, threads and alpha must be positive") }
        guard sentenceOffsets.first == 0, sentenceOffsets.last == corpus.count,
              zip(sentenceOffsets, sentenceOffsets.dropFirst()).allSatisfy({ $0 <= $1 })
        else { throw SkipGramError.invalidOption("sentence offsets must rise from 0 to the corpus length") }
        let vocabularySize = counts.count
        if let bad = corpus.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
            throw SkipGramError.idOutOfRange(id: Int(bad), vocabularySize: vocabularySize)
        }
        guard !corpus.isEmpty, counts.contains(where: { $0 > 0 }) else { throw SkipGramError.emptyCorpus }

        let dimensions = options.dimensions
        // gensim's initialization: uniform in [-0.5, 0.5) / dimensions; output weights zero.
        var input = EmbeddingTable(rows: vocabularySize, dimensions: dimensions)
        var generator = SeededGenerator(seed: options.seed)
        input.withUnsafeMutableBufferPointer { values in
            for i in values.indices { values[i] = (Float.random(in: 0 ..< 1, using: &generator) - 0.5) / Float(dimensions) }
        }
        var output = EmbeddingTable(rows: vocabularySize, dimensions: dimensions)
        let keep = keepThresholds(counts: counts, sample: options.sample)
        let noise = noiseTable(counts: counts, exponent: options.negativeExponent)
        let sentenceCount = sentenceOffsets.count - 1
        let workers = max(1, min(threads, sentenceCount))
        let shares = (0 ... workers).map { w in firstSentence(atWordFraction: w, of: workers, offsets: sentenceOffsets) }
        let totalWords = Int64(corpus.count) * Int64(options.epochs)
        var wordsDone: Int64 = 0
        var trained = [Int64](repeating: 0, count: workers)
        input.withUnsafeMutableBufferPointer { inputValues in
            output.withUnsafeMutableBufferPointer { outputValues in
                corpus.withUnsafeBufferPointer { corpusIDs in
                    sentenceOffsets.withUnsafeBufferPointer { offsets in
                        keep.withUnsafeBufferPointer { keepThreshold in
                            noise.withUnsafeBufferPointer { noiseIDs in
                                withUnsafeMutablePointer(to: &wordsDone) { progress in
                                    trained.withUnsafeMutableBufferPointer { trainedWords in
                                        let job = SkipGramJob(
                                            input: inputValues.baseAddress!, output: outputValues.baseAddress!, dimensions: dimensions,
                                            corpus: corpusIDs.baseAddress!, sentenceOffsets: offsets.baseAddress!,
                                            keepThresholds: keepThreshold.baseAddress!, noise: noiseIDs, window: options.window,
                                            negatives: options.negatives, alpha: (options.alpha, options.minimumAlpha),
                                            totalWords: totalWords, wordsDone: progress)
                                        let counts = UncheckedSendable(trainedWords)
                                        for epoch in 0 ..< options.epochs {
                                            Parallel.forEach(workers) { w in
                                                let seed = options.seed &+ UInt64(epoch * workers + w) &* 0x9E37_79B9
                                                counts.value[w] += Int64(Kernels.trainSkipGram(job, sentences: shares[w] ..< shares[w + 1], seed: seed))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Result(vectors: input, trainedWords: Int(trained.reduce(0, +)), rawWords: Int(totalWords))
    }

    /// gensim's subsampling: a word of count v is kept with probability
    /// (√(v / (sample·total)) + 1) · (sample·total) / v, stored as a 32-bit threshold
    /// (UInt32.max = always kept).
    static func keepThresholds(counts: [Int], sample: Double) -> [UInt32] {
        let total = Double(counts.reduce(0, +))
        let threshold = sample < 1 ? sample * total : sample
        return counts.map { count in
            guard sample > 0, count > 0 else { return UInt32.max }
            let v = Double(count)
            let probability = ((v / threshold).squareRoot() + 1) * threshold / v
            return probability >= 1 ? UInt32.max : UInt32(probability * Double(UInt32.max))
        }
    }

    /// Ids repeated in proportion to count^exponent, so drawing a uniform slot samples the
    /// noise distribution in O(1). Its size grows with the vocabulary (64 slots per id, between
    /// 2^20 and 2^25) so rare ids keep a share while the table stays cache-friendly.
    static func noiseTable(counts: [Int], exponent: Double) -> [Int32] {
        let size = min(1 << 25, max(1 << 20, counts.count * 64))
        let weights = counts.map { $0 > 0 ? Double.pow(Double($0), exponent) : 0 }
        let total = weights.reduce(0, +)
        var table = [Int32](repeating: 0, count: size)
        var id = 0, cumulative = weights[0] / total
        for slot in 0 ..< size {
            table[slot] = Int32(id)
            if Double(slot + 1) / Double(size) > cumulative, id < counts.count - 1 {
                id += 1
                while weights[id] == 0, id < counts.count - 1 { id += 1 }
                cumulative += weights[id] / total
            }
        }
        return table
    }

    /// The first sentence of worker w's share when sentences are split into `workers` parts of
    /// about equal word counts.
    private static func firstSentence(atWordFraction w: Int, of workers: Int, offsets: [Int]) -> Int {
        let target = offsets.last! * w / workers
        var low = 0, high = offsets.count - 1
        while low < high {
            let middle = (low + high) / 2
            if offsets[middle] < target { low = middle + 1 } else { high = middle }
        }
        return w == workers ? offsets.count - 1 : low
    }
}
