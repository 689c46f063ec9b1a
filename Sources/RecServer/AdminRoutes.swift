import FoundationEssentials
import Hummingbird
import RecEngine
import RecKernels
import RecModels

extension API {
    /// Checks the bearer token: 401 without one, 403 with a wrong one (or when management is
    /// disabled). The comparison takes the same time wherever the first difference is.
    func authorize(_ request: Request) throws {
        guard let expected = limits.adminToken, !expected.isEmpty else {
            throw APIError(.forbidden, field: "Authorization", "model management is disabled: start the server with an admin token")
        }
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, field: "Authorization", "missing: send 'Authorization: Bearer <token>'")
        }
        let prefix = "Bearer "
        guard header.hasPrefix(prefix) else { throw APIError(.unauthorized, field: "Authorization", "not a bearer token") }
        let given = Array(header.dropFirst(prefix.count).utf8), wanted = Array(expected.utf8)
        var difference = UInt8(given.count == wanted.count ? 0 : 1)
        for index in 0 ..< wanted.count { difference |= wanted[index] ^ (index < given.count ? given[index] : 0) }
        guard difference == 0 else { throw APIError(.forbidden, field: "Authorization", "wrong token") }
    }

    func modelName(_ context: BasicRequestContext) throws -> String {
        let name = try parameter(context, "model")
        guard (1 ... 64).contains(name.utf8.count), !name.hasPrefix("."),
              name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D })
        else { throw APIError.badRequest("model", "invalid model name: use 1 to 64 of A-Z a-z 0-9 . _ - (not starting with a dot)") }
        return name
    }

    func flag(_ request: Request, _ name: String) throws -> Bool {
        guard let text = request.uri.queryParameters.get(name) else { return false }
        switch text {
        case "true", "1", "": return true
        case "false", "0": return false
        default: throw APIError.badRequest(name, "expected true or false, got '\(text.prefix(40))'")
        }
    }

    /// The uploaded body, written to a temporary file.
    func uploadedFile(_ request: Request, suffix: String) async throws -> String {
        var request = request
        let buffer = try await request.collectBody(upTo: limits.maximumUploadBytes)
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("(body)", "the body is empty") }
        let path = "/tmp/recommender-upload-\(getpid())-\(UInt64.random(in: 0 ... .max))\(suffix)"
        do { try Data(buffer.readableBytesView).write(to: URL(fileURLWithPath: path)) } catch {
            throw APIError(.internalServerError, "cannot stage the upload: \(error)")
        }
        return path
    }

    func versionJSON(_ version: ModelVersion, active: Bool) -> JSONValue {
        .object(["model": .string(version.name), "version": .number(Double(version.version)), "kind": .string(version.kind),
                 "fingerprint": .string(version.fingerprint), "active": .bool(active),
                 "metrics": .object((version.metadata?.metrics ?? [:]).mapValues { .number($0) })])
    }

    /// `POST /v1/models/{model}/versions?activate=&fingerprint=`: a model file as the body.
    @Sendable func upload(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try authorize(request)
        let name = try modelName(context)
        let activate = try flag(request, "activate")
        let fingerprint = request.uri.queryParameters.get("fingerprint").map { String($0) } ?? "uploaded"
        guard fingerprint.utf8.count <= 200 else { throw APIError.badRequest("fingerprint", "longer than 200 bytes") }
        let engine = try service.readyEngine()
        let path = try await uploadedFile(request, suffix: ".rkm")
        defer { unlink(path) }
        return try await addVersion(engine: engine, name: name, activate: activate, how: "uploaded") { store in
            try store.importFile(path, name: name, fingerprint: fingerprint)
        }
    }

    /// Adds a version to the store with `add` on the administration queue, activates it when
    /// asked, logs it, and answers 201 with the version.
    func addVersion(engine: Engine, name: String, activate: Bool, how: String,
                    _ add: @escaping @Sendable (ModelStore) throws -> ModelVersion) async throws -> Response {
        let version = try await service.administer { () throws -> ModelVersion in
            do {
                guard let store = engine.store else { throw APIError(.conflict, "the engine serves no model store") }
                let added = try add(store)
                return activate ? try engine.activate(name, version: added.version) : added
            } catch { throw RecommenderService.clientError(error) }
        }
        service.logger.info("model \(name): \(how) v\(version.version)\(activate ? ", active" : "")")
        return json(versionJSON(version, active: activate), status: .created)
    }

    /// `POST /v1/models/{model}/train?kind=als|bpr|popularity&factors=&iterations=&activate=&holdout=`:
    /// a CSV of interactions (header `user,item[,value]`) as the body.
    @Sendable func train(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try authorize(request)
        let name = try modelName(context)
        let activate = try flag(request, "activate")
        let kind = request.uri.queryParameters.get("kind").map { String($0) } ?? "als"
        guard ["als", "bpr", "popularity"].contains(kind) else { throw APIError.badRequest("kind", "expected als, bpr or popularity, got '\(kind.prefix(40))'") }
        func integer(_ key: String, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
            guard let text = request.uri.queryParameters.get(key) else { return fallback }
            guard let value = Int(text), range.contains(value) else { throw APIError.badRequest(key, "expected an integer in \(range), got '\(text.prefix(40))'") }
            return value
        }
        let factors = try integer("factors", 32, 1 ... 512), iterations = try integer("iterations", 10, 1 ... 200)
        var holdoutFraction: Double? = nil
        if let text = request.uri.queryParameters.get("holdout") {
            guard let value = Double(text), value > 0, value < 1 else { throw APIError.badRequest("holdout", "expected a fraction between 0 and 1, got '\(text.prefix(40))'") }
            holdoutFraction = value
        }
        let holdout = holdoutFraction
        let engine = try service.readyEngine()
        let path = try await uploadedFile(request, suffix: ".csv")
        defer { unlink(path) }
        return try await addVersion(engine: engine, name: name, activate: activate, how: "trained (\(kind))") { store in
            let header = try String(contentsOfFile: path, encoding: .utf8).prefix { $0 != "\n" && $0 != "\r\n" }
            let columns = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard columns.contains("user"), columns.contains("item") else {
                throw APIError.badRequest("(body)", "the CSV header must name 'user' and 'item' columns (and optionally 'value'), got '\(header.prefix(80))'")
            }
            var log = Interactions()
            _ = try log.load(path, format: InteractionFormat(user: .name("user"), item: .name("item"),
                                                             value: columns.contains("value") ? .name("value") : nil))
            guard log.count > 0 else { throw APIError.badRequest("(body)", "no interactions in the CSV") }
            var training = log, metrics: [String: Double] = [:], test: Interactions? = nil
            if let holdout { let split = try log.randomHoldout(testFraction: holdout, seed: 1); (training, test) = (split.train, split.test) }
            let catalog = try ModelCatalog(training: training)
            let model: any Recommender
            switch kind {
            case "popularity": model = try PopularityModel(catalog)
            case "bpr":
                var bpr = BPR()
                bpr.factors = factors
                bpr.iterations = iterations
                model = try bpr.fit(catalog)
            default:
                var als = ImplicitALS()
                als.factors = factors
                als.iterations = iterations
                model = try als.fit(catalog)
            }
            if let test { metrics = Dictionary(uniqueKeysWithValues: try Evaluation.ranking(model, test: test, k: 10).named) }
            return try store.add(model, name: name, fingerprint: training.fingerprint, metrics: metrics)
        }
    }

    /// `POST /v1/models/{model}/activate` `{"version": N}`.
    @Sendable func activate(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try authorize(request)
        let name = try modelName(context)
        let number = try service.decoder.activation(try await body(request))
        let engine = try service.readyEngine()
        let version = try await service.administer { () throws -> ModelVersion in
            do { return try engine.activate(name, version: number) } catch { throw RecommenderService.clientError(error) }
        }
        service.logger.info("model \(name): v\(version.version) activated")
        return json(versionJSON(version, active: true))
    }

    /// `POST /v1/models/{model}/rollback`.
    @Sendable func rollback(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try authorize(request)
        let name = try modelName(context)
        let engine = try service.readyEngine()
        let version = try await service.administer { () throws -> ModelVersion in
            do { return try engine.rollback(name) } catch { throw RecommenderService.clientError(error) }
        }
        service.logger.info("model \(name): rolled back to v\(version.version)")
        return json(versionJSON(version, active: true))
    }
}

#if canImport(Glibc)
import Glibc
#endif
