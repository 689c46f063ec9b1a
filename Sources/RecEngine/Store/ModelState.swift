import FoundationEssentials
import RecKernels

/// The contents of `<store>/<name>/state.json`: which versions exist, which is active, what was
/// active before, and the next version number.
struct ModelState: Codable, Equatable {
    /// The active version, if any.
    var active: Int?
    /// Previously active versions, most recent last: what ``ModelStore/rollback(name:)`` walks.
    var history: [Int] = []
    /// The number the next added version gets; only ever grows, so numbers are never reused.
    var next = 1
    /// The versions, ascending.
    var versions: [ModelVersion] = []

    static let fileName = "state.json"
    /// The largest `next` a state may hold: adding a version computes `next + 1`, which must
    /// not overflow. Only a hand-edited file gets near it.
    static let maximumVersion = Int.max - 1

    /// Makes `version` active, remembering the one it replaces.
    mutating func activate(_ version: Int) {
        guard active != version else { return }
        if let active { history.append(active) }
        active = version
    }

    /// Forgets `version`: its entry, its place in the history, and its activity.
    mutating func remove(_ version: Int) {
        versions.removeAll { $0.version == version }
        if active == version { active = nil }
        history.removeAll { $0 == version }
        // Removing an entry can leave the same version twice in a row; one rollback step each
        // would land on the version already active.
        history = history.enumerated().filter { $0.offset == 0 || history[$0.offset - 1] != $0.element }.map(\.element)
    }

    /// Reads and checks the state at `path`.
    ///
    /// - Throws: ``ModelStoreError/unreadableState(path:reason:)`` when the file is missing,
    ///   malformed or inconsistent; never a fresh state, which would lose the versions.
    static func read(_ path: String, name: String, store: String) throws -> ModelState {
        let bytes: [UInt8]
        do { bytes = try MappedFile(path: path).withUnsafeBytes { Array($0) } } catch let error as SystemCallError {
            let reason = error.isFileNotFound
                ? "the file is missing; the model's version list is lost (restore state.json or delete the model)"
                : error.reason
            throw ModelStoreError.unreadableState(path: path, reason: reason)
        }
        var state: ModelState
        do { state = try JSONDecoder().decode(ModelState.self, from: Data(bytes)) } catch {
            throw ModelStoreError.unreadableState(path: path, reason: "not a model state: \(error)")
        }
        // `next` becomes a version number and is incremented: bound it so that `next + 1` and
        // the paths built from it cannot overflow.
        guard state.next >= 1 && state.next <= ModelState.maximumVersion else {
            throw ModelStoreError.unreadableState(path: path, reason: "field 'next' is \(state.next), expected 1...\(ModelState.maximumVersion)")
        }
        let numbers = state.versions.map(\.version)
        let known = Set(numbers)
        guard numbers == numbers.sorted(), known.count == numbers.count, numbers.allSatisfy({ $0 >= 1 && $0 < state.next }),
              state.active.map(known.contains) ?? true, state.history.allSatisfy(known.contains),
              state.versions.allSatisfy({ $0.name == name })
        else {
            throw ModelStoreError.unreadableState(path: path, reason: "inconsistent: versions \(numbers), active \(state.active.map(String.init) ?? "none"), history \(state.history), next \(state.next)")
        }
        state.versions = state.versions.map { $0.relocated(toStore: store) }
        return state
    }

    /// Writes the state to `path` atomically (temporary file, fsync, rename, directory fsync):
    /// a crash leaves the old state or the new one.
    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes = Array(try encoder.encode(self))
        try StoredKinds.translatingErrors(path: path) { try AtomicFile.write(bytes, to: path) }
    }
}
