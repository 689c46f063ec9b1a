import Synchronization
internal import CRecKernels
#if canImport(Glibc)
internal import Glibc
#endif

/// Persistent helper threads for ``Parallel``: after a job each helper spins for a bounded
/// ``spinNanoseconds`` (so back-to-back searches find it awake) and then parks on a condition
/// variable until the next job's broadcast. Dispatch's `concurrentPerform` wakes a fresh worker
/// on every call, which costs tens of microseconds — as much as a whole single-query search of a
/// cache-resident catalog.
///
/// Guarantees of ``run(_:workers:_:)``:
/// - The caller works too, from the first index; helpers join as they wake and claim the next
///   unclaimed index, so a late helper never delays a job the caller can finish alone.
/// - When `run` returns, every index has run exactly once, no helper is inside the job, and the
///   pool holds no pointer to it: the job's closure (and whatever it points into) is never touched
///   after the call.
/// - One job runs at a time; a caller that finds the pool busy (another thread's job, or a job
///   started from inside a job) gets `false` and runs its work elsewhere, so nesting never
///   deadlocks.
///
/// Deinitializing a pool stops and joins its threads (the shared pool lives for the process).
final class ForkJoinPool: @unchecked Sendable {
    /// Helpers for every core of the process's affinity mask but the caller's.
    static let shared = ForkJoinPool(helpers: max(0, min(Kernels.availableCPUs(), 256) - 1))

    /// How long a helper spins after a job, and the caller on helpers still finishing theirs,
    /// before parking on a condition variable: long enough to bridge back-to-back calls and a
    /// helper's last few items, short enough not to hold a core that other work could use.
    static let spinNanoseconds = 50_000

    /// Helper threads (the caller works too).
    let helpers: Int
    private let state: State
    private var threads: [pthread_t] = []

    /// What the helpers share with callers. The helpers retain this, not the pool, so that the
    /// pool's deinit can stop them.
    private final class State: @unchecked Sendable {
        let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        /// Signalled (broadcast) when a job is posted or the pool stops.
        let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        /// Signalled when the last helper inside a job leaves it.
        let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        /// Bumped (under `lock`) for every job posted and for stop; helpers spin on it.
        let generation = Atomic<Int>(0)
        /// The next unclaimed index of the current job.
        let nextIndex = Atomic<Int>(0)
        /// Helpers inside the current job (changed under `lock`; the caller spins on it).
        let active = Atomic<Int>(0)
        /// Whether a job owns the pool.
        let busy = Atomic<Bool>(false)
        /// Jobs run and indices run by helpers, for tests and diagnostics.
        let jobs = Atomic<Int>(0)
        let helperIndices = Atomic<Int>(0)
        // Guarded by `lock`.
        /// The current job while helpers may still join it; nil otherwise.
        var job: UnsafePointer<Job>? = nil
        /// Helpers that may still join the current job.
        var seats = 0
        /// Helpers parked on `wake`: a post with none parked skips the system call.
        var parked = 0
        var stopping = false
        /// Kernel thread ids of the helpers that have started.
        var threadIDs: [Int32] = []

        init() {
            pthread_mutex_init(lock, nil)
            pthread_cond_init(wake, nil)
            pthread_cond_init(finished, nil)
        }

        deinit {
            pthread_cond_destroy(finished)
            pthread_cond_destroy(wake)
            pthread_mutex_destroy(lock)
            finished.deallocate()
            wake.deallocate()
            lock.deallocate()
        }
    }

    /// One job: lives on the caller's stack for the duration of ``run(_:workers:_:)``.
    private struct Job {
        let body: (Int) -> Void
        let count: Int
    }

    /// Starts `helpers` threads (fewer if the system refuses some).
    init(helpers: Int) {
        state = State()
        for _ in 0 ..< max(0, helpers) {
            let state = self.state
            let start = Unmanaged.passRetained(Box { ForkJoinPool.helperLoop(state) }).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { raw in
                Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, start)
            if status == 0 { threads.append(thread) } else { Unmanaged<Box>.fromOpaque(start).release() }
        }
        self.helpers = threads.count
        // Wait until every helper has registered, so `helperThreadIDs` is complete.
        pthread_mutex_lock(state.lock)
        while state.threadIDs.count < threads.count { pthread_cond_wait(state.finished, state.lock) }
        helperThreadIDs = state.threadIDs
        pthread_mutex_unlock(state.lock)
    }

    /// The helpers' kernel thread ids (Linux), e.g. to check they are gone after deinit.
    private(set) var helperThreadIDs: [Int32] = []

    deinit {
        pthread_mutex_lock(state.lock)
        state.stopping = true
        state.generation.wrappingAdd(1, ordering: .releasing)
        pthread_cond_broadcast(state.wake)
        pthread_mutex_unlock(state.lock)
        for thread in threads { pthread_join(thread, nil) }
    }

    private final class Box {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Jobs this pool has run.
    var jobsRun: Int { state.jobs.load(ordering: .relaxed) }
    /// Indices of those jobs that helper threads (not the callers) ran.
    var indicesRunByHelpers: Int { state.helperIndices.load(ordering: .relaxed) }
    /// Whether the pool holds a job pointer or has a helper inside a job (false whenever no
    /// ``run(_:workers:_:)`` is in progress).
    var holdsJob: Bool {
        pthread_mutex_lock(state.lock)
        defer { pthread_mutex_unlock(state.lock) }
        return state.job != nil || state.active.load(ordering: .relaxed) != 0
    }

    /// Runs `body` for every index in `0 ..< count` on the calling thread and up to `workers − 1`
    /// helpers, each taking the next unclaimed index; returns when all are done and no helper is
    /// inside the job. Returns false, running nothing, when the pool is busy.
    ///
    /// `body` need not be `Sendable`: callers hand each index a disjoint part of their buffers.
    func run(_ count: Int, workers: Int, _ body: (Int) -> Void) -> Bool {
        guard state.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { state.busy.store(false, ordering: .releasing) }
        let seats = min(helpers, max(0, workers - 1), max(0, count - 1))
        withoutActuallyEscaping(body) { body in
            withUnsafePointer(to: Job(body: body, count: count)) { job in
                if seats > 0 {
                    pthread_mutex_lock(state.lock)
                    state.job = job
                    state.seats = seats
                    state.nextIndex.store(0, ordering: .relaxed)
                    state.generation.wrappingAdd(1, ordering: .releasing)
                    if state.parked > 0 { pthread_cond_broadcast(state.wake) }
                    pthread_mutex_unlock(state.lock)
                } else {
                    state.nextIndex.store(0, ordering: .relaxed)
                }
                _ = Self.drain(job, state)
                if seats > 0 {
                    // Close the job: no helper joins from here on, and it is unpublished.
                    pthread_mutex_lock(state.lock)
                    state.job = nil
                    state.seats = 0
                    pthread_mutex_unlock(state.lock)
                    // Wait for helpers still inside it: spin briefly, then park.
                    let deadline = Self.now() + Self.spinNanoseconds
                    var spins = 0
                    while state.active.load(ordering: .acquiring) > 0 {
                        rk_spin_pause()
                        spins += 1
                        if spins & 63 == 0 && Self.now() > deadline { break }
                    }
                    pthread_mutex_lock(state.lock)
                    while state.active.load(ordering: .acquiring) > 0 { pthread_cond_wait(state.finished, state.lock) }
                    pthread_mutex_unlock(state.lock)
                }
            }
        }
        state.jobs.wrappingAdd(1, ordering: .relaxed)
        return true
    }

    /// Claims and runs indices of `job` until none is left; returns how many this thread ran.
    /// Not inlined, so every retain of the closure's context made here is released before it
    /// returns (a helper reports leaving the job only after that).
    @inline(never)
    private static func drain(_ job: UnsafePointer<Job>, _ state: State) -> Int {
        let count = job.pointee.count
        var ran = 0
        while true {
            let index = state.nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue
            if index >= count { break }
            job.pointee.body(index)
            ran += 1
        }
        return ran
    }

    private static func helperLoop(_ state: State) {
        pthread_mutex_lock(state.lock)
        state.threadIDs.append(rk_thread_id())
        pthread_cond_broadcast(state.finished)
        var seen = state.generation.load(ordering: .relaxed)
        pthread_mutex_unlock(state.lock)
        while true {
            // Spin a while for the next job, then park.
            let deadline = now() + spinNanoseconds
            var spins = 0
            while state.generation.load(ordering: .acquiring) == seen {
                rk_spin_pause()
                spins += 1
                if spins & 63 == 0 && now() > deadline { break }
            }
            pthread_mutex_lock(state.lock)
            while state.generation.load(ordering: .relaxed) == seen {
                state.parked += 1
                pthread_cond_wait(state.wake, state.lock)
                state.parked -= 1
            }
            if state.stopping {
                pthread_mutex_unlock(state.lock)
                return
            }
            seen = state.generation.load(ordering: .relaxed)
            guard let job = state.job, state.seats > 0 else {
                // Closed before this helper woke: the caller finished it alone.
                pthread_mutex_unlock(state.lock)
                continue
            }
            state.seats -= 1
            state.active.wrappingAdd(1, ordering: .relaxed)
            pthread_mutex_unlock(state.lock)
            let ran = drain(job, state)
            state.helperIndices.wrappingAdd(ran, ordering: .relaxed)
            pthread_mutex_lock(state.lock)
            if state.active.wrappingSubtract(1, ordering: .releasing).newValue == 0 { pthread_cond_signal(state.finished) }
            pthread_mutex_unlock(state.lock)
        }
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    private static func now() -> Int {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return time.tv_sec * 1_000_000_000 + time.tv_nsec
    }
}
