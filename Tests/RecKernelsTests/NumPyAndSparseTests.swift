#if canImport(Glibc)
import Glibc
#endif
@testable import RecKernels
import Testing

/// The committed fixtures, written once by Fixtures/make_npy_fixtures.py with numpy 2.4.
let fixtures = String(#filePath.prefix(upTo: #filePath.lastIndex(of: "/")!)) + "/Fixtures/"

@Suite("NumPy .npy files")
struct NumPyTests {
    @Test("arrays numpy wrote are read exactly")
    func readsNumPyFixtures() throws {
        let a = try NumPyFile.read(fixtures + "f4_3x4.npy")
        #expect(a.rows == 3 && a.dimensions == 4)
        #expect(a.withUnsafeBufferPointer(Array.init) == (0 ..< 12).map { (Float($0) - 5.5) / 4 })
        let b = try NumPyFile.read(fixtures + "f8_2x3.npy")
        #expect(b.withUnsafeBufferPointer(Array.init) == [1.5, -2.25, 3.0, 0.1, 1e-3, -7.0].map { Float($0) })
        let v = try NumPyFile.read(fixtures + "f4_vector5.npy")
        #expect(v.rows == 5 && v.dimensions == 1 && v.row(4) == [5])
        let v2 = try NumPyFile.read(fixtures + "f4_v2_2x2.npy")
        #expect(v2.withUnsafeBufferPointer(Array.init) == [1, 2, 3, 4])
    }

    @Test("unsupported layouts and types are refused with the reason")
    func refusals() {
        #expect(throws: NumPyError.unsupported(path: fixtures + "f4_fortran.npy", what: "Fortran order (save with numpy.ascontiguousarray)")) {
            try NumPyFile.read(fixtures + "f4_fortran.npy")
        }
        #expect(throws: NumPyError.unsupported(path: fixtures + "i4_2x2.npy", what: "dtype <i4 (float32 '<f4' or float64 '<f8' only)")) {
            try NumPyFile.read(fixtures + "i4_2x2.npy")
        }
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        var bytes = readBytes(fixtures + "f4_3x4.npy")
        bytes.removeLast(3)
        writeBytes(bytes, to: directory + "/short.npy")
        #expect(throws: NumPyError.sizeMismatch(path: directory + "/short.npy", expected: 48, actual: 45)) {
            try NumPyFile.read(directory + "/short.npy")
        }
        writeBytes(Array("not numpy at all".utf8), to: directory + "/text.npy")
        #expect(throws: NumPyError.notNumPy(path: directory + "/text.npy")) { try NumPyFile.read(directory + "/text.npy") }
    }

    @Test("written files read back, and byte for byte as numpy writes them")
    func writeRoundTrip() throws {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        let numpyWritten = try NumPyFile.read(fixtures + "f4_3x4.npy")
        try NumPyFile.write(numpyWritten, to: directory + "/out.npy")
        #expect(readBytes(directory + "/out.npy") == readBytes(fixtures + "f4_3x4.npy"))
        let table = EmbeddingTable.gaussian(rows: 100, dimensions: 7, seed: 9)
        try NumPyFile.write(table, to: directory + "/t.npy")
        #expect(try NumPyFile.read(directory + "/t.npy") == table)
        #expect(readBytes(directory + "/t.npy").count % 64 == (100 * 7 * 4) % 64)  // header padded to 64
    }

    /// Python reads what Swift wrote. `.ci/run` installs numpy, so this runs in CI.
    @Test("numpy.load reads a written file", .enabled(if: pythonHasNumPy()))
    func numpyLoadsOurFile() throws {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        let table = try EmbeddingTable([[1, 2.5], [-3, 4e-3], [5, 6]])
        try NumPyFile.write(table, to: directory + "/t.npy")
        let script = "import numpy as n; a = n.load('\(directory)/t.npy'); assert a.dtype == n.float32 and a.shape == (3, 2) and a.flags.c_contiguous; assert (a == n.array([[1, 2.5], [-3, 4e-3], [5, 6]], dtype=n.float32)).all()"
        #expect(system("python3 -c \"\(script)\"") == 0)
    }
}

func pythonHasNumPy() -> Bool {
    system("python3 -c 'import numpy' >/dev/null 2>&1") == 0
}

@Suite("SparseMatrix (CSR)")
struct SparseMatrixTests {
    let triples: [(row: Int, column: Int, value: Float)] = [(2, 1, 5), (0, 3, 1), (0, 1, 2), (2, 1, 7), (0, 3, 4), (1, 0, -1)]

    @Test("rows are sorted by column and duplicates follow the stated policy")
    func duplicatePolicies() throws {
        let sum = try SparseMatrix(rows: 3, columns: 4, triples: triples)
        #expect(sum.rowOffsets == [0, 2, 3, 4])
        #expect(sum.columnIndices == [1, 3, 0, 1])
        #expect(sum.values == [2, 5, -1, 12])
        #expect(try SparseMatrix(rows: 3, columns: 4, triples: triples, duplicates: .keepLast).values == [2, 4, -1, 7])
        #expect(try SparseMatrix(rows: 3, columns: 4, triples: triples, duplicates: .keepMaximum).values == [2, 4, -1, 7])
        #expect(throws: MatrixError.duplicateEntry(row: 0, column: 3)) {
            try SparseMatrix(rows: 3, columns: 4, triples: triples, duplicates: .reject)
        }
        #expect(sum[2, 1] == 12 && sum[2, 2] == 0 && sum[1, 0] == -1)
    }

    @Test("bad triples and CSR arrays are refused")
    func errors() {
        #expect(throws: MatrixError.indexOutOfRange(row: 3, column: 0, rows: 3, columns: 4)) {
            try SparseMatrix(rows: 3, columns: 4, triples: [(3, 0, 1)])
        }
        #expect(throws: MatrixError.indexOutOfRange(row: 0, column: -1, rows: 3, columns: 4)) {
            try SparseMatrix(rows: 3, columns: 4, triples: [(0, -1, 1)])
        }
        #expect(throws: MatrixError.nonFinite(row: 1, column: 2)) { try SparseMatrix(rows: 3, columns: 4, triples: [(1, 2, .nan)]) }
        #expect(throws: MatrixError.duplicateEntry(row: 0, column: 1)) {
            try SparseMatrix(rows: 1, columns: 4, rowOffsets: [0, 2], columnIndices: [1, 1], values: [1, 1])
        }
        #expect(throws: MatrixError.indexOutOfRange(row: 0, column: 0, rows: 1, columns: 4)) {
            try SparseMatrix(rows: 1, columns: 4, rowOffsets: [0, 2], columnIndices: [2, 0], values: [1, 1])
        }
        #expect(throws: MatrixError.invalidCSR(reason: "2 row offsets for 2 rows, expected 3")) {
            try SparseMatrix(rows: 2, columns: 4, rowOffsets: [0, 1], columnIndices: [0], values: [1])
        }
        // Issue 9 class 2: offsets that go down and back up used to build a range before the
        // guard and trap; now a clean error naming the row.
        #expect(throws: MatrixError.invalidCSR(reason: "row 0's offsets decrease (0 then -1); they must not")) {
            try SparseMatrix(rows: 2, columns: 4, rowOffsets: [0, -1, 1], columnIndices: [0], values: [1])
        }
        #expect(throws: MatrixError.invalidCSR(reason: "row 1's offsets decrease (2 then 1); they must not")) {
            try SparseMatrix(rows: 3, columns: 4, rowOffsets: [0, 2, 1, 3], columnIndices: [0, 1, 2], values: [1, 1, 1])
        }
    }

    @Test("transpose and product agree with dense arithmetic on random matrices", arguments: 0 ..< 5)
    func transposeAndMultiply(seed: Int) throws {
        var generator = SeededGenerator(seed: UInt64(seed))
        let (rows, columns) = (Int.random(in: 1 ... 30, using: &generator), Int.random(in: 1 ... 30, using: &generator))
        let random = (0 ..< Int.random(in: 0 ... 120, using: &generator)).map { _ in
            (row: Int.random(in: 0 ..< rows, using: &generator), column: Int.random(in: 0 ..< columns, using: &generator),
             value: Float(Int.random(in: -3 ... 3, using: &generator)))
        }
        let matrix = try SparseMatrix(rows: rows, columns: columns, triples: random)
        var dense = [[Float]](repeating: [Float](repeating: 0, count: columns), count: rows)
        for t in random { dense[t.row][t.column] += t.value }
        let transposed = matrix.transposed()
        #expect(transposed.rows == columns && transposed.columns == rows)
        for r in 0 ..< rows { for c in 0 ..< columns { #expect(matrix[r, c] == dense[r][c] && transposed[c, r] == dense[r][c]) } }
        #expect(transposed.transposed() == matrix)
        let right = integerTable(rows: columns, dimensions: 3, range: -2 ... 2, seed: UInt64(seed))
        let product = try matrix.multiply(right)
        for r in 0 ..< rows {
            for j in 0 ..< 3 {
                #expect(product.row(r)[j] == (0 ..< columns).reduce(0) { $0 + dense[r][$1] * right.row($1)[j] })
            }
        }
        #expect(matrix.rowNorms().enumerated().allSatisfy { abs($1 - dense[$0].reduce(0) { $0 + $1 * $1 }.squareRoot()) < 1e-5 })
    }

    @Test("gathering rows and the row of every entry")
    func gatheringAndEntryRows() throws {
        let matrix = try SparseMatrix(rows: 3, columns: 4, triples: triples)
        #expect(matrix.entryRows == [0, 0, 1, 2])
        let picked = matrix.gathering(rows: [2, 0, 2])
        #expect(picked.rows == 3 && picked.columns == 4)
        for (n, row) in [2, 0, 2].enumerated() {
            #expect(Array(picked.row(n).columns) == Array(matrix.row(row).columns) && Array(picked.row(n).values) == Array(matrix.row(row).values))
        }
        #expect(matrix.gathering(rows: [Int]()).rows == 0)
        let table = EmbeddingTable.gaussian(rows: 5, dimensions: 3, seed: 1)
        let rows = table.gathering(rows: [4, 1, 4])
        #expect((0 ..< 3).map(rows.row) == [4, 1, 4].map(table.row))
        #expect(table.gathering(rows: 1 ..< 3) == (try EmbeddingTable([table.row(1), table.row(2)])))
    }

    @Test("interaction rows become per-query exclusions")
    func exclusionsFromRows() throws {
        let matrix = try SparseMatrix(rows: 3, columns: 4, triples: triples)
        let excluded = ExcludedItems(rows: [2, 0], of: matrix)
        #expect(excluded.queryCount == 2)
        #expect(Array(excluded.items(forQuery: 0)) == [1] && Array(excluded.items(forQuery: 1)) == [1, 3])
    }
}
