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
    /// Engine calls waiting for a worker beyond which requests are refused with 503.
    public var maximumQueuedRequests: Int = 1024
    /// Threads running engine calls (the numeric work); default: one per core.
    public var workerThreads: Int = ServerConfiguration.cores
    /// Threads one request's kernel calls may use: 1 by default, so concurrent requests run side
    /// by side on the worker threads instead of fighting over cores.
    public var threadsPerRequest: Int = 1
    /// Feedback events kept per user (oldest dropped first).
    public var recentEventsPerUser: Int = 50
    /// Users whose feedback is kept (the least recently updated evicted first).
    public var recentEventsUsers: Int = 100_000
    /// The bearer token model management requires; nil disables those routes (403).
    /// Never logged.
    public var adminToken: String?

    /// The defaults.
    public init() {}

    /// Online processors.
    public static var cores: Int {
        #if canImport(Glibc)
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        2
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#endif
