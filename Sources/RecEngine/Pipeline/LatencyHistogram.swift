import Synchronization

/// A latency histogram with logarithmic buckets (8 per factor of two, from 1 µs to about 70 s):
/// constant memory, O(1) to record, percentiles within about 9% of the true value.
public struct LatencyHistogram: Sendable, Equatable {
    static let bucketsPerDoubling = 8.0
    static let bucketCount = 26 * 8
    private(set) var counts = [Int](repeating: 0, count: LatencyHistogram.bucketCount)
    public private(set) var count = 0
    public private(set) var totalMicroseconds = 0.0

    /// An empty histogram.
    public init() {}

    /// Adds one observation of `microseconds`; values at or below 1 µs go to the first bucket,
    /// values beyond the last bucket (about 70 s) to the last. - Complexity: O(1).
    public mutating func record(microseconds: Double) {
        let bucket = microseconds <= 1 ? 0 : min(Self.bucketCount - 1, Int((log2(microseconds) * Self.bucketsPerDoubling).rounded(.up)))
        counts[bucket] += 1
        count += 1
        totalMicroseconds += microseconds
    }

    /// Adds every observation of `other`. - Complexity: O(buckets).
    public mutating func merge(_ other: LatencyHistogram) {
        for bucket in counts.indices { counts[bucket] += other.counts[bucket] }
        count += other.count
        totalMicroseconds += other.totalMicroseconds
    }

    /// The upper bound of the bucket holding the p-th percentile (0…100); 0 when empty.
    public func percentile(_ p: Double) -> Double {
        guard count > 0 else { return 0 }
        let rank = max(1, Int((p / 100 * Double(count)).rounded(.up)))
        var seen = 0
        for (bucket, n) in counts.enumerated() {
            seen += n
            if seen >= rank { return exp2(Double(bucket) / Self.bucketsPerDoubling) }
        }
        return exp2(Double(Self.bucketCount - 1) / Self.bucketsPerDoubling)
    }

    /// The exact mean of the recorded values, in microseconds; 0 when empty.
    public var mean: Double { count == 0 ? 0 : totalMicroseconds / Double(count) }
}

/// Per-stage latency histograms of a pipeline, shared by all its requests.
public final class StageLatencies: Sendable {
    private let histograms = Mutex<[String: LatencyHistogram]>([:])

    /// Histograms with nothing recorded.
    public init() {}

    func record(_ timings: [String: Double]) {
        histograms.withLock { all in
            for (stage, microseconds) in timings { all[stage, default: LatencyHistogram()].record(microseconds: microseconds) }
        }
    }

    /// Stage name → histogram, as of now.
    public var current: [String: LatencyHistogram] { histograms.withLock { $0 } }

    /// The histograms in Prometheus' text exposition format, as a summary per stage
    /// (`recommender_stage_latency_microseconds{pipeline, stage, quantile}` for p50, p90 and
    /// p99, with `_sum` and `_count`), for a metrics endpoint or a scrape file.
    public func prometheusText(pipeline: String) -> String {
        var lines = ["# HELP recommender_stage_latency_microseconds Latency of each pipeline stage.",
                     "# TYPE recommender_stage_latency_microseconds summary"]
        for (stage, histogram) in current.sorted(by: { $0.key < $1.key }) {
            let labels = "pipeline=\"\(pipeline)\",stage=\"\(stage)\""
            for quantile in [0.5, 0.9, 0.99] {
                lines.append("recommender_stage_latency_microseconds{\(labels),quantile=\"\(quantile)\"} \(histogram.percentile(quantile * 100))")
            }
            lines.append("recommender_stage_latency_microseconds_sum{\(labels)} \(histogram.totalMicroseconds)")
            lines.append("recommender_stage_latency_microseconds_count{\(labels)} \(histogram.count)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

#if canImport(Glibc)
import Glibc
#endif
