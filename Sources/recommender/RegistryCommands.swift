import ArgumentParser
import Foundation
import RecEngine
import RecRegistry
import Synchronization

/// `--registry URL` and `--registry-password-file FILE`: a model registry in PostgreSQL.
/// Credentials come from the URL, the password file (`.pgpass` format), or libpq's PG*
/// environment variables (`PGPASSWORD`, `PGPASSFILE`, `PGUSER`, …); they are never printed.
struct RegistryOptions: ParsableArguments {
    @Option(help: "Model registry: a PostgreSQL URL (postgres://user@host:port/db) or libpq key=value string.")
    var registry: String?
    @Option(help: "Password file for the registry (.pgpass format); PGPASSWORD and PGPASSFILE work too.")
    var registryPasswordFile: String?

    /// The registry's location, when one was given.
    var location: RegistryLocation? { registry.map { RegistryLocation($0, passwordFile: registryPasswordFile) } }
}

extension Models {
    /// `models push`: upload a local store version to the registry.
    struct Push: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload a version from the local store to the model registry (streamed; the registry numbers it).")
        @OptionGroup var registry: RegistryOptions
        @Option(help: "Model store directory.") var store = "models"
        @Argument(help: "Model name.") var name: String
        @Argument(help: "Local version number (default: the active one, else the newest).") var version: Int?
        @Flag(help: "Make it the registry's active version (every follower switches to it).") var activate = false

        func run() throws {
            guard let location = registry.location else { throw ValidationError("give --registry URL") }
            let modelStore = try ModelStore(directory: store)
            let versions = try modelStore.versions(of: name)
            let chosen: ModelVersion?
            if let version { chosen = versions.first { $0.version == version } } else {
                chosen = try modelStore.activeVersion(of: name) ?? versions.last
            }
            guard let chosen else { throw ValidationError("\(name) has no version \(version.map(String.init) ?? "") in \(store)") }
            let start = ContinuousClock.now
            let pushed = try ModelRegistry(location).push(chosen, from: modelStore, activate: activate)
            let elapsed = seconds(since: start)
            print("pushed \(name) local v\(chosen.version) as registry v\(pushed.version) (\(fixed(Double(pushed.bytes) / 1e6, 2)) MB, "
                  + "CRC-32C \(String(pushed.crc32c, radix: 16)), \(fixed(Double(pushed.bytes) / 1e6 / elapsed, 1)) MB/s)\(activate ? ", active" : "")")
        }
    }

    /// `models pull`: what `serve --registry` and `stream --registry` do at start.
    struct Pull: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download the registry's active versions (and newest ones) into the local store, verified; resumes an interrupted download.")
        @OptionGroup var registry: RegistryOptions
        @Option(help: "Model store directory (the registry's cache).") var store = "models"

        func run() throws {
            guard let location = registry.location else { throw ValidationError("give --registry URL") }
            let modelStore = try ModelStore(directory: store)
            let before = Set(try modelStore.names().flatMap { name in try modelStore.versions(of: name).map { "\(name) v\($0.version)" } })
            let follower = RegistryFollower(location: location, store: modelStore)
            let start = ContinuousClock.now
            try follower.synchronize()
            let elapsed = seconds(since: start)
            var bytes = 0, fetched: [String] = []
            for name in try modelStore.names() {
                for version in try modelStore.versions(of: name) where !before.contains("\(name) v\(version.version)") {
                    bytes += version.bytes
                    fetched.append("\(name) v\(version.version)")
                }
                if let active = try modelStore.activeVersion(of: name) { print("\(name): v\(active.version) active") }
            }
            print("downloaded \(fetched.isEmpty ? "nothing" : fetched.joined(separator: ", ")): \(fixed(Double(bytes) / 1e6, 1)) MB in \(fixed(elapsed, 2)) s"
                  + (bytes > 0 ? " (\(fixed(Double(bytes) / 1e6 / elapsed, 1)) MB/s)" : ""))
            for refused in follower.status.refused { print("refused: \(refused)") }
            if !follower.status.refused.isEmpty { throw ExitCode(2) }
        }
    }
}

/// Registry versions, for `models list --registry`.
func printRegistry(_ location: RegistryLocation) throws {
    let registry = try ModelRegistry(location)
    let active = try registry.activeVersions()
    let names = try registry.names()
    if names.isEmpty { print("no models in the registry \(location.redacted)") }
    for name in names {
        print(name)
        for version in try registry.versions(of: name) {
            let marker = active[name]?.version == version.version ? "*" : " "
            print("  \(marker) v\(version.version)  \(version.kind)  \(fixed(Double(version.bytes) / 1e6, 2)) MB  data \(version.fingerprint.prefix(12))  \(version.createdAt)  metrics \(version.metrics)")
        }
    }
}

/// Starts following `location` into `store` for a serving command: downloads the active versions
/// first (a registry that is down is reported, not fatal: the store's versions are served), and
/// returns the follower to ``RegistryFollower/start()`` once the engine exists.
func prepareFollower(_ location: RegistryLocation, store: String, engine: @escaping @Sendable () -> Engine?) throws -> RegistryFollower {
    let follower = RegistryFollower(location: location, store: try ModelStore(directory: store), engine: engine)
    do { try follower.synchronize() } catch {
        FileHandle.standardError.write(Data("registry: \(error); serving the local store's versions and retrying\n".utf8))
    }
    return follower
}

/// The engine once built, for a follower started before it.
final class EngineBox: Sendable {
    private let stored = Mutex<Engine?>(nil)
    var engine: Engine? {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
}
