import Dispatch
import Foundation
import Synchronization

/// The engine's own scoring threads and their bounded queue.
///
/// Numeric work never runs on Swift's cooperative pool: async callers enqueue a job here and
/// suspend until a worker finishes it. When ``limit`` jobs are already waiting, a new one is
/// refused at once (``EngineError/overloaded(queued:limit:)``) instead of growing memory.
final class WorkerPool: Sendable {
    typealias Job = @Sendable () -> Void

    private struct State {
        var jobs: [Job] = []
        var head = 0
        var stopping = false
        var running = 0
        var waiting: Int { jobs.count - head }
    }
    private let state = Mutex(State())
    private let available = DispatchSemaphore(value: 0)
    /// Worker threads.
    let threads: Int
    /// Jobs that may wait for a worker.
    let limit: Int

    init(threads: Int, limit: Int) {
        self.threads = max(1, threads)
        self.limit = max(1, limit)
        for n in 0 ..< self.threads {
            let thread = Thread { [self] in work() }
            thread.name = "recommender-engine-\(n)"
            thread.start()
        }
    }

    /// Queues `job`. - Throws: ``EngineError/overloaded(queued:limit:)`` when ``limit`` jobs wait.
    func submit(_ job: @escaping Job) throws {
        try state.withLock { state in
            guard state.waiting < limit else { throw EngineError.overloaded(queued: state.waiting, limit: limit) }
            state.jobs.append(job)
        }
        available.signal()
    }

    /// Jobs waiting for a worker, and jobs running now.
    var depth: (waiting: Int, running: Int) { state.withLock { ($0.waiting, $0.running) } }

    /// Lets the workers finish the queued jobs and exit.
    func shutdown() {
        state.withLock { $0.stopping = true }
        for _ in 0 ..< threads { available.signal() }
    }

    private func work() {
        while true {
            available.wait()
            let job: Job? = state.withLock { state in
                guard state.head < state.jobs.count else { return nil }
                let job = state.jobs[state.head]
                state.head += 1
                if state.head > 1024 && state.head * 2 > state.jobs.count {
                    state.jobs.removeFirst(state.head)
                    state.head = 0
                }
                state.running += 1
                return job
            }
            guard let job else {
                if state.withLock({ $0.stopping }) { return }
                continue
            }
            job()
            state.withLock { $0.running -= 1 }
        }
    }
}
