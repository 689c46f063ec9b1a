import RecModels
import RecText

/// One stored version of a named model, as recorded in the model's `state.json`.
///
/// Everything here is read from the model file when the version is added (kind, metadata,
/// size), so it describes the bytes on disk, not what the caller claimed.
public struct ModelVersion: Sendable, Codable, Equatable {
    /// The model's name: 1 to 64 of `A–Z a–z 0–9 . _ -`, not starting with a dot.
    public let name: String
    /// 1, 2, 3… per name; a number is never reused, even after its version is deleted.
    public let version: Int
    /// Absolute path of the model file, `<store>/<name>/v<version>.rkm`.
    public let path: String
    /// The file's model kind from its metadata ("als", "item-knn", "popularity", "text-index", …).
    public let kind: String
    /// The file's JSON metadata (parameters, sizes, metrics) when it holds a RecModels model;
    /// nil for a text index, whose metadata has another shape.
    public let metadata: ModelMetadata?
    /// When the version was added to the store, in seconds since 1970 (the model's training
    /// time is `metadata.createdAt`).
    public let createdAt: Double
    /// The model file's size in bytes.
    public let bytes: Int
    /// The training-data fingerprint given when adding (see `Interactions.fingerprint`).
    public let fingerprint: String

    init(name: String, version: Int, path: String, kind: String, metadata: ModelMetadata?, createdAt: Double,
         bytes: Int, fingerprint: String) {
        self.name = name
        self.version = version
        self.path = path
        self.kind = kind
        self.metadata = metadata
        self.createdAt = createdAt
        self.bytes = bytes
        self.fingerprint = fingerprint
    }

    /// The same version with its file under `directory`: paths are recomputed on every read of
    /// the state, so a store directory that was moved or mounted elsewhere still works.
    func relocated(toStore directory: String) -> ModelVersion {
        ModelVersion(name: name, version: version, path: ModelStore.modelPath(directory: directory, name: name, version: version),
                     kind: kind, metadata: metadata, createdAt: createdAt, bytes: bytes, fingerprint: fingerprint)
    }
}

/// A loaded model of any kind the store holds.
public enum LoadedModel: Sendable {
    /// A collaborative-filtering model: ``FactorModel``, ``ItemKNNModel`` or ``PopularityModel``.
    case recommender(any Recommender)
    /// A content-based text index.
    case text(TextIndex)

    /// The model's kind, as stored in its file's metadata.
    public var kind: String {
        switch self {
        case let .recommender(model): model.kind
        case .text: StoredKinds.textIndex
        }
    }
}

/// Why a store operation was refused. Every case names the model, version or path concerned.
public enum ModelStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A model name that is empty, longer than 64 bytes, starts with a dot, or holds a character
    /// other than `A–Z a–z 0–9 . _ -`.
    case invalidName(String)
    /// No model of that name in the store.
    case unknownModel(String)
    /// The model has no such version (never added, or deleted).
    case unknownVersion(name: String, version: Int)
    /// Deleting the active version needs `force: true`.
    case activeVersion(name: String, version: Int)
    /// The activation history holds no earlier version.
    case nothingToRollBackTo(String)
    /// The model file fails a check (checksum, truncation, metadata): `reason` is the failed
    /// check's description, e.g. a ``RecKernels/ModelFileError``'s.
    case corrupt(path: String, reason: String)
    /// The file holds a model kind the store cannot load.
    case unsupportedKind(path: String, kind: String)
    /// The model's `state.json` is missing, not JSON of the expected shape, or inconsistent.
    /// The store never starts a fresh state over it, which would lose the versions it lists.
    case unreadableState(path: String, reason: String)
    /// An operating-system call failed.
    case fileSystem(operation: String, path: String, reason: String)
    /// Another process kept the store's writer lock for longer than the wait allowed.
    case busy(path: String, waited: Duration, holder: String?)

    public var description: String {
        switch self {
        case let .invalidName(name):
            "invalid model name '\(name)': use 1 to 64 of A-Z a-z 0-9 . _ - (not starting with a dot)"
        case let .unknownModel(name): "no model named '\(name)' in the store"
        case let .unknownVersion(name, version): "model '\(name)' has no version \(version)"
        case let .activeVersion(name, version):
            "version \(version) of '\(name)' is the active one: activate another first, or delete with force"
        case let .nothingToRollBackTo(name): "model '\(name)' has no earlier active version to roll back to"
        case let .corrupt(path, reason): "\(path): refused: \(reason)"
        case let .unsupportedKind(path, kind):
            "\(path): holds a '\(kind)' model, which the store cannot load (it loads \(StoredKinds.all.joined(separator: ", ")))"
        case let .unreadableState(path, reason): "\(path): unreadable model state: \(reason)"
        case let .fileSystem(operation, path, reason): "\(operation)(\(path)) failed: \(reason)"
        case let .busy(path, waited, holder):
            "\(path): another process (\(holder ?? "unknown")) is changing the store (waited \(waited.components.seconds) s for its lock); try again when it has finished"
        }
    }
}
