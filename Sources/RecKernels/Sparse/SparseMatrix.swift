/// A sparse matrix in compressed sparse row (CSR) form: user × item interactions, document ×
/// term weights.
///
/// Invariants, checked at construction: `rowOffsets` has `rows + 1` non-decreasing entries from 0
/// to the number of stored entries; within a row, column indices are strictly increasing (so
/// unique) and below `columns`; every value is finite. Explicit zeros given as input are kept.
public struct SparseMatrix: Sendable, Equatable {
    /// Number of rows.
    public let rows: Int
    /// Number of columns; every column index is below it.
    public let columns: Int
    /// Row r's entries are at `rowOffsets[r] ..< rowOffsets[r + 1]` of the two arrays below.
    public let rowOffsets: [Int]
    /// The stored entries' column indices, row by row, ascending within a row.
    public let columnIndices: [Int32]
    /// The stored entries' values, parallel to ``columnIndices``; all finite.
    public let values: [Float]

    /// What to do with several entries for the same (row, column).
    public enum DuplicatePolicy: Sendable {
        /// Add them up (what scipy's COO → CSR conversion does): repeated events accumulate.
        case sum
        /// Keep the one given last (a later rating replaces an earlier one).
        case keepLast
        /// Keep the largest.
        case keepMaximum
        /// Refuse the input with ``MatrixError/duplicateEntry(row:column:)``.
        case reject
    }

    /// Number of stored entries.
    public var nonzeroCount: Int { values.count }

    /// Builds the matrix from (row, column, value) triples in any order.
    ///
    /// - Throws: ``MatrixError/indexOutOfRange(row:column:rows:columns:)``,
    ///   ``MatrixError/nonFinite(row:column:)``, and with ``DuplicatePolicy/reject``
    ///   ``MatrixError/duplicateEntry(row:column:)``.
    /// - Complexity: O(n log m) for n triples and at most m per row (a counting sort by row, then
    ///   a sort within each row).
    public init(rows: Int, columns: Int, triples: some Sequence<(row: Int, column: Int, value: Float)>,
                duplicates: DuplicatePolicy = .sum) throws {
        guard rows >= 0, columns >= 0, columns <= EmbeddingTable.maximumRows else {
            throw MatrixError.invalidShape(rows: rows, dimensions: columns)
        }
        let input = Array(triples)
        var counts = [Int](repeating: 0, count: rows + 1)
        for triple in input {
            guard triple.row >= 0, triple.row < rows, triple.column >= 0, triple.column < columns else {
                throw MatrixError.indexOutOfRange(row: triple.row, column: triple.column, rows: rows, columns: columns)
            }
            guard triple.value.isFinite else { throw MatrixError.nonFinite(row: triple.row, column: triple.column) }
            counts[triple.row + 1] += 1
        }
        for r in 0..<rows { counts[r + 1] += counts[r] }
        // Stable counting sort by row: within a row, entries keep input order, which is what
        // keepLast needs.
        var order = [Int](repeating: 0, count: input.count)
        var next = counts
        for (position, triple) in input.enumerated() {
            order[next[triple.row]] = position
            next[triple.row] += 1
        }
        var offsets = [0]
        var indices: [Int32] = []
        var values: [Float] = []
        offsets.reserveCapacity(rows + 1)
        indices.reserveCapacity(input.count)
        values.reserveCapacity(input.count)
        for r in 0..<rows {
            let rowEntries = order[counts[r] ..< counts[r + 1]].sorted {
                (input[$0].column, $0) < (input[$1].column, $1)
            }
            for position in rowEntries {
                let (column, value) = (input[position].column, input[position].value)
                if indices.count > offsets[r], Int(indices[indices.count - 1]) == column {
                    switch duplicates {
                    case .sum: values[values.count - 1] += value
                    case .keepLast: values[values.count - 1] = value
                    case .keepMaximum: values[values.count - 1] = max(values[values.count - 1], value)
                    case .reject: throw MatrixError.duplicateEntry(row: r, column: column)
                    }
                    if !values[values.count - 1].isFinite { throw MatrixError.nonFinite(row: r, column: column) }
                } else {
                    indices.append(Int32(column))
                    values.append(value)
                }
            }
            offsets.append(indices.count)
        }
        self.init(unchecked: rows, columns, offsets, indices, values)
    }

    /// Adopts CSR arrays as they are, after checking every invariant.
    ///
    /// - Throws: ``MatrixError`` naming the first broken invariant.
    /// - Complexity: O(rows + entries).
    public init(rows: Int, columns: Int, rowOffsets: [Int], columnIndices: [Int32], values: [Float]) throws {
        guard rows >= 0, columns >= 0, rows < Int.max else { throw MatrixError.invalidShape(rows: rows, dimensions: columns) }
        guard rowOffsets.count == rows + 1 else {
            throw MatrixError.invalidCSR(reason: "\(rowOffsets.count) row offsets for \(rows) rows, expected \(rows + 1)")
        }
        guard rowOffsets.first == 0, rowOffsets.last == columnIndices.count else {
            throw MatrixError.invalidCSR(reason: "row offsets run from \(rowOffsets.first ?? 0) to \(rowOffsets.last ?? 0), expected 0 to \(columnIndices.count) (the number of column indices)")
        }
        guard columnIndices.count == values.count else {
            throw MatrixError.invalidCSR(reason: "\(columnIndices.count) column indices but \(values.count) values")
        }
        // All offsets first, before any range is built or indexed: non-decreasing from 0 to the
        // entry count keeps every row's range inside the arrays.
        for r in 0..<rows where rowOffsets[r] > rowOffsets[r + 1] {
            throw MatrixError.invalidCSR(reason: "row \(r)'s offsets decrease (\(rowOffsets[r]) then \(rowOffsets[r + 1])); they must not")
        }
        for r in 0..<rows {
            var previous = -1
            for position in rowOffsets[r] ..< rowOffsets[r + 1] {
                let column = Int(columnIndices[position])
                guard column > previous, column < columns else {
                    if column == previous { throw MatrixError.duplicateEntry(row: r, column: column) }
                    throw MatrixError.indexOutOfRange(row: r, column: column, rows: rows, columns: columns)
                }
                guard values[position].isFinite else { throw MatrixError.nonFinite(row: r, column: column) }
                previous = column
            }
        }
        self.init(unchecked: rows, columns, rowOffsets, columnIndices, values)
    }

    private init(unchecked rows: Int, _ columns: Int, _ offsets: [Int], _ indices: [Int32], _ values: [Float]) {
        self.rows = rows
        self.columns = columns
        self.rowOffsets = offsets
        self.columnIndices = indices
        self.values = values
    }

    /// A new matrix holding copies of the given rows, in the given order, with the same columns.
    ///
    /// - Precondition: every index is in `0 ..< rows`. - Complexity: O(entries of those rows).
    public func gathering(rows indices: some Collection<Int>) -> SparseMatrix {
        var offsets = [0], columns: [Int32] = [], kept: [Float] = []
        offsets.reserveCapacity(indices.count + 1)
        for row in indices {
            precondition(row >= 0 && row < rows, "row \(row) out of range 0..<\(rows)")
            columns.append(contentsOf: columnIndices[rowOffsets[row] ..< rowOffsets[row + 1]])
            kept.append(contentsOf: values[rowOffsets[row] ..< rowOffsets[row + 1]])
            offsets.append(columns.count)
        }
        return SparseMatrix(unchecked: indices.count, self.columns, offsets, columns, kept)
    }

    /// The row of every stored entry, in storage order (the COO row array).
    /// - Complexity: O(rows + entries).
    public var entryRows: [Int32] {
        var rows = [Int32](repeating: 0, count: nonzeroCount)
        for r in 0 ..< self.rows { for e in rowOffsets[r] ..< rowOffsets[r + 1] { rows[e] = Int32(r) } }
        return rows
    }

    /// Row `row`'s column indices (ascending) and values, without copying.
    public func row(_ row: Int) -> (columns: ArraySlice<Int32>, values: ArraySlice<Float>) {
        precondition(row >= 0 && row < rows, "row \(row) out of range 0..<\(rows)")
        let range = rowOffsets[row] ..< rowOffsets[row + 1]
        return (columnIndices[range], values[range])
    }

    /// The value at (row, column), zero when not stored. - Complexity: O(log entries in the row).
    public subscript(row: Int, column: Int) -> Float {
        let (columns, values) = self.row(row)
        var low = columns.startIndex, high = columns.endIndex
        while low < high {
            let middle = (low + high) / 2
            if Int(columns[middle]) < column { low = middle + 1 } else { high = middle }
        }
        return low < columns.endIndex && Int(columns[low]) == column ? values[low] : 0
    }

    /// The transpose, also in CSR form (so the CSC form of this matrix). Column indices stay
    /// sorted because rows are visited in order. - Complexity: O(rows + columns + entries).
    public func transposed() -> SparseMatrix {
        var offsets = [Int](repeating: 0, count: columns + 1)
        for column in columnIndices { offsets[Int(column) + 1] += 1 }
        for c in 0..<columns { offsets[c + 1] += offsets[c] }
        var next = offsets
        var indices = [Int32](repeating: 0, count: nonzeroCount)
        var transposedValues = [Float](repeating: 0, count: nonzeroCount)
        for r in 0..<rows {
            for position in rowOffsets[r] ..< rowOffsets[r + 1] {
                let c = Int(columnIndices[position])
                indices[next[c]] = Int32(r)
                transposedValues[next[c]] = values[position]
                next[c] += 1
            }
        }
        return SparseMatrix(unchecked: columns, rows, offsets, indices, transposedValues)
    }

    /// The Euclidean norm of each row. - Complexity: O(rows + entries).
    public func rowNorms() -> [Float] {
        (0..<rows).map { r in
            var sum: Float = 0
            for position in rowOffsets[r] ..< rowOffsets[r + 1] { sum += values[position] * values[position] }
            return sum.squareRoot()
        }
    }

    /// The dense product `self · dense`: a `rows × dense.dimensions` table.
    ///
    /// - Throws: ``MatrixError/shapeMismatch(expected:actual:)`` unless `dense.rows == columns`.
    /// - Complexity: O(entries × dense.dimensions).
    public func multiply(_ dense: EmbeddingTable) throws -> EmbeddingTable {
        guard dense.rows == columns else { throw MatrixError.shapeMismatch(expected: columns, actual: dense.rows) }
        let d = dense.dimensions
        var result = EmbeddingTable(rows: rows, dimensions: d)
        dense.withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                for r in 0..<rows {
                    let out = target.baseAddress! + r * d
                    for position in rowOffsets[r] ..< rowOffsets[r + 1] {
                        let weight = values[position]
                        let input = source.baseAddress! + Int(columnIndices[position]) * d
                        for j in 0..<d { out[j] += weight * input[j] }
                    }
                }
            }
        }
        return result
    }
}
