@testable import RecKernels
import CRecKernels
import Dispatch
import Foundation
import Synchronization
import Testing

/// Per-index records of one job, written by whichever thread runs the index.
private final class JobRecord: @unchecked Sendable {
    let count: Int
    let runs: UnsafeMutablePointer<Int>
    let threads: UnsafeMutablePointer<Int32>
    init(count: Int) {
        self.count = count
        runs = .allocate(capacity: count)
        runs.initialize(repeating: 0, count: count)
        threads = .allocate(capacity: count)
        threads.initialize(repeating: 0, count: count)
    }
    deinit {
        runs.deallocate()
        threads.deallocate()
    }
    func record(_ index: Int) {
        runs[index] += 1
        threads[index] = rk_thread_id()
    }
    var everyIndexOnce: Bool { (0 ..< count).allSatisfy { runs[$0] == 1 } }
    var distinctThreads: Int { Set((0 ..< count).map { threads[$0] }).count }
}

/// The persistent worker pool behind `Parallel.forEach`: every index exactly once, helpers
/// really working beside the caller, nothing of a job touched after the call returns.
@Suite("Fork-join pool (Parallel.forEach)")
struct ForkJoinPoolTests {
    @Test("many tiny jobs from several concurrent callers: every index runs exactly once, on several threads")
    func concurrentCallers() {
        let pool = ForkJoinPool(helpers: 2)
        let callers = 4, jobsPerCaller = 1500
        let pooled = Atomic<Int>(0), refused = Atomic<Int>(0), multiThreaded = Atomic<Int>(0), wrong = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for j in 0 ..< jobsPerCaller {
                let record = JobRecord(count: 1 + (j * 7 + caller) % 24)
                if pool.run(record.count, workers: 3, { record.record($0) }) {
                    pooled.add(1, ordering: .relaxed)
                } else {
                    refused.add(1, ordering: .relaxed)
                    for index in 0 ..< record.count { record.record(index) }
                }
                if !record.everyIndexOnce { wrong.add(1, ordering: .relaxed) }
                if record.distinctThreads > 1 { multiThreaded.add(1, ordering: .relaxed) }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0, "jobs where an index ran zero or several times")
        #expect(pooled.load(ordering: .relaxed) == pool.jobsRun)
        #expect(pooled.load(ordering: .relaxed) + refused.load(ordering: .relaxed) == callers * jobsPerCaller)
        #expect(pool.indicesRunByHelpers > 0, "helpers never ran an index")
        // Helpers working beside the caller within one job. Tiny jobs on a loaded 2-core machine
        // (other suites run at the same time) can each finish on one thread, so when none of
        // them showed it, longer jobs run until one does — and fail the test after 30 s.
        var sharedJob = multiThreaded.load(ordering: .relaxed) > 0
        let deadline = ContinuousClock.now + .seconds(30)
        while !sharedJob && ContinuousClock.now < deadline {
            let record = JobRecord(count: 32)
            let pooled = pool.run(record.count, workers: 3) { index in
                record.record(index)
                let end = ContinuousClock.now + .microseconds(200)
                while ContinuousClock.now < end {}
            }
            sharedJob = pooled && record.everyIndexOnce && record.distinctThreads > 1
        }
        #expect(sharedJob, "no job ran on more than one thread")
        #expect(!pool.holdsJob)
    }

    @Test("Parallel.forEach from several concurrent callers, nested too: every index exactly once")
    func parallelForEach() {
        let before = ForkJoinPool.shared.jobsRun
        let wrong = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for j in 0 ..< 400 {
                let record = JobRecord(count: 2 + (j + caller) % 30)
                let inner = (0 ..< record.count).map { _ in JobRecord(count: 3) }
                Parallel.forEach(record.count, threads: 2) { index in
                    record.record(index)
                    if j % 10 == 0 { Parallel.forEach(3, threads: 2) { inner[index].record($0) } }   // nested: pool busy
                }
                if !record.everyIndexOnce || (j % 10 == 0 && !inner.allSatisfy(\.everyIndexOnce)) { wrong.add(1, ordering: .relaxed) }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(ForkJoinPool.shared.jobsRun > before, "Parallel.forEach never used the pool")
    }

    /// Each of two indices waits for the other to start: the job can only finish if a helper
    /// runs one while the caller runs the other. Every other job starts after the helper has
    /// parked, so both the spinning and the parked wake-up are exercised.
    @Test("a helper runs beside the caller, awake or woken from parking")
    func helperRunsConcurrently() {
        let pool = ForkJoinPool(helpers: 1)
        #expect(pool.helpers == 1)
        for job in 0 ..< 40 {
            if job % 2 == 1 { usleep(3_000) }   // well past the helper's spin: it parks
            let arrived = Atomic<Int>(0), met = Atomic<Int>(0)
            let record = JobRecord(count: 2)
            let ran = pool.run(2, workers: 2) { index in
                record.record(index)
                arrived.add(1, ordering: .acquiringAndReleasing)
                let deadline = Date().addingTimeInterval(5)
                while arrived.load(ordering: .acquiring) < 2 && Date() < deadline {}
                if arrived.load(ordering: .acquiring) == 2 { met.add(1, ordering: .relaxed) }
            }
            #expect(ran)
            #expect(met.load(ordering: .relaxed) == 2, "job \(job): the two indices never ran at the same time")
            #expect(record.everyIndexOnce && record.distinctThreads == 2)
        }
    }

    /// Helper indices sleep, so a pool that returned before its helpers left the job would be
    /// caught: an index would run (or still be running) after `run` returned.
    @Test("nothing of a job is touched after run returns")
    func nothingAfterReturn() {
        let pool = ForkJoinPool(helpers: 2)
        final class Flags: @unchecked Sendable {
            let returned = Atomic<Bool>(false)
            let late = Atomic<Int>(0)
            let done = Atomic<Int>(0)
        }
        var late = 0
        for job in 0 ..< 300 {
            let flags = Flags()
            let count = 2 + job % 7
            let ran = pool.run(count, workers: 3) { index in
                if index % 2 == 1 { usleep(UInt32(50 * (index + job % 5))) }
                if flags.returned.load(ordering: .acquiring) { flags.late.add(1, ordering: .relaxed) }
                flags.done.add(1, ordering: .releasing)
            }
            #expect(ran)
            #expect(flags.done.load(ordering: .acquiring) == count, "job \(job): run returned with indices unfinished")
            #expect(!pool.holdsJob, "job \(job): the pool still holds the job after run returned")
            flags.returned.store(true, ordering: .releasing)
            late += flags.late.load(ordering: .relaxed)
        }
        usleep(20_000)
        #expect(late == 0)
        #expect(pool.indicesRunByHelpers > 0)
    }

    @Test("a job started from inside a job is refused, not deadlocked")
    func nestedRefused() {
        let pool = ForkJoinPool(helpers: 1)
        let nested = Atomic<Int>(0)
        let ran = pool.run(4, workers: 2) { _ in
            if !pool.run(2, workers: 2, { _ in }) { nested.add(1, ordering: .relaxed) }
        }
        #expect(ran)
        #expect(nested.load(ordering: .relaxed) == 4)
        #expect(pool.run(1, workers: 2) { _ in })
    }

    #if os(Linux)
    @Test("deinit stops and joins the helper threads")
    func deinitJoins() throws {
        var pool: ForkJoinPool? = ForkJoinPool(helpers: 3)
        let ids = try #require(pool?.helperThreadIDs)
        #expect(ids.count == 3)
        for id in ids { #expect(FileManager.default.fileExists(atPath: "/proc/self/task/\(id)")) }
        _ = pool?.run(10, workers: 4) { _ in }
        usleep(2_000)   // some helpers parked, some still spinning
        pool = nil
        for id in ids { #expect(!FileManager.default.fileExists(atPath: "/proc/self/task/\(id)"), "helper \(id) still alive") }
    }
    #endif
}
