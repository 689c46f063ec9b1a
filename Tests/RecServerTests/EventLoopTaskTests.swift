import Dispatch
import Hummingbird
import Logging
import HummingbirdTesting
import NIOCore
import NIOPosix
@testable import RecServer
import Testing

/// Awaits one resume from another thread (as an engine worker answers a request), then reports
/// whether it continued on `loop`'s thread. Nonisolated: after the await it asks for the
/// generic executor, which is what costs a second enqueue when jobs run as a serial executor.
private func resumedFromAnotherThread(_ loop: any EventLoop) async -> Bool {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        DispatchQueue.global().async { continuation.resume() }
    }
    return loop.inEventLoop
}

@Suite("Route handlers on the connection's event loop as task executor")
struct EventLoopTaskTests {
    @Test("a task preferring an event loop's executor continues on that loop after each resume from another thread, one job per resume")
    func oneJobPerResume() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let executor = EventLoopTaskExecutor(group.next())
        let resumes = 200
        let (onLoop, jobs) = await withTaskExecutorPreference(executor) {
            let before = executor.jobs
            var onLoop = 0
            for _ in 0 ..< resumes where await resumedFromAnotherThread(executor.eventLoop) { onLoop += 1 }
            return (onLoop, executor.jobs - before)
        }
        try await group.shutdownGracefully()
        #expect(onLoop == resumes, "\(resumes - onLoop) of \(resumes) resumes continued off the event loop")
        // Each resume enqueues the task at most once (none when the resume wins the race with
        // the suspension); a job run as a serial executor (SwiftNIO's global-executor hook)
        // would be enqueued again to reach the generic executor: 2 per resume.
        #expect(jobs >= 1 && jobs <= resumes + 2, "\(jobs) jobs for \(resumes) resumes")
    }

    @Test("served requests run through their connection's event-loop executor by default, and not when configured off")
    func requestsUseTheConnectionExecutor() async throws {
        let requests = 30
        var jobsPerRequest: [Bool: Double] = [:]
        for onEventLoop in [true, false] {
            let service = try await makeService("executor-\(onEventLoop)") { configuration in
                configuration.port = 0
                configuration.handlersOnConnectionEventLoop = onEventLoop
            }
            let app = RecommenderServer(service: service).application()
            try await app.test(.live) { client in
                for n in 0 ..< requests {
                    try await client.execute(uri: "/v1/pipelines/home/users/u\(n)/recommendations?k=5", method: .get) { #expect($0.status == .ok) }
                }
            }
            jobsPerRequest[onEventLoop] = Double(service.eventLoopExecutors.jobs) / Double(requests)
        }
        // Every request suspends at least for the engine's answer (resumed from a worker
        // thread), and usually for its own arrival; those resumes run on the connection's loop
        // through its executor.
        #expect(jobsPerRequest[true]! >= 1, "\(jobsPerRequest)")
        // One job per resume (about 2 per request here), not two per resume as when a job runs
        // as a serial executor and then hops to the generic one.
        #expect(jobsPerRequest[true]! <= 3, "\(jobsPerRequest)")
        #expect(jobsPerRequest[false]! == 0, "\(jobsPerRequest)")
    }
}

/// A log handler that counts how often its metadata is set and keeps what it is asked to log.
private final class RecordingLogHandler: LogHandler, @unchecked Sendable {  // used from one test task
    var metadataSets = 0
    var events: [LogEvent] = []
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:] { didSet { metadataSets += 1 } }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { events.append(event) }
}

@Suite("Request loggers")
struct RequestLoggingTests {
    @Test("a request's logger metadata is stored, not handed to the log handler, until a message is logged; then the message carries it")
    func metadataAtLogTime() throws {
        let recording = RecordingLogHandler()
        recording.metadata = ["server": "test"]
        var logger = Logger(label: "test") { _ in MetadataAtLogTime(recording) }
        let setsBefore = recording.metadataSets
        for n in 0 ..< 100 { logger[metadataKey: "hb.request.id"] = "\(n)" }
        #expect(recording.metadataSets == setsBefore, "the handler's metadata was set \(recording.metadataSets - setsBefore) times")
        #expect(recording.events.isEmpty)
        logger.debug("not at the logger's level")
        logger.info("answered", metadata: ["status": "200", "server": "message's own"])
        let event = try #require(recording.events.only)
        #expect(event.metadata?["hb.request.id"] == "99")
        #expect(event.metadata?["status"] == "200")
        #expect(event.metadata?["server"] == "message's own")
    }

    @Test("the server's application gives requests a logger whose metadata waits for a message")
    func applicationLogger() async throws {
        let service = RecommenderService(configuration: ServerConfiguration())
        #expect(RecommenderServer(service: service).application().logger.handler is MetadataAtLogTime)
    }
}

private extension Array {
    var only: Element? { count == 1 ? first : nil }
}
