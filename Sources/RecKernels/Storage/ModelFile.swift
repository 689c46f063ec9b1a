/// The flat binary file format for tables and models: a fixed header, a section table, a
/// metadata blob (JSON by convention) and the sections' payloads, each 64-byte aligned so a
/// float section can be used in place from a read-only memory mapping.
///
/// Layout (all integers little-endian):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `RECMODEL` |
/// | 8 | 4 | format version (``currentVersion``) |
/// | 12 | 4 | section count |
/// | 16 | 8 | metadata offset |
/// | 24 | 8 | metadata length |
/// | 32 | 8 | total file length |
/// | 40 | 4 | CRC-32C of the header and section table, computed with this field zero |
/// | 44 | 4 | CRC-32C of the metadata |
/// | 48 | 16 | reserved, zero |
/// | 64 | 80 × n | section entries: name (32 bytes, UTF-8, NUL-padded), element type (4),
///   payload CRC-32C (4), rows (8), columns (8), payload offset (8), payload length (8),
///   reserved (8) |
///
/// Every check on open names what failed: see ``ModelFileError``.
public enum ModelFileFormat {
    /// The eight bytes every file starts with.
    public static let magic: [UInt8] = Array("RECMODEL".utf8)
    /// The version this code writes and the only one it reads.
    public static let currentVersion: UInt32 = 1
    static let headerSize = 64
    static let entrySize = 80
    static let maximumNameBytes = 31
    static let payloadAlignment = 64
}

/// The type of a section's elements.
public enum ModelFileElementType: UInt32, Sendable, CustomStringConvertible {
    case float32 = 1
    case int32 = 2
    case int64 = 3
    case uint8 = 4

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float32, .int32: 4
        case .int64: 8
        case .uint8: 1
        }
    }

    public var description: String {
        switch self {
        case .float32: "float32"
        case .int32: "int32"
        case .int64: "int64"
        case .uint8: "uint8"
        }
    }
}

/// Why a model file was refused.
public enum ModelFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file ends before `part` does: it needs `needed` bytes, it has `actual`.
    case truncated(path: String, part: String, needed: Int, actual: Int)
    /// The file is longer than its header says.
    case trailingBytes(path: String, expected: Int, actual: Int)
    /// The first eight bytes are not `RECMODEL`.
    case badMagic(path: String)
    /// A format version this code does not read.
    case unsupportedVersion(path: String, version: UInt32)
    /// A stored CRC-32C does not match the bytes: `part` is "header", "metadata" or a section.
    case checksumMismatch(path: String, part: String, stored: UInt32, computed: UInt32)
    /// A header field that cannot be right (an offset or length beyond the file, an overlap).
    case invalidHeader(path: String, field: String, reason: String)
    /// A section entry that cannot be right (unknown type, misaligned, sizes that disagree,
    /// a payload overlapping another part of the file).
    case invalidSection(path: String, section: String, reason: String)
    /// No section of that name, or one of another type or shape than asked for.
    case missingSection(path: String, section: String)
    case wrongSectionType(path: String, section: String, expected: ModelFileElementType, actual: ModelFileElementType)
    /// A section name that is empty, too long, repeated or not UTF-8.
    case invalidName(String)

    public var description: String {
        switch self {
        case let .truncated(path, part, needed, actual):
            "\(path): truncated: the \(part) needs \(needed) bytes but the file has \(actual)"
        case let .trailingBytes(path, expected, actual):
            "\(path): the header says the file is \(expected) bytes long but it has \(actual)"
        case let .badMagic(path):
            "\(path): not a model file (the first 8 bytes are not RECMODEL)"
        case let .unsupportedVersion(path, version):
            "\(path): format version \(version) is not supported (this build reads version \(ModelFileFormat.currentVersion))"
        case let .checksumMismatch(path, part, stored, computed):
            "\(path): checksum mismatch in the \(part): stored CRC-32C \(hex(stored)), computed \(hex(computed)); the file is corrupt"
        case let .invalidHeader(path, field, reason):
            "\(path): header field '\(field)' is invalid: \(reason)"
        case let .invalidSection(path, section, reason):
            "\(path): section '\(section)' is invalid: \(reason)"
        case let .missingSection(path, section):
            "\(path): has no section named '\(section)'"
        case let .wrongSectionType(path, section, expected, actual):
            "\(path): section '\(section)' holds \(actual), expected \(expected)"
        case let .invalidName(name):
            "invalid section name '\(name)': 1 to \(ModelFileFormat.maximumNameBytes) UTF-8 bytes, unique in the file"
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}

/// How much of a file to check when opening it.
public enum ModelFileVerification: Sendable {
    /// Structure, header and metadata checksums, and every section's payload checksum: reads
    /// the whole file once (about 10 GB/s with SSE4.2).
    case full
    /// Structure and the header and metadata checksums only: opening costs O(sections), whatever
    /// the payload size. Payload corruption goes unnoticed; use it for files you just verified.
    case structure
}

/// One section of an open ``ModelFile``.
public struct ModelFileSection: Sendable, Equatable {
    /// The section's name: 1 to 31 bytes of UTF-8, unique in the file.
    public let name: String
    /// The type of its elements.
    public let elementType: ModelFileElementType
    /// Number of rows.
    public let rows: Int
    /// Elements per row (a float table's dimensions).
    public let columns: Int
    let offset: Int
    let length: Int
    let checksum: UInt32
}

/// A model file opened by memory-mapping: its metadata and named sections. Float sections come
/// back as ``EmbeddingTable``s that read the mapping in place.
public struct ModelFile: Sendable {
    /// The sections, in file order.
    public let sections: [ModelFileSection]
    /// The metadata bytes (JSON by convention; empty when none was written).
    public let metadata: [UInt8]
    /// The path it was opened from.
    public var path: String { mapping.path }
    let mapping: MappedFile
    /// Whether payloads were read when opening (then float sections are also checked finite).
    let verification: ModelFileVerification

    /// Opens and checks `path`.
    ///
    /// - Throws: ``ModelFileError`` naming the check that failed, or ``SystemCallError``.
    /// - Complexity: O(file size) with ``ModelFileVerification/full``, O(sections) otherwise.
    public init(contentsOf path: String, verification: ModelFileVerification = .full) throws {
        let mapping = try MappedFile(path: path)
        let bytes = mapping.bytes
        let size = bytes.count
        func need(_ needed: Int, _ part: String) throws {
            if needed > size { throw ModelFileError.truncated(path: path, part: part, needed: needed, actual: size) }
        }
        try need(ModelFileFormat.headerSize, "header")
        guard Array(bytes[0..<8]) == ModelFileFormat.magic else { throw ModelFileError.badMagic(path: path) }
        let version: UInt32 = bytes.load(at: 8)
        guard version == ModelFileFormat.currentVersion else {
            throw ModelFileError.unsupportedVersion(path: path, version: version)
        }
        let sectionCount = Int(bytes.load(at: 12) as UInt32)
        let tableEnd = ModelFileFormat.headerSize + sectionCount * ModelFileFormat.entrySize  // < 2^39: no overflow
        try need(tableEnd, "section table (\(sectionCount) sections)")
        let storedHeaderCRC: UInt32 = bytes.load(at: 40)
        var headerBytes = Array(bytes[0..<tableEnd])
        headerBytes.store(UInt32(0), at: 40)
        let headerCRC = headerBytes.withUnsafeBytes { Kernels.crc32c($0) }
        guard headerCRC == storedHeaderCRC else {
            throw ModelFileError.checksumMismatch(path: path, part: "header", stored: storedHeaderCRC, computed: headerCRC)
        }
        // Every 64-bit field is checked before it becomes an Int or takes part in arithmetic: a
        // header with a valid CRC may still hold any value (a hostile or buggy writer).
        func field(_ at: Int, _ name: String, section: String? = nil) throws -> Int {
            let raw: UInt64 = bytes.load(at: at)
            guard raw <= UInt64(size) else {
                let reason = "\(name) \(raw) exceeds the file's \(size) bytes"
                if let section { throw ModelFileError.invalidSection(path: path, section: section, reason: reason) }
                throw ModelFileError.invalidHeader(path: path, field: name, reason: reason)
            }
            return Int(raw)
        }
        let fileLengthRaw: UInt64 = bytes.load(at: 32)
        if fileLengthRaw > UInt64(size) {
            throw ModelFileError.truncated(path: path, part: "file", needed: fileLengthRaw > UInt64(Int.max) ? Int.max : Int(fileLengthRaw), actual: size)
        }
        if Int(fileLengthRaw) < size { throw ModelFileError.trailingBytes(path: path, expected: Int(fileLengthRaw), actual: size) }

        let metadataOffset = try field(16, "metadata offset"), metadataLength = try field(24, "metadata length")
        let metadataEnd = metadataOffset + metadataLength  // both ≤ size: no overflow
        try need(metadataEnd, "metadata")
        if metadataLength > 0 && metadataOffset < tableEnd {
            throw ModelFileError.invalidHeader(path: path, field: "metadata offset",
                                               reason: "\(metadataOffset) overlaps the header and section table (they end at \(tableEnd))")
        }
        let metadata = Array(bytes[metadataOffset ..< metadataEnd])
        let storedMetadataCRC: UInt32 = bytes.load(at: 44)
        let metadataCRC = metadata.withUnsafeBytes { Kernels.crc32c($0) }
        guard metadataCRC == storedMetadataCRC else {
            throw ModelFileError.checksumMismatch(path: path, part: "metadata", stored: storedMetadataCRC, computed: metadataCRC)
        }

        var sections: [ModelFileSection] = []
        // Byte ranges already claimed: the header and table, the metadata, each payload so far.
        var claimed: [(range: Range<Int>, owner: String)] = [(0 ..< tableEnd, "header and section table")]
        if metadataLength > 0 { claimed.append((metadataOffset ..< metadataEnd, "metadata")) }
        for index in 0..<sectionCount {
            let entry = ModelFileFormat.headerSize + index * ModelFileFormat.entrySize
            let nameBytes = bytes[entry ..< entry + 32].prefix { $0 != 0 }
            guard let name = String(validating: nameBytes, as: UTF8.self), !name.isEmpty else {
                throw ModelFileError.invalidSection(path: path, section: "#\(index)", reason: "name is empty or not UTF-8")
            }
            guard !sections.contains(where: { $0.name == name }) else {
                throw ModelFileError.invalidSection(path: path, section: name, reason: "the name is used by an earlier section too")
            }
            let rawType: UInt32 = bytes.load(at: entry + 32)
            guard let type = ModelFileElementType(rawValue: rawType) else {
                throw ModelFileError.invalidSection(path: path, section: name, reason: "unknown element type \(rawType)")
            }
            let rowsRaw: UInt64 = bytes.load(at: entry + 40), columnsRaw: UInt64 = bytes.load(at: entry + 48)
            let offset = try field(entry + 56, "payload offset", section: name)
            let length = try field(entry + 64, "payload length", section: name)
            let (elements, overflow) = rowsRaw.multipliedReportingOverflow(by: columnsRaw)
            guard !overflow, elements.multipliedReportingOverflow(by: UInt64(type.size)) == (UInt64(length), false) else {
                throw ModelFileError.invalidSection(path: path, section: name,
                                                    reason: "\(rowsRaw) × \(columnsRaw) \(type) does not take \(length) bytes")
            }
            // rows × columns × size == length ≤ file size, so both fit an Int; a zero-length
            // section may still claim absurd row or column counts.
            guard rowsRaw <= UInt64(Int32.max), columnsRaw <= UInt64(Int32.max) else {
                throw ModelFileError.invalidSection(path: path, section: name,
                                                    reason: "\(rowsRaw) × \(columnsRaw): rows and columns must be at most \(Int32.max)")
            }
            let rows = Int(rowsRaw), columns = Int(columnsRaw)
            guard offset % ModelFileFormat.payloadAlignment == 0 else {
                throw ModelFileError.invalidSection(path: path, section: name, reason: "payload offset \(offset) is not 64-byte aligned")
            }
            try need(offset + length, "section '\(name)'")
            let payload = offset ..< offset + length
            if length > 0 {
                if let other = claimed.first(where: { $0.range.overlaps(payload) }) {
                    throw ModelFileError.invalidSection(path: path, section: name,
                                                        reason: "payload bytes \(payload.lowerBound)..<\(payload.upperBound) overlap the \(other.owner) (bytes \(other.range.lowerBound)..<\(other.range.upperBound))")
                }
                claimed.append((payload, "section '\(name)'"))
            }
            let section = ModelFileSection(name: name, elementType: type, rows: rows, columns: columns,
                                           offset: offset, length: length, checksum: bytes.load(at: entry + 36))
            if verification == .full {
                let computed = Kernels.crc32c(UnsafeRawBufferPointer(rebasing: bytes[payload]))
                guard computed == section.checksum else {
                    throw ModelFileError.checksumMismatch(path: path, part: "section '\(name)'", stored: section.checksum, computed: computed)
                }
            }
            sections.append(section)
        }
        self.sections = sections
        self.metadata = metadata
        self.mapping = mapping
        self.verification = verification
    }

    /// The section called `name`, if any.
    public func section(_ name: String) -> ModelFileSection? {
        sections.first { $0.name == name }
    }

    /// The float section `name` as a table that reads the mapping in place (no copy).
    ///
    /// A section holding non-finite values is refused (``ModelFileError/invalidSection(path:section:reason:)``
    /// naming the row and column): the writer never stores them, so finding one means the file
    /// did not come from it. The check reads the payload, so it is made only for files opened with
    /// ``ModelFileVerification/full``. - Complexity: O(rows × columns) then, O(1) otherwise.
    public func table(_ name: String) throws -> EmbeddingTable {
        let section = try self.section(name, type: .float32)
        guard section.columns >= 1 else {
            throw ModelFileError.invalidSection(path: path, section: name, reason: "a table needs at least one column")
        }
        let storage = FloatStorage(mapping: mapping, byteOffset: section.offset, count: section.rows * section.columns)
        let table = EmbeddingTable(rows: section.rows, dimensions: section.columns, storage: storage)
        if verification == .full, let (row, column) = table.firstNonFinite() {
            throw ModelFileError.invalidSection(path: path, section: name, reason: "non-finite value at row \(row), column \(column)")
        }
        return table
    }

    /// A copy of the int32 section `name`, row-major.
    public func int32s(_ name: String) throws -> [Int32] { try elements(name, type: .int32) }
    /// A copy of the int64 section `name`, row-major.
    public func int64s(_ name: String) throws -> [Int64] { try elements(name, type: .int64) }
    /// A copy of the uint8 section `name`.
    public func bytes(_ name: String) throws -> [UInt8] { try elements(name, type: .uint8) }

    private func elements<T>(_ name: String, type: ModelFileElementType) throws -> [T] {
        let section = try self.section(name, type: type)
        let source = UnsafeRawBufferPointer(rebasing: mapping.bytes[section.offset ..< section.offset + section.length])
        return Array(source.bindMemory(to: T.self))
    }

    private func section(_ name: String, type: ModelFileElementType) throws -> ModelFileSection {
        guard let section = section(name) else { throw ModelFileError.missingSection(path: path, section: name) }
        guard section.elementType == type else {
            throw ModelFileError.wrongSectionType(path: path, section: name, expected: type, actual: section.elementType)
        }
        return section
    }
}

/// Builds a model file and writes it atomically: to a temporary file in the same directory,
/// fsync, rename over the destination, fsync the directory. Readers see the old file or the new
/// one, never a partial one.
public struct ModelFileWriter {
    private enum Payload {
        case table(EmbeddingTable)
        case raw([UInt8])
    }
    private var entries: [(name: String, type: ModelFileElementType, rows: Int, columns: Int, payload: Payload)] = []

    /// Metadata stored with the file (JSON by convention).
    public var metadata: [UInt8] = []

    /// An empty file: no sections, no metadata.
    public init() {}

    /// Adds `table` as a float32 section.
    ///
    /// - Throws: ``ModelFileError/invalidName(_:)``, ``MatrixError/nonFinite(row:column:)``.
    public mutating func add(_ table: EmbeddingTable, named name: String) throws {
        try checkName(name)
        if let (row, column) = table.firstNonFinite() { throw MatrixError.nonFinite(row: row, column: column) }
        entries.append((name, .float32, table.rows, table.dimensions, .table(table)))
    }

    /// Adds `values` as an int32 section of `values.count / columns` rows.
    public mutating func add(_ values: [Int32], columns: Int = 1, named name: String) throws {
        try addRaw(values, type: .int32, columns: columns, name: name)
    }

    /// Adds `values` as an int64 section.
    public mutating func add(_ values: [Int64], columns: Int = 1, named name: String) throws {
        try addRaw(values, type: .int64, columns: columns, name: name)
    }

    /// Adds `bytes` as a uint8 section (strings, serialized maps).
    public mutating func add(bytes: [UInt8], named name: String) throws {
        try addRaw(bytes, type: .uint8, columns: 1, name: name)
    }

    private mutating func addRaw<T>(_ values: [T], type: ModelFileElementType, columns: Int, name: String) throws {
        try checkName(name)
        guard columns >= 1, values.count % columns == 0 else {
            throw MatrixError.shapeMismatch(expected: columns, actual: values.count)
        }
        let bytes = values.withUnsafeBytes { Array($0) }
        entries.append((name, type, values.count / columns, columns, .raw(bytes)))
    }

    private func checkName(_ name: String) throws {
        let count = name.utf8.count
        guard count >= 1, count <= ModelFileFormat.maximumNameBytes, !name.utf8.contains(0),
              !entries.contains(where: { $0.name == name })
        else { throw ModelFileError.invalidName(name) }
    }

    /// Writes the file to `path` atomically, replacing any file there.
    ///
    /// - Throws: ``SystemCallError`` for I/O failures; the destination is then untouched.
    /// - Complexity: O(total payload bytes).
    public func write(to path: String) throws {
        let align = ModelFileFormat.payloadAlignment
        func aligned(_ value: Int) -> Int { (value + align - 1) / align * align }
        let tableEnd = ModelFileFormat.headerSize + entries.count * ModelFileFormat.entrySize
        var offset = aligned(tableEnd + metadata.count)
        var fileLength = tableEnd + metadata.count
        var payloadOffsets: [Int] = []
        var header = [UInt8](repeating: 0, count: tableEnd)
        for (index, entry) in entries.enumerated() {
            let base = ModelFileFormat.headerSize + index * ModelFileFormat.entrySize
            let length = entry.rows * entry.columns * entry.type.size
            payloadOffsets.append(offset)
            fileLength = offset + length
            let checksum = withPayloadBytes(entry.payload) { Kernels.crc32c($0) }
            for (i, byte) in entry.name.utf8.enumerated() { header[base + i] = byte }
            header.store(entry.type.rawValue, at: base + 32)
            header.store(checksum, at: base + 36)
            header.store(UInt64(entry.rows), at: base + 40)
            header.store(UInt64(entry.columns), at: base + 48)
            header.store(UInt64(offset), at: base + 56)
            header.store(UInt64(length), at: base + 64)
            offset = aligned(offset + length)
        }
        header.replaceSubrange(0..<8, with: ModelFileFormat.magic)
        header.store(ModelFileFormat.currentVersion, at: 8)
        header.store(UInt32(entries.count), at: 12)
        header.store(UInt64(tableEnd), at: 16)
        header.store(UInt64(metadata.count), at: 24)
        header.store(UInt64(fileLength), at: 32)
        header.store(metadata.withUnsafeBytes { Kernels.crc32c($0) }, at: 44)
        header.store(header.withUnsafeBytes { Kernels.crc32c($0) }, at: 40)  // field 40 is still zero

        try AtomicFile.write(to: path) { emit in
            var written = 0
            func append(_ bytes: UnsafeRawBufferPointer) throws {
                try emit(bytes)
                written += bytes.count
            }
            try header.withUnsafeBytes(append)
            try metadata.withUnsafeBytes(append)
            for (index, entry) in entries.enumerated() {
                if payloadOffsets[index] > written {
                    try [UInt8](repeating: 0, count: payloadOffsets[index] - written).withUnsafeBytes(append)
                }
                try withPayloadBytes(entry.payload, append)
            }
        }
    }

    private func withPayloadBytes<R>(_ payload: Payload, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch payload {
        case let .table(table): try table.withUnsafeBufferPointer { try body(UnsafeRawBufferPointer($0)) }
        case let .raw(bytes): try bytes.withUnsafeBytes(body)
        }
    }
}

extension EmbeddingTable {
    /// The section name a table saved on its own is stored under.
    public static let fileSectionName = "embeddings"

    /// Saves the table as a model file with one float32 section, atomically.
    ///
    /// - Throws: ``MatrixError/nonFinite(row:column:)`` (nothing is written), ``SystemCallError``.
    public func save(to path: String) throws {
        var writer = ModelFileWriter()
        try writer.add(self, named: Self.fileSectionName)
        try writer.write(to: path)
    }

    /// Opens a table saved with ``save(to:)`` by memory-mapping it: no copy, and with
    /// ``ModelFileVerification/structure`` no read of the payload either.
    ///
    /// - Throws: ``ModelFileError`` naming the failed check, ``SystemCallError``.
    public init(contentsOf path: String, verification: ModelFileVerification = .full) throws {
        self = try ModelFile(contentsOf: path, verification: verification).table(Self.fileSectionName)
    }
}

extension UnsafeRawBufferPointer {
    func load<T: FixedWidthInteger>(at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension Array where Element == UInt8 {
    mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self) }
    }

}
