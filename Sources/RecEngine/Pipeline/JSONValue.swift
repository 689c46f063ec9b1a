/// A JSON document read generically, so that the settings reader and the HTTP server can name
/// the exact key path and problem (`items[3]: expected a string, got a number`) instead of a
/// decoder's message. One type for both (package access: not part of the public API).
///
/// ``init(parsing:)`` is a strict RFC 8259 parser over bytes: UTF-8 is validated, numbers must
/// be finite doubles, nesting is bounded by ``maximumDepth``, and trailing bytes are refused.
/// ``encoded()`` writes compact JSON with sorted keys.
///
/// - Complexity: parsing and encoding are O(bytes) (object keys are sorted when encoding:
///   O(k log k) per object of k keys).
package enum JSONValue: Sendable, Equatable {
    case object([String: JSONValue]), array([JSONValue]), string(String), number(Double), bool(Bool), null

    /// How deeply arrays and objects may nest; deeper input is refused, so a hostile body
    /// cannot exhaust the stack.
    package static let maximumDepth = 64

    /// Parses `bytes` as one JSON value (surrounding white space allowed).
    ///
    /// - Throws: ``JSONSyntaxError`` naming the byte offset and what was expected.
    package init(parsing bytes: some Collection<UInt8>) throws(JSONSyntaxError) {
        let parsed: Result<JSONValue, JSONSyntaxError> = bytes.withContiguousStorageIfAvailable { buffer in
            var parser = JSONParser(bytes: buffer)
            return Result { () throws(JSONSyntaxError) in try parser.document() }
        } ?? Array(bytes).withUnsafeBufferPointer { buffer in
            var parser = JSONParser(bytes: buffer)
            return Result { () throws(JSONSyntaxError) in try parser.document() }
        }
        self = try parsed.get()
    }

    /// What kind of value this is, for error messages ("a string", "a list", …).
    package var kindName: String {
        switch self {
        case .object: "an object"
        case .array: "a list"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }

    /// Compact JSON text, object keys sorted (deterministic output). Non-finite numbers, which
    /// JSON cannot carry, are written as `null`.
    package func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    /// Appends the compact JSON text of this value to `out`.
    package func write(into out: inout [UInt8]) {
        switch self {
        case let .object(fields):
            out.append(UInt8(ascii: "{"))
            for (n, key) in fields.keys.sorted().enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(key, into: &out)
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
        case let .string(text): JSONValue.writeString(text, into: &out)
        case let .number(value): JSONValue.writeNumber(value, into: &out)
        case let .bool(value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        }
    }

    /// Appends `text` as a JSON string: quotes, backslashes and control characters escaped.
    package static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "\n"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case UInt8(ascii: "\r"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case UInt8(ascii: "\t"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0 ..< 0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends `value`: whole numbers below 10^15 without a fraction, others in Swift's
    /// shortest round-tripping form; non-finite values as `null`.
    package static func writeNumber(_ value: Double, into out: inout [UInt8]) {
        if !value.isFinite { out.append(contentsOf: "null".utf8) }
        else if value == value.rounded(), abs(value) < 1e15 { out.append(contentsOf: String(Int(value)).utf8) }
        else { out.append(contentsOf: value.description.utf8) }
    }
}

/// Why bytes are not a JSON document: where (byte offset) and what was expected.
package struct JSONSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Offset of the first byte that does not fit, from the start of the input.
    package let offset: Int
    /// What is wrong there.
    package let problem: String

    package var description: String { "at byte \(offset): \(problem)" }
}

/// The recursive-descent parser behind ``JSONValue/init(parsing:)``.
private struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0
    var depth = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    func fail(_ problem: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset ?? position, problem: problem)
    }

    mutating func document() throws(JSONSyntaxError) -> JSONValue {
        skipSpace()
        guard position < bytes.count else { throw fail("empty input: a JSON value is expected") }
        let value = try self.value()
        skipSpace()
        guard position == bytes.count else { throw fail("unexpected bytes after the JSON value") }
        return value
    }

    mutating func skipSpace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func value() throws(JSONSyntaxError) -> JSONValue {
        guard position < bytes.count else { throw fail("unexpected end of input: a value is expected") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected character: a value is expected")
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - position >= count else { throw fail("unexpected end of input in '\(word)'") }
        for n in 0 ..< count where bytes[position + n] != word.utf8Start[n] { throw fail("invalid literal: expected '\(word)'") }
        position += count
    }

    mutating func nest() throws(JSONSyntaxError) {
        depth += 1
        guard depth <= JSONValue.maximumDepth else { throw fail("nested deeper than \(JSONValue.maximumDepth) levels") }
    }

    mutating func object() throws(JSONSyntaxError) -> JSONValue {
        try nest()
        position += 1
        var fields: [String: JSONValue] = [:]
        skipSpace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            depth -= 1
            return .object(fields)
        }
        while true {
            skipSpace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("a key (a string) is expected") }
            let key = try string()
            skipSpace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("':' is expected after a key") }
            position += 1
            skipSpace()
            fields[key] = try value()
            skipSpace()
            guard position < bytes.count else { throw fail("unexpected end of input: ',' or '}' is expected") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            guard bytes[position] == UInt8(ascii: "}") else { throw fail("',' or '}' is expected") }
            position += 1
            depth -= 1
            return .object(fields)
        }
    }

    mutating func array() throws(JSONSyntaxError) -> JSONValue {
        try nest()
        position += 1
        var values: [JSONValue] = []
        skipSpace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            depth -= 1
            return .array(values)
        }
        while true {
            skipSpace()
            values.append(try value())
            skipSpace()
            guard position < bytes.count else { throw fail("unexpected end of input: ',' or ']' is expected") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            guard bytes[position] == UInt8(ascii: "]") else { throw fail("',' or ']' is expected") }
            position += 1
            depth -= 1
            return .array(values)
        }
    }

    /// A string starting at the opening quote; the position ends after the closing quote.
    mutating func string() throws(JSONSyntaxError) -> String {
        let start = position
        position += 1
        let contentStart = position
        // Fast path: no escapes.
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let text = String(validating: UnsafeBufferPointer(rebasing: bytes[contentStart ..< position]), as: UTF8.self)
                guard let text else { throw fail("invalid UTF-8 in a string", at: start) }
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw fail("control character in a string (escape it)") }
            position += 1
        }
        var text = Array(UnsafeBufferPointer(rebasing: bytes[contentStart ..< position]))
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                guard let decoded = String(validating: text, as: UTF8.self) else { throw fail("invalid UTF-8 in a string", at: start) }
                position += 1
                return decoded
            case UInt8(ascii: "\\"):
                position += 1
                guard position < bytes.count else { break }
                let escaped = bytes[position]
                position += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escaped)
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0C)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800 ..< 0xDC00).contains(scalar) {
                        guard bytes.count - position >= 6, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                            throw fail("a high surrogate escape must be followed by a low one")
                        }
                        position += 2
                        let low = try hex4()
                        guard (0xDC00 ..< 0xE000).contains(low) else { throw fail("a high surrogate escape must be followed by a low one") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00 ..< 0xE000).contains(scalar) {
                        throw fail("a lone low surrogate escape")
                    }
                    text.append(contentsOf: String(Unicode.Scalar(scalar)!).utf8)
                default: throw fail("invalid escape '\\\(Unicode.Scalar(escaped))'", at: position - 2)
                }
            default:
                if byte < 0x20 { throw fail("control character in a string (escape it)") }
                text.append(byte)
                position += 1
            }
        }
        throw fail("unterminated string", at: start)
    }

    mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard bytes.count - position >= 4 else { throw fail("unexpected end of input in a \\u escape") }
        var value: UInt32 = 0
        for _ in 0 ..< 4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a") ... UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("a \\u escape needs four hexadecimal digits")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    mutating func number() throws(JSONSyntaxError) -> Double {
        let start = position
        func digits(_ parser: inout JSONParser) -> Int {
            let first = parser.position
            while parser.position < parser.bytes.count, (UInt8(ascii: "0") ... UInt8(ascii: "9")).contains(parser.bytes[parser.position]) { parser.position += 1 }
            return parser.position - first
        }
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count, (UInt8(ascii: "0") ... UInt8(ascii: "9")).contains(bytes[position]) else { throw fail("a digit is expected") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count, (UInt8(ascii: "0") ... UInt8(ascii: "9")).contains(bytes[position]) { throw fail("a number may not have leading zeros") }
        } else {
            _ = digits(&self)
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits(&self) > 0 else { throw fail("a digit is expected after the decimal point") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digits(&self) > 0 else { throw fail("a digit is expected in the exponent") }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start ..< position]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw fail("number \(text.prefix(40)) is out of range", at: start) }
        return value
    }
}
