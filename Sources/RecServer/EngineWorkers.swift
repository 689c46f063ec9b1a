import Dispatch
import Synchronization

/// Runs the engine's synchronous, CPU-bound calls on dedicated threads — never on Swift's
/// cooperative pool, which also runs the HTTP server's tasks — and hands results back through
/// a continuation.
///
/// At most `threads` calls run at once (one per core by default, so requests run side by side
/// instead of fighting for cores); further calls wait in a FIFO queue whose length is bounded:
/// beyond `maximumQueued` waiting calls, ``run(_:)`` throws 503 at once rather than letting
/// latency grow without limit.
/// What happens to a call submitted to ``EngineWorkers``.
private enum Admission { case start, queued, rejected }

final class EngineWorkers: Sendable {
    private struct State {
        var queue: [@Sendable () -> Void] = []
        var head = 0
        var running = 0
    }
    private let state = Mutex(State())
    private let threads: Int
    private let maximumQueued: Int
    private let dispatch = DispatchQueue(label: "recommender.engine", attributes: .concurrent)

    /// A pool running at most `threads` calls at once with at most `maximumQueued` waiting.
    init(threads: Int, maximumQueued: Int) {
        self.threads = max(1, threads)
        self.maximumQueued = max(0, maximumQueued)
    }

    /// Calls waiting for a thread now.
    var queued: Int { state.withLock { $0.queue.count - $0.head } }

    /// Calls running now.
    var running: Int { state.withLock { $0.running } }

    /// Runs `body` on a worker thread and returns its result.
    ///
    /// - Throws: ``APIError`` 503 when the queue is full; what `body` throws.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let job: @Sendable () -> Void = { continuation.resume(with: Result { try body() }) }
            let admission: Admission = state.withLock { state in
                if state.running < threads {
                    state.running += 1
                    return .start
                }
                guard state.queue.count - state.head < maximumQueued else { return .rejected }
                state.queue.append(job)
                return .queued
            }
            switch admission {
            case .start: launch(job)
            case .queued: break
            case .rejected:
                continuation.resume(throwing: APIError(.serviceUnavailable, "overloaded: \(maximumQueued) requests already queued; retry later"))
            }
        }
    }

    private func launch(_ job: @escaping @Sendable () -> Void) {
        dispatch.async { [self] in
            var next: (@Sendable () -> Void)? = job
            while let current = next {
                current()
                next = state.withLock { state in
                    guard state.head < state.queue.count else {
                        state.running -= 1
                        state.queue.removeAll(keepingCapacity: true)
                        state.head = 0
                        return nil
                    }
                    let job = state.queue[state.head]
                    state.head += 1
                    if state.head > 1024 && state.head * 2 > state.queue.count {
                        state.queue.removeFirst(state.head)
                        state.head = 0
                    }
                    return job
                }
            }
        }
    }
}
