import RecStreaming
import Testing

@Suite("Stage latency histograms of the stream processor")
struct StageLatencyTests {
    @Test("mean is exact and percentiles are within the 2% bucket width, for per-event and weighted samples")
    func percentiles() throws {
        let latencies = StageLatencies()
        // 1, 2, …, 1000 ms: p50 = 500 ms, p99 = 990 ms, mean 500.5 ms.
        for milliseconds in 1 ... 1000 { latencies.record(.scoring, seconds: Double(milliseconds) / 1000) }
        let scoring = try #require(latencies.summary(.scoring))
        #expect(scoring.count == 1000)
        #expect(abs(scoring.mean - 500.5) < 1e-6)
        #expect(abs(scoring.p50 - 500) / 500 < 0.02)
        #expect(abs(scoring.p99 - 990) / 990 < 0.02)
        // One sample standing for 99 events at 2 ms and one event at 300 ms: p50 2 ms, p99 2 ms,
        // mean (99 × 2 + 300) / 100 = 4.98 ms.
        latencies.record(.ack, seconds: 0.002, count: 99)
        latencies.record(.ack, seconds: 0.3)
        let ack = try #require(latencies.summary(.ack))
        #expect(ack.count == 100 && abs(ack.mean - 4.98) < 1e-9)
        #expect(abs(ack.p50 - 2) / 2 < 0.02 && abs(ack.p99 - 2) / 2 < 0.02)
        #expect(latencies.summary(.commit) == nil)
        let report = String(decoding: latencies.reportJSON(), as: UTF8.self)
        #expect(report.contains("\"scoring\"") && report.contains("\"ack\"") && !report.contains("\"commit\""))
    }
}
