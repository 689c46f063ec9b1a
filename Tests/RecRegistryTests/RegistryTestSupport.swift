#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import RecEngine
import RecModels
@testable import RecRegistry
import PostgresTestSupport
import Synchronization
import Testing

extension TemporaryPostgres {
    var location: RegistryLocation { RegistryLocation(url) }
}

/// A store with `versions` popularity models of `name` on one synthetic data set (each version
/// trained on a different seed's data, so their answers differ), none active.
func makeStore(name: String = "popular", versions: Int) throws -> ModelStore {
    let store = try ModelStore(directory: temporaryDirectory("publisher"))
    for seed in 1 ... versions {
        let log = try Interactions.synthetic(users: 60, items: 40, interactions: 900, seed: UInt64(seed))
        _ = try store.add(try PopularityModel(try ModelCatalog(training: log)), name: name, fingerprint: log.fingerprint)
    }
    return store
}

/// A registry on `server` holding the versions of ``makeStore(name:versions:)`` (model
/// "popular"), version 1 active.
func publishedRegistry(_ server: TemporaryPostgres, versions: Int) throws -> ModelRegistry {
    let local = try makeStore(versions: versions)
    let publisher = try ModelRegistry(server.location)
    for version in try local.versions(of: "popular") { try publisher.push(version, from: local) }
    try publisher.activate(name: "popular", version: 1)
    return publisher
}

/// A fresh store synchronized from `server`, an engine on it, and a follower feeding that engine,
/// started. Records a test issue unless the follower is ready for updates within 5 s.
func startedFollower(_ server: TemporaryPostgres, label: String,
                     options: RegistryFollower.Options = .init()) throws -> (Engine, RegistryFollower) {
    let store = try ModelStore(directory: temporaryDirectory(label))
    try RegistryFollower(location: server.location, store: store).synchronize()
    let engine = try Engine(store: store.directory)
    let follower = RegistryFollower(location: server.location, store: store, engine: { engine }, options: options)
    follower.start()
    #expect(eventually(5) { follower.isReadyForUpdates }, "follower \(label) ready for updates")
    return (engine, follower)
}

func temporaryDirectory(_ label: String) -> String {
    let path = NSTemporaryDirectory() + "registry-\(label)-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Waits up to `seconds` for `condition`. - Returns: whether it held.
func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

/// The version of `model` that `engine` answers with.
func answeringVersion(_ engine: Engine, _ model: String) throws -> Int? {
    try engine.recommend(RecommendationRequest(items: [], k: 3), pipeline: model).models[model]
}

/// Every log line, for the credential tests.
final class CapturedLog: @unchecked Sendable {
    let lines = Mutex<[String]>([])

    var logger: Logger {
        Logger(label: "test.registry") { _ in CapturingHandler(sink: self) }
    }

    var text: String { lines.withLock { $0.joined(separator: "\n") } }
}

struct CapturingHandler: LogHandler {
    let sink: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let fields = (metadata ?? [:]).map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        sink.lines.withLock { $0.append("\(level) \(message) \(fields)") }
    }
}

/// Counts shared with load threads.
final class LoadCounters: Sendable {
    let failures = Atomic<Int>(0)
    let answered = Atomic<Int>(0)
    let done = Atomic<Bool>(false)

    /// Threads that ask `engines` (round robin by thread) until ``done``.
    func start(_ engines: [Engine], model: String) {
        for engine in engines {
            Thread { [self] in
                while !done.load(ordering: .relaxed) {
                    do { _ = try answeringVersion(engine, model); answered.add(1, ordering: .relaxed) } catch { failures.add(1, ordering: .relaxed) }
                }
            }.start()
        }
    }

    func stop() {
        done.store(true, ordering: .relaxed)
        usleep(50_000)
    }
}
