extension StreamResult {
    /// The result as one JSON object, keys sorted, absent optionals left out — what
    /// `JSONEncoder` with `.sortedKeys` writes, and decodable by it — without its per-value
    /// boxing: one pass into one buffer, O(size of the output). Strings are escaped as JSON
    /// requires (quote, backslash, control characters); non-finite numbers, which JSON cannot
    /// carry, are written as `null`.
    public func jsonBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(96 + user.utf8.count + items.reduce(0) { $0 + $1.utf8.count + 16 } + offsets.count * 8)
        out.append(UInt8(ascii: "{"))
        var first = true
        func key(_ name: StaticString) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        }
        if let error { key("error"); appendJSONString(error, to: &out) }
        if let eventTime { key("eventTime"); appendJSONNumber(eventTime, to: &out) }
        key("items")
        out.append(UInt8(ascii: "["))
        for (index, item) in items.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendJSONString(item, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        key("latencyMs"); appendJSONNumber(latencyMs, to: &out)
        if let model { key("model"); appendJSONString(model, to: &out) }
        key("offsets")
        out.append(UInt8(ascii: "["))
        for (index, offset) in offsets.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: String(offset).utf8)
        }
        out.append(UInt8(ascii: "]"))
        key("partition"); out.append(contentsOf: String(partition).utf8)
        key("scores")
        out.append(UInt8(ascii: "["))
        for (index, score) in scores.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendJSONNumber(score, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        key("user"); appendJSONString(user, to: &out)
        if let version { key("version"); out.append(contentsOf: String(version).utf8) }
        out.append(UInt8(ascii: "}"))
        return out
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)

/// `text` as a JSON string literal (UTF-8 kept, the characters JSON forbids escaped).
func appendJSONString(_ text: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        case 0 ..< 0x20:
            out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                    hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 15)]])
        default: out.append(byte)
        }
    }
    out.append(UInt8(ascii: "\""))
}

/// A finite number in Swift's shortest round-trip form (valid JSON: `1e-05`, `0.25`, `3`),
/// `null` otherwise.
func appendJSONNumber<Number: BinaryFloatingPoint & LosslessStringConvertible>(_ value: Number, to out: inout [UInt8]) {
    guard value.isFinite else { out.append(contentsOf: "null".utf8); return }
    out.append(contentsOf: value.description.utf8)
}
