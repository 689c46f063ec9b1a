import Dispatch
import Synchronization

/// The one place RecKernels runs work on several threads.
package enum Parallel {
    /// Runs `body(0 ..< count)` on up to `count` threads (see ``forEach(_:threads:_:)``) and returns when
    /// all have finished. `count == 1` runs on the calling thread.
    ///
    /// `body` need not be `Sendable`: callers hand each index a disjoint part of their buffers,
    /// which is what makes sharing the closure safe.
    package static func forEach(_ count: Int, _ body: (Int) -> Void) {
        forEach(count, threads: count, body)
    }

    /// Runs `body` for every index in `0 ..< count` on at most `threads` threads, each taking
    /// the next unclaimed index as it frees up: cut skewed work into more pieces than threads
    /// and the load balances itself.
    ///
    /// The calling thread works, helped by the persistent ``ForkJoinPool/shared`` threads (awake
    /// for back-to-back calls, so a small job pays no thread wake-up); when the pool is taken by
    /// another caller or by the job this call is nested in, Dispatch's workers help instead.
    package static func forEach(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        let workers = min(count, max(1, threads))
        if workers <= 1 {
            for index in 0 ..< count { body(index) }
            return
        }
        if ForkJoinPool.shared.run(count, workers: workers, body) { return }
        let next = Atomic<Int>(0)
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            withUnsafePointer(to: next) { counter in
                let claims = UncheckedSendable(counter)
                DispatchQueue.concurrentPerform(iterations: workers) { _ in
                    while true {
                        let index = claims.value.pointee.wrappingAdd(1, ordering: .relaxed).oldValue
                        if index >= count { break }
                        shared.value(index)
                    }
                }
            }
        }
    }
}

/// Carries a value across a `@Sendable` boundary where the caller guarantees exclusive use.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
