#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import RecEngine
import RecModels
@testable import RecRegistry
import Synchronization

/// A throwaway PostgreSQL server (Debian's packages) on 127.0.0.1 and a free port, run as the
/// `postgres` user when the tests run as root, stopped by its PID — the document tests' harness,
/// plus a restart on the same port and data (for the outage test) and password authentication
/// for TCP connections (for the credential tests).
final class TemporaryPostgres: @unchecked Sendable {
    let directory: String
    let port: Int
    /// The `postgres` user's password over TCP (scram-sha-256).
    let password = "s3cret-\(UInt32.random(in: 100_000 ... 999_999))-pw"
    private let asUser: String?
    private let bin: String
    private var pid: pid_t = 0

    static var binaries: String? {
        for version in (11 ... 20).reversed() where access("/usr/lib/postgresql/\(version)/bin/postgres", X_OK) == 0 {
            return "/usr/lib/postgresql/\(version)/bin"
        }
        return nil
    }

    init() throws {
        guard let bin = Self.binaries else { throw RegistryError.unreachable(target: "test", reason: "PostgreSQL is not installed: run scripts/install-deps") }
        self.bin = bin
        directory = NSTemporaryDirectory() + "registry-pg-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        mkdir(directory, 0o755)
        port = Self.freePort()
        asUser = getuid() == 0 ? "postgres" : nil
        if let asUser, let account = getpwnam(asUser) { chown(directory, account.pointee.pw_uid, account.pointee.pw_gid) }
        try run("echo '\(password)' > \(directory)/pw && \(bin)/initdb -D \(directory)/data -U postgres --pwfile=\(directory)/pw --auth-local=trust --auth-host=scram-sha-256 --no-sync > \(directory)/initdb.log 2>&1 && rm \(directory)/pw")
        try start()
    }

    /// Starts the server (again) on the same port and data.
    func start() throws {
        try run("\(bin)/pg_ctl -D \(directory)/data -l \(directory)/server.log -w -o \"-p \(port) -k \(directory) -c listen_addresses=127.0.0.1\" start > /dev/null")
        let text = (try? String(contentsOfFile: "\(directory)/data/postmaster.pid", encoding: .utf8)) ?? ""
        pid = pid_t(text.split(separator: "\n").first.flatMap { Int32($0) } ?? 0)
        guard pid > 0 else { throw RegistryError.unreachable(target: "test", reason: "the server did not start: see \(directory)/server.log") }
    }

    /// A URL with the password in it.
    var url: String { "postgres://postgres:\(password)@127.0.0.1:\(port)/postgres" }
    var location: RegistryLocation { RegistryLocation(url) }

    /// Stops the server by signal to its PID (fast shutdown) and waits for it to exit; the data stays.
    func pause() {
        guard pid > 0 else { return }
        kill(pid, SIGINT)
        for _ in 0 ..< 400 where kill(pid, 0) == 0 { usleep(25_000) }
        pid = 0
    }

    /// Stops the server and removes its directory.
    func stop() {
        pause()
        _ = system("rm -rf \(directory)")
    }

    deinit { stop() }

    private func run(_ command: String) throws {
        let full = asUser.map { "runuser -u \($0) -- sh -c '\(command.replacingOccurrences(of: "'", with: "'\\''"))'" } ?? command
        guard system(full) == 0 else { throw RegistryError.unreachable(target: "test", reason: "failed: \(command)") }
    }

    private static func freePort() -> Int {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socketFD) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
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
