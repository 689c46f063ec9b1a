import RecEngine

/// What the server listens on and the limits it enforces on every request.
public struct ServerConfiguration: Sendable {
    /// Address to bind; 127.0.0.1 by default, so nothing outside the machine reaches it unless asked.
    public var host: String = "127.0.0.1"
    /// Port; 0 picks a free one (the bound port is reported through `onListening`).
    public var port: Int = 8080
    /// Largest JSON body accepted, in bytes (413 beyond it).
    public var maximumBodyBytes: Int = 1 << 20
    /// Largest model file or training data upload accepted, in bytes.
    public var maximumUploadBytes: Int = 512 << 20
    /// Largest k a request may ask for (it is also bounded by the catalog's size).
    public var maximumK: Int = 100
    /// Most items or events in one anonymous session, exclusion list or feedback call.
    public var maximumSessionItems: Int = 200
    /// Most requests in one batch body.
    public var maximumBatchRequests: Int = 100
    /// The engine's options: its worker threads, its bounded queue (beyond it requests get 503
    /// with `Retry-After`), how many queued requests it answers together
    /// (``EngineOptions/gatheredRequests``), and the bounds of users' recent feedback. The
    /// server builds its engine with them (``RecommenderService/load(store:settings:)``).
    public var engine = EngineOptions()
    /// Whether each connection's task, and so its route handlers, runs on the connection's
    /// event loop as its task executor (``EventLoopTaskExecutor``): no thread crossing between
    /// reading a request, handling it and writing the answer, and no second enqueue of a handler
    /// each time it resumes after an `await`. True by default; false leaves the tasks to Swift's
    /// global executor (`recommender serve --handlers-on-global-executor`, for comparison).
    public var handlersOnConnectionEventLoop = true
    /// The bearer token model management requires; nil disables those routes (403).
    /// Never logged.
    public var adminToken: String?

    /// The defaults.
    public init() {}
}
