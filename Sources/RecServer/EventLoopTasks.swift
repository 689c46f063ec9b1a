import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

extension RecommenderServer {
    /// Sets how many event loops the server has, and makes them run Swift concurrency's tasks too.
    ///
    /// Hummingbird reads requests and writes responses on SwiftNIO's shared event loops
    /// (`MultiThreadedEventLoopGroup.singleton`), while route handlers are async functions. By
    /// default those run on Swift's cooperative pool, a separate set of threads, so each request
    /// crosses threads twice (event loop → handler → event loop), and each crossing may wake a
    /// sleeping thread (a futex call). After this call the handlers' tasks run on the event loop
    /// that read the request, and an engine worker resuming a request hands it back to that
    /// loop directly. On a small machine this leaves more of the cores to the engine's workers.
    ///
    /// Route handlers never block (numeric work runs on the engine's own threads, store
    /// changes on the service's administration queue), so running them on the event loops is safe.
    /// Each connection's task additionally prefers its own loop as task executor
    /// (``ConnectionOnEventLoop``, ``ServerConfiguration/handlersOnConnectionEventLoop``), so a
    /// handler resuming there continues in place instead of being enqueued a second time.
    ///
    /// - Parameters:
    ///   - eventLoops: the event loop threads (the singleton's size).
    ///   - runningTasks: false leaves tasks on the cooperative pool (only the count is set).
    /// - Returns: whether tasks now run on the event loops. It is false when not asked, or when
    ///   the Swift runtime offers no hook for it; the server then works as before.
    /// - Precondition: called once, on the main thread, before any task has been created and before
    ///   anything used SwiftNIO's singletons (tasks created earlier keep running on the cooperative pool).
    /// - Complexity: O(1).
    public static func setUpEventLoops(_ eventLoops: Int, runningTasks: Bool) -> Bool {
        NIOSingletons.groupLoopCountSuggestion = max(1, eventLoops)
        guard runningTasks else { return false }
        return NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}

/// Runs Swift concurrency's jobs on one event loop as a *task executor* (SE-0417).
///
/// SwiftNIO's global-executor hook runs every job on the event loop as if the loop were an
/// actor (a serial executor). A nonisolated async function that resumes there — after every
/// `await` of an engine result, of a request part or of a write — asks for the generic
/// executor, finds "an actor", and is enqueued on the loop a second time before it can go on
/// (a `swift_task_switch` job: about 8 % of the loop's time under load). Jobs run on a task
/// executor instead run *as* the generic executor, so those hops continue in place.
///
/// A task that prefers this executor (`withTaskExecutorPreference`), and the child tasks it
/// creates, run on ``eventLoop``; jobs enqueued from another thread (an engine worker resuming
/// a request) cost one `execute` on the loop, and the resumes of one gathered batch share the
/// loop's wake-up (SwiftNIO wakes a loop at most once per tick).
final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    /// The loop every job runs on.
    let eventLoop: any EventLoop
    private let enqueued = Atomic<Int>(0)

    /// An executor running its jobs on `eventLoop`.
    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    /// Jobs enqueued so far (each is one run on the loop). - Complexity: O(1).
    var jobs: Int { enqueued.load(ordering: .relaxed) }

    func enqueue(_ job: consuming ExecutorJob) {
        enqueued.add(1, ordering: .relaxed)
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// One ``EventLoopTaskExecutor`` per event loop, made on first use.
final class EventLoopTaskExecutors: Sendable {
    private let executors = Mutex<[ObjectIdentifier: EventLoopTaskExecutor]>([:])

    /// The executor of `eventLoop`. - Complexity: O(1) amortized (once per connection).
    func executor(for eventLoop: any EventLoop) -> EventLoopTaskExecutor {
        executors.withLock { executors in
            if let found = executors[ObjectIdentifier(eventLoop)] { return found }
            let made = EventLoopTaskExecutor(eventLoop)
            executors[ObjectIdentifier(eventLoop)] = made
            return made
        }
    }

    /// Jobs run by all the executors so far.
    var jobs: Int { executors.withLock { $0.values.reduce(0) { $0 + $1.jobs } } }
}

/// Hummingbird's HTTP/1 connection handling, with each connection's task (and so its route
/// handlers) preferring the connection's own event loop as task executor
/// (``EventLoopTaskExecutor``): reading, handling and writing a request never leave that loop's
/// thread, and resuming after an `await` does not enqueue the task a second time.
struct ConnectionOnEventLoop<Base: ServerChildChannel>: ServerChildChannel {
    let base: Base
    let executors: EventLoopTaskExecutors

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Base.Value> { base.setup(channel: channel, logger: logger) }

    func handle(value: Base.Value, logger: Logger) async {
        await withTaskExecutorPreference(executors.executor(for: value.channel.eventLoop)) {
            await base.handle(value: value, logger: logger)
        }
    }
}
