/// NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), so factors move between this engine
/// and Python (implicit, gensim, numpy) without glue.
///
/// Reading accepts little-endian float32 (`<f4`) and float64 (`<f8`, converted to float32) arrays
/// in C order, two-dimensional (rows × dimensions) or one-dimensional (read as n × 1).
/// Writing produces version 1.0, `<f4`, C order, shape (rows, dimensions): what
/// `numpy.load` returns as a float32 array.
public enum NumPyFile {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Reads an `.npy` file into a heap table.
    ///
    /// - Throws: ``NumPyError`` naming what is unsupported or malformed,
    ///   ``MatrixError/nonFinite(row:column:)``, ``SystemCallError``.
    /// - Complexity: O(file size).
    public static func read(_ path: String) throws -> EmbeddingTable {
        let file = try MappedFile(path: path)
        return try parse(file.bytes, path: path)
    }

    /// Writes `table` as a float32, C-order `.npy` file (version 1.0), atomically.
    public static func write(_ table: EmbeddingTable, to path: String) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(table.rows), \(table.dimensions)), }"
        // Magic (6) + version (2) + length (2) + header + newline is a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes = magic + [1, 0]
        bytes.append(UInt8(header.utf8.count & 0xFF))
        bytes.append(UInt8(header.utf8.count >> 8))
        bytes += Array(header.utf8)
        table.withUnsafeBufferPointer { bytes += UnsafeRawBufferPointer($0) }
        try AtomicFile.write(bytes, to: path)
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> EmbeddingTable {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw NumPyError.notNumPy(path: path) }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw NumPyError.truncated(path: path) }
            headerLength = Int(bytes.load(at: 8) as UInt32)
            headerStart = 12
        default:
            throw NumPyError.unsupported(path: path, what: "format version \(major).\(bytes[7])")
        }
        guard headerStart + headerLength <= bytes.count else { throw NumPyError.truncated(path: path) }
        guard let header = String(validating: bytes[headerStart ..< headerStart + headerLength], as: UTF8.self) else {
            throw NumPyError.malformedHeader(path: path, header: "")
        }
        let fields = try parseHeader(header, path: path)
        guard !fields.fortranOrder else {
            throw NumPyError.unsupported(path: path, what: "Fortran order (save with numpy.ascontiguousarray)")
        }
        let elementSize: Int
        switch fields.descr {
        case "<f4", "=f4": elementSize = 4
        case "<f8", "=f8": elementSize = 8
        default:
            throw NumPyError.unsupported(path: path, what: "dtype \(fields.descr) (float32 '<f4' or float64 '<f8' only)")
        }
        let (rows, dimensions): (Int, Int)
        switch fields.shape.count {
        case 1: (rows, dimensions) = (fields.shape[0], 1)
        case 2: (rows, dimensions) = (fields.shape[0], fields.shape[1])
        default:
            throw NumPyError.unsupported(path: path, what: "\(fields.shape.count)-dimensional arrays (1 or 2 only)")
        }
        guard dimensions >= 1, rows <= EmbeddingTable.maximumRows, dimensions <= EmbeddingTable.maximumRows else {
            throw NumPyError.unsupported(path: path, what: "shape \(fields.shape) (rows and columns 1 to \(EmbeddingTable.maximumRows))")
        }
        let dataStart = headerStart + headerLength
        // The shape comes from the file: its product may not fit an Int.
        let (elements, overflow1) = rows.multipliedReportingOverflow(by: dimensions)
        let (dataBytes, overflow2) = elements.multipliedReportingOverflow(by: elementSize)
        guard !overflow1, !overflow2 else {
            throw NumPyError.unsupported(path: path, what: "shape \(fields.shape): more bytes than a 64-bit size can hold")
        }
        guard bytes.count - dataStart == dataBytes else {
            throw NumPyError.sizeMismatch(path: path, expected: dataBytes, actual: bytes.count - dataStart)
        }
        var table = EmbeddingTable(rows: rows, dimensions: dimensions)
        table.withUnsafeMutableBufferPointer { target in
            let source = UnsafeRawBufferPointer(rebasing: bytes[dataStart...])
            if elementSize == 4 {
                UnsafeMutableRawBufferPointer(target).copyMemory(from: source)
            } else {
                for i in 0 ..< target.count {
                    target[i] = Float(source.loadUnaligned(fromByteOffset: i * 8, as: Double.self))
                }
            }
        }
        if let (row, column) = table.firstNonFinite() { throw MatrixError.nonFinite(row: row, column: column) }
        return table
    }

    /// The three keys of a header dictionary, e.g.
    /// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
    static func parseHeader(_ header: String, path: String) throws -> (descr: String, fortranOrder: Bool, shape: [Int]) {
        func value(of key: String) throws -> Substring {
            guard let keyRange = header.firstRange(of: "'\(key)'"),
                  let colon = header[keyRange.upperBound...].firstIndex(of: ":")
            else { throw NumPyError.malformedHeader(path: path, header: header) }
            return header[header.index(after: colon)...].drop { $0 == " " }
        }
        let descrValue = try value(of: "descr")
        guard descrValue.first == "'", let end = descrValue.dropFirst().firstIndex(of: "'") else {
            throw NumPyError.malformedHeader(path: path, header: header)
        }
        let descr = String(descrValue[descrValue.index(after: descrValue.startIndex) ..< end])
        let fortran = try value(of: "fortran_order")
        guard fortran.hasPrefix("True") || fortran.hasPrefix("False") else {
            throw NumPyError.malformedHeader(path: path, header: header)
        }
        let shapeValue = try value(of: "shape")
        guard shapeValue.first == "(", let close = shapeValue.firstIndex(of: ")") else {
            throw NumPyError.malformedHeader(path: path, header: header)
        }
        var shape: [Int] = []
        for part in shapeValue[shapeValue.index(after: shapeValue.startIndex) ..< close].split(separator: ",") {
            let trimmed = part.trimmingPrefix(" ").split(separator: " ").first ?? ""
            if trimmed.isEmpty { continue }
            guard let dimension = Int(trimmed.hasSuffix("L") ? trimmed.dropLast() : trimmed), dimension >= 0 else {
                throw NumPyError.malformedHeader(path: path, header: header)
            }
            shape.append(dimension)
        }
        return (descr, fortran.hasPrefix("True"), shape)
    }
}

/// Why an `.npy` file was refused.
public enum NumPyError: Error, Equatable, Sendable, CustomStringConvertible {
    case notNumPy(path: String)
    case truncated(path: String)
    case malformedHeader(path: String, header: String)
    case unsupported(path: String, what: String)
    case sizeMismatch(path: String, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case let .notNumPy(path): "\(path): not a NumPy .npy file (bad magic)"
        case let .truncated(path): "\(path): truncated .npy header"
        case let .malformedHeader(path, header): "\(path): malformed .npy header: \(header)"
        case let .unsupported(path, what): "\(path): unsupported .npy content: \(what)"
        case let .sizeMismatch(path, expected, actual): "\(path): the header's shape needs \(expected) data bytes, the file has \(actual)"
        }
    }
}

/// Atomic whole-file writes: temporary file, fsync, rename, fsync of the directory. Readers
/// see the old file or the new one, never a partial one; on failure the temporary file is
/// removed and the destination is untouched.
public enum AtomicFile {
    /// Writes `bytes` to `path` atomically. - Throws: ``SystemCallError``.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { emit in try bytes.withUnsafeBytes(emit) }
    }

    /// Calls `produce` with a function that appends bytes to the temporary file, then moves it
    /// to `path` atomically. - Throws: ``SystemCallError``, or what `produce` throws.
    ///
    /// A symbolic link is kept and its target replaced. A destination that is not a regular file
    /// (`/dev/null`, a FIFO) is written into directly, not atomically: renaming over it would
    /// replace the device or pipe with a regular file.
    public static func write(to requested: String, _ produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let path: String
        switch SystemCalls.writeTarget(requested) {
        case let .replace(target):
            path = target
        case .writeInPlace:
            let descriptor = try SystemCalls.openExistingForWriting(requested)
            defer { SystemCalls.close(descriptor) }
            try produce { try SystemCalls.writeAll(descriptor, $0, path: requested) }
            return
        }
        let temporary = "\(path).tmp-\(SystemCalls.processID)-\(UInt32.random(in: 0 ... .max))"
        let descriptor = try SystemCalls.createExclusive(temporary)
        var renamed = false
        defer {
            SystemCalls.close(descriptor)
            if !renamed { SystemCalls.remove(temporary) }
        }
        try produce { try SystemCalls.writeAll(descriptor, $0, path: temporary) }
        try SystemCalls.sync(descriptor, path: temporary)
        try SystemCalls.rename(temporary, to: path)
        renamed = true
        try SystemCalls.syncDirectory(containing: path)
    }
}
