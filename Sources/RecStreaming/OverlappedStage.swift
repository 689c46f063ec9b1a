import Foundation

/// The second stage of a two-stage pipeline, on threads of its own: while jobs run here, the
/// submitting thread prepares the next one.
///
/// Each job's `work` runs on one of `workers` threads — up to `workers` jobs at once — and its
/// output is then handed to `deliver`, one at a time and in the order the jobs were submitted,
/// whatever order their work finished in. Bounded: ``submit(_:)`` waits while `workers` jobs are
/// in flight (submitted and not yet delivered), so at most `workers` jobs are in flight while the
/// caller prepares the next. A job that throws stops the stage: its error is thrown by the next
/// ``submit(_:)`` or ``drain()`` and by every later one, and nothing later is delivered.
/// Submitting is O(1) apart from that wait.
///
/// The stream processor scores micro-batches here and produces their results in `deliver`
/// while its polling thread consumes, decodes and applies the next batch to user state, so that
/// serial work no longer leaves a core idle.
public final class OverlappedStage<Job, Output>: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by condition:
    private var queued: [(sequence: Int, job: Job)] = []
    private var submitted = 0  // jobs submitted so far; a job's sequence number is the count before it
    private var delivered = 0  // jobs delivered (or skipped after a failure), in sequence order
    private var failure: (any Error)?
    private var closed = false
    private var runningThreads: Int
    private let workers: Int
    private let work: (Job) throws -> Output
    private let deliver: (Output) throws -> Void

    /// A stage running `work` on `workers` threads (at least 1) named `name` (its first 15 bytes,
    /// shown by `top -H` and `perf`) and `deliver` on them in submission order. The threads keep
    /// the stage alive until ``close()``.
    public init(name: String, workers: Int = 1, work: @escaping (Job) throws -> Output, deliver: @escaping (Output) throws -> Void) {
        self.workers = max(1, workers)
        runningThreads = self.workers
        self.work = work
        self.deliver = deliver
        for _ in 0 ..< self.workers {
            let thread = Thread { [self] in
                // Named through Linux's /proc, as the engine's workers are (Foundation's `Thread.name`
                // misses a thread that starts before `start()` returns); at most 15 bytes.
                if let comm = fopen("/proc/thread-self/comm", "w") {
                    fputs(String(name.utf8.prefix(15))!, comm)
                    fclose(comm)
                }
                loop()
            }
            thread.start()
        }
    }

    private func loop() {
        condition.lock()
        while true {
            while queued.isEmpty && !closed { condition.wait() }
            guard !queued.isEmpty else { break }  // closed and nothing left
            let (sequence, job) = queued.removeFirst()
            condition.unlock()
            var output: Output?
            var thrown: (any Error)?
            do { output = try work(job) } catch { thrown = error }
            condition.lock()
            // Deliver in submission order: wait for the jobs before this one.
            while delivered != sequence && failure == nil { condition.wait() }
            if failure == nil, thrown == nil, let output {
                condition.unlock()
                do { try deliver(output) } catch { thrown = error }
                condition.lock()
            }
            if failure == nil, let thrown { failure = thrown }
            delivered = max(delivered, sequence + 1)
            condition.broadcast()
        }
        runningThreads -= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Hands `job` to the stage's threads, after waiting while `workers` jobs are in flight.
    ///
    /// - Throws: the error a job before it threw (then `job` is not run).
    public func submit(_ job: Job) throws {
        condition.lock()
        defer { condition.unlock() }
        while submitted - delivered >= workers && failure == nil { condition.wait() }
        if let failure { throw failure }
        precondition(!closed, "OverlappedStage: submit after close")
        queued.append((submitted, job))
        submitted += 1
        condition.broadcast()
    }

    /// Waits until every job submitted has been delivered.
    ///
    /// - Throws: the error a job threw.
    public func drain() throws {
        condition.lock()
        defer { condition.unlock() }
        while delivered < submitted && failure == nil { condition.wait() }
        if let failure { throw failure }
    }

    /// Whether a job was submitted and not yet delivered.
    public var isBusy: Bool { condition.withLock { delivered < submitted } }

    /// Lets the jobs submitted finish, then ends the threads. Idempotent.
    public func close() {
        condition.withLock {
            closed = true
            condition.broadcast()
        }
    }

    /// ``close()``, then waits until every thread has ended — also after a failure, when
    /// ``drain()`` returns at once while other jobs may still be running `work`. After it nothing
    /// of the stage runs, so what `work` and `deliver` use may be released. Idempotent.
    public func finish() {
        close()
        condition.lock()
        while runningThreads > 0 { condition.wait() }
        condition.unlock()
    }
}
