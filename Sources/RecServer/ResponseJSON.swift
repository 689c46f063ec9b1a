import RecEngine

/// Writes a ``RecommendationResponse`` as JSON straight into bytes — the hot path of every
/// recommendation route, without an `Encoder` and its boxing.
///
/// The text is what `JSONEncoder` with sorted keys gives: `{"items":[{"item","metadata"?,
/// "score"}],"models":{},"notes":[],"pipeline":"","timings":{}}`; a score that overflowed is
/// the string `"Infinity"`, `"-Infinity"` or `"NaN"` (JSON has no such numbers).
///
/// - Complexity: O(items + metadata fields + timings).
enum ResponseJSON {
    static func write(_ response: RecommendationResponse, into out: inout [UInt8]) {
        out.append(contentsOf: #"{"items":["#.utf8)
        for (n, item) in response.items.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"item":"#.utf8)
            JSONValue.writeString(item.item, into: &out)
            if let metadata = item.metadata {
                out.append(contentsOf: #","metadata":"#.utf8)
                writeObject(metadata.sorted { $0.key < $1.key }, into: &out) { JSONValue.writeString($0, into: &$1) }
            }
            out.append(contentsOf: #","score":"#.utf8)
            writeScore(item.score, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #"],"models":"#.utf8)
        writeObject(response.models.sorted { $0.key < $1.key }, into: &out) { $1.append(contentsOf: String($0).utf8) }
        out.append(contentsOf: #","notes":["#.utf8)
        for (n, note) in response.notes.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            JSONValue.writeString(note, into: &out)
        }
        out.append(contentsOf: #"],"pipeline":"#.utf8)
        JSONValue.writeString(response.pipeline, into: &out)
        out.append(contentsOf: #","timings":"#.utf8)
        writeObject(response.timings.sorted { $0.key < $1.key }, into: &out) { JSONValue.writeNumber($0, into: &$1) }
        out.append(UInt8(ascii: "}"))
    }

    static func writeObject<Value>(_ fields: [(key: String, value: Value)], into out: inout [UInt8], value: (Value, inout [UInt8]) -> Void) {
        out.append(UInt8(ascii: "{"))
        for (n, field) in fields.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            JSONValue.writeString(field.key, into: &out)
            out.append(UInt8(ascii: ":"))
            value(field.value, &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    static func writeScore(_ score: Float, into out: inout [UInt8]) {
        if score.isNaN { out.append(contentsOf: #""NaN""#.utf8) }
        else if score.isInfinite { out.append(contentsOf: (score > 0 ? #""Infinity""# : #""-Infinity""#).utf8) }
        else { out.append(contentsOf: score.description.utf8) }
    }
}
