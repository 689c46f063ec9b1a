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

    @Test("an event's wait counts as busy only where the loop was working, not where it was polling")
    func busyTimeline() {
        var timeline = BusyTimeline()
        // The loop worked 10–14 s and 20–21 s, and polled in between (many short polls, as
        // while acknowledgements are due: they do not make the wait busy).
        timeline.worked(from: 10, to: 14)
        for start in stride(from: 14.0, to: 20.0, by: 0.5) { timeline.worked(from: start + 0.25, to: start + 0.25) }
        timeline.worked(from: 20, to: 21)
        #expect(timeline.busySeconds(from: 12, to: 22) == 3)  // 12–14 and 20–21
        #expect(timeline.busySeconds(from: 14.5, to: 19.9) == 0)  // all in transport
        #expect(timeline.busySeconds(from: 9, to: 10.5) == 0.5)
        #expect(timeline.busySeconds(from: 20.5, to: 30) == 0.5)
        #expect(timeline.busySeconds(from: 25, to: 24) == 0)
        // Beyond the kept window (4,096 intervals) the oldest are folded into one total.
        var long = BusyTimeline()
        for n in 0 ..< 10_000 { long.worked(from: Double(n), to: Double(n) + 0.5) }
        #expect(long.busySeconds(from: 9_000, to: 9_010) == 5)
        #expect(long.busySeconds(from: 9_999.25, to: 10_001) == 0.25)
    }
}
