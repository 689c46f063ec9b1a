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

/// One query's candidates from a compressed scan: ids and upper bounds, grown by the caller
/// before each scan call (the kernel appends without checking room). One worker owns it.
final class CandidateList {
    private(set) var ids: UnsafeMutablePointer<Int32>
    private(set) var upper: UnsafeMutablePointer<Float>
    var count = 0
    private var capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
        ids = .allocate(capacity: capacity)
        upper = .allocate(capacity: capacity)
    }

    deinit {
        ids.deallocate()
        upper.deallocate()
    }

    /// Makes room for `extra` more entries.
    func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        let grown = max(2 * capacity, count + extra)
        let newIDs = UnsafeMutablePointer<Int32>.allocate(capacity: grown), newUpper = UnsafeMutablePointer<Float>.allocate(capacity: grown)
        newIDs.update(from: ids, count: count)
        newUpper.update(from: upper, count: count)
        ids.deallocate()
        upper.deallocate()
        (ids, upper, capacity) = (newIDs, newUpper, grown)
    }

    /// Drops the entries whose upper bound is below `tau` (they can no longer reach the top K).
    func compact(below tau: Float) {
        var kept = 0
        for c in 0 ..< count where !(upper[c] < tau) {
            ids[kept] = ids[c]
            upper[kept] = upper[c]
            kept += 1
        }
        count = kept
    }
}

/// A compressed table and one metric's per-row key and bound terms, as the scan kernel reads
/// them (see `rk_cq_table`); pointers are the caller's, valid for the call.
struct CompressedScanTable {
    var kind: CompressionKind
    var codes: UnsafeRawPointer
    var dimensions: Int
    var rows: Int
    var multiplier: UnsafePointer<Float>?
    var offset: UnsafePointer<Float>?
    var radius: UnsafePointer<Float>
    var absolute: Float
}

extension TopKHeaps {
    /// Sorts heaps `0 ..< queryCount` best first and copies them out as the results of
    /// `queryCount` queries, each kept key turned into the reported score by `finalScore(key, q)`.
    /// Rows with fewer than K entries are padded with id −1 and NaN.
    func sortedResults(queryCount: Int, finalScore: (_ key: Float, _ query: Int) -> Float) -> TopKResults {
        var ids = [Int32](repeating: -1, count: queryCount * k)
        var scores = [Float](repeating: .nan, count: queryCount * k)
        var counts = [Int32](repeating: 0, count: queryCount)
        for q in 0 ..< queryCount {
            sort(q)
            counts[q] = Int32(entryCount(q))
            for e in 0 ..< entryCount(q) {
                let (key, id) = entry(e, of: q)
                ids[q * k + e] = id
                scores[q * k + e] = finalScore(key, q)
            }
        }
        return TopKResults(queryCount: queryCount, k: k, ids: ids, scores: scores, counts: counts)
    }
}

extension TopKHeaps {
    /// The K-th best key kept in heap `heap` (its root), or −∞ while it holds fewer than K.
    func threshold(_ heap: Int) -> Float {
        heaps[heap].count < heaps[heap].capacity ? -.infinity : heaps[heap].scores[0]
    }

    /// Scans panels `panels` of `table` for `queryCount` queries: query i's lower bounds go to heap
    /// `firstHeap + i` and its candidates to `candidates[i]` (which must have room for every row
    /// of the panels).
    func scanCompressed(_ table: CompressedScanTable, panels: Range<Int>, queries: UnsafePointer<Float>, queryCount: Int,
                        queryNorms: UnsafePointer<Float>, firstHeap: Int, candidates: ArraySlice<CandidateList>,
                        filters: [FoldFilter], level: SIMDLevel) {
        var kernelTable = rk_cq_table(kind: table.kind == .int8 ? Int32(RK_CODE_INT8.rawValue) : Int32(RK_CODE_BF16.rawValue),
                                      codes: table.codes, dims: table.dimensions, rows: table.rows, multiplier: table.multiplier,
                                      offset: table.offset, radius: table.radius, absolute: table.absolute)
        var states = candidates.enumerated().map { i, list in
            rk_cq_query(lower: heaps + firstHeap + i, candidate_ids: list.ids + list.count, candidate_upper: list.upper + list.count,
                        candidate_count: 0)
        }
        let kernelFilters = filters.map(\.kernelFilter)
        rk_cq_scan(Int32(level.rawValue), &kernelTable, panels.lowerBound, panels.upperBound, queries, queryCount, queryNorms,
                   &states, kernelFilters)
        for (state, list) in zip(states, candidates) { list.count += state.candidate_count }
    }

    /// Re-scores `ids` from the float32 `items` exactly as a search at `level` does (the GEMV dot,
    /// or with `tileArithmetic` the tile kernels' FMA chain) and offers their keys to heap `heap`.
    func rescore(into heap: Int, ids: UnsafeBufferPointer<Int32>, items: UnsafePointer<Float>, dimensions: Int,
                 query: UnsafePointer<Float>, scale: UnsafePointer<Float>?, offset: UnsafePointer<Float>?,
                 level: SIMDLevel, tileArithmetic: Bool) {
        guard let base = ids.baseAddress else { return }
        rk_cq_rescore(Int32(level.rawValue), tileArithmetic ? 1 : 0, items, dimensions, query, base, ids.count, scale, offset,
                      heaps + heap)
    }
}
