import RecKernels

/// Why input data was refused.
public enum DataError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A record that cannot be read, with the 1-based line it starts on.
    case malformedRecord(path: String, line: Int, reason: String)
    /// A column asked for by name that the header does not have.
    case missingColumn(path: String, column: String, available: [String])
    /// A column asked for by position that a record does not have.
    case missingField(path: String, line: Int, column: Int, fields: Int)
    /// An option that makes no sense (empty delimiter, header-less file asked for names).
    case invalidOption(String)
    /// Input with nothing in it.
    case empty(path: String)

    public var description: String {
        switch self {
        case let .malformedRecord(path, line, reason): "\(path):\(line): \(reason)"
        case let .missingColumn(path, column, available):
            "\(path): no column named '\(column)'; the header has \(available.map { "'\($0)'" }.joined(separator: ", "))"
        case let .missingField(path, line, column, fields): "\(path):\(line): no column \(column + 1) (the record has \(fields) fields)"
        case let .invalidOption(reason): reason
        case let .empty(path): "\(path): no records"
        }
    }
}

/// A delimited text file — CSV, TSV, MovieLens' `::` — read in place from a memory mapping.
///
/// Fields may be quoted with `"` (RFC 4180): a quoted field may hold the delimiter, line breaks
/// and doubled quotes. Lines end in LF, CRLF or a lone CR; blank lines are skipped; a leading
/// UTF-8 byte-order mark is skipped. Records are handed to a
/// closure one at a time as views into the mapping, so reading allocates only for the fields
/// turned into strings.
public struct DelimitedFile: Sendable {
    /// The path read.
    public let path: String
    /// The header's column names, when the file has a header.
    public let header: [String]?
    private let file: MappedFile
    private let delimiter: [UInt8]
    private let quoting: Bool
    private let dataStart: Int
    private let dataStartLine: Int

    /// Opens `path`.
    ///
    /// - Parameters:
    ///   - delimiter: one or more characters between fields (`","`, `"\t"`, `"::"`).
    ///   - hasHeader: whether the first record names the columns.
    ///   - quoting: whether `"` quotes fields (turn off for formats that use quotes literally).
    /// - Throws: ``DataError``, ``SystemCallError``.
    public init(path: String, delimiter: String = ",", hasHeader: Bool = true, quoting: Bool = true) throws {
        guard !delimiter.isEmpty else { throw DataError.invalidOption("the delimiter must not be empty") }
        let file = try MappedFile(path: path), delimiterBytes = Array(delimiter.utf8)
        self.path = path
        self.file = file
        self.delimiter = delimiterBytes
        self.quoting = quoting
        // A UTF-8 byte-order mark (what spreadsheet programs write) is not part of the first field.
        let start = file.withUnsafeBytes { $0.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0 }
        if hasHeader {
            var names: [String]? = nil
            var end = start, line = 1
            try file.withUnsafeBytes { bytes in
                var parser = Parser(bytes: bytes, delimiter: delimiterBytes, quoting: quoting, path: path)
                parser.position = start
                if try parser.next({ record in names = (0 ..< record.count).map { record.string($0) } }) {
                    end = parser.position
                    line = parser.line
                }
            }
            guard let names else { throw DataError.empty(path: path) }
            self.header = names
            self.dataStart = end
            self.dataStartLine = line
        } else {
            self.header = nil
            self.dataStart = start
            self.dataStartLine = 1
        }
    }

    /// The position of the column called `name` in the header.
    ///
    /// - Throws: ``DataError/missingColumn(path:column:available:)``, or
    ///   ``DataError/invalidOption(_:)`` for a file without a header.
    public func column(named name: String) throws -> Int {
        guard let header else { throw DataError.invalidOption("\(path) has no header: name columns by position") }
        guard let index = header.firstIndex(of: name) else {
            throw DataError.missingColumn(path: path, column: name, available: header)
        }
        return index
    }

    /// Calls `body` with every record after the header, in file order.
    ///
    /// - Throws: ``DataError/malformedRecord(path:line:reason:)`` for an unterminated quote or
    ///   text after a closing quote, and whatever `body` throws.
    /// - Complexity: O(file size).
    public func forEachRecord(_ body: (DelimitedRecord) throws -> Void) throws {
        try file.withUnsafeBytes { bytes in
            var parser = Parser(bytes: bytes, delimiter: delimiter, quoting: quoting, path: path)
            parser.position = dataStart
            parser.line = dataStartLine
            while try parser.next(body) {}
        }
    }
}

/// One record of a ``DelimitedFile``: views of its fields, valid only inside the closure that
/// received it.
public struct DelimitedRecord {
    /// The 1-based line the record starts on.
    public let line: Int
    let bytes: UnsafeRawBufferPointer
    let fields: UnsafeBufferPointer<FieldRange>
    let path: String

    /// Number of fields.
    public var count: Int { fields.count }

    /// Field `index` as text (quotes removed, doubled quotes undone; invalid UTF-8 repaired).
    public func string(_ index: Int) -> String {
        let field = fields[index]
        let raw = UnsafeRawBufferPointer(rebasing: bytes[field.start ..< field.end])
        guard field.quoted else { return String(decoding: raw, as: UTF8.self) }
        var unescaped: [UInt8] = []
        unescaped.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            unescaped.append(raw[i])
            i += raw[i] == UInt8(ascii: "\"") ? 2 : 1
        }
        return String(decoding: unescaped, as: UTF8.self)
    }

    /// Field `index` as an integer, or nil when it is not one (surrounding spaces allowed).
    public func int(_ index: Int) -> Int? {
        var (i, end) = trimmed(index)
        guard i < end else { return nil }
        var negative = false
        if bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
            negative = bytes[i] == UInt8(ascii: "-")
            i += 1
            guard i < end else { return nil }
        }
        var value = 0
        while i < end {
            let digit = Int(bytes[i]) - 48
            guard digit >= 0 && digit <= 9 else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(digit)
            if o1 || o2 { return nil }
            value = sum
            i += 1
        }
        return negative ? -value : value
    }

    /// Field `index` as a floating-point number, or nil when it is not one.
    public func double(_ index: Int) -> Double? {
        if let integer = int(index) { return Double(integer) }
        let (i, end) = trimmed(index)
        return Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[i ..< end]), as: UTF8.self))
    }

    /// Field `index`'s byte range without surrounding spaces.
    private func trimmed(_ index: Int) -> (Int, Int) {
        let field = fields[index]
        var i = field.start, end = field.end
        while i < end && bytes[i] == UInt8(ascii: " ") { i += 1 }
        while end > i && bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
        return (i, end)
    }

    /// Field `index`, or ``DataError/missingField(path:line:column:fields:)``.
    public func require(_ index: Int) throws -> Int {
        guard index < count else { throw DataError.missingField(path: path, line: line, column: index, fields: count) }
        return index
    }
}

struct FieldRange {
    var start: Int
    var end: Int
    var quoted: Bool
}

/// The record scanner: one pass over the bytes, no copies.
private struct Parser {
    let bytes: UnsafeRawBufferPointer
    let delimiter: [UInt8]
    let quoting: Bool
    let path: String
    var position = 0
    var line = 1
    private var fields: [FieldRange] = []

    init(bytes: UnsafeRawBufferPointer, delimiter: [UInt8], quoting: Bool, path: String) {
        self.bytes = bytes
        self.delimiter = delimiter
        self.quoting = quoting
        self.path = path
    }

    private func delimiterAt(_ i: Int) -> Bool {
        if bytes[i] != delimiter[0] { return false }
        if delimiter.count == 1 { return true }
        guard i + delimiter.count <= bytes.count else { return false }
        for k in 1 ..< delimiter.count where bytes[i + k] != delimiter[k] { return false }
        return true
    }

    /// Whether a line ends at `i`: LF, CRLF or a lone CR (classic Mac OS files).
    private func lineEndAt(_ i: Int) -> Bool {
        bytes[i] == UInt8(ascii: "\n") || bytes[i] == UInt8(ascii: "\r")
    }

    /// The length of the line ending at `i`: 2 for CRLF, 1 for LF or a lone CR.
    private func lineEndLength(_ i: Int) -> Int {
        bytes[i] == UInt8(ascii: "\r") && i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\n") ? 2 : 1
    }

    /// Hands the next non-blank record to `body`; false at the end.
    mutating func next(_ body: (DelimitedRecord) throws -> Void) throws -> Bool {
        let quote = UInt8(ascii: "\"")
        while position < bytes.count {
            // Skip blank lines.
            if lineEndAt(position) { position += lineEndLength(position); line += 1; continue }
            fields.removeAll(keepingCapacity: true)
            let startLine = line
            var i = position
            while true {
                if quoting && i < bytes.count && bytes[i] == quote {
                    // Quoted field: runs to the quote not followed by another quote.
                    let start = i + 1
                    var j = start
                    while true {
                        guard j < bytes.count else {
                            throw DataError.malformedRecord(path: path, line: startLine, reason: "unterminated quoted field")
                        }
                        if bytes[j] == quote {
                            if j + 1 < bytes.count && bytes[j + 1] == quote { j += 2; continue }
                            break
                        }
                        if lineEndAt(j) { line += 1; j += lineEndLength(j); continue }
                        j += 1
                    }
                    fields.append(FieldRange(start: start, end: j, quoted: true))
                    i = j + 1
                    if i >= bytes.count || lineEndAt(i) { break }
                    guard delimiterAt(i) else {
                        throw DataError.malformedRecord(path: path, line: line, reason: "text after a closing quote in field \(fields.count)")
                    }
                    i += delimiter.count
                } else {
                    let start = i
                    while i < bytes.count && !lineEndAt(i) && !delimiterAt(i) { i += 1 }
                    fields.append(FieldRange(start: start, end: i, quoted: false))
                    if i >= bytes.count || lineEndAt(i) { break }
                    i += delimiter.count
                }
            }
            if i < bytes.count {
                position = i + lineEndLength(i)
                line += 1
            } else {
                position = bytes.count
            }
            try fields.withUnsafeBufferPointer { view in
                try body(DelimitedRecord(line: startLine, bytes: bytes, fields: view, path: path))
            }
            return true
        }
        return false
    }
}
