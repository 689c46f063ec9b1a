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

/// A JSON response of an `Encodable` value.
func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    // A score that overflowed is reported, not turned into a 500.
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}

struct API: Sendable {
    let service: RecommenderService
    var limits: ServerConfiguration { service.configuration }

    // MARK: Reading requests

    func body(_ request: Request) async throws -> JSONValue {
        var request = request
        let buffer = try await request.collectBody(upTo: limits.maximumBodyBytes)
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("(body)", "the body is empty; a JSON object is expected") }
        return try JSONValue.parse(Array(buffer.readableBytesView))
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

    /// One event object: `{item, type?, weight?, time?}` (and `user` where `allowUser`).
    func event(_ value: JSONValue, path: String) throws -> Event {
        let reader = try FieldReader(value, path: path, allowed: ["item", "type", "weight", "time"])
        guard let item = try reader.string("item", maximumLength: 1_000) else { throw APIError.badRequest(reader.name("item"), "missing") }
        let weight = try reader.number("weight")
        if let weight, !(weight > 0 && weight <= 1e6) { throw APIError.badRequest(reader.name("weight"), "must be positive and at most 1e6, got \(weight)") }
        return Event(item: item, type: try reader.string("type", maximumLength: 64) ?? "view", timestamp: try reader.number("time"),
                     weight: weight.map(Float.init))
    }

    func events(_ reader: FieldReader, _ key: String) throws -> [Event] {
        try reader.array(key, maximumCount: limits.maximumSessionItems)?.enumerated().map { try event($1, path: "\(reader.name(key))[\($0)]") } ?? []
    }

    /// A general request object: `{pipeline?, user?, items?, events?, text?, k?, exclude?}`.
    func recommendation(_ value: JSONValue, path: String = "", pipelineRequired: Bool) throws -> (pipeline: String?, request: RecommendationRequest) {
        let reader = try FieldReader(value, path: path, allowed: ["pipeline", "user", "items", "events", "text", "k", "exclude"])
        let pipeline = try reader.string("pipeline", maximumLength: 200)
        if pipelineRequired && pipeline == nil { throw APIError.badRequest(reader.name("pipeline"), "missing") }
        let items = try reader.strings("items", maximumCount: limits.maximumSessionItems) ?? []
        let events = try events(reader, "events")
        guard items.count + events.count <= limits.maximumSessionItems else {
            throw APIError.badRequest(reader.name("items"), "items and events together exceed \(limits.maximumSessionItems)")
        }
        let request = RecommendationRequest(user: try reader.string("user", maximumLength: 1_000),
                                            history: items.map { Event(item: $0) } + events, text: try reader.string("text"),
                                            k: try reader.integer("k"),
                                            exclude: try reader.strings("exclude", maximumCount: limits.maximumSessionItems) ?? [])
        return (pipeline, request)
    }

    // MARK: Recommendation routes

    @Sendable func userRecommendations(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let pipeline = try parameter(context, "pipeline")
        let query = RecommendationRequest(user: try parameter(context, "user"), k: try queryK(request), exclude: try queryExclude(request))
        return try json(try await service.recommend(query, pipeline: pipeline))
    }

    @Sendable func session(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let pipeline = try parameter(context, "pipeline")
        let reader = try FieldReader(try await body(request), allowed: ["items", "events", "k", "exclude"])
        let items = try reader.strings("items", maximumCount: limits.maximumSessionItems) ?? []
        let events = try events(reader, "events")
        guard items.count + events.count <= limits.maximumSessionItems else {
            throw APIError.badRequest("items", "items and events together exceed \(limits.maximumSessionItems)")
        }
        guard !items.isEmpty || !events.isEmpty else { throw APIError.badRequest("items", "a session needs at least one item or event") }
        let query = RecommendationRequest(history: items.map { Event(item: $0) } + events, k: try reader.integer("k"),
                                          exclude: try reader.strings("exclude", maximumCount: limits.maximumSessionItems) ?? [])
        return try json(try await service.recommend(query, pipeline: pipeline))
    }

    @Sendable func similar(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let pipeline = try parameter(context, "pipeline"), item = try parameter(context, "item")
        let engine = try service.readyEngine()
        if let known = engine.pipelines[pipeline].flatMap({ knows(item, pipeline: $0, engine: engine) }), !known {
            throw APIError(.notFound, field: "item", "unknown item '\(item)' in pipeline '\(pipeline)'")
        }
        let query = RecommendationRequest(items: [item], k: try queryK(request), exclude: try queryExclude(request))
        return try json(try await service.recommend(query, pipeline: pipeline))
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
        let reader = try FieldReader(try await body(request), allowed: ["text", "k"])
        guard let text = try reader.string("text"), !text.allSatisfy(\.isWhitespace) else {
            throw APIError.badRequest("text", "missing or blank")
        }
        return try json(try await service.recommend(RecommendationRequest(text: text, k: try reader.integer("k")), pipeline: pipeline))
    }

    @Sendable func recommend(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let (pipeline, query) = try recommendation(try await body(request), pipelineRequired: true)
        return try json(try await service.recommend(query, pipeline: pipeline!))
    }

    @Sendable func batch(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let reader = try FieldReader(try await body(request), allowed: ["requests"])
        guard let entries = try reader.array("requests", maximumCount: limits.maximumBatchRequests), !entries.isEmpty else {
            throw APIError.badRequest("requests", "missing or empty: a list of requests is expected")
        }
        // Every entry is checked before any runs, so a malformed batch is refused whole.
        let parsed = try entries.enumerated().map { try recommendation($1, path: "requests[\($0)]", pipelineRequired: true) }
        let service = self.service
        let results = await withTaskGroup(of: (Int, JSONValue).self) { group in
            for (index, entry) in parsed.enumerated() {
                group.addTask {
                    do {
                        let response = try await service.recommend(entry.request, pipeline: entry.pipeline!)
                        let encoder = JSONEncoder()
                        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
                        let encoded = try JSONDecoder().decode(JSONValue.self, from: try encoder.encode(response))
                        return (index, .object(["status": .number(200), "response": encoded]))
                    } catch {
                        let failure = (RecommenderService.clientError(error) as? APIError) ?? APIError(.internalServerError, "\(error)")
                        var object: [String: JSONValue] = ["status": .number(Double(failure.status.code)), "problem": .string(failure.problem)]
                        if let field = failure.field { object["field"] = .string("requests[\(index)].\(field)") }
                        return (index, .object(["status": .number(Double(failure.status.code)), "error": .object(object)]))
                    }
                }
            }
            var ordered = [JSONValue](repeating: .null, count: parsed.count)
            for await (index, value) in group { ordered[index] = value }
            return ordered
        }
        return json(.object(["results": .array(results)]))
    }

    // MARK: Explanations, items, pipelines, models

    @Sendable func explain(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let reader = try FieldReader(try await body(request), allowed: ["model", "item", "user", "items", "events"])
        guard let name = try reader.string("model", maximumLength: 200) else { throw APIError.badRequest("model", "missing") }
        guard let item = try reader.string("item", maximumLength: 1_000) else { throw APIError.badRequest("item", "missing") }
        let user = try reader.string("user", maximumLength: 1_000)
        let extra = (try reader.strings("items", maximumCount: limits.maximumSessionItems) ?? []).map { Event(item: $0) } + (try events(reader, "events"))
        let engine = try service.readyEngine()
        let snapshot = engine.models.snapshot()
        guard let found = try? snapshot.snapshot(name) else { throw APIError(.notFound, field: "model", "no model '\(name)' is served") }
        guard case let .recommender(recommender) = found.model, let model = recommender as? FactorModel, model.kind == "als" else {
            throw APIError(.unprocessableContent, field: "model", "model '\(name)' is a '\(found.model.kind)' model; explanations are available for implicit ALS ('als') models")
        }
        let catalog = model.catalog
        guard let target = catalog.items.index(of: item) else { throw APIError(.notFound, field: "item", "unknown item '\(item)' in model '\(name)'") }
        var history: [Int] = [], weights: [Float] = []
        if let user {
            if let row = catalog.users.index(of: user) {
                let (items, values) = catalog.history.row(row)
                history += items.map(Int.init)
                weights += values
            }
            for event in service.feedback.events(of: user) {
                if let index = catalog.items.index(of: event.item) { history.append(index); weights.append(event.weight ?? 1) }
            }
        }
        for (n, event) in extra.enumerated() {
            guard let index = catalog.items.index(of: event.item) else { throw APIError(.notFound, field: "items[\(n)]", "unknown item '\(event.item)'") }
            history.append(index)
            weights.append(event.weight ?? 1)
        }
        guard !history.isEmpty else {
            throw APIError(.unprocessableContent, field: "user", "nothing to explain from: give a known user, items or events")
        }
        let items = history, strengths = weights
        let (score, contributions) = try await service.workers.run { () throws -> (Float, [ScoredItem]) in
            do { return try model.explain(history: items, weights: strengths, item: target) } catch { throw RecommenderService.clientError(error) }
        }
        return json(.object([
            "model": .string(name), "version": .number(Double(found.version ?? 0)), "item": .string(item), "score": .number(Double(score)),
            "contributions": .array(contributions.prefix(20).map {
                .object(["item": .string(catalog.items[$0.id]), "contribution": .number(Double($0.score))])
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

    @Sendable func feedback(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let reader = try FieldReader(try await body(request), allowed: ["user", "item", "type", "weight", "time", "events"])
        guard let user = try reader.string("user", maximumLength: 1_000), !user.isEmpty else { throw APIError.badRequest("user", "missing") }
        var events = try events(reader, "events")
        if reader.has("item") {
            events.append(try event(.object(reader.fields.filter { ["item", "type", "weight", "time"].contains($0.key) }), path: ""))
        } else if reader.has("type") || reader.has("weight") || reader.has("time") {
            throw APIError.badRequest("item", "missing (type, weight and time describe an item)")
        }
        guard !events.isEmpty else { throw APIError.badRequest("item", "missing: give an item or a list of events") }
        let history = service.feedback.append(user: user, events: events)
        return json(.object(["user": .string(user), "accepted": .number(Double(events.count)), "recent": .number(Double(history.count))]), status: .accepted)
    }

    // MARK: Health, metrics, page

    @Sendable func ready(_ request: Request, context: BasicRequestContext) async throws -> Response {
        guard let engine = service.engine else {
            return json(.object(["status": .string("not ready"), "problem": .string(service.loadError.map { "the engine failed to load: \($0)" } ?? "the models are still loading")]),
                        status: .serviceUnavailable)
        }
        var fields: [String: JSONValue] = [
            "status": .string("ready"),
            "models": .array(engine.models.served.map { .object(["name": .string($0.name), "kind": .string($0.kind), "version": $0.version.map { .number(Double($0)) } ?? .null]) }),
        ]
        for extra in service.extraReadiness {
            fields[extra.name] = .object(["ready": .bool(extra.report.ready), "detail": .string(extra.report.detail)])
        }
        return json(.object(fields))
    }

    @Sendable func metricsText(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let metrics = service.metrics
        metrics.gauge("recommender_queue_depth", [], Double(service.workers.queued))
        metrics.gauge("recommender_engine_running", [], Double(service.workers.running))
        metrics.gauge("recommender_ready", [], service.engine == nil ? 0 : 1)
        metrics.gauge("recommender_feedback_users", [], Double(service.feedback.userCount))
        metrics.gauge("recommender_feedback_events", [], Double(service.feedback.eventCount))
        metrics.gauge("recommender_feedback_evicted_users_total", [], Double(service.feedback.evictedUsers))
        for extra in service.extraReadiness { metrics.gauge("recommender_\(extra.name)_ready", [], extra.report.ready ? 1 : 0) }
        for model in service.engine?.models.served ?? [] {
            metrics.gauge("recommender_model_version", [("model", model.name)], Double(model.version ?? 0))
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
    }

    @Sendable func page(_ request: Request, context: BasicRequestContext) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
    }
}
