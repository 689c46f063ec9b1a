/// How a ``CompressedTable`` stores each value.
public enum CompressionKind: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// One signed byte per value with a per-row scale: x ≈ scale·code, code in −127…127
    /// (scale = max|x| / 127). A quarter of float32's bytes.
    case int8
    /// bfloat16: the top 16 bits of the float, rounded to nearest even. Half of float32's bytes.
    case bfloat16

    public var description: String { rawValue }
}

/// A compressed copy of an ``EmbeddingTable`` that ``FlatIndex`` scans to find exact top-K
/// results while reading a quarter (int8) or half (bf16) of the bytes.
///
/// Alongside the codes it keeps, per row, an upper bound on ‖x − x̂‖ (x̂ the row the codes
/// stand for), computed in double precision and rounded up: with the query's norm it bounds how
/// far a compressed score can be from the float32 one (Cauchy–Schwarz), which is what lets the
/// search stay exact. Codes are laid out in panels of 16 rows, dimension-major inside a panel.
///
/// Immutable and `Sendable`.
public struct CompressedTable: Sendable, Equatable {
    /// Rows per panel of ``codes``.
    public static let panelRows = 16

    /// How values are stored.
    public let kind: CompressionKind
    /// Rows (items).
    public let rows: Int
    /// Values per row.
    public let dimensions: Int
    /// Panels of 16 rows, dimension-major: the code of row `p·16 + j`, dimension `d` is element
    /// `(p·dimensions + d)·16 + j` (bytes for int8, little-endian 16-bit words for bf16).
    public let codes: [UInt8]
    /// int8: each row's scale (x̂ = scale·code); bf16: empty.
    public let rowScales: [Float]
    /// Each row's ‖x − x̂‖, rounded up.
    public private(set) var errorNorms: [Float]

    /// Compresses `table`.
    ///
    /// - Complexity: O(rows × dimensions).
    public init(_ table: EmbeddingTable, kind: CompressionKind) {
        self.kind = kind
        rows = table.rows
        dimensions = table.dimensions
        let d = table.dimensions, panel = Self.panelRows
        let panels = (table.rows + panel - 1) / panel
        let element = kind == .int8 ? 1 : 2
        var codes = [UInt8](repeating: 0, count: panels * panel * d * element)
        var scales = [Float](repeating: 0, count: kind == .int8 ? table.rows : 0)
        var errors = [Float](repeating: 0, count: table.rows)
        table.withUnsafeBufferPointer { values in
            codes.withUnsafeMutableBufferPointer { codes in
                for r in 0 ..< table.rows {
                    let row = UnsafeBufferPointer(rebasing: values[(r * d) ..< (r * d + d)])
                    let base = ((r / panel) * d * panel + r % panel) * element
                    var squaredError = 0.0
                    switch kind {
                    case .int8:
                        let largest = row.reduce(Float(0)) { max($0, abs($1)) }
                        let scale = largest / 127
                        scales[r] = scale
                        for (j, x) in row.enumerated() {
                            let code = scale > 0 ? max(-127, min(127, (Double(x) / Double(scale)).rounded())) : 0
                            codes[base + j * panel] = UInt8(bitPattern: Int8(code))
                            let difference = Double(x) - Double(scale) * code
                            squaredError += difference * difference
                        }
                    case .bfloat16:
                        for (j, x) in row.enumerated() {
                            let half = Self.bfloat16(x)
                            codes[base + j * panel * 2] = UInt8(truncatingIfNeeded: half)
                            codes[base + j * panel * 2 + 1] = UInt8(truncatingIfNeeded: half >> 8)
                            let difference = Double(x) - Double(Float(bitPattern: UInt32(half) << 16))
                            squaredError += difference * difference
                        }
                    }
                    errors[r] = Self.roundedUp(squaredError.squareRoot() * (1 + 1e-12))
                }
            }
        }
        self.codes = codes
        rowScales = scales
        errorNorms = errors
    }

    /// A table from codes and row scales read from a model file, its error norms recomputed
    /// from `table` (the float32 rows the codes stand for): the bound the search relies on then
    /// never depends on what a file claims.
    ///
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)`` when the codes or scales do not
    ///   fit `table`'s shape, ``MatrixError/nonFinite(row:column:)`` for a scale that is negative,
    ///   NaN or infinite (column 0).
    /// - Complexity: O(rows × dimensions).
    public init(kind: CompressionKind, codes: [UInt8], rowScales: [Float], of table: EmbeddingTable) throws {
        let panels = (table.rows + Self.panelRows - 1) / Self.panelRows
        let expected = panels * Self.panelRows * table.dimensions * (kind == .int8 ? 1 : 2)
        guard codes.count == expected else { throw MatrixError.shapeMismatch(expected: expected, actual: codes.count) }
        guard rowScales.count == (kind == .int8 ? table.rows : 0) else {
            throw MatrixError.shapeMismatch(expected: kind == .int8 ? table.rows : 0, actual: rowScales.count)
        }
        if let bad = rowScales.firstIndex(where: { !$0.isFinite || $0 < 0 }) { throw MatrixError.nonFinite(row: bad, column: 0) }
        self.kind = kind
        rows = table.rows
        dimensions = table.dimensions
        self.codes = codes
        self.rowScales = rowScales
        errorNorms = []
        let d = table.dimensions, codesOnly = self
        var errors = [Float](repeating: 0, count: table.rows)
        table.withUnsafeBufferPointer { values in
            for r in 0 ..< table.rows {
                var squaredError = 0.0
                for j in 0 ..< d {
                    let difference = Double(values[r * d + j]) - codesOnly.decoded(row: r, dimension: j)
                    squaredError += difference * difference
                }
                errors[r] = Self.roundedUp(squaredError.squareRoot() * (1 + 1e-12))
            }
        }
        errorNorms = errors
    }

    /// Bytes the table holds (codes and per-row terms).
    public var byteCount: Int { codes.count + 4 * (rowScales.count + errorNorms.count) }

    /// The value row `row`, dimension `dimension` stands for (x̂), exactly (scale × code need
    /// not be a float; it is a double).
    public func decoded(row: Int, dimension: Int) -> Double {
        let base = ((row / Self.panelRows) * dimensions * Self.panelRows + row % Self.panelRows) + dimension * Self.panelRows
        switch kind {
        case .int8: return Double(rowScales[row]) * Double(Int8(bitPattern: codes[base]))
        case .bfloat16: return Double(Float(bitPattern: (UInt32(codes[2 * base]) | UInt32(codes[2 * base + 1]) << 8) << 16))
        }
    }

    /// `x` rounded to nearest even bfloat16; toward zero where rounding would overflow to infinity.
    static func bfloat16(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let rounded = UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
        return rounded & 0x7F80 == 0x7F80 ? UInt16(truncatingIfNeeded: bits >> 16) : rounded
    }

    /// The smallest float not below `value` (non-negative).
    static func roundedUp(_ value: Double) -> Float {
        var result = Float(value)
        if Double(result) < value { result = result.nextUp }
        return result
    }
}

extension ModelFileWriter {
    /// Adds `table` as the sections `<name>.<kind>.codes` (bytes) and, for int8,
    /// `<name>.<kind>.scales` (one float per row), beside the float32 table `name`.
    public mutating func add(_ table: CompressedTable, for name: String) throws {
        try add(bytes: table.codes, named: "\(name).\(table.kind).codes")
        if table.kind == .int8 {
            try add(EmbeddingTable(rows: table.rows, dimensions: 1, values: table.rowScales), named: "\(name).\(table.kind).scales")
        }
    }
}

extension ModelFile {
    /// The compressed copy of `table` (read from the section `name`) stored beside it, or nil
    /// when the file has none of `kind` (files written before compressed tables existed).
    ///
    /// - Throws: ``ModelFileError/invalidSection(path:section:reason:)`` when the sections do not
    ///   fit `table`.
    public func compressedTable(for name: String, kind: CompressionKind, of table: EmbeddingTable) throws -> CompressedTable? {
        let codesName = "\(name).\(kind).codes", scalesName = "\(name).\(kind).scales"
        guard section(codesName) != nil else { return nil }
        let scales = kind == .int8 ? try self.table(scalesName).withUnsafeBufferPointer(Array.init) : []
        do {
            return try CompressedTable(kind: kind, codes: try bytes(codesName), rowScales: scales, of: table)
        } catch let error as MatrixError {
            throw ModelFileError.invalidSection(path: path, section: codesName, reason: "does not fit '\(name)': \(error)")
        }
    }
}
