import RecKernels
import RecModels
import RecText
import Synchronization

/// A model as one request sees it: the loaded model, the store version it came from, and what
/// the engine derived from it when it was installed.
public struct ModelSnapshot: Sendable {
    /// The name the model is served under.
    public let name: String
    /// The model itself.
    public let model: LoadedModel
    /// The store version; nil for a model registered directly.
    public let version: Int?
    /// A number no other installation in this process had: caches keyed by it (a pipeline's
    /// allow/deny bitsets) can never serve one version's data for another.
    public let generation: Int
    /// For a popularity model, every item index most popular first (ties by lower index),
    /// computed once at installation so a fallback costs O(k), not a catalog scan.
    public let popularityRanking: [Int32]?
}

/// The models one request reads, captured when it starts: activating a new version while the
/// request runs does not change what it sees.
public struct ModelSnapshots: Sendable {
    let models: [String: ModelSnapshot]
    let failures: [String: String]

    /// The model served as `name` when the request started.
    ///
    /// - Throws: ``PipelineError/modelFailedToLoad(model:reason:)`` for a model whose active
    ///   version could not be loaded, ``PipelineError/modelNotLoaded(_:)`` when no model has
    ///   that name.
    public func snapshot(_ name: String) throws -> ModelSnapshot {
        guard let snapshot = models[name] else {
            if let reason = failures[name] { throw PipelineError.modelFailedToLoad(model: name, reason: reason) }
            throw PipelineError.modelNotLoaded(name)
        }
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

/// The models the engine serves, by name, swapped atomically while requests run, and the models
/// that could not be loaded, with the reason.
///
/// Every request takes a ``ModelSnapshots`` at its start (O(models), under a lock held for
/// nanoseconds) and runs on it to the end; ``install(_:as:version:)`` replaces one entry, so
/// requests already in flight finish on the version they started with and none fails.
public final class ModelManager: Sendable {
    private struct State {
        var active: [String: ModelSnapshot] = [:]
        var failures: [String: (kind: String, reason: String)] = [:]
        var generation = 0
    }
    private let state = Mutex(State())

    /// A manager serving no models.
    public init() {}

    /// Serves `model` as `name` from now on (adding or replacing it, and clearing a failure
    /// recorded for that name).
    ///
    /// - Complexity: O(items × log items) for a popularity model (its ranking), O(1) otherwise.
    public func install(_ model: LoadedModel, as name: String, version: Int? = nil) {
        var ranking: [Int32]?
        if case let .recommender(recommender) = model, let popularity = recommender as? PopularityModel {
            ranking = popularity.counts.indices.sorted { popularity.counts[$0] > popularity.counts[$1] || (popularity.counts[$0] == popularity.counts[$1] && $0 < $1) }
                .map(Int32.init)
        }
        state.withLock { state in
            state.generation += 1
            state.active[name] = ModelSnapshot(name: name, model: model, version: version, generation: state.generation,
                                               popularityRanking: ranking)
            state.failures[name] = nil
        }
    }

    /// Records that `name` (a `kind` model) could not be loaded: requests for it get
    /// ``PipelineError/modelFailedToLoad(model:reason:)``; a version still served under that
    /// name is stopped, since it is no longer the one the store says is active.
    public func recordFailure(_ name: String, kind: String, reason: String) {
        state.withLock { state in
            state.active[name] = nil
            state.failures[name] = (kind, reason)
        }
    }

    /// Stops serving `name`.
    public func remove(_ name: String) {
        state.withLock { state in
            state.active[name] = nil
            state.failures[name] = nil
        }
    }

    /// The models as they are now, for one request.
    public func snapshot() -> ModelSnapshots {
        state.withLock { ModelSnapshots(models: $0.active, failures: $0.failures.mapValues(\.reason)) }
    }

    /// Names, kinds and versions of the served models.
    public var served: [(name: String, kind: String, version: Int?)] {
        state.withLock { $0.active.values.map { ($0.name, $0.model.kind, $0.version) } }.sorted { $0.name < $1.name }
    }

    /// Models that could not be loaded: name, kind and reason.
    public var failed: [(name: String, kind: String, reason: String)] {
        state.withLock { $0.failures.map { ($0.key, $0.value.kind, $0.value.reason) } }.sorted { $0.name < $1.name }
    }
}
