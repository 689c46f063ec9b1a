import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// Persistent helper threads for ``Parallel``: parked on a condition variable between jobs
/// (after a short spin, so back-to-back searches find them awake), woken by one broadcast.
/// Dispatch's `concurrentPerform` wakes fresh workers for every call, which costs tens of
/// microseconds — as much as a whole single-query search of a cache-resident catalog.
///
/// One job runs at a time; a caller that finds the pool busy (another thread's job, or a job
/// started from inside a job) gets `false` and runs its work elsewhere, so nesting never
/// deadlocks.
final class WorkerPool: @unchecked Sendable {
    /// Helpers for every core of the process's affinity mask but the caller's.
    static let shared = WorkerPool(helpers: max(0, min(Kernels.availableCPUs(), 256) - 1))

    /// Helper threads (the caller works too).
    let helpers: Int
    /// Spins (atomic loads) a helper makes before parking after a job: about 50 µs.
    static let spinLimit = 20_000

    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let generation = Atomic<Int>(0)
    private let nextIndex = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    // Guarded by `lock`.
    private var body: ((Int) -> Void)? = nil
    private var count = 0
    private var wanted = 0
    private var running = 0

    private final class Start {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Starts `helpers` threads. They hold the pool for the life of the process (a pool is never
    /// freed).
    init(helpers: Int) {
        self.helpers = helpers
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(finished, nil)
        for helper in 0 ..< helpers {
            let start = Unmanaged.passRetained(Start { self.loop(helper) }).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { raw in
                Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, start)
            if status == 0 { pthread_detach(thread) } else { Unmanaged<Start>.fromOpaque(start).release() }
        }
    }

    private func loop(_ helper: Int) {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && spins < Self.spinLimit { spins += 1 }
            pthread_mutex_lock(lock)
            while generation.load(ordering: .relaxed) == seen { pthread_cond_wait(wake, lock) }
            seen = generation.load(ordering: .relaxed)
            // The job is the caller's non-escaping closure: drop this thread's reference before
            // reporting done, or the caller's `withoutActuallyEscaping` would see it escape.
            var job = helper < wanted ? body : nil
            let total = count
            pthread_mutex_unlock(lock)
            if job == nil { continue }
            while true {
                let index = nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue
                if index >= total { break }
                job!(index)
            }
            job = nil
            pthread_mutex_lock(lock)
            running -= 1
            if running == 0 { pthread_cond_signal(finished) }
            pthread_mutex_unlock(lock)
        }
    }

    /// Runs `body` for every index in `0 ..< count` on the calling thread and up to `workers − 1`
    /// helpers, each taking the next unclaimed index; returns when all are done. Returns false,
    /// running nothing, when the pool is busy.
    func run(_ count: Int, workers: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        let helping = min(helpers, max(0, workers - 1))
        withoutActuallyEscaping(body) { body in
            pthread_mutex_lock(lock)
            self.body = body
            self.count = count
            wanted = helping
            running = helping
            nextIndex.store(0, ordering: .relaxed)
            generation.wrappingAdd(1, ordering: .releasing)
            if helping > 0 { pthread_cond_broadcast(wake) }
            pthread_mutex_unlock(lock)
            while true {
                let index = nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue
                if index >= count { break }
                body(index)
            }
            pthread_mutex_lock(lock)
            while running > 0 { pthread_cond_wait(finished, lock) }
            self.body = nil
            pthread_mutex_unlock(lock)
        }
        return true
    }
}
