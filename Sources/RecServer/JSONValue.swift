import FoundationEssentials

/// A JSON document decoded generically, so request checks can name the exact field and the
/// problem (`items[3]: expected a string, got a number`) rather than a decoder's message.
enum JSONValue: Sendable, Equatable, Decodable {
    case object([String: JSONValue]), array([JSONValue]), string(String), number(Double), bool(Bool), null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// Parses a request body: invalid UTF-8 and malformed JSON are 400s on `(body)`.
    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw APIError.badRequest("(body)", "the body is not valid UTF-8")
        }
        do { return try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) } catch {
            throw APIError.badRequest("(body)", "the body is not valid JSON: \(Self.reason(error))")
        }
    }

    private static func reason(_ error: any Error) -> String {
        if case let DecodingError.dataCorrupted(context) = error {
            return context.underlyingError.map { "\($0)" } ?? context.debugDescription
        }
        return "\(error)"
    }

    /// What kind of value this is, for error messages.
    var kindName: String {
        switch self {
        case .object: "an object"
        case .array: "a list"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }

    /// Compact JSON text (keys sorted, so output is deterministic).
    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        write(into: &out)
        return out
    }

    private func write(into out: inout [UInt8]) {
        switch self {
        case let .object(fields):
            out.append(UInt8(ascii: "{"))
            for (n, key) in fields.keys.sorted().enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.string(key).write(into: &out)
                out.append(UInt8(ascii: ":"))
                fields[key]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let .array(values):
            out.append(UInt8(ascii: "["))
            for (n, value) in values.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                value.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .string(text):
            out.append(UInt8(ascii: "\""))
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out.append(contentsOf: Array("\\\"".utf8))
                case "\\": out.append(contentsOf: Array("\\\\".utf8))
                case "\n": out.append(contentsOf: Array("\\n".utf8))
                case "\r": out.append(contentsOf: Array("\\r".utf8))
                case "\t": out.append(contentsOf: Array("\\t".utf8))
                default:
                    if scalar.value < 0x20 {
                        let hex = String(scalar.value, radix: 16)
                        out.append(contentsOf: Array(("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8))
                    } else {
                        out.append(contentsOf: Array(String(scalar).utf8))
                    }
                }
            }
            out.append(UInt8(ascii: "\""))
        case let .number(value):
            if !value.isFinite { out.append(contentsOf: Array("null".utf8)) }
            else if value == value.rounded(), abs(value) < 1e15 { out.append(contentsOf: Array(String(Int(value)).utf8)) }
            else { out.append(contentsOf: Array("\(value)".utf8)) }
        case let .bool(value): out.append(contentsOf: Array((value ? "true" : "false").utf8))
        case .null: out.append(contentsOf: Array("null".utf8))
        }
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

    func bool(_ key: String) throws -> Bool? {
        guard let value = fields[key], value != .null else { return nil }
        guard case let .bool(flag) = value else { throw APIError.badRequest(name(key), "expected true or false, got \(value.kindName)") }
        return flag
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
