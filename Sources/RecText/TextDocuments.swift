import FoundationEssentials
import RecKernels
import RecModels

/// One document: a unique id, its text, and an optional label to show (a title).
public struct TextDocument: Sendable, Equatable, Codable {
    /// The document's id, unique within a collection.
    public var id: String
    /// The text that is indexed.
    public var text: String
    /// A label to show with results (a title); nil for none.
    public var label: String?

    /// A document with `id`, `text` and an optional `label`.
    public init(id: String, text: String, label: String? = nil) {
        self.id = id
        self.text = text
        self.label = label
    }
}

/// Reading documents from files: CSV/TSV through ``DelimitedFile`` (RFC 4180, read in place)
/// and JSON (an array of objects, or JSON Lines: one object per line).
public enum TextDocuments {
    /// The documents of a delimited file with a header: the id column, the text columns joined
    /// by a space, an optional label column. Empty texts are kept (they match nothing).
    ///
    /// - Throws: ``DataError`` (missing column or field, malformed record, no records),
    ///   ``TextModelError/duplicateDocument(_:)``, ``TextModelError/invalidOption(_:)``.
    /// - Complexity: O(file size).
    public static func readCSV(path: String, idColumn: String, textColumns: [String], labelColumn: String? = nil,
                               delimiter: String = ",") throws -> [TextDocument] {
        guard !textColumns.isEmpty else { throw TextModelError.invalidOption("name at least one text column") }
        let file = try DelimitedFile(path: path, delimiter: delimiter)
        let id = try file.column(named: idColumn)
        let texts = try textColumns.map { try file.column(named: $0) }
        let label = try labelColumn.map { try file.column(named: $0) }
        var documents: [TextDocument] = []
        try file.forEachRecord { record in
            let parts = try texts.map { record.string(try record.require($0)) }.filter { !$0.isEmpty }
            documents.append(TextDocument(id: record.string(try record.require(id)), text: parts.joined(separator: " "),
                                          label: try label.map { record.string(try record.require($0)) }))
        }
        guard !documents.isEmpty else { throw DataError.empty(path: path) }
        try checkUniqueIDs(documents)
        return documents
    }

    /// The documents of a JSON file: an array of objects, or JSON Lines. Field values may be
    /// strings, numbers or booleans (numbers become their decimal text); a missing or null text
    /// field counts as empty.
    ///
    /// - Throws: ``DataError/malformedRecord(path:line:reason:)`` for invalid JSON or an object
    ///   without the id field, ``DataError/empty(path:)``, ``TextModelError/duplicateDocument(_:)``.
    public static func readJSON(path: String, idField: String, textFields: [String], labelField: String? = nil) throws -> [TextDocument] {
        guard !textFields.isEmpty else { throw TextModelError.invalidOption("name at least one text field") }
        let mapping = try MappedFile(path: path)
        let data = mapping.withUnsafeBytes { Data($0) }
        let firstByte = data.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        var objects: [(line: Int, object: [String: JSONScalar])] = []
        let decoder = JSONDecoder()
        if firstByte == UInt8(ascii: "[") {
            do {
                objects = try decoder.decode([[String: JSONScalar]].self, from: data).map { (1, $0) }
            } catch {
                throw DataError.malformedRecord(path: path, line: 1, reason: "invalid JSON: \(error)")
            }
        } else {
            for (index, line) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated()
            where line.contains(where: { ![0x20, 0x09, 0x0D].contains($0) }) {
                do {
                    objects.append((index + 1, try decoder.decode([String: JSONScalar].self, from: Data(line))))
                } catch {
                    throw DataError.malformedRecord(path: path, line: index + 1, reason: "invalid JSON object: \(error)")
                }
            }
        }
        guard !objects.isEmpty else { throw DataError.empty(path: path) }
        let documents = try objects.map { line, object in
            guard let id = object[idField]?.text else {
                throw DataError.malformedRecord(path: path, line: line, reason: "an object has no '\(idField)' field")
            }
            let text = textFields.compactMap { object[$0]?.text }.filter { !$0.isEmpty }.joined(separator: " ")
            return TextDocument(id: id, text: text, label: labelField.flatMap { object[$0]?.text })
        }
        try checkUniqueIDs(documents)
        return documents
    }

    /// - Throws: ``TextModelError/duplicateDocument(_:)`` for the first repeated id.
    public static func checkUniqueIDs(_ documents: [TextDocument]) throws {
        _ = try positions(of: documents.map(\.id)) { TextModelError.duplicateDocument($0) }
    }
}

/// The position of each of `strings`; throws `repeated(string)` for the first string that
/// appears twice. - Complexity: O(strings).
func positions(of strings: [String], repeated: (String) -> TextModelError) throws -> [String: Int] {
    var positions: [String: Int] = [:]
    positions.reserveCapacity(strings.count)
    for (position, string) in strings.enumerated() where positions.updateValue(position, forKey: string) != nil {
        throw repeated(string)
    }
    return positions
}

/// A JSON field value read as text.
struct JSONScalar: Decodable {
    let text: String?

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { text = nil }
        else if let string = try? container.decode(String.self) { text = string }
        else if let integer = try? container.decode(Int.self) { text = String(integer) }
        else if let number = try? container.decode(Double.self) { text = String(number) }
        else if let flag = try? container.decode(Bool.self) { text = String(flag) }
        else { text = nil }  // nested arrays and objects are not text fields
    }
}
