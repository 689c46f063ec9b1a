import RecModels
import RecText
import Synchronization

/// A model as one request sees it: the loaded model and the store version it came from.
public struct ModelSnapshot: Sendable {
    /// The name the model is served under.
    public let name: String
    /// The model itself.
    public let model: LoadedModel
    /// The store version; nil for a model registered directly.
    public let version: Int?
}

/// The models one request reads, captured when it starts: activating a new version while the
/// request runs does not change what it sees.
public struct ModelSnapshots: Sendable {
    let models: [String: ModelSnapshot]

    /// The model served as `name` when the request started.
    ///
    /// - Throws: ``PipelineError/modelNotLoaded(_:)`` when no model has that name.
    public func snapshot(_ name: String) throws -> ModelSnapshot {
        guard let snapshot = models[name] else { throw PipelineError.modelNotLoaded(name) }
        return snapshot
    }

    /// The recommender called `name`. - Throws: ``PipelineError/wrongModelKind(model:expected:actual:)``.
    public func recommender(_ name: String) throws -> any Recommender {
        let snapshot = try snapshot(name)
        guard case let .recommender(model) = snapshot.model else {
            throw PipelineError.wrongModelKind(model: name, expected: "a recommender", actual: snapshot.model.kind)
        }
        return model
    }

    /// The text index called `name`.
    public func textIndex(_ name: String) throws -> TextIndex {
        let snapshot = try snapshot(name)
        guard case let .text(index) = snapshot.model else {
            throw PipelineError.wrongModelKind(model: name, expected: "a text index", actual: snapshot.model.kind)
        }
        return index
    }

    /// Name → version, for responses.
    var versions: [String: Int] { models.mapValues { $0.version ?? 0 } }
}

/// The models the engine serves, by name, swapped atomically while requests run.
///
/// Every request takes a ``ModelSnapshots`` at its start (O(models), under a lock held for
/// nanoseconds) and runs on it to the end; ``install(_:as:version:)`` replaces one entry, so
/// requests already in flight finish on the version they started with and none fails.
public final class ModelManager: Sendable {
    private let active = Mutex<[String: ModelSnapshot]>([:])

    /// A manager serving no models.
    public init() {}

    /// Serves `model` as `name` from now on (adding or replacing it).
    public func install(_ model: LoadedModel, as name: String, version: Int? = nil) {
        let snapshot = ModelSnapshot(name: name, model: model, version: version)
        active.withLock { $0[name] = snapshot }
    }

    /// Stops serving `name`.
    public func remove(_ name: String) {
        _ = active.withLock { $0.removeValue(forKey: name) }
    }

    /// The models as they are now, for one request.
    public func snapshot() -> ModelSnapshots {
        ModelSnapshots(models: active.withLock { $0 })
    }

    /// Names and kinds of the served models.
    public var served: [(name: String, kind: String, version: Int?)] {
        active.withLock { $0.values.map { ($0.name, $0.model.kind, $0.version) } }.sorted { $0.name < $1.name }
    }
}
