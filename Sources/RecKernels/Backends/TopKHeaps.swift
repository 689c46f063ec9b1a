internal import CRecKernels

/// Which items may enter a top-K while scores are folded in, and how a score becomes the key
/// it is ranked by. Every part is optional; pointers are the caller's, valid for the call.
struct FoldFilter {
    /// key = score × scale[j] (+ offset[j]), j relative to the folded block.
    var scale: UnsafePointer<Float>? = nil
    var offset: UnsafePointer<Float>? = nil
    /// Bit `id` set: item `id` may be returned (absolute ids).
    var eligible: UnsafePointer<UInt64>? = nil
    /// Sorted absolute ids that may not be returned.
    var excluded: UnsafeBufferPointer<Int32>? = nil

    fileprivate var kernelFilter: rk_fold_filter {
        rk_fold_filter(scale: scale, offset: offset, eligible: eligible, excluded: excluded?.baseAddress,
                       excluded_count: excluded?.count ?? 0)
    }
}

/// `count` bounded top-K heaps of capacity `k` in one allocation, filled by the C kernels
/// (`rk_topk_*`): the one place RecKernels' scoring touches the heap's C layout. Heap i is
/// addressed by its index; workers may fill disjoint heaps concurrently. Free with
/// ``deallocate()``.
struct TopKHeaps: @unchecked Sendable {
    private let heaps: UnsafeMutablePointer<rk_topk>
    private let scores: UnsafeMutablePointer<Float>
    private let ids: UnsafeMutablePointer<Int32>
    /// Number of heaps.
    let count: Int
    /// Capacity of each heap.
    let k: Int

    /// `count` empty heaps of capacity `k`.
    init(count: Int, k: Int) {
        self.count = count
        self.k = k
        scores = .allocate(capacity: max(1, count * k))
        ids = .allocate(capacity: max(1, count * k))
        heaps = .allocate(capacity: max(1, count))
        for h in 0 ..< count { heaps[h] = rk_topk(scores: scores + h * k, ids: ids + h * k, count: 0, capacity: Int32(k)) }
    }

    func deallocate() {
        scores.deallocate()
        ids.deallocate()
        heaps.deallocate()
    }

    /// Empties heap `heap`.
    func reset(_ heap: Int) { heaps[heap].count = 0 }

    /// Entries kept in heap `heap`.
    func entryCount(_ heap: Int) -> Int { Int(heaps[heap].count) }

    /// Entry `entry` of heap `heap` (best first after ``sort(_:)``).
    func entry(_ entry: Int, of heap: Int) -> (score: Float, id: Int32) { (heaps[heap].scores[entry], heaps[heap].ids[entry]) }

    /// Folds the scores of items `firstID ..< firstID + scores.count` into heap `heap` (NaN
    /// scores never enter).
    func fold(into heap: Int, scores: UnsafeBufferPointer<Float>, firstID: Int, filter: FoldFilter, level: SIMDLevel) {
        var kernelFilter = filter.kernelFilter
        rk_topk_fold(Int32(level.rawValue), heaps + heap, scores.baseAddress, scores.count, Int32(firstID), &kernelFilter)
    }

    /// Offers every entry of heap `source` to heap `target` (merging per-worker heaps).
    func merge(_ source: Int, into target: Int) {
        let from = heaps[source]
        for e in 0 ..< Int(from.count) { rk_topk_push(heaps + target, from.scores[e], from.ids[e]) }
    }

    /// Sorts heap `heap` best first (score descending, then id ascending); only read it afterwards.
    func sort(_ heap: Int) { rk_topk_sort(heaps + heap) }

    /// Scores one sparse query through an inverted index into heap `heap`: each posting of the
    /// query's terms adds weight × value to its document's accumulator (scaled by `scale`, when
    /// given, per document), then the touched documents are folded in. `accumulator` and
    /// `touched` hold one slot per document and are left cleared; `touchedIDs` too.
    func foldSparse(into heap: Int, filter: FoldFilter, terms: UnsafeBufferPointer<Int32>, weights: UnsafeBufferPointer<Float>,
                    postingOffsets: UnsafePointer<Int>, postingDocuments: UnsafePointer<Int32>?,
                    postingValues: UnsafePointer<Float>?, scale: UnsafePointer<Float>?,
                    accumulator: UnsafeMutablePointer<Float>, touched: UnsafeMutablePointer<UInt8>,
                    touchedIDs: UnsafeMutablePointer<Int32>) {
        var kernelFilter = filter.kernelFilter
        rk_sparse_topk(heaps + heap, &kernelFilter, terms.count, terms.baseAddress, weights.baseAddress, postingOffsets,
                       postingDocuments, postingValues, scale, accumulator, touched, touchedIDs)
    }
}

/// The shared buffers and settings of one skip-gram training run (see ``Kernels/trainSkipGram(_:sentences:seed:)``).
struct SkipGramJob: @unchecked Sendable {
    /// vocabulary × dimensions: the word (item) vectors, updated Hogwild by every worker.
    var input: UnsafeMutablePointer<Float>
    /// vocabulary × dimensions: the negative-sampling weights.
    var output: UnsafeMutablePointer<Float>
    var dimensions: Int
    /// Vocabulary ids, sentence after sentence; sentence s is `sentenceOffsets[s] ..< [s + 1]`.
    var corpus: UnsafePointer<Int32>
    var sentenceOffsets: UnsafePointer<Int>
    /// Per id: kept when a 32-bit random draw is below it (subsampling).
    var keepThresholds: UnsafePointer<UInt32>
    /// Ids drawn in proportion to count^exponent.
    var noise: UnsafeBufferPointer<Int32>
    var window: Int
    var negatives: Int
    /// The learning rate decays linearly from start to end over `totalWords`.
    var alpha: (start: Float, end: Float)
    var totalWords: Int64
    /// Shared progress counter, updated atomically by the kernel.
    var wordsDone: UnsafeMutablePointer<Int64>
}

extension Kernels {
    /// Trains one worker's share of an epoch (word2vec's SGNS, as gensim's
    /// `fast_sentence_sg_neg`) on `sentences` with random stream `seed`.
    /// - Returns: the words trained on after subsampling.
    static func trainSkipGram(_ job: SkipGramJob, sentences: Range<Int>, seed: UInt64) -> Int {
        var kernelJob = rk_sgns_job(
            input: job.input, output: job.output, dims: job.dimensions, corpus: job.corpus,
            sentence_offsets: job.sentenceOffsets, first_sentence: sentences.lowerBound, end_sentence: sentences.upperBound,
            keep_threshold: job.keepThresholds, negative_table: job.noise.baseAddress, negative_table_size: job.noise.count,
            window: Int32(job.window), negatives: Int32(job.negatives), alpha_start: job.alpha.start, alpha_end: job.alpha.end,
            total_words: job.totalWords, words_done: job.wordsDone, seed: seed)
        return Int(rk_sgns_train(Int32(SIMDLevel.best.rawValue), &kernelJob))
    }
}
