import NIOCore
import NIOPosix

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
