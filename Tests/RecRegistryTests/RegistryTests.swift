#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PostgresTestSupport
import RecEngine
import RecModels
@testable import RecRegistry
import Synchronization
import Testing

@Suite("Model registry in PostgreSQL", .serialized)
struct RegistryTests {
    @Test("the schema is created once, versioned, and a newer one is refused")
    func schemaMigration() throws {
        let server = try TemporaryPostgres()
        defer { server.stop() }
        let registry = try ModelRegistry(server.location)
        try registry.migrate()
        _ = try ModelRegistry(server.location)
        let versions = try registry.connection.query("SELECT version FROM recommender_registry.schema_version ORDER BY version")
        #expect(versions == [["1"]])
        try registry.connection.query("INSERT INTO recommender_registry.schema_version (version) VALUES (99)")
        #expect(throws: RegistryError.schemaTooNew(found: 99, supported: 1)) { try registry.migrate() }
    }

    @Test("push, activate and roll back: one transaction each, history walked back, bytes and CRC recorded")
    func publishing() throws {
        let server = try TemporaryPostgres()
        defer { server.stop() }
        let local = try makeStore(versions: 3)
        let registry = try ModelRegistry(server.location)
        let pushed = try local.versions(of: "popular").map { try registry.push($0, from: local) }
        #expect(pushed.map(\.version) == [1, 2, 3])
        let localBytes = try local.versions(of: "popular").map(\.bytes)
        #expect(pushed.map(\.bytes) == localBytes)
        #expect(try registry.activeVersions().isEmpty)
        try registry.activate(name: "popular", version: 1)
        try registry.activate(name: "popular", version: 3)
        try registry.activate(name: "popular", version: 2)
        #expect(try registry.activeVersions()["popular"]?.version == 2)
        #expect(try registry.rollback(name: "popular").version == 3)
        #expect(try registry.rollback(name: "popular").version == 1)
        #expect(throws: RegistryError.nothingToRollBackTo("popular")) { try registry.rollback(name: "popular") }
        #expect(throws: RegistryError.unknownVersion(name: "popular", version: 9)) { try registry.activate(name: "popular", version: 9) }
        #expect(throws: RegistryError.unknownModel("nope")) { try registry.activate(name: "nope", version: 1) }
        // A failed activation changed nothing.
        #expect(try registry.activeVersions()["popular"]?.version == 1)
        let log = try registry.connection.query("SELECT action, version FROM recommender_registry.activations ORDER BY id")
        #expect(log == [["activate", "1"], ["activate", "3"], ["activate", "2"], ["rollback", "3"], ["rollback", "1"]])
    }

    @Test("push refuses a local file that fails its checksums; nothing is published")
    func pushRefusesCorruptFile() throws {
        let server = try TemporaryPostgres()
        defer { server.stop() }
        let local = try makeStore(versions: 1)
        let version = try local.versions(of: "popular")[0]
        let handle = try #require(FileHandle(forUpdatingAtPath: version.path))
        try handle.seek(toOffset: UInt64(version.bytes - 5))
        let last = try #require(try handle.read(upToCount: 1))
        try handle.seek(toOffset: UInt64(version.bytes - 5))
        try handle.write(contentsOf: Data([last[0] ^ 0xFF]))
        try handle.close()
        let registry = try ModelRegistry(server.location)
        #expect(throws: RegistryError.self) { try registry.push(version, from: local) }
        #expect(try registry.names().isEmpty)
    }

    @Test("a download resumes from the bytes already there and yields the uploaded file exactly")
    func resumableDownload() throws {
        let server = try TemporaryPostgres()
        defer { server.stop() }
        // A file of several chunks, so that the resume point falls inside one.
        let path = temporaryDirectory("big") + "/blob"
        let bytes = (0 ..< (3 << 20) + 12_345).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let registry = try ModelRegistry(server.location)
        let version = try registry.upload(path: path, name: "blob", kind: "als", metadata: nil, metrics: "{}", fingerprint: "f", activate: false)
        #expect(version.bytes == bytes.count)
        let partial = temporaryDirectory("download") + "/blob.part"
        let first = try registry.download(version, to: partial, stopAfter: 1_500_000)
        #expect(first == .init(resumedFrom: 0, transferred: 1_500_000))
        let second = try registry.download(version, to: partial)
        #expect(second == .init(resumedFrom: 1_500_000, transferred: bytes.count - 1_500_000))
        let downloaded = Array(try Data(contentsOf: URL(fileURLWithPath: partial)))
        #expect(downloaded == bytes)
        // A partial file whose prefix is wrong fails the CRC and is deleted, never handed over.
        FileManager.default.createFile(atPath: partial, contents: Data(repeating: 7, count: 1000))
        #expect(throws: RegistryError.self) { try registry.download(version, to: partial) }
        #expect(!FileManager.default.fileExists(atPath: partial))
    }

    @Test("two followers: an activation reaches both within 2 s, both answer with it, no request fails during the switch")
    func twoFollowers() throws {
        let server = try TemporaryPostgres()
        defer { server.stop() }
        let publisher = try publishedRegistry(server, versions: 2)

        var engines: [Engine] = [], followers: [RegistryFollower] = []
        for index in 0 ..< 2 {
            let (engine, follower) = try startedFollower(server, label: "follower\(index)")
            #expect(try answeringVersion(engine, "popular") == 1)
            engines.append(engine)
            followers.append(follower)
        }
        defer { followers.forEach { $0.stop() } }
        // Version 2 was prefetched by both (it was published, not active).
        #expect(eventually(5) { followers.allSatisfy { (try? $0.store.versions(of: "popular").count) == 2 } })

        let counters = LoadCounters()
        counters.start(engines, model: "popular")
        let start = Date()
        try publisher.activate(name: "popular", version: 2)
        let reached = eventually(2) { engines.allSatisfy { (try? answeringVersion($0, "popular")) == 2 } }
        let elapsed = Date().timeIntervalSince(start)
        usleep(100_000)
        counters.stop()
        #expect(reached, "the activation reached both followers in \(elapsed) s")
        #expect(counters.failures.load(ordering: .relaxed) == 0)
        #expect(counters.answered.load(ordering: .relaxed) > 0)
        for follower in followers { #expect(try follower.store.activeVersion(of: "popular")?.version == 2) }
    }

    @Test("a corrupt upload (bytes not matching their CRC) is refused; the previous version keeps serving")
    func corruptUploadRefused() throws {
        let server = try TemporaryPostgres()
        defer { server.stop() }
        let publisher = try publishedRegistry(server, versions: 2)
        // Damage version 2's stored bytes after upload: one byte flipped in the large object.
        try publisher.connection.query("""
            SELECT lo_put(content, 200, decode('ff', 'hex')) FROM recommender_registry.versions WHERE name = 'popular' AND version = 2
            """)
        let (engine, follower) = try startedFollower(server, label: "follower")
        let store = follower.store
        defer { follower.stop() }
        try publisher.activate(name: "popular", version: 2)
        #expect(eventually(3) { follower.status.refused.contains { $0.hasPrefix("popular v2:") && $0.contains("CRC-32C") } })
        #expect(try answeringVersion(engine, "popular") == 1)
        #expect(try store.activeVersion(of: "popular")?.version == 1)
        #expect(try store.versions(of: "popular").map(\.version) == [1])
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: store.directory + "/.registry-downloads")) ?? []
        #expect(leftovers.isEmpty, "partial downloads left: \(leftovers)")
    }

    @Test("registry stopped under load: the follower keeps serving, reports not ready for updates, catches up on restart")
    func outageAndCatchUp() throws {
        let server = try TemporaryPostgres()
        defer { server.stop() }
        let publisher = try publishedRegistry(server, versions: 2)
        var options = RegistryFollower.Options()
        options.maximumBackoff = .milliseconds(800)
        let (engine, follower) = try startedFollower(server, label: "follower", options: options)
        defer { follower.stop() }

        let counters = LoadCounters()
        counters.start([engine], model: "popular")
        server.pause()
        #expect(eventually(5) { !follower.isReadyForUpdates })
        #expect(follower.status.lastError?.contains("unreachable") == true)
        let answeredDuringOutage = counters.answered.load(ordering: .relaxed)
        usleep(300_000)
        #expect(counters.answered.load(ordering: .relaxed) > answeredDuringOutage, "requests are answered while the registry is down")
        try server.start()
        // Activate before the follower is back: it missed the notification and must catch up.
        let publisherAgain = try ModelRegistry(server.location)
        try publisherAgain.activate(name: "popular", version: 2)
        #expect(eventually(10) { follower.isReadyForUpdates && (try? answeringVersion(engine, "popular")) == 2 })
        counters.stop()
        #expect(counters.failures.load(ordering: .relaxed) == 0)
    }

    @Test("the password never appears in errors, status or logs; the password file and PGPASSWORD work")
    func credentialsNeverLogged() throws {
        let server = try TemporaryPostgres()
        defer { server.stop() }
        let wrong = "wr0ng-\(server.password)"
        let bad = RegistryLocation("postgres://postgres:\(wrong)@127.0.0.1:\(server.port)/postgres")
        #expect(!bad.redacted.contains(wrong) && bad.redacted.contains("postgres:***@127.0.0.1"))
        do {
            _ = try ModelRegistry(bad)
            Issue.record("a wrong password connected")
        } catch {
            #expect(!"\(error)".contains(wrong))
            #expect("\(error)".contains("password authentication failed"))
        }
        let captured = CapturedLog()
        let store = try ModelStore(directory: temporaryDirectory("follower"))
        let follower = RegistryFollower(location: bad, store: store, logger: captured.logger)
        follower.start()
        #expect(eventually(5) { follower.status.lastError != nil })
        follower.stop()
        #expect(!captured.text.isEmpty)
        #expect(!captured.text.contains(wrong) && !(follower.status.lastError ?? "").contains(wrong))
        let good = RegistryFollower(location: server.location, store: store, logger: captured.logger)
        try good.synchronize()
        #expect(!captured.text.contains(server.password))

        // The password from a .pgpass file, the rest from the URL.
        let passfile = temporaryDirectory("pgpass") + "/pgpass"
        FileManager.default.createFile(atPath: passfile, contents: Data("127.0.0.1:\(server.port):*:postgres:\(server.password)\n".utf8),
                                       attributes: [.posixPermissions: 0o600])
        _ = try ModelRegistry(RegistryLocation("postgres://postgres@127.0.0.1:\(server.port)/postgres", passwordFile: passfile))
        // The password from PGPASSWORD, as every libpq client takes it.
        setenv("PGPASSWORD", server.password, 1)
        defer { unsetenv("PGPASSWORD") }
        _ = try ModelRegistry(RegistryLocation("postgres://postgres@127.0.0.1:\(server.port)/postgres"))
        unsetenv("PGPASSWORD")
        #expect(throws: RegistryError.self) { try ModelRegistry(RegistryLocation("postgres://postgres@127.0.0.1:\(server.port)/postgres")) }
        // And a key=value string's password is redacted too.
        #expect(RegistryLocation("host=h password=\(wrong) user=u").redacted == "host=h password=*** user=u")
    }
}
