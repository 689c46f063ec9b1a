import Foundation

/// The second stage of a two-stage pipeline, on its own thread and one job deep: while a job
/// runs here, the submitting thread prepares the next one.
///
/// Jobs run one at a time, in the order submitted. Bounded: at most one job runs (or waits to
/// start) while the caller holds the next; ``submit(_:)`` first waits for the one before. A job
/// that throws stops the stage: its error is thrown by the next ``submit(_:)`` or ``drain()`` and
/// by every later one, and no later job runs. Submitting is O(1) apart from that wait.
///
/// The stream processor scores and produces micro-batch N here while its polling thread
/// consumes, decodes and applies batch N+1 to user state, so that serial work no longer leaves a
/// core idle.
public final class OverlappedStage<Job>: @unchecked Sendable {
    private let condition = NSCondition()
    private var job: Job?  // submitted and not finished (guarded by condition)
    private var failure: (any Error)?
    private var closed = false
    private let body: (Job) throws -> Void

    /// A stage running `body` on a thread named `name` (its first 15 bytes, shown by `top -H` and `perf`). The thread
    /// keeps the stage alive until ``close()``.
    public init(name: String, body: @escaping (Job) throws -> Void) {
        self.body = body
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

    private func loop() {
        condition.lock()
        while true {
            while job == nil && !closed { condition.wait() }
            guard let next = job else { break }  // closed and nothing left
            condition.unlock()
            var thrown: (any Error)?
            do { try body(next) } catch { thrown = error }
            condition.lock()
            job = nil
            if failure == nil, let thrown { failure = thrown }
            condition.broadcast()
        }
        condition.unlock()
    }

    /// Hands `job` to the stage's thread, after waiting for the job before it to finish.
    ///
    /// - Throws: the error a job before it threw (then `job` is not run).
    public func submit(_ job: Job) throws {
        condition.lock()
        defer { condition.unlock() }
        while self.job != nil && failure == nil { condition.wait() }
        if let failure { throw failure }
        precondition(!closed, "OverlappedStage: submit after close")
        self.job = job
        condition.broadcast()
    }

    /// Waits until the job submitted last has finished.
    ///
    /// - Throws: the error a job threw.
    public func drain() throws {
        condition.lock()
        defer { condition.unlock() }
        while job != nil && failure == nil { condition.wait() }
        if let failure { throw failure }
    }

    /// Whether a job was submitted and has not finished.
    public var isBusy: Bool { condition.withLock { job != nil } }

    /// Lets the running job finish, then ends the thread. Idempotent.
    public func close() {
        condition.withLock {
            closed = true
            condition.broadcast()
        }
    }
}
