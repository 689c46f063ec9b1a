import FoundationEssentials
import RecKernels
import RecModels
import RecText
import Synchronization

/// A directory of named models, each with numbered versions, one of them active, and a history
/// of activations to roll back through.
///
/// ## Layout
///
/// ```
/// <directory>/<name>/v<version>.rkm   model files (RecKernels' model file format)
/// <directory>/<name>/state.json       {"active": Int?, "history": [Int], "next": Int, "versions": [ModelVersion]}
/// ```
///
/// `history` lists previously active versions, most recent last; `next` is the number the next
/// version gets and only grows, so a deleted version's number is never given again.
/// Entries starting with a dot are the store's own staging and tombstone directories.
///
/// ## Guarantees
///
/// - Durability and crash safety: model files and every `state.json` change are written
///   atomically (temporary file, fsync, rename, directory fsync), so a crash leaves the old state
///   or the new one, never a torn one. A new model's directory is assembled under a hidden name
///   and renamed into place; a deleted model is renamed away before its files are removed. A crash
///   can at worst leave an unlisted model file or a hidden directory behind, never a state that
///   names a missing file.
/// - Verification: adding, importing, activating and rolling back read the whole file and check
///   every checksum first; a file that fails is refused with ``ModelStoreError/corrupt(path:reason:)``
///   and the state is left as it was.
/// - A missing or unreadable `state.json` is an error (``ModelStoreError/unreadableState(path:reason:)``),
///   never silently replaced.
/// - Concurrency: every change holds a lock per store directory, shared by all `ModelStore`
///   values on that directory in this process, and an exclusive `flock` on `<directory>/.lock`
///   shared with every other process: one writer at a time. A second writer waits up to
///   ``lockTimeout`` and then fails with ``ModelStoreError/busy(path:waited:)``. Reads take no
///   lock: they see the state before or after a concurrent change.
/// - Crash leftovers (staging and tombstone directories, temporary files of an interrupted
///   atomic write) are swept when a store is opened, under the lock.
public struct ModelStore: Sendable {
    /// The store's absolute, canonical directory.
    public let directory: String
    /// How long a change waits for another process's change to finish before failing.
    public let lockTimeout: Duration
    private let lock: DirectoryLock

    /// Opens the store at `directory`, creating it (and missing parents) when absent, and sweeps
    /// what a crashed writer left behind.
    ///
    /// - Parameter lockTimeout: how long a change waits for another writer (30 s by default).
    /// - Throws: ``ModelStoreError/fileSystem(operation:path:reason:)``, ``ModelStoreError/busy(path:waited:)``.
    public init(directory: String, lockTimeout: Duration = .seconds(30)) throws {
        try StoreFileSystem.createDirectories(directory)
        self.directory = try StoreFileSystem.canonicalPath(directory)
        self.lockTimeout = lockTimeout
        lock = DirectoryLock.shared(for: self.directory)
        try sweepLeftovers()
    }

    /// Removes staging (`.new-*`) and tombstone (`.deleted-*`) directories and temporary files
    /// (`*.tmp-*`) of interrupted writes. Runs under the writer lock, so whatever it finds
    /// belongs to a writer that is gone. - Returns: the paths removed.
    @discardableResult
    public func sweepLeftovers() throws -> [String] {
        try withWriterLock {
            var removed: [String] = []
            for entry in try StoreFileSystem.entries(of: directory) {
                let path = "\(directory)/\(entry)"
                if (entry.hasPrefix(".new-") || entry.hasPrefix(".deleted-")) && StoreFileSystem.isDirectory(path) {
                    try StoreFileSystem.removeFlatDirectory(path)
                    removed.append(path)
                } else if Self.isValid(entry) && StoreFileSystem.isDirectory(path) {
                    for file in try StoreFileSystem.entries(of: path) where file.contains(".tmp-") {
                        try StoreFileSystem.removeFile("\(path)/\(file)")
                        removed.append("\(path)/\(file)")
                    }
                }
            }
            return removed
        }
    }

    /// Runs `body` holding this process's lock on the directory and the cross-process `flock`.
    func withWriterLock<T>(_ body: () throws -> T) throws -> T {
        try lock.withLock {
            let path = "\(directory)/.lock"
            let file: FileLock
            do { file = try FileLock(path: path, owner: "model store writer", timeout: lockTimeout) } catch let timeout as FileLockTimeout {
                throw ModelStoreError.busy(path: path, waited: timeout.waited, holder: timeout.holder)
            } catch let error as SystemCallError {
                throw ModelStoreError.fileSystem(operation: error.call, path: error.path, reason: error.reason)
            }
            defer { file.release() }
            return try body()
        }
    }

    /// The names of the stored models, sorted. - Complexity: O(models log models).
    public func names() throws -> [String] {
        try StoreFileSystem.entries(of: directory).filter { Self.isValid($0) && StoreFileSystem.isDirectory(folder(of: $0)) }
    }

    /// The versions of `name`, ascending.
    ///
    /// - Throws: ``ModelStoreError/invalidName(_:)``, ``ModelStoreError/unknownModel(_:)``,
    ///   ``ModelStoreError/unreadableState(path:reason:)``.
    public func versions(of name: String) throws -> [ModelVersion] {
        try state(of: name).versions
    }

    /// The active version of `name`, or nil when none is. Throws as ``versions(of:)``.
    public func activeVersion(of name: String) throws -> ModelVersion? {
        let state = try state(of: name)
        return state.versions.first { $0.version == state.active }
    }

    /// Saves `model` as a new version of `name` (creating the model when new) and returns it;
    /// `activate` makes it the active version.
    ///
    /// - Throws: ``ModelStoreError/invalidName(_:)``, ``ModelStoreError/unsupportedKind(path:kind:)``
    ///   for a model kind the store cannot load back, ``ModelStoreError/unreadableState(path:reason:)``,
    ///   ``ModelStoreError/fileSystem(operation:path:reason:)``. Nothing is recorded on failure.
    /// - Complexity: O(file size): the file is written, then read back and verified.
    public func add(_ model: some Recommender, name: String, fingerprint: String, metrics: [String: Double] = [:],
                    activate: Bool = false) throws -> ModelVersion {
        try addVersion(name: name, fingerprint: fingerprint, activate: activate) { path in
            try StoredKinds.translatingErrors(path: path) { try model.save(to: path, metrics: metrics) }
        }
    }

    /// Saves a text index as a new version of `name`; otherwise as adding a ``Recommender``.
    public func add(_ index: TextIndex, name: String, fingerprint: String, activate: Bool = false) throws -> ModelVersion {
        try addVersion(name: name, fingerprint: fingerprint, activate: activate) { path in
            try StoredKinds.translatingErrors(path: path) { try index.save(to: path) }
        }
    }

    /// Copies the model file at `path` in as a new version of `name`, after verifying it.
    ///
    /// - Throws: ``ModelStoreError/corrupt(path:reason:)`` or ``ModelStoreError/unsupportedKind(path:kind:)``
    ///   naming `path` when the source fails a check; otherwise as adding a ``Recommender``.
    /// - Complexity: O(file size).
    public func importFile(_ path: String, name: String, fingerprint: String, activate: Bool = false) throws -> ModelVersion {
        try addVersion(name: name, fingerprint: fingerprint, activate: activate) { destination in
            _ = try StoredKinds.describe(path)
            try StoredKinds.translatingErrors(path: path) {
                let source = try MappedFile(path: path)
                try AtomicFile.write(to: destination) { emit in try source.withUnsafeBytes(emit) }
            }
        }
    }

    /// Moves the model file at `path` in as version `version` of `name` (not the next free
    /// number: a store that mirrors another numbering, such as a registry follower's cache),
    /// after verifying every checksum. `path` must be on the store's file system (a rename, no
    /// copy); it is consumed on success and on a failed check.
    ///
    /// - Throws: ``ModelStoreError/fileSystem(operation:path:reason:)`` when `version` is below
    ///   the model's next free number; otherwise as ``importFile(_:name:fingerprint:activate:)``.
    /// - Complexity: O(file size) for the verification.
    public func adoptFile(_ path: String, name: String, fingerprint: String, version: Int, activate: Bool = false) throws -> ModelVersion {
        try addVersion(name: name, fingerprint: fingerprint, activate: activate, number: version) { destination in
            try StoreFileSystem.rename(path, to: destination)
        }
    }

    /// Verifies `version` (every checksum) and makes it the active version of `name`; the
    /// version it replaces goes onto the rollback history. Activating the active version only
    /// re-verifies it.
    ///
    /// - Throws: ``ModelStoreError/unknownModel(_:)``, ``ModelStoreError/unknownVersion(name:version:)``,
    ///   ``ModelStoreError/corrupt(path:reason:)`` (the active version is then unchanged).
    /// - Complexity: O(file size).
    @discardableResult
    public func activate(name: String, version: Int) throws -> ModelVersion {
        try changeState(of: name) { state in
            let target = try verifiedVersion(version, of: name, in: state)
            state.activate(version)
            return target
        }
    }

    /// Re-activates the version that was active before the current one and drops it from the
    /// history, so repeated rollbacks walk back through earlier activations.
    ///
    /// - Throws: ``ModelStoreError/nothingToRollBackTo(_:)`` when the history is empty,
    ///   ``ModelStoreError/corrupt(path:reason:)`` when the earlier version fails verification
    ///   (nothing changes).
    @discardableResult
    public func rollback(name: String) throws -> ModelVersion {
        try changeState(of: name) { state in
            guard let previous = state.history.last else { throw ModelStoreError.nothingToRollBackTo(name) }
            let target = try verifiedVersion(previous, of: name, in: state)
            state.history.removeLast()
            state.active = previous
            return target
        }
    }

    /// Deletes one version of `name`, and forgets it in the rollback history.
    ///
    /// - Throws: ``ModelStoreError/activeVersion(name:version:)`` for the active version unless
    ///   `force` (which leaves the model with no active version),
    ///   ``ModelStoreError/unknownVersion(name:version:)``, ``ModelStoreError/unknownModel(_:)``.
    public func delete(name: String, version: Int, force: Bool = false) throws {
        try changeState(of: name) { state in
            guard state.versions.contains(where: { $0.version == version }) else {
                throw ModelStoreError.unknownVersion(name: name, version: version)
            }
            if state.active == version && !force { throw ModelStoreError.activeVersion(name: name, version: version) }
            state.remove(version)
        }
        // After the state no longer lists it, so a crash in between leaves an unlisted file, not
        // a listed version without one.
        try StoreFileSystem.removeFile(Self.modelPath(directory: directory, name: name, version: version))
    }

    /// Deletes `name` and all its versions, active or not.
    ///
    /// - Throws: ``ModelStoreError/unknownModel(_:)``, ``ModelStoreError/invalidName(_:)``.
    public func delete(name: String) throws {
        try checkName(name)
        try withWriterLock {
            let folder = folder(of: name)
            guard StoreFileSystem.isDirectory(folder) else { throw ModelStoreError.unknownModel(name) }
            // One rename takes the model out of the listing atomically; the files go after.
            let tombstone = "\(directory)/.deleted-\(name)-\(StoreFileSystem.uniqueSuffix())"
            try StoreFileSystem.rename(folder, to: tombstone)
            try StoreFileSystem.syncDirectory(directory)
            try StoreFileSystem.removeFlatDirectory(tombstone)
        }
    }

    /// Opens `version` as its concrete model type, memory-mapped, after verifying every checksum:
    /// ``FactorModel`` ("als", "als-explicit", "bpr", "biased-mf", "bpmf"), ``ItemKNNModel``,
    /// ``PopularityModel`` or ``TextIndex``.
    ///
    /// - Throws: ``ModelStoreError/corrupt(path:reason:)``, ``ModelStoreError/unsupportedKind(path:kind:)``
    ///   for a file of a kind the store does not know, ``ModelStoreError/fileSystem(operation:path:reason:)``.
    /// - Complexity: O(file size).
    public func load(_ version: ModelVersion) throws -> LoadedModel {
        try StoredKinds.open(version.path)
    }

    // MARK: Internals

    /// `<directory>/<name>/v<version>.rkm`.
    static func modelPath(directory: String, name: String, version: Int) -> String {
        "\(directory)/\(name)/v\(version).rkm"
    }

    private func folder(of name: String) -> String { "\(directory)/\(name)" }

    static func isValid(_ name: String) -> Bool {
        (1 ... 64).contains(name.utf8.count) && !name.hasPrefix(".")
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }

    private func checkName(_ name: String) throws {
        guard Self.isValid(name) else { throw ModelStoreError.invalidName(name) }
    }

    /// The state of an existing model.
    private func state(of name: String) throws -> ModelState {
        try checkName(name)
        let folder = folder(of: name)
        guard StoreFileSystem.isDirectory(folder) else { throw ModelStoreError.unknownModel(name) }
        return try ModelState.read("\(folder)/\(ModelState.fileName)", name: name, store: directory)
    }

    /// Reads the state of `name`, lets `change` edit it, and writes it back atomically, all
    /// under the directory lock; when `change` throws nothing is written.
    private func changeState<T>(of name: String, _ change: (inout ModelState) throws -> T) throws -> T {
        try withWriterLock {
            var state = try state(of: name)
            let result = try change(&state)
            try state.write(to: "\(folder(of: name))/\(ModelState.fileName)")
            return result
        }
    }

    /// The listed `version`, after checking its file's checksums.
    private func verifiedVersion(_ version: Int, of name: String, in state: ModelState) throws -> ModelVersion {
        guard let entry = state.versions.first(where: { $0.version == version }) else {
            throw ModelStoreError.unknownVersion(name: name, version: version)
        }
        _ = try StoredKinds.describe(entry.path)
        return entry
    }

    /// Writes a new version with `write(path)`, verifies it, and records it.
    ///
    /// A new model is assembled in a hidden staging directory and renamed into place, so the
    /// store never shows a model directory without a state.
    private func addVersion(name: String, fingerprint: String, activate: Bool, number requested: Int? = nil,
                            write: (String) throws -> Void) throws -> ModelVersion {
        try checkName(name)
        return try withWriterLock {
            let folder = folder(of: name)
            let isNew = !StoreFileSystem.isDirectory(folder)
            var state = isNew ? ModelState() : try state(of: name)
            let number = requested ?? state.next
            guard number >= state.next, number <= ModelState.maximumVersion else {
                throw ModelStoreError.fileSystem(operation: "add version", path: "\(folder)/\(ModelState.fileName)",
                                                 reason: "version \(number) requested, but the next free number is \(state.next)")
            }
            let workFolder = isNew ? "\(directory)/.new-\(name)-\(StoreFileSystem.uniqueSuffix())" : folder
            let workPath = "\(workFolder)/v\(number).rkm"
            if isNew { try StoreFileSystem.createDirectories(workFolder) }
            do {
                try write(workPath)
                let description = try StoredKinds.describe(workPath)
                let version = ModelVersion(name: name, version: number, path: Self.modelPath(directory: directory, name: name, version: number),
                                           kind: description.kind, metadata: description.metadata,
                                           createdAt: Date().timeIntervalSince1970, bytes: description.bytes, fingerprint: fingerprint)
                state.versions.append(version)
                state.next = number + 1
                if activate { state.activate(number) }
                try state.write(to: "\(workFolder)/\(ModelState.fileName)")
                if isNew {
                    try StoreFileSystem.rename(workFolder, to: folder)
                    try StoreFileSystem.syncDirectory(directory)
                }
                return version
            } catch {
                if isNew { try? StoreFileSystem.removeFlatDirectory(workFolder) } else { try? StoreFileSystem.removeFile(workPath) }
                throw error
            }
        }
    }
}

/// One lock per store directory, shared by every ``ModelStore`` value on it in this process.
private final class DirectoryLock: Sendable {
    private let mutex = Mutex(())
    private static let locks = Mutex<[String: DirectoryLock]>([:])

    static func shared(for directory: String) -> DirectoryLock {
        locks.withLock { locks in
            if let lock = locks[directory] { return lock }
            let lock = DirectoryLock()
            locks[directory] = lock
            return lock
        }
    }

    func withLock<T>(_ body: () throws -> T) throws -> T {
        try mutex.withLock { _ in try body() }
    }
}
