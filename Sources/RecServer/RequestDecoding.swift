import RecEngine

/// The JSON bodies the API accepts, read and checked exactly as the routes do — without a
/// network, so a fuzzer (`Fuzz/FuzzHTTPBody`) and tests can call them directly.
///
/// Every refusal is an ``APIError`` with status 400 naming the field (`requests[2].items[0]`,
/// `(body)`) and the problem; nothing here can answer a 5xx. Limits (items per session, batch
/// size, string lengths) come from the ``ServerConfiguration``.
///
/// - Complexity: O(body bytes).
public struct RequestDecoder: Sendable {
    /// The limits checked.
    public let limits: ServerConfiguration

    /// A decoder enforcing `limits`.
    public init(limits: ServerConfiguration) { self.limits = limits }

    /// The routes with a JSON body.
    public enum Endpoint: String, CaseIterable, Sendable {
        /// `POST /v1/pipelines/{pipeline}/sessions`.
        case session
        /// `POST /v1/pipelines/{pipeline}/search`.
        case search
        /// `POST /v1/recommend`.
        case recommend
        /// `POST /v1/batch`.
        case batch
        /// `POST /v1/explain`.
        case explain
        /// `POST /v1/feedback`.
        case feedback
        /// `POST /v1/models/{model}/activate`.
        case activate
    }

    /// Reads `body` as the given endpoint's request and checks it, as the route does before it
    /// reaches the engine. - Throws: ``APIError`` (always 400).
    public func check(_ endpoint: Endpoint, body: [UInt8]) throws {
        let value = try json(body)
        switch endpoint {
        case .session: _ = try session(value)
        case .search: _ = try search(value)
        case .recommend: _ = try recommendation(value, pipelineRequired: true)
        case .batch: _ = try batch(value)
        case .explain: _ = try explanation(value)
        case .feedback: _ = try feedback(value)
        case .activate: _ = try activation(value)
        }
    }

    // MARK: Bodies

    /// Parses a request body: empty bodies, invalid UTF-8 and malformed JSON are 400s on `(body)`.
    func json(_ bytes: some Collection<UInt8>) throws -> JSONValue {
        guard !bytes.isEmpty else { throw APIError.badRequest("(body)", "the body is empty; a JSON object is expected") }
        do { return try JSONValue(parsing: bytes) } catch {
            // UTF-8 is checked on the whole body only when parsing failed: no cost for good bodies.
            if String(validating: Array(bytes), as: UTF8.self) == nil { throw APIError.badRequest("(body)", "the body is not valid UTF-8") }
            throw APIError.badRequest("(body)", "the body is not valid JSON: \(error)")
        }
    }

    /// One event object: `{item, type?, weight?, time?}`.
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

    /// The items and events of a session-like body, at most ``ServerConfiguration/maximumSessionItems`` together.
    func history(_ reader: FieldReader) throws -> [Event] {
        let items = try reader.strings("items", maximumCount: limits.maximumSessionItems) ?? []
        let events = try events(reader, "events")
        guard items.count + events.count <= limits.maximumSessionItems else {
            throw APIError.badRequest(reader.name("items"), "items and events together exceed \(limits.maximumSessionItems)")
        }
        return items.map { Event(item: $0) } + events
    }

    /// A general request object: `{pipeline?, user?, items?, events?, text?, k?, exclude?}`.
    func recommendation(_ value: JSONValue, path: String = "", pipelineRequired: Bool) throws -> (pipeline: String?, request: RecommendationRequest) {
        let reader = try FieldReader(value, path: path, allowed: ["pipeline", "user", "items", "events", "text", "k", "exclude"])
        let pipeline = try reader.string("pipeline", maximumLength: 200)
        if pipelineRequired && pipeline == nil { throw APIError.badRequest(reader.name("pipeline"), "missing") }
        let history = try history(reader)
        let request = RecommendationRequest(user: try reader.string("user", maximumLength: 1_000), history: history, text: try reader.string("text"),
                                            k: try reader.integer("k"),
                                            exclude: try reader.strings("exclude", maximumCount: limits.maximumSessionItems) ?? [])
        return (pipeline, request)
    }

    /// `{items?, events?, k?, exclude?}` with at least one item or event.
    func session(_ value: JSONValue) throws -> RecommendationRequest {
        let reader = try FieldReader(value, allowed: ["items", "events", "k", "exclude"])
        let history = try history(reader)
        guard !history.isEmpty else { throw APIError.badRequest("items", "a session needs at least one item or event") }
        return RecommendationRequest(history: history, k: try reader.integer("k"),
                                     exclude: try reader.strings("exclude", maximumCount: limits.maximumSessionItems) ?? [])
    }

    /// `{text, k?}` with a text that is not blank.
    func search(_ value: JSONValue) throws -> RecommendationRequest {
        let reader = try FieldReader(value, allowed: ["text", "k"])
        guard let text = try reader.string("text"), !text.allSatisfy(\.isWhitespace) else {
            throw APIError.badRequest("text", "missing or blank")
        }
        return RecommendationRequest(text: text, k: try reader.integer("k"))
    }

    /// `{requests: [request, …]}`: every entry is checked before any runs, so a malformed batch
    /// is refused whole.
    func batch(_ value: JSONValue) throws -> [PipelineRequest] {
        let reader = try FieldReader(value, allowed: ["requests"])
        guard let entries = try reader.array("requests", maximumCount: limits.maximumBatchRequests), !entries.isEmpty else {
            throw APIError.badRequest("requests", "missing or empty: a list of requests is expected")
        }
        return try entries.enumerated().map { index, entry in
            let parsed = try recommendation(entry, path: "requests[\(index)]", pipelineRequired: true)
            return PipelineRequest(pipeline: parsed.pipeline!, request: parsed.request)
        }
    }

    /// What `/v1/explain` asks: why `item` would be recommended by `model` to `user` and/or
    /// for a history of `events`.
    struct Explanation {
        var model: String
        var item: String
        var user: String?
        var events: [Event]
    }

    /// `{model, item, user?, items?, events?}`.
    func explanation(_ value: JSONValue) throws -> Explanation {
        let reader = try FieldReader(value, allowed: ["model", "item", "user", "items", "events"])
        guard let model = try reader.string("model", maximumLength: 200) else { throw APIError.badRequest("model", "missing") }
        guard let item = try reader.string("item", maximumLength: 1_000) else { throw APIError.badRequest("item", "missing") }
        return Explanation(model: model, item: item, user: try reader.string("user", maximumLength: 1_000), events: try history(reader))
    }

    /// `{user, item, type?, weight?, time?}` or `{user, events: [...]}` (or both).
    func feedback(_ value: JSONValue) throws -> (user: String, events: [Event]) {
        let reader = try FieldReader(value, allowed: ["user", "item", "type", "weight", "time", "events"])
        guard let user = try reader.string("user", maximumLength: 1_000), !user.isEmpty else { throw APIError.badRequest("user", "missing") }
        var events = try events(reader, "events")
        if reader.has("item") {
            events.append(try event(.object(reader.fields.filter { ["item", "type", "weight", "time"].contains($0.key) }), path: ""))
        } else if reader.has("type") || reader.has("weight") || reader.has("time") {
            throw APIError.badRequest("item", "missing (type, weight and time describe an item)")
        }
        guard !events.isEmpty else { throw APIError.badRequest("item", "missing: give an item or a list of events") }
        guard events.count <= limits.maximumSessionItems else {
            throw APIError.badRequest("events", "has \(events.count) events; at most \(limits.maximumSessionItems) are accepted")
        }
        return (user, events)
    }

    /// `{version}` with a version ≥ 1.
    func activation(_ value: JSONValue) throws -> Int {
        let reader = try FieldReader(value, allowed: ["version"])
        guard let number = try reader.integer("version") else { throw APIError.badRequest("version", "missing") }
        guard number >= 1 else { throw APIError.badRequest("version", "must be at least 1, got \(number)") }
        return number
    }
}

/// Reads the fields of one JSON object, refusing unknown keys and wrong types with the field's
/// full path.
struct FieldReader {
    let fields: [String: JSONValue]
    let path: String

    /// The object at `path`; `allowed` lists the keys it may have.
    init(_ value: JSONValue, path: String = "", allowed: Set<String>) throws {
        guard case let .object(fields) = value else {
            throw APIError.badRequest(path.isEmpty ? "(body)" : path, "expected a JSON object, got \(value.kindName)")
        }
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError.badRequest(Self.join(path, unknown), "unknown field (expected one of \(allowed.sorted().joined(separator: ", ")))")
        }
        self.fields = fields
        self.path = path
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func name(_ key: String) -> String { Self.join(path, key) }

    func has(_ key: String) -> Bool {
        if let value = fields[key], value != .null { return true }
        return false
    }

    func string(_ key: String, maximumLength: Int = 10_000) throws -> String? {
        guard let value = fields[key], value != .null else { return nil }
        guard case let .string(text) = value else { throw APIError.badRequest(name(key), "expected a string, got \(value.kindName)") }
        guard text.utf8.count <= maximumLength else { throw APIError.badRequest(name(key), "longer than \(maximumLength) bytes") }
        return text
    }

    func integer(_ key: String) throws -> Int? {
        guard let value = fields[key], value != .null else { return nil }
        guard case let .number(number) = value else { throw APIError.badRequest(name(key), "expected an integer, got \(value.kindName)") }
        guard number == number.rounded(), let integer = Int(exactly: number) else {
            throw APIError.badRequest(name(key), "expected an integer, got \(number)")
        }
        return integer
    }

    func number(_ key: String) throws -> Double? {
        guard let value = fields[key], value != .null else { return nil }
        guard case let .number(number) = value, number.isFinite else { throw APIError.badRequest(name(key), "expected a finite number, got \(value.kindName)") }
        return number
    }

    func array(_ key: String, maximumCount: Int) throws -> [JSONValue]? {
        guard let value = fields[key], value != .null else { return nil }
        guard case let .array(values) = value else { throw APIError.badRequest(name(key), "expected a list, got \(value.kindName)") }
        guard values.count <= maximumCount else {
            throw APIError(.badRequest, field: name(key), "has \(values.count) entries; at most \(maximumCount) are accepted")
        }
        return values
    }

    func strings(_ key: String, maximumCount: Int) throws -> [String]? {
        try array(key, maximumCount: maximumCount)?.enumerated().map { index, value in
            guard case let .string(text) = value else { throw APIError.badRequest("\(name(key))[\(index)]", "expected a string, got \(value.kindName)") }
            guard text.utf8.count <= 1_000 else { throw APIError.badRequest("\(name(key))[\(index)]", "longer than 1000 bytes") }
            return text
        }
    }
}
