import Foundation
import Logging
import Metrics
import RecEngine
import Synchronization

/// Keeps a local model store (and the engine serving from it) in step with a ``ModelRegistry``.
///
/// ## What it does
///
/// 1. ``synchronize()`` (call it before building the engine): downloads every model's active
///    version that the store lacks, verifies it, and activates it in the store.
/// 2. ``start()``: on its own thread (never Swift's cooperative pool), connects, `LISTEN`s on
///    ``ModelRegistry/channel``, synchronizes again (nothing published in between is missed),
///    then applies each notification as it arrives: a new active version is downloaded when
///    absent and swapped in with ``Engine/activate(_:version:)`` — the engine's own hot swap,
///    requests in flight finish on the old version. Newly published versions are prefetched, so
///    an activation usually needs no download.
/// 3. When the registry is unreachable or the connection drops, the store and engine keep
///    serving what they have; the follower retries with exponential backoff (``Options``),
///    ``status`` and ``isReadyForUpdates`` report it, and on reconnecting it synchronizes, which
///    catches up every activation it missed.
///
/// ## Downloads
///
/// Bytes go to `<store>/.registry-downloads/<name>-v<version>.part`, resumed from what an
/// interrupted download left there, and are checked against the size and CRC-32C recorded at
/// upload, then against every checksum of the model file format; only then are they renamed into
/// the store. A version that fails is refused (logged, counted, listed in ``Status/refused``) and
/// the served version stays. The store keeps the registry's version numbers, so it should be the
/// registry's cache only (``RegistryError/storeAhead(name:registryVersion:storeVersions:)`` otherwise).
///
/// ## Metrics (swift-metrics)
///
/// `recommender_registry_connected` (gauge 0/1), `recommender_registry_downloads_total`,
/// `recommender_registry_download_bytes_total`, `recommender_registry_refused_total`,
/// `recommender_registry_reconnects_total`, `recommender_registry_activations_applied_total`.
public final class RegistryFollower: Sendable {
    /// Retry timing.
    public struct Options: Sendable {
        /// The first retry's delay after a failure.
        public var initialBackoff: Duration = .milliseconds(100)
        /// The longest delay between retries.
        public var maximumBackoff: Duration = .seconds(5)
        /// The longest a notification waits before being noticed (the wait's poll period).
        public var pollInterval: Duration = .milliseconds(200)
        /// The defaults.
        public init() {}
    }

    /// What the follower last saw.
    public struct Status: Sendable, Equatable {
        /// Whether it is connected and listening.
        public var connected = false
        /// The last failure (redacted), cleared by a successful synchronization.
        public var lastError: String?
        /// Registry versions refused (`name vN: reason`), most recent last.
        public var refused: [String] = []
        /// Synchronizations completed.
        public var synchronizations = 0
    }

    /// The registry followed.
    public let location: RegistryLocation
    /// The local store that caches the registry's versions.
    public let store: ModelStore
    /// Retry timing.
    public let options: Options
    private let engine: @Sendable () -> Engine?
    private let state = Mutex(Status())
    private let stopping = Atomic<Bool>(false)
    private let running = Mutex<Thread?>(nil)
    private let finished = Mutex<Bool>(true)
    private let refusedVersions = Mutex<Set<String>>([])
    private let logger: Logger
    private let connectedGauge = Gauge(label: "recommender_registry_connected")
    private let downloads = Counter(label: "recommender_registry_downloads_total")
    private let downloadBytes = Counter(label: "recommender_registry_download_bytes_total")
    private let refusals = Counter(label: "recommender_registry_refused_total")
    private let reconnects = Counter(label: "recommender_registry_reconnects_total")
    private let applied = Counter(label: "recommender_registry_activations_applied_total")

    /// A follower of `location` into `store`; `engine` gives the engine to hot-swap into (nil
    /// while it is not built yet: the store alone is updated, and the engine loads from it).
    public init(location: RegistryLocation, store: ModelStore, engine: @escaping @Sendable () -> Engine? = { nil },
                options: Options = Options(), logger: Logger = Logger(label: "recommender.registry")) {
        self.location = location
        self.store = store
        self.engine = engine
        self.options = options
        self.logger = logger
    }

    deinit { stop() }

    /// The last status.
    public var status: Status { state.withLock { $0 } }

    /// Whether activations reach this instance now (connected and listening). Serving does not
    /// depend on it.
    public var isReadyForUpdates: Bool { status.connected }

    /// Connects once and brings the store (and engine, when built) up to the registry's active
    /// versions. - Throws: ``RegistryError/unreachable(target:reason:)`` and what the registry
    /// throws; a refused version is not an error (see ``Status/refused``).
    public func synchronize() throws {
        let registry = try ModelRegistry(location)
        try synchronize(registry)
    }

    /// Starts following on a thread of its own; returns at once. Idempotent.
    public func start() {
        running.withLock { thread in
            guard thread == nil else { return }
            stopping.store(false, ordering: .sequentiallyConsistent)
            finished.withLock { $0 = false }
            let made = Thread { [self] in
                follow()
                finished.withLock { $0 = true }
            }
            made.name = "registry-follower"
            made.start()
            thread = made
        }
    }

    /// Stops following and waits (up to a few poll periods) for the thread to finish.
    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        let wasRunning = running.withLock { thread in
            defer { thread = nil }
            return thread != nil
        }
        guard wasRunning else { return }
        let deadline = ContinuousClock.now + .seconds(10)
        while !finished.withLock({ $0 }) && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
    }

    // MARK: The loop

    private var shouldStop: Bool { stopping.load(ordering: .sequentiallyConsistent) }

    private func follow() {
        var backoff = options.initialBackoff
        var everConnected = false
        while !shouldStop {
            do {
                let registry = try ModelRegistry(location)
                try registry.connection.query("LISTEN \(ModelRegistry.channel)")
                if everConnected { reconnects.increment() }
                everConnected = true
                setConnected(true, error: nil)
                logger.info("following the model registry", metadata: ["registry": "\(location.redacted)"])
                try synchronize(registry)
                backoff = options.initialBackoff
                let wait = Int32(options.pollInterval.components.seconds * 1000 + options.pollInterval.components.attoseconds / 1_000_000_000_000_000)
                while !shouldStop {
                    let notes = try registry.connection.notifications(waitingUpTo: max(1, wait))
                    if !notes.isEmpty { try synchronize(registry) }
                }
            } catch {
                setConnected(false, error: "\(error)")
                logger.warning("model registry unavailable; serving the versions in hand and retrying",
                               metadata: ["registry": "\(location.redacted)", "reason": "\(error)", "retry-in": "\(backoff)"])
                let until = ContinuousClock.now + backoff
                while !shouldStop && ContinuousClock.now < until { Thread.sleep(forTimeInterval: 0.02) }
                backoff = min(backoff * 2, options.maximumBackoff)
            }
        }
        setConnected(false, error: nil)
    }

    private func setConnected(_ connected: Bool, error: String?) {
        connectedGauge.record(connected ? 1 : 0)
        state.withLock { status in
            status.connected = connected
            if let error { status.lastError = error }
        }
    }

    // MARK: Synchronizing

    /// Brings every model to the registry's active version; prefetches the newest versions.
    func synchronize(_ registry: ModelRegistry) throws {
        let active = try registry.activeVersions()
        for (name, version) in active.sorted(by: { $0.key < $1.key }) {
            try apply(version, from: registry)
            _ = name
        }
        for (name, latest) in try registry.latestVersions() where active[name]?.version != latest.version {
            _ = try fetch(latest, from: registry)
        }
        state.withLock { status in
            status.synchronizations += 1
            status.lastError = nil
        }
    }

    /// Makes `version` the active one locally (downloading it when absent) and hot-swaps it in.
    private func apply(_ version: RegistryVersion, from registry: ModelRegistry) throws {
        let engine = engine()
        let served = engine?.models.served.first { $0.name == version.name }?.version
        let localActive = try? store.activeVersion(of: version.name)?.version
        if localActive == version.version && (engine == nil || served == version.version) { return }
        guard try fetch(version, from: registry) else { return }
        do {
            if let engine {
                try engine.activate(version.name, version: version.version)
            } else {
                try store.activate(name: version.name, version: version.version)
            }
            applied.increment()
            logger.info("activated from the registry", metadata: ["model": "\(version.name)", "version": "\(version.version)"])
        } catch {
            refuse(version, reason: "\(error)")
        }
    }

    /// Ensures `version` is in the local store. - Returns: false when it was refused.
    private func fetch(_ version: RegistryVersion, from registry: ModelRegistry) throws -> Bool {
        let key = "\(version.name) v\(version.version)"
        if refusedVersions.withLock({ $0.contains(key) }) { return false }
        let local = (try? store.versions(of: version.name)) ?? []
        if local.contains(where: { $0.version == version.version }) { return true }
        if let newest = local.last?.version, newest > version.version {
            refuse(version, reason: "\(RegistryError.storeAhead(name: version.name, registryVersion: version.version, storeVersions: local.map(\.version)))")
            return false
        }
        let folder = "\(store.directory)/.registry-downloads"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let partial = "\(folder)/\(version.name)-v\(version.version).part"
        let start = ContinuousClock.now
        let report: ModelRegistry.DownloadReport
        do { report = try registry.download(version, to: partial) } catch let error as RegistryError {
            if case .checksumMismatch = error { refuse(version, reason: "\(error)"); return false }
            throw error
        }
        downloads.increment()
        downloadBytes.increment(by: report.transferred)
        do {
            _ = try store.adoptFile(partial, name: version.name, fingerprint: version.fingerprint, version: version.version)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            refuse(version, reason: "\(error)")
            return false
        }
        logger.info("downloaded from the registry", metadata: [
            "model": "\(version.name)", "version": "\(version.version)", "bytes": "\(version.bytes)",
            "resumed-from": "\(report.resumedFrom)", "seconds": "\(ContinuousClock.now - start)",
        ])
        return true
    }

    private func refuse(_ version: RegistryVersion, reason: String) {
        let key = "\(version.name) v\(version.version)"
        refusedVersions.withLock { _ = $0.insert(key) }
        refusals.increment()
        state.withLock { $0.refused.append("\(key): \(reason)") }
        logger.error("registry version refused; the served version stays",
                     metadata: ["model": "\(version.name)", "version": "\(version.version)", "reason": "\(reason)"])
    }
}
