import FoundationEssentials
import Hummingbird
import RecEngine
import RecKernels
import RecModels
import RecText

/// The HTTP API over a ``RecommenderService``; every route is documented in ``OpenAPIDocument``
/// (a test checks the two agree).
///
/// - `/v1/...` JSON routes: recommendations for a known user, an anonymous session, similar
///   items, a text query, a general request, a batch, explanations, item metadata, pipelines,
///   models, feedback, and model management behind a bearer token;
/// - `/health/live`, `/health/ready`, `/metrics` (Prometheus), `/v1/openapi.json`;
/// - `/` the web page (recommendations, feedback, the operator view).
public enum RecommenderRoutes {
    /// A router serving `service`'s API.
    public static func router(_ service: RecommenderService) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.middlewares.add(MetricsMiddleware(metrics: service.metrics))
        router.middlewares.add(JSONErrorMiddleware())
        let api = API(service: service)

        router.get("/", use: api.page)
        router.get("/health/live") { _, _ in json(.object(["status": .string("live")])) }
        router.get("/health/ready", use: api.ready)
        router.get("/metrics", use: api.metricsText)
        router.get("/v1/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        router.get("/v1/pipelines", use: api.pipelines)
        router.get("/v1/pipelines/{pipeline}/users/{user}/recommendations", use: api.userRecommendations)
        router.post("/v1/pipelines/{pipeline}/sessions", use: api.session)
        router.get("/v1/pipelines/{pipeline}/items/{item}/similar", use: api.similar)
        router.post("/v1/pipelines/{pipeline}/search", use: api.search)
        router.post("/v1/recommend", use: api.recommend)
        router.post("/v1/batch", use: api.batch)
        router.post("/v1/explain", use: api.explain)
        router.get("/v1/items/{item}", use: api.item)
        router.post("/v1/feedback", use: api.feedback)
        router.get("/v1/models", use: api.models)
        router.post("/v1/models/{model}/versions", use: api.upload)
        router.post("/v1/models/{model}/train", use: api.train)
        router.post("/v1/models/{model}/activate", use: api.activate)
        router.post("/v1/models/{model}/rollback", use: api.rollback)
        return router
    }
}

/// A JSON response.
func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: value.encoded())))
}

/// A JSON response of a recommendation.
func json(_ response: RecommendationResponse, status: HTTPResponse.Status = .ok) -> Response {
    var out: [UInt8] = []
    out.reserveCapacity(128 + 96 * response.items.count)
    ResponseJSON.write(response, into: &out)
    return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: out)))
}

struct API: Sendable {
    let service: RecommenderService
    var limits: ServerConfiguration { service.configuration }

    // MARK: Reading requests

    /// The body as JSON (at most ``ServerConfiguration/maximumBodyBytes``; 413 beyond).
    func body(_ request: Request) async throws -> JSONValue {
        var request = request
        let buffer = try await request.collectBody(upTo: limits.maximumBodyBytes)
        return try service.decoder.json(buffer.readableBytesView)
    }

    func parameter(_ context: BasicRequestContext, _ name: String) throws -> String {
        guard let value = context.parameters.get(name), !value.isEmpty else { throw APIError.badRequest(name, "missing") }
        guard value.utf8.count <= 1_000 else { throw APIError.badRequest(name, "longer than 1000 bytes") }
        return value
    }

    func queryK(_ request: Request) throws -> Int? {
        guard let text = request.uri.queryParameters.get("k") else { return nil }
        guard let k = Int(text) else { throw APIError.badRequest("k", "expected an integer, got '\(text.prefix(40))'") }
        return k
    }

    func queryExclude(_ request: Request) throws -> [String] {
        guard let text = request.uri.queryParameters.get("exclude"), !text.isEmpty else { return [] }
        let items = text.split(separator: ",").map(String.init)
        guard items.count <= limits.maximumSessionItems else {
            throw APIError.badRequest("exclude", "has \(items.count) entries; at most \(limits.maximumSessionItems) are accepted")
        }
        return items
    }

    // MARK: Recommendation routes

    @Sendable func userRecommendations(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let pipeline = try parameter(context, "pipeline")
        let query = RecommendationRequest(user: try parameter(context, "user"), k: try queryK(request), exclude: try queryExclude(request))
        return json(try await service.recommend(query, pipeline: pipeline))
    }

    @Sendable func session(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let pipeline = try parameter(context, "pipeline")
        let query = try service.decoder.session(try await body(request))
        return json(try await service.recommend(query, pipeline: pipeline))
    }

    @Sendable func similar(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let pipeline = try parameter(context, "pipeline"), item = try parameter(context, "item")
        let engine = try service.readyEngine()
        if let known = engine.pipelines[pipeline].flatMap({ knows(item, pipeline: $0, engine: engine) }), !known {
            throw APIError(.notFound, field: "item", "unknown item '\(item)' in pipeline '\(pipeline)'")
        }
        let query = RecommendationRequest(items: [item], k: try queryK(request), exclude: try queryExclude(request))
        return json(try await service.recommend(query, pipeline: pipeline))
    }

    /// Whether the pipeline's first recommender knows `item` (nil: it has no recommender).
    func knows(_ item: String, pipeline: Pipeline, engine: Engine) -> Bool? {
        let models = engine.models.snapshot()
        for source in pipeline.sources {
            if let model = try? models.recommender(source.model) { return model.catalog.items.index(of: item) != nil }
        }
        return nil
    }

    @Sendable func search(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let pipeline = try parameter(context, "pipeline")
        return json(try await service.recommend(try service.decoder.search(try await body(request)), pipeline: pipeline))
    }

    @Sendable func recommend(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let (pipeline, query) = try service.decoder.recommendation(try await body(request), pipelineRequired: true)
        return json(try await service.recommend(query, pipeline: pipeline!))
    }

    /// One engine batch call for the whole body; each entry answers with its own status.
    @Sendable func batch(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let requests = try service.decoder.batch(try await body(request))
        let results = try await service.recommend(batch: requests)
        var out: [UInt8] = []
        out.reserveCapacity(64 + 1024 * results.count)
        out.append(contentsOf: #"{"results":["#.utf8)
        for (index, result) in results.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            switch result {
            case let .success(response):
                out.append(contentsOf: #"{"response":"#.utf8)
                ResponseJSON.write(response, into: &out)
                out.append(contentsOf: #","status":200}"#.utf8)
            case let .failure(error):
                let failure = (RecommenderService.clientError(error) as? APIError) ?? APIError(.internalServerError, "\(error)")
                var object: [String: JSONValue] = ["status": .number(Double(failure.status.code)), "problem": .string(failure.problem)]
                if let field = failure.field { object["field"] = .string("requests[\(index)].\(field)") }
                JSONValue.object(["status": .number(Double(failure.status.code)), "error": .object(object)]).write(into: &out)
            }
        }
        out.append(contentsOf: "]}".utf8)
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: out)))
    }

    // MARK: Explanations, items, pipelines, models

    /// Why `model` would recommend `item` to `user` (training history + recent feedback)
    /// and/or for `items`/`events` (see ``Explanations`` for each kind of model).
    @Sendable func explain(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let asked = try service.decoder.explanation(try await body(request))
        let engine = try service.readyEngine()
        let snapshot = engine.models.snapshot()
        guard let found = try? snapshot.snapshot(asked.model) else { throw APIError(.notFound, field: "model", "no model '\(asked.model)' is served") }
        guard case let .recommender(model) = found.model else {
            throw APIError(.unprocessableContent, field: "model",
                           "model '\(asked.model)' is a '\(found.model.kind)' model, which has no explanation; explanations exist for \(Explanations.explainedKinds.joined(separator: ", "))")
        }
        let catalog = model.catalog
        guard let target = catalog.items.index(of: asked.item) else { throw APIError(.notFound, field: "item", "unknown item '\(asked.item)' in model '\(asked.model)'") }
        var history: [Int] = [], weights: [Float] = []
        if let user = asked.user {
            if let row = catalog.users.index(of: user) {
                let (items, values) = catalog.history.row(row)
                history += items.map(Int.init)
                weights += values
            }
            for event in engine.recentEvents.events(of: user) {
                if let index = catalog.items.index(of: event.item) { history.append(index); weights.append(event.weight ?? 1) }
            }
        }
        for (n, event) in asked.events.enumerated() {
            guard let index = catalog.items.index(of: event.item) else { throw APIError(.notFound, field: "items[\(n)]", "unknown item '\(event.item)'") }
            history.append(index)
            weights.append(event.weight ?? 1)
        }
        guard !history.isEmpty else {
            throw APIError(.unprocessableContent, field: "user", "nothing to explain from: give a known user, items or events")
        }
        let items = history, strengths = weights, name = asked.model
        let explanation: Explanations.Explanation
        do {
            explanation = try await engine.run { try Explanations.explain(model, name: name, history: items, weights: strengths, item: target) }
        } catch { throw RecommenderService.clientError(error) }
        let key = explanation.method == .contribution ? "contribution" : "similarity"
        return json(.object([
            "model": .string(asked.model), "kind": .string(model.kind), "version": .number(Double(found.version ?? 0)), "item": .string(asked.item),
            "method": .string(explanation.method.rawValue), "score": explanation.score.map { .number(Double($0)) } ?? .null,
            "contributions": .array(explanation.because.prefix(20).map {
                .object(["item": .string(catalog.items[$0.id]), key: .number(Double($0.score))])
            }),
        ]))
    }

    @Sendable func item(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let item = try parameter(context, "item")
        let engine = try service.readyEngine()
        var metadata: [String: String]? = nil
        for pipeline in engine.pipelines.values.sorted(by: { $0.name < $1.name }) {
            if let formatter = pipeline.formatter as? ResultsWithMetadata, let fields = formatter.catalog.fields(of: item) { metadata = fields; break }
        }
        let snapshot = engine.models.snapshot()
        let models = engine.models.served.compactMap { served -> String? in
            switch try? snapshot.snapshot(served.name).model {
            case let .recommender(model)?: model.catalog.items.index(of: item) != nil ? served.name : nil
            case let .text(index)?: index.row(of: item) != nil ? served.name : nil
            case nil: nil
            }
        }
        guard metadata != nil || !models.isEmpty else { throw APIError(.notFound, field: "item", "unknown item '\(item)'") }
        return json(.object([
            "item": .string(item), "metadata": metadata.map { .object($0.mapValues { .string($0) }) } ?? .null,
            "models": .array(models.map { .string($0) }),
        ]))
    }

    @Sendable func pipelines(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let engine = try service.readyEngine()
        let list: [JSONValue] = engine.pipelines.values.sorted { $0.name < $1.name }.map { pipeline in
            .object([
                "name": .string(pipeline.name), "k": .number(Double(pipeline.k)),
                "maximumK": .number(Double(min(limits.maximumK, service.catalogSize(of: pipeline, engine: engine)))),
                "sources": .array(pipeline.sources.map { .object(["stage": .string(String(describing: type(of: $0))), "model": .string($0.model)]) }),
                "metadata": .bool(pipeline.formatter is ResultsWithMetadata),
            ])
        }
        return json(.object(["pipelines": .array(list)]))
    }

    @Sendable func models(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let engine = try service.readyEngine()
        let served = Dictionary(engine.models.served.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var list: [JSONValue] = []
        guard let store = engine.store else { return json(.object(["models": .array([])])) }
        for name in try store.names() {
            let versions = try store.versions(of: name), active = try store.activeVersion(of: name)?.version
            list.append(.object([
                "name": .string(name), "kind": .string(versions.last?.kind ?? served[name]?.kind ?? ""),
                "active": active.map { .number(Double($0)) } ?? .null,
                "served": served[name]?.version.map { .number(Double($0)) } ?? .null,
                "versions": .array(versions.map { version in
                    .object([
                        "version": .number(Double(version.version)), "kind": .string(version.kind), "active": .bool(version.version == active),
                        "createdAt": .number(version.createdAt), "bytes": .number(Double(version.bytes)), "fingerprint": .string(version.fingerprint),
                        "metrics": .object((version.metadata?.metrics ?? [:]).mapValues { .number($0) }),
                        "parameters": .object((version.metadata?.parameters ?? [:]).mapValues { .number($0) }),
                        "users": version.metadata.map { .number(Double($0.users)) } ?? .null,
                        "items": version.metadata.map { .number(Double($0.items)) } ?? .null,
                    ])
                }),
            ]))
        }
        return json(.object(["models": .array(list)]))
    }

    // MARK: Feedback

    /// Records events as the user's latest in the engine: their next recommendation folds them
    /// in and leaves them out.
    @Sendable func feedback(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let (user, events) = try service.decoder.feedback(try await body(request))
        let history = try service.readyEngine().feedback(user: user, events: events)
        return json(.object(["user": .string(user), "accepted": .number(Double(events.count)), "recent": .number(Double(history.count))]), status: .accepted)
    }

    // MARK: Health, metrics, page

    /// 200 once the engine is loaded and every model with an active version is served; 503
    /// before, or when a model failed to load (the status lists each model and why).
    @Sendable func ready(_ request: Request, context: BasicRequestContext) async throws -> Response {
        guard let engine = service.engine else {
            return json(.object(["status": .string("not ready"), "problem": .string(service.loadError.map { "the engine failed to load: \($0)" } ?? "the models are still loading")]),
                        status: .serviceUnavailable)
        }
        let models: [JSONValue] = engine.status().map { model in
            var fields: [String: JSONValue] = ["name": .string(model.name), "kind": .string(model.kind), "loaded": .bool(model.loaded),
                                               "version": model.version.map { .number(Double($0)) } ?? .null]
            if let error = model.error { fields["error"] = .string(error) }
            return .object(fields)
        }
        guard engine.isReady else {
            let failed = engine.status().filter { !$0.loaded }.map(\.name)
            return json(.object(["status": .string("not ready"), "problem": .string("models failed to load: \(failed.joined(separator: ", "))"),
                                 "models": .array(models)]), status: .serviceUnavailable)
        }
        var fields: [String: JSONValue] = ["status": .string("ready"), "models": .array(models)]
        // Reports that do not gate readiness (the registry follower: serving goes on without it).
        for extra in service.extraReadiness {
            fields[extra.name] = .object(["ready": .bool(extra.report.ready), "detail": .string(extra.report.detail)])
        }
        return json(.object(fields))
    }

    @Sendable func metricsText(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let metrics = service.metrics
        let engine = service.engine
        let depth = service.queueDepth
        metrics.gauge("recommender_queue_depth", [], Double(depth.waiting))
        metrics.gauge("recommender_engine_running", [], Double(depth.running))
        metrics.gauge("recommender_ready", [], engine?.isReady == true ? 1 : 0)
        metrics.gauge("recommender_feedback_users", [], Double(engine?.recentEvents.userCount ?? 0))
        metrics.gauge("recommender_feedback_evicted_users_total", [], Double(engine?.recentEvents.evictedUsers ?? 0))
        for extra in service.extraReadiness { metrics.gauge("recommender_\(extra.name)_ready", [], extra.report.ready ? 1 : 0) }
        for model in engine?.models.served ?? [] {
            metrics.gauge("recommender_model_version", [("model", model.name)], Double(model.version ?? 0))
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
    }

    @Sendable func page(_ request: Request, context: BasicRequestContext) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
    }
}
