/// The memory behind an ``EmbeddingTable``: a 64-byte-aligned heap allocation this object owns,
/// a range of a read-only file mapping kept alive by `mapping`, or a caller's buffer it borrows
/// (``EmbeddingTable/init(unsafeBorrowing:rows:dimensions:)``), which the caller keeps alive.
///
/// Immutable after creation except through a uniquely referenced owner (copy-on-write in
/// ``EmbeddingTable``), which is what makes the `@unchecked Sendable` sound.
final class FloatStorage: @unchecked Sendable {
    /// Alignment of every heap allocation: one cache line, and what AVX-512 aligned loads need.
    static let alignment = 64

    let base: UnsafeMutablePointer<Float>
    let count: Int
    /// The file mapping this storage points into; nil for heap storage.
    let mapping: MappedFile?
    /// Whether `base` is a caller's buffer: never written, never freed here.
    let isBorrowed: Bool

    /// A zero-filled heap allocation of `count` floats.
    init(zeroedCount count: Int) {
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: Self.alignment)
        raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
        self.base = raw.assumingMemoryBound(to: Float.self)
        self.count = count
        self.mapping = nil
        self.isBorrowed = false
    }

    /// `count` floats of a caller's buffer, neither copied nor freed.
    init(borrowing base: UnsafePointer<Float>, count: Int) {
        self.base = UnsafeMutablePointer(mutating: base)
        self.count = count
        self.mapping = nil
        self.isBorrowed = true
    }

    /// `count` floats inside `mapping`, starting at `byteOffset` (a multiple of 64).
    init(mapping: MappedFile, byteOffset: Int, count: Int) {
        self.base = UnsafeMutablePointer(mutating: (mapping.base + byteOffset).assumingMemoryBound(to: Float.self))
        self.count = count
        self.mapping = mapping
        self.isBorrowed = false
    }

    /// A heap copy of this storage.
    func copy() -> FloatStorage {
        let result = FloatStorage(zeroedCount: count)
        result.base.update(from: base, count: count)
        return result
    }

    deinit {
        if mapping == nil && !isBorrowed { UnsafeMutableRawPointer(base).deallocate() }
    }
}

/// A dense table of `rows` vectors of `dimensions` floats each (item or user embeddings, factor
/// matrices), stored row-major in one contiguous, 64-byte-aligned buffer.
///
/// The table is a value type with copy-on-write storage: copies share memory until one of them
/// is mutated. A table opened from a file with ``init(contentsOf:verification:)`` points into a
/// read-only memory mapping, so opening costs no copy; the first mutation copies it to the heap.
///
/// Row `r` occupies elements `r * dimensions ..< (r + 1) * dimensions` of the buffer.
public struct EmbeddingTable: Sendable {
    /// Number of rows (vectors).
    public let rows: Int
    /// Floats per row.
    public let dimensions: Int
    var storage: FloatStorage

    /// The largest row count: row indices are stored as `Int32` in results.
    public static let maximumRows = Int(Int32.max)

    /// A zero-filled table.
    ///
    /// - Precondition: `rows >= 0`, `dimensions >= 1`, `rows <= maximumRows`.
    /// - Complexity: O(rows × dimensions).
    public init(rows: Int, dimensions: Int) {
        precondition(rows >= 0 && rows <= Self.maximumRows, "rows out of range: \(rows)")
        precondition(dimensions >= 1, "dimensions must be at least 1, got \(dimensions)")
        self.rows = rows
        self.dimensions = dimensions
        self.storage = FloatStorage(zeroedCount: rows * dimensions)
    }

    /// A table holding `values` row-major.
    ///
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)`` when `values.count` is not
    ///   `rows × dimensions`, ``MatrixError/invalidShape(rows:dimensions:)`` for a negative row
    ///   count or fewer than one dimension, ``MatrixError/nonFinite(row:column:)`` for the first
    ///   NaN or infinity.
    /// - Complexity: O(rows × dimensions).
    public init(rows: Int, dimensions: Int, values: some Collection<Float>) throws {
        guard rows >= 0, rows <= Self.maximumRows, dimensions >= 1 else {
            throw MatrixError.invalidShape(rows: rows, dimensions: dimensions)
        }
        guard values.count == rows * dimensions else {
            throw MatrixError.shapeMismatch(expected: rows * dimensions, actual: values.count)
        }
        self.init(rows: rows, dimensions: dimensions)
        let buffer = UnsafeMutableBufferPointer(start: storage.base, count: rows * dimensions)
        _ = buffer.initialize(from: values)
        try Self.checkFinite(UnsafeBufferPointer(buffer), dimensions: dimensions)
    }

    /// A table whose rows are the given vectors.
    ///
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)`` when rows differ in length or
    ///   there are none (the dimension would be unknown), ``MatrixError/nonFinite(row:column:)``.
    public init(_ vectors: [[Float]]) throws {
        guard let first = vectors.first else { throw MatrixError.invalidShape(rows: 0, dimensions: 0) }
        for vector in vectors where vector.count != first.count {
            throw MatrixError.shapeMismatch(expected: first.count, actual: vector.count)
        }
        try self.init(rows: vectors.count, dimensions: first.count, values: vectors.joined())
    }

    /// A table over a caller's row-major buffer, without copying it: for foreign callers (the C
    /// ABI, NumPy arrays) whose data already lives in memory.
    ///
    /// The caller keeps `values` alive and unchanged for as long as this table, any copy of it
    /// or anything built from it (a ``FlatIndex``) exists. The table never writes to the buffer:
    /// its first mutation copies it to the heap. Values are not checked here; a ``FlatIndex``
    /// checks what it scores. No alignment is required.
    ///
    /// - Throws: ``MatrixError/invalidShape(rows:dimensions:)`` for a negative row count or fewer
    ///   than one dimension, ``MatrixError/shapeMismatch(expected:actual:)`` when the buffer does
    ///   not hold `rows × dimensions` floats.
    /// - Complexity: O(1).
    public init(unsafeBorrowing values: UnsafeBufferPointer<Float>, rows: Int, dimensions: Int) throws {
        guard rows >= 0, rows <= Self.maximumRows, dimensions >= 1 else {
            throw MatrixError.invalidShape(rows: rows, dimensions: dimensions)
        }
        guard values.count == rows * dimensions else {
            throw MatrixError.shapeMismatch(expected: rows * dimensions, actual: values.count)
        }
        guard rows > 0, let base = values.baseAddress else {
            self.init(rows: 0, dimensions: dimensions)
            return
        }
        self.init(rows: rows, dimensions: dimensions, storage: FloatStorage(borrowing: base, count: rows * dimensions))
    }

    init(rows: Int, dimensions: Int, storage: FloatStorage) {
        self.rows = rows
        self.dimensions = dimensions
        self.storage = storage
    }

    /// Number of floats in the table (`rows × dimensions`).
    public var count: Int { rows * dimensions }

    /// Whether the table reads from a file mapping rather than heap memory.
    public var isMemoryMapped: Bool { storage.mapping != nil }

    /// Calls `body` with row `row` in place, without copying.
    ///
    /// The buffer is valid only inside `body`. - Complexity: O(1) plus `body`.
    public func withRow<R>(_ row: Int, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(row >= 0 && row < rows, "row \(row) out of range 0..<\(rows)")
        return try body(UnsafeBufferPointer(start: storage.base + row * dimensions, count: dimensions))
    }

    /// A new table holding copies of the given rows, in the given order (repeats allowed).
    ///
    /// - Precondition: every index is in `0 ..< rows`. - Complexity: O(indices × dimensions).
    public func gathering(rows indices: some Collection<Int>) -> EmbeddingTable {
        var result = EmbeddingTable(rows: indices.count, dimensions: dimensions)
        let d = dimensions
        result.withUnsafeMutableBufferPointer { target in
            for (n, row) in indices.enumerated() {
                precondition(row >= 0 && row < rows, "row \(row) out of range 0..<\(rows)")
                (target.baseAddress! + n * d).update(from: storage.base + row * d, count: d)
            }
        }
        return result
    }

    /// A copy of row `row`. - Complexity: O(dimensions).
    public func row(_ row: Int) -> [Float] {
        withRow(row) { Array($0) }
    }

    /// Calls `body` with the whole row-major buffer, without copying.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: count))
    }

    /// Calls `body` with the whole buffer for writing. The first write to a table that shares
    /// its storage or reads from a file mapping copies it to the heap first.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        makeUniqueAndWritable()
        return try body(UnsafeMutableBufferPointer(start: storage.base, count: count))
    }

    /// Replaces row `row` with `values`.
    ///
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)`` or
    ///   ``MatrixError/nonFinite(row:column:)``; the table is unchanged then.
    public mutating func setRow(_ row: Int, to values: some Collection<Float>) throws {
        precondition(row >= 0 && row < rows, "row \(row) out of range 0..<\(rows)")
        guard values.count == dimensions else {
            throw MatrixError.shapeMismatch(expected: dimensions, actual: values.count)
        }
        for (column, value) in values.enumerated() where !value.isFinite {
            throw MatrixError.nonFinite(row: row, column: column)
        }
        let dimensions = self.dimensions
        withUnsafeMutableBufferPointer { buffer in
            _ = UnsafeMutableBufferPointer(rebasing: buffer[row * dimensions ..< (row + 1) * dimensions])
                .initialize(from: values)
        }
    }

    /// The first non-finite value, as (row, column), or nil. - Complexity: O(rows × dimensions).
    public func firstNonFinite() -> (row: Int, column: Int)? {
        withUnsafeBufferPointer { Self.firstNonFinite($0, dimensions: dimensions) }
    }

    private mutating func makeUniqueAndWritable() {
        if !isKnownUniquelyReferenced(&storage) || storage.mapping != nil || storage.isBorrowed {
            storage = storage.copy()
        }
    }

    static func checkFinite(_ values: UnsafeBufferPointer<Float>, dimensions: Int) throws {
        if let (row, column) = firstNonFinite(values, dimensions: dimensions) {
            throw MatrixError.nonFinite(row: row, column: column)
        }
    }

    static func firstNonFinite(_ values: UnsafeBufferPointer<Float>, dimensions: Int) -> (row: Int, column: Int)? {
        if Kernels.allFinite(values) { return nil }
        let index = values.firstIndex { !$0.isFinite }!
        return (index / dimensions, index % dimensions)
    }
}

extension EmbeddingTable: Equatable {
    /// Tables are equal when their shapes and every value (bitwise as floats) are equal.
    public static func == (lhs: EmbeddingTable, rhs: EmbeddingTable) -> Bool {
        guard lhs.rows == rhs.rows, lhs.dimensions == rhs.dimensions else { return false }
        if lhs.storage === rhs.storage { return true }
        return lhs.withUnsafeBufferPointer { l in rhs.withUnsafeBufferPointer { r in l.elementsEqual(r) } }
    }
}

/// Errors about the shape or contents of a matrix.
public enum MatrixError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A row count below zero or above ``EmbeddingTable/maximumRows``, or fewer than one dimension.
    case invalidShape(rows: Int, dimensions: Int)
    /// A count of values that does not fit the shape.
    case shapeMismatch(expected: Int, actual: Int)
    /// A NaN or infinity at (row, column).
    case nonFinite(row: Int, column: Int)
    /// An index outside the matrix.
    case indexOutOfRange(row: Int, column: Int, rows: Int, columns: Int)
    /// Several entries for one (row, column) under ``SparseMatrix/DuplicatePolicy/reject``.
    case duplicateEntry(row: Int, column: Int)
    /// A `rows × dimensions` table (`what` it is for) would need `bytes`, more than the
    /// machine's `available` memory.
    case tooLarge(what: String, rows: Int, dimensions: Int, bytes: Int, available: Int)
    /// Compressed-sparse-row arrays that disagree: `reason` says which array and what was expected.
    case invalidCSR(reason: String)

    public var description: String {
        switch self {
        case let .invalidShape(rows, dimensions):
            "invalid shape \(rows) × \(dimensions): rows must be 0...\(EmbeddingTable.maximumRows) and dimensions at least 1"
        case let .shapeMismatch(expected, actual):
            "expected \(expected) values, got \(actual)"
        case let .nonFinite(row, column):
            "non-finite value (NaN or infinity) at row \(row), column \(column)"
        case let .indexOutOfRange(row, column, rows, columns):
            "entry (\(row), \(column)) is outside a \(rows) × \(columns) matrix"
        case let .duplicateEntry(row, column):
            "more than one entry for (\(row), \(column))"
        case let .tooLarge(what, rows, dimensions, bytes, available):
            "\(what): a \(rows) × \(dimensions) float table needs \(bytes == Int.max ? "more than 2^63" : "\(bytes)") bytes, more than the \(available) bytes of memory"
        case let .invalidCSR(reason):
            "inconsistent sparse (CSR) arrays: \(reason)"
        }
    }
}

extension EmbeddingTable {
    /// Checks, before allocating, that a `rows × dimensions` float table fits this machine's
    /// memory, so a size from a user is refused with how much it would need rather than aborting
    /// in the allocator.
    ///
    /// - Throws: ``MatrixError/invalidShape(rows:dimensions:)`` for a shape no table can have,
    ///   ``MatrixError/tooLarge(what:rows:dimensions:bytes:available:)``.
    /// - Complexity: O(1).
    public static func checkFits(rows: Int, dimensions: Int, what: String) throws {
        guard rows >= 0, rows <= maximumRows, dimensions >= 1 else { throw MatrixError.invalidShape(rows: rows, dimensions: dimensions) }
        let (elements, o1) = rows.multipliedReportingOverflow(by: dimensions)
        let (bytes, o2) = elements.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
        let available = SystemCalls.physicalMemory
        if o1 || o2 || bytes > available {
            throw MatrixError.tooLarge(what: what, rows: rows, dimensions: dimensions, bytes: o1 || o2 ? Int.max : bytes, available: available)
        }
    }
}
