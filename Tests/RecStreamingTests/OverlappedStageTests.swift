import Foundation
import RecStreaming
import Synchronization
import Testing

@Suite("Overlapped scoring: batch N+1 is prepared while batch N is scored, and batches finish in order")
struct OverlappedStageTests {
    /// What happened, in order, on either thread.
    final class Journal: Sendable {
        private let entries = Mutex<[String]>([])
        func note(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
        func position(_ entry: String) -> Int? { all.firstIndex(of: entry) }
    }

    @Test("submit returns while the batch is still being scored; the next waits for it; order is kept")
    func overlapAndOrder() throws {
        let journal = Journal()
        let release = DispatchSemaphore(value: 0)
        let running = Atomic<Int>(0)
        let mostAtOnce = Atomic<Int>(0)
        let caller = Thread.current
        let stage = OverlappedStage<Int, Int>(name: "test-stage", work: { batch in
            #expect(Thread.current != caller)
            let now = running.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
            mostAtOnce.max(now, ordering: .sequentiallyConsistent)
            journal.note("scoring \(batch)")
            // Batch 1 is held until the caller has prepared batch 2 (or 5 s have passed: the
            // order below then shows that batch 2 was not prepared meanwhile).
            if batch == 1 { _ = release.wait(timeout: .now() + 5) }
            Thread.sleep(forTimeInterval: 0.01)
            journal.note("scored \(batch)")
            running.subtract(1, ordering: .sequentiallyConsistent)
            return batch
        }, deliver: { journal.note("delivered \($0)") })
        defer { stage.close() }
        try stage.submit(1)
        journal.note("prepared 2")  // the caller's work on the next batch
        release.signal()
        try stage.submit(2)
        journal.note("prepared 3")
        try stage.submit(3)
        try stage.drain()
        #expect(!stage.isBusy)
        let entries = journal.all
        // Batch 2 was ready before batch 1 finished scoring: the two overlapped.
        #expect(try #require(journal.position("prepared 2")) < #require(journal.position("scored 1")))
        // Batches were scored one at a time, in the order submitted.
        #expect(entries.filter { !$0.hasPrefix("prepared") }
            == ["scoring 1", "scored 1", "delivered 1", "scoring 2", "scored 2", "delivered 2", "scoring 3", "scored 3", "delivered 3"])
        #expect(mostAtOnce.load(ordering: .sequentiallyConsistent) == 1)
    }

    @Test("with two workers, two batches are scored at once and still delivered in the order submitted")
    func concurrentBatchesDeliverInOrder() throws {
        let journal = Journal()
        let secondScored = DispatchSemaphore(value: 0)
        let stage = OverlappedStage<Int, Int>(name: "test-stage", workers: 2, work: { batch in
            journal.note("scoring \(batch)")
            // Batch 1 finishes its work only after batch 2 finished its own (or after 5 s, when
            // the two did not run side by side).
            if batch == 1 { _ = secondScored.wait(timeout: .now() + 5) }
            if batch == 2 { secondScored.signal() }
            journal.note("scored \(batch)")
            return batch
        }, deliver: { journal.note("delivered \($0)") })
        defer { stage.close() }
        try stage.submit(1)
        try stage.submit(2)  // a second worker is free: no wait
        journal.note("prepared 3")
        try stage.submit(3)  // waits until batch 1 is delivered
        try stage.drain()
        // Batch 2 was scored while batch 1 was (its work ended first); delivery kept the
        // submission order.
        #expect(try #require(journal.position("scored 2")) < #require(journal.position("scored 1")))
        #expect(journal.all.filter { $0.hasPrefix("delivered") } == ["delivered 1", "delivered 2", "delivered 3"])
    }

    @Test("scoring overlaps by default for micro-batches up to 32 events, and either way when asked")
    func overlapDefault() {
        var options = StreamOptions()
        options.batchSize = 16
        #expect(options.overlapsScoring)
        options.batchSize = 256
        #expect(!options.overlapsScoring)
        options.overlapScoring = true
        #expect(options.overlapsScoring)
        options.batchSize = 16
        options.overlapScoring = false
        #expect(!options.overlapsScoring)
    }

    @Test("a batch that fails stops the stage: the next submit and drain throw it, and no later batch runs")
    func failureStops() throws {
        struct DeliveryFailed: Error, Equatable {}
        let journal = Journal()
        let stage = OverlappedStage<Int, Int>(name: "test-stage", work: { batch in
            journal.note("ran \(batch)")
            return batch
        }, deliver: { batch in
            if batch == 1 { throw DeliveryFailed() }
        })
        defer { stage.close() }
        try stage.submit(1)
        #expect(throws: DeliveryFailed.self) { try stage.submit(2) }
        #expect(throws: DeliveryFailed.self) { try stage.drain() }
        #expect(throws: DeliveryFailed.self) { try stage.submit(3) }
        #expect(journal.all == ["ran 1"])
    }

    @Test("finish returns only after every thread has stopped, even when a failure made drain return while a batch was still running")
    func finishWaitsForRunningWork() throws {
        struct ScoringFailed: Error {}
        let journal = Journal()
        let secondStarted = DispatchSemaphore(value: 0)
        let stage = OverlappedStage<Int, Int>(name: "test-stage", workers: 2, work: { batch in
            if batch == 1 {
                secondStarted.wait()  // batch 2 is running when batch 1 fails
                throw ScoringFailed()
            }
            secondStarted.signal()
            Thread.sleep(forTimeInterval: 1)
            journal.note("batch \(batch) finished")
            return batch
        }, deliver: { _ in })
        try stage.submit(1)
        try stage.submit(2)
        #expect(throws: ScoringFailed.self) { try stage.drain() }
        #expect(journal.all.isEmpty, "drain returns at the failure, before batch 2's work ends")
        stage.finish()
        #expect(journal.all == ["batch 2 finished"])
        stage.finish()  // idempotent
    }
}
