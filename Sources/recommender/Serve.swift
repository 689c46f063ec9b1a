import ArgumentParser
import Dispatch
import Foundation
import Logging
import RecEngine
import RecServer
import Synchronization

/// `recommender serve`: the engine over HTTP (JSON API, feedback, web page, metrics).
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the engine over HTTP: JSON API under /v1, a web page at /, /metrics, /health/live and /health/ready.",
        discussion: """
        Without --store it serves an embedded demo catalog (a small synthetic store written to a temporary \
        directory). Model management routes need a bearer token: --admin-token-file or the environment \
        variable RECOMMENDER_ADMIN_TOKEN (never logged). SIGTERM or SIGINT: stop accepting, finish the \
        requests in flight, exit 0.
        """)

    @Option(help: "Model store directory (default: the embedded demo catalog).") var store: String?
    @Option(help: "Pipeline settings (JSON); default: one pipeline per served model.") var settings: String?
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port (0: a free one; the bound port is printed).") var port = 8080
    @Option(help: "A file holding the bearer token for model management.") var adminTokenFile: String?
    @Option(help: "Largest k a request may ask for.") var maximumK = 100
    @Option(help: "Most items or events in one session.") var maximumSessionItems = 200
    @Option(help: "Largest JSON body, bytes.") var maximumBodyBytes = 1 << 20
    @Option(help: "Engine worker threads (default: one per core).") var workers: Int?
    @Option(help: "Engine calls allowed to wait for a worker before 503.") var maximumQueued = 1024
    @Option(help: "Feedback events kept per user.") var recentEventsPerUser = 50
    @Option(help: "Users whose feedback is kept.") var recentEventsUsers = 100_000
    @Option(help: "Demo catalog items (without --store).") var demoItems = 2_000
    @Option(help: "Demo catalog users (without --store).") var demoUsers = 1_000

    func validate() throws {
        guard (0 ... 65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard maximumK >= 1, maximumSessionItems >= 1, maximumBodyBytes >= 1024, maximumQueued >= 0, (workers ?? 1) >= 1,
              recentEventsPerUser >= 1, recentEventsUsers >= 1 else {
            throw ValidationError("limits must be positive (--maximum-body-bytes at least 1024)")
        }
        if store == nil, settings != nil { throw ValidationError("--settings needs --store (the demo catalog brings its own)") }
    }

    func run() throws {
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.maximumK = maximumK
        configuration.maximumSessionItems = maximumSessionItems
        configuration.maximumBodyBytes = maximumBodyBytes
        configuration.maximumQueuedRequests = maximumQueued
        configuration.workerThreads = workers ?? ServerConfiguration.cores
        configuration.recentEventsPerUser = recentEventsPerUser
        configuration.recentEventsUsers = recentEventsUsers
        if let adminTokenFile {
            let token = try String(contentsOfFile: adminTokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw ValidationError("\(adminTokenFile): the token file is empty") }
            configuration.adminToken = token
        } else if let token = ProcessInfo.processInfo.environment["RECOMMENDER_ADMIN_TOKEN"], !token.isEmpty {
            configuration.adminToken = token
        }

        var demoDirectory: String? = nil
        let storePath: String, settingsPath: String?
        if let store {
            (storePath, settingsPath) = (store, settings)
        } else {
            let directory = NSTemporaryDirectory() + "recommender-demo-\(ProcessInfo.processInfo.processIdentifier)"
            try? FileManager.default.removeItem(atPath: directory)
            let start = ContinuousClock.now
            settingsPath = try DemoStore.create(at: directory, items: demoItems, users: demoUsers)
            storePath = directory
            demoDirectory = directory
            print("demo catalog: \(demoItems) items, \(demoUsers) users in \(directory) (\(fixed(seconds(since: start), 2)) s); pipelines home and search")
        }
        defer { if let demoDirectory { try? FileManager.default.removeItem(atPath: demoDirectory) } }

        var logger = Logger(label: "recommender.server")
        logger.logLevel = .info
        let service = RecommenderService(configuration: configuration, logger: logger)
        let server = RecommenderServer(service: service)
        let host = self.host
        let failure = Mutex<(any Error)?>(nil)
        let finished = DispatchSemaphore(value: 0)
        // The root command is synchronous: the server runs in a task while this thread waits.
        Task {
            do {
                try await server.run(engine: { try Engine(store: storePath, settings: settingsPath) }) { port in
                    print("listening on http://\(host):\(port)")
                    fflush(nil)  // every stream: scripts wait for this line
                }
            } catch {
                failure.withLock { $0 = error }
            }
            finished.signal()
        }
        finished.wait()
        if let error = failure.withLock({ $0 }) { throw error }
        print("stopped")
    }
}
