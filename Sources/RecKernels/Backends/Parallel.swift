import Dispatch

/// The one place RecKernels runs work on several threads.
enum Parallel {
    /// Runs `body(0 ..< count)` on up to `count` threads of the shared pool and returns when
    /// all have finished. `count == 1` runs on the calling thread.
    ///
    /// `body` need not be `Sendable`: callers hand each index a disjoint part of their buffers,
    /// which is what makes sharing the closure safe.
    static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 {
            if count == 1 { body(0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: count) { shared.value($0) }
        }
    }
}

/// Carries a value across a `@Sendable` boundary where the caller guarantees exclusive use.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
