import Foundation
import Metrics

/// The stages of an event's way from its producer to its result, and the processor's own
/// bookkeeping after it; ``StageLatencies`` measures each one.
///
/// The stages up to ``produce`` follow one another on the event's path: their means add up to
/// the mean time from the event's production to its result's being handed to the producer.
/// ``ack`` and ``commit`` come after the result left; they delay the result only when the
/// processor waits for them before taking the next batch (which then shows as ``busy``).
public enum StreamStage: String, CaseIterable, Sendable {
    /// The message's create time (the producer's clock, in milliseconds) → the processor's
    /// consumer poll returned it, less ``busy``: producer batching, broker, fetch.
    case transport
    /// Waiting in the consumer's queue while the processor worked on earlier batches (scoring,
    /// waiting for acknowledgements, writing snapshots, committing).
    case busy
    /// Polled → its micro-batch closed.
    case batchFill
    /// Applying the batch's events to user state and reading the users' histories.
    case state
    /// The engine's batch entry point: fold-ins, one GEMM with fused top-K, post-processing;
    /// with overlapped scoring, from the batch's being applied to state, so waiting for a free
    /// scoring thread counts here.
    case scoring
    /// Encoding the batch's results and handing them to the producer.
    case produce
    /// Handed to the producer → the broker acknowledged every result of the batch.
    case ack
    /// Acknowledged → its offset committed (after the state snapshot that covers it).
    case commit
    /// Per checkpoint, not per event: writing the changed partitions' state snapshots.
    case snapshotWrite
    /// Per checkpoint, not per event: the commit request → the broker's answer.
    case commitRoundTrip

    /// Whether a sample is one event (the others are one checkpoint).
    public var isPerEvent: Bool { self != .snapshotWrite && self != .commitRoundTrip }
}

/// Latency histograms per ``StreamStage``, and the same observations as swift-metrics timers
/// (`recommender_stream_stage_duration{stage=…}`).
///
/// Constant memory: log-spaced buckets 2% wide from 1 µs to about 200 s, so a percentile is
/// exact to 2%; the mean is exact. Recording is O(1). Not thread-safe: the processor's thread
/// records.
public final class StageLatencies: @unchecked Sendable {
    private static let bucketCount = 1000
    private static let base = 1.02
    private static let smallest = 1e-6
    private var counts: [[Int]]
    private var sums: [Double]
    private var totals: [Int]
    private let timers: [Metrics.Timer]

    /// Empty histograms.
    public init() {
        counts = Array(repeating: Array(repeating: 0, count: Self.bucketCount), count: StreamStage.allCases.count)
        sums = Array(repeating: 0, count: StreamStage.allCases.count)
        totals = Array(repeating: 0, count: StreamStage.allCases.count)
        timers = StreamStage.allCases.map {
            Metrics.Timer(label: "recommender_stream_stage_duration", dimensions: [("stage", $0.rawValue)], preferredDisplayUnit: .seconds)
        }
    }

    private static func index(_ stage: StreamStage) -> Int { StreamStage.allCases.firstIndex(of: stage)! }

    /// Records `seconds` for `count` events (or checkpoints) at once. Negative durations (clock
    /// steps between processes) count as zero.
    public func record(_ stage: StreamStage, seconds: Double, count: Int = 1) {
        guard count > 0, seconds.isFinite else { return }
        let value = max(0, seconds)
        let stageIndex = Self.index(stage)
        let bucket = value <= Self.smallest ? 0 : min(Self.bucketCount - 1, Int(log(value / Self.smallest) / log(Self.base)) + 1)
        counts[stageIndex][bucket] += count
        sums[stageIndex] += value * Double(count)
        totals[stageIndex] += count
        let nanoseconds = Int64(value * 1e9)
        for _ in 0 ..< count { timers[stageIndex].recordNanoseconds(nanoseconds) }
    }

    /// One stage's figures, in milliseconds.
    public struct Summary: Sendable, Equatable {
        /// Samples recorded.
        public var count: Int
        /// Mean, exact.
        public var mean: Double
        /// Median, within 2%.
        public var p50: Double
        /// 99th percentile, within 2%.
        public var p99: Double
    }

    /// The figures of `stage` (nil when nothing was recorded). O(buckets).
    public func summary(_ stage: StreamStage) -> Summary? {
        let stageIndex = Self.index(stage)
        guard totals[stageIndex] > 0 else { return nil }
        func percentile(_ q: Double) -> Double {
            let rank = Int((q * Double(totals[stageIndex])).rounded(.up))
            var seen = 0
            for (bucket, count) in counts[stageIndex].enumerated() {
                seen += count
                if seen >= max(1, rank) {  // the bucket's geometric middle
                    return bucket == 0 ? 0 : Self.smallest * pow(Self.base, Double(bucket) - 0.5) * 1e3
                }
            }
            return .nan
        }
        return Summary(count: totals[stageIndex], mean: sums[stageIndex] / Double(totals[stageIndex]) * 1e3,
                       p50: percentile(0.5), p99: percentile(0.99))
    }

    /// `{"stage": {"count", "meanMs", "p50Ms", "p99Ms", "perEvent"}, …}` for the stages with samples.
    public func reportJSON() -> Data {
        var report: [String: Any] = [:]
        for stage in StreamStage.allCases {
            guard let summary = summary(stage) else { continue }
            report[stage.rawValue] = ["count": summary.count, "meanMs": summary.mean, "p50Ms": summary.p50, "p99Ms": summary.p99,
                                      "perEvent": stage.isPerEvent]
        }
        return (try? JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])) ?? Data()
    }
}

/// Seconds since 1970 now: the clock message create times use, so stage boundaries measured
/// here and in other processes on the machine can be subtracted.
@inline(__always) func wallClock() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}

/// When the processor's loop was working rather than polling, so an event's wait between its
/// creation and its poll can be split into ``StreamStage/busy`` (the loop was working on
/// earlier batches) and ``StreamStage/transport`` (the loop was polling: the time was spent in
/// the producer, the broker or the fetch).
///
/// Keeps the most recent intervals (at most 4,096) as cumulative busy time, so a query is a
/// binary search: O(log n); recording is O(1) amortized. An event created before the oldest
/// interval kept counts all intervals kept as busy.
public struct BusyTimeline: Sendable {
    private var starts: [Double] = []
    private var ends: [Double] = []
    private var cumulative: [Double] = []  // busy seconds up to each interval's end
    private var dropped = 0.0              // busy seconds of intervals no longer kept

    /// No work recorded yet.
    public init() {}

    /// Records that the loop worked from `start` to `end` (after every earlier interval).
    public mutating func worked(from start: Double, to end: Double) {
        guard end > start else { return }
        if starts.count >= 4096 {
            let half = starts.count / 2
            dropped = cumulative[half - 1]
            starts.removeFirst(half); ends.removeFirst(half); cumulative.removeFirst(half)
        }
        starts.append(start)
        ends.append(end)
        cumulative.append((cumulative.last ?? dropped) + (end - start))
    }

    /// Busy seconds up to `time`.
    private func busy(upTo time: Double) -> Double {
        // The first interval ending after `time`.
        var low = 0, high = ends.count
        while low < high {
            let middle = (low + high) / 2
            if ends[middle] <= time { low = middle + 1 } else { high = middle }
        }
        if low == ends.count { return cumulative.last ?? dropped }
        let before = low == 0 ? dropped : cumulative[low - 1]
        return before + max(0, time - starts[low])
    }

    /// Seconds the loop was working between `from` and `to`.
    public func busySeconds(from: Double, to: Double) -> Double {
        guard to > from else { return 0 }
        return max(0, busy(upTo: to) - busy(upTo: from))
    }
}
