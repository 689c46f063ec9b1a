import RecModels
import RecText

/// The engine in static mode: a model store, the models it serves (the store's active versions),
/// and the pipelines of a settings file — or, without one, a default pipeline per model.
///
/// Activation and rollback verify the new version fully before swapping it in; requests in
/// flight finish on the version they started with, and a corrupt or truncated file is refused
/// while the active version keeps serving.
public final class Engine: Sendable {
    /// The store the served models were loaded from.
    public let store: ModelStore
    /// The models being served, one per store model (its active version).
    public let models: ModelManager
    /// Pipelines by name.
    public let pipelines: [String: Pipeline]

    /// Loads every model's active version from the store at `directory`, then the pipelines of
    /// `settings` (checked against those models) or the defaults.
    ///
    /// - Throws: ``ModelStoreError`` for a store or model that cannot be read,
    ///   ``SettingsError`` for settings that make no sense.
    public init(store directory: String, settings: String? = nil) throws {
        let store = try ModelStore(directory: directory)
        let models = ModelManager()
        for name in try store.names() {
            guard let active = try store.activeVersion(of: name) else { continue }
            models.install(try store.load(active), as: name, version: active.version)
        }
        self.store = store
        self.models = models
        let declared = try settings.map { try PipelineSettings.load($0, models: models) } ?? Self.defaultPipelines(models)
        self.pipelines = Dictionary(uniqueKeysWithValues: declared.map { ($0.name, $0) })
    }

    /// One pipeline per served model, named after it: text indexes answer text; recommenders
    /// answer a known user by their vector, a fresh history by fold-in, seed items by
    /// item-to-item similarity, leave out what the user has, and fall back on a popularity
    /// model when one is served.
    public static func defaultPipelines(_ models: ModelManager) -> [Pipeline] {
        let served = models.served
        let popular = served.first { $0.kind == "popularity" }?.name
        return served.map { model in
            if model.kind == "text-index" {
                return Pipeline(name: model.name, transformer: JSONRequestTransformer(), preprocessors: [TextCleaning()],
                                sources: [TextQuerySource(model: model.name)])
            }
            var post: [any PostProcessor] = [ExcludeSeen(model: model.name)]
            if let popular { post.append(PopularityFallback(model: popular)) }
            return Pipeline(name: model.name, preprocessors: [IDMapping(model: model.name)],
                            sources: [UserFactorsSource(model: model.name), FoldInSource(model: model.name), ItemToItemSource(model: model.name)],
                            postprocessors: post)
        }
    }

    /// Runs `input` through pipeline `name`.
    ///
    /// - Throws: ``PipelineError/badRequest(_:)`` for an unknown pipeline, and what the stages throw.
    public func recommend(pipeline name: String, input: String) throws -> RecommendationResponse {
        guard let pipeline = pipelines[name] else {
            throw PipelineError.badRequest("no pipeline '\(name)' (have \(pipelines.keys.sorted().joined(separator: ", ")))")
        }
        return try pipeline.run(input: input, models: models)
    }

    /// Makes `version` of `name` the active one and serves it, atomically for requests.
    ///
    /// The new version is loaded (every checksum verified) before anything changes, so a file
    /// that cannot be served leaves both the store's state and the served model as they were.
    @discardableResult
    public func activate(_ name: String, version: Int) throws -> ModelVersion {
        guard let target = try store.versions(of: name).first(where: { $0.version == version }) else {
            throw ModelStoreError.unknownVersion(name: name, version: version)
        }
        let loaded = try store.load(target)
        let activated = try store.activate(name: name, version: version)
        models.install(loaded, as: name, version: activated.version)
        return activated
    }

    /// Re-activates the previously active version of `name` and serves it; when that version
    /// cannot be loaded, the store is put back to the current one and the error rethrown.
    @discardableResult
    public func rollback(_ name: String) throws -> ModelVersion {
        let current = try store.activeVersion(of: name)
        let restored = try store.rollback(name: name)
        do {
            models.install(try store.load(restored), as: name, version: restored.version)
        } catch {
            if let current { _ = try? store.activate(name: name, version: current.version) }
            throw error
        }
        return restored
    }
}
