import Foundation

/// One async request waiting for a worker: answered with the requests for the same pipeline
/// queued behind it, in one pipeline batch (``EngineOptions/gatheredRequests``).
struct QueuedRequest: Sendable {
    let pipeline: Pipeline
    let request: RecommendationRequest
    let continuation: CheckedContinuation<RecommendationResponse, any Error>
}

/// The engine's own scoring threads and their bounded queue.
///
/// Numeric work never runs on Swift's cooperative pool: async callers enqueue a job here and
/// suspend until a worker finishes it. When ``limit`` jobs are already waiting, a new one is
/// refused at once (``EngineError/overloaded(queued:limit:)``) instead of growing memory.
///
/// - A worker that finishes a job takes the next one without sleeping; a sleeping worker is
///   woken only when a job arrives and no worker is awake to take it, so a saturated pool pays
///   no wake-ups.
/// - Requests (``QueuedRequest``) for one pipeline that wait one behind the other are taken
///   together, up to ``maximumGathered``, oldest first, and answered by one call of `answer`:
///   a scan of a compressed item table then scores up to 4 queries per pass over the table.
///   A request never waits for others to arrive: a worker takes what is queued when it is free.
final class WorkerPool: @unchecked Sendable {  // every mutable field is guarded by `condition`
    typealias Job = @Sendable () -> Void
    private enum Entry {
        case job(Job)
        case request(QueuedRequest)
    }

    private let condition = NSCondition()
    private var entries: [Entry] = []
    private var head = 0
    private var stopping = false
    private var running = 0
    private var sleeping = 0
    /// Worker threads.
    let threads: Int
    /// Jobs that may wait for a worker.
    let limit: Int
    /// Requests answered together at most.
    let maximumGathered: Int
    private let answer: @Sendable ([QueuedRequest]) -> Void

    /// A pool of `threads` workers; `answer` answers a gathered list of requests (all for one
    /// pipeline) and resumes each one's continuation.
    /// Each worker thread runs `niceness` (0...19) below the creating process's priority.
    init(threads: Int, limit: Int, maximumGathered: Int = 1, niceness: Int = 0, answer: @escaping @Sendable ([QueuedRequest]) -> Void) {
        self.threads = max(1, threads)
        self.limit = max(1, limit)
        self.maximumGathered = max(1, maximumGathered)
        self.answer = answer
        for n in 0 ..< self.threads {
            let thread = Thread { [self] in
                // Named by the thread itself through Linux's /proc (Foundation's `Thread.name` misses a
                // thread that starts running before `start()` returns); at most 15 bytes, Linux's
                // limit, so profilers and /proc show which threads are the engine's.
                if let comm = fopen("/proc/thread-self/comm", "w") {
                    fputs("rec-engine-\(n)", comm)
                    fclose(comm)
                }
                if niceness > 0 {
                    // On Linux niceness is per thread: `who` 0 is the calling thread alone.
                    let own = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
                    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, min(19, own + Int32(min(niceness, 19))))
                }
                work()
            }
            thread.start()
        }
    }

    /// Queues `job`. - Throws: ``EngineError/overloaded(queued:limit:)`` when ``limit`` jobs wait.
    func submit(_ job: @escaping Job) throws { try enqueue(.job(job)) }

    /// Queues `request`. - Throws: ``EngineError/overloaded(queued:limit:)`` when ``limit`` jobs wait.
    func submit(_ request: QueuedRequest) throws { try enqueue(.request(request)) }

    private func enqueue(_ entry: Entry) throws {
        condition.lock()
        defer { condition.unlock() }
        let waiting = entries.count - head
        guard waiting < limit else { throw EngineError.overloaded(queued: waiting, limit: limit) }
        entries.append(entry)
        // Busy workers take it when they finish; wake a sleeping one only if none is awake for it.
        if sleeping > 0 && running + waiting >= threads - sleeping { condition.signal() }
    }

    /// Jobs waiting for a worker, and jobs running now.
    var depth: (waiting: Int, running: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (entries.count - head, running)
    }

    /// Lets the workers finish the queued jobs and exit.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        condition.lock()
        while true {
            guard head < entries.count else {
                if stopping { break }
                sleeping += 1
                condition.wait()
                sleeping -= 1
                continue
            }
            let taken = take()
            running += 1
            condition.unlock()
            switch taken {
            case let .job(job): job()
            case let .requests(requests): answer(requests)
            }
            condition.lock()
            running -= 1
        }
        condition.unlock()
    }

    private enum Taken {
        case job(Job)
        case requests([QueuedRequest])
    }

    /// The next job, or the next request with the requests for its pipeline queued right behind
    /// it (up to ``maximumGathered``). Called with the lock held and an entry waiting.
    private func take() -> Taken {
        let first = entries[head]
        head += 1
        let taken: Taken
        switch first {
        case let .job(job): taken = .job(job)
        case let .request(request):
            var requests = [request]
            while requests.count < maximumGathered, head < entries.count, case let .request(next) = entries[head],
                  next.pipeline.name == request.pipeline.name {
                requests.append(next)
                head += 1
            }
            taken = .requests(requests)
        }
        if head > 1024 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return taken
    }
}
