#if canImport(Glibc)
import Glibc
#endif
@testable import RecKernels
import Testing

@Suite("Hostile input to the kernel library: refused with an error, never a trap, hang or silent loss")
struct HostileInputTests {
    let directory = temporaryDirectory()

    func sample() throws -> String {
        let path = directory + "/sample.rkm"
        var writer = ModelFileWriter()
        writer.metadata = Array("{\"kind\":\"test\"}".utf8)
        try writer.add(try EmbeddingTable([[1, 2], [3, 4], [5, 6]]), named: "vectors")
        try writer.add([Int64(0), 2, 3], named: "offsets")
        try writer.add(bytes: Array("abc".utf8), named: "names")
        try writer.write(to: path)
        return path
    }

    func open(_ bytes: [UInt8]) throws -> ModelFile {
        let path = directory + "/mutated.rkm"
        try AtomicFile.write(bytes, to: path)
        return try ModelFile(contentsOf: path)
    }

    @Test("class 1: every 64-bit header and section field set to 2^63 or more (CRC recomputed) is refused by name")
    func hugeHeaderIntegers() throws {
        defer { removeDirectory(directory) }
        let original = try ModelFileSurgery.read(try sample())
        // File length, metadata offset and length; each section's rows, columns, offset, length.
        var fields = [32, 16, 24]
        for section in 0 ..< 3 { for field in [40, 48, 56, 64] { fields.append(ModelFileSurgery.entry(section) + field) } }
        for field in fields {
            for value: UInt64 in [1 << 63, UInt64.max, UInt64(Int.max), 1 << 62] {
                var bytes = original
                ModelFileSurgery.set(&bytes, value, at: field)
                ModelFileSurgery.resealHeader(&bytes)
                #expect(throws: ModelFileError.self, "field at \(field) = \(value)") { try open(bytes) }
            }
        }
    }

    @Test("class 1: a zero-length section claiming 2^62 × 0 rows is refused (rows bounded)")
    func hugeRowsOfEmptySection() throws {
        defer { removeDirectory(directory) }
        var bytes = try ModelFileSurgery.read(try sample())
        let names = ModelFileSurgery.entry(2)
        ModelFileSurgery.set(&bytes, UInt64(1) << 62, at: names + 40)  // rows
        ModelFileSurgery.set(&bytes, UInt64(0), at: names + 48)        // columns
        ModelFileSurgery.set(&bytes, UInt64(0), at: names + 64)        // length
        ModelFileSurgery.resealSection(&bytes, 2)
        ModelFileSurgery.resealHeader(&bytes)
        #expect(throws: ModelFileError.self) { try open(bytes) }
    }

    @Test("class 2: a payload overlapping the section table, the metadata or another section is refused (CRCs recomputed)")
    func overlappingSections() throws {
        defer { removeDirectory(directory) }
        let original = try ModelFileSurgery.read(try sample())
        let second = ModelFileSurgery.entry(1), first = ModelFileSurgery.entry(0)
        let firstOffset = original.withUnsafeBytes { Int($0.load(at: first + 56) as UInt64) }
        // Point section 1 ("offsets", 24 bytes) at section 0's payload, then at offset 0 (the header).
        for target in [firstOffset, 0] {
            var bytes = original
            ModelFileSurgery.set(&bytes, UInt64(target), at: second + 56)
            ModelFileSurgery.resealSection(&bytes, 1)
            ModelFileSurgery.resealHeader(&bytes)
            do {
                _ = try open(bytes)
                Issue.record("an overlapping section at \(target) was accepted")
            } catch let ModelFileError.invalidSection(_, section, reason) {
                #expect(section == "offsets" && reason.contains("overlap"), "\(reason)")
            }
        }
    }

    @Test("class 2: two sections with the same name are refused")
    func duplicateNames() throws {
        defer { removeDirectory(directory) }
        var bytes = try ModelFileSurgery.read(try sample())
        let name = Array("vectors".utf8) + [UInt8](repeating: 0, count: 32 - 7)
        bytes.replaceSubrange(ModelFileSurgery.entry(2) ..< ModelFileSurgery.entry(2) + 32, with: name)
        ModelFileSurgery.resealHeader(&bytes)
        #expect(throws: ModelFileError.invalidSection(path: directory + "/mutated.rkm", section: "vectors",
                                                      reason: "the name is used by an earlier section too")) { try open(bytes) }
    }

    @Test("class 3: an .npy shape whose byte count overflows is refused")
    func numPyShapeOverflow() throws {
        defer { removeDirectory(directory) }
        for shape in ["(4, 4611686018427387904)", "(2147483647, 2147483647)", "(4611686018427387904,)", "(3, 9223372036854775807)"] {
            var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
            header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
            let bytes = NumPyFile.magic + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
                + [UInt8](repeating: 0, count: 16)
            #expect(throws: NumPyError.self, "\(shape)") {
                try bytes.withUnsafeBytes { try NumPyFile.parse($0, path: "shape.npy") }
            }
        }
    }

    @Test("class 4: k far beyond the catalog (10^12, Int.max) is bounded by it: no allocation failure, same results")
    func hugeK() throws {
        defer { removeDirectory(directory) }
        let items = EmbeddingTable.gaussian(rows: 50, dimensions: 4, seed: 3)
        let queries = EmbeddingTable.gaussian(rows: 3, dimensions: 4, seed: 4)
        let index = try FlatIndex(items: items)
        let all = try index.search(queries, k: 50)
        for k in [1_000_000_000_000, Int.max] {
            let results = try index.search(queries, k: k)
            #expect(results.k == 50)
            #expect(results == all)
        }
    }

    @Test("class 4: results that cannot fit memory are refused with how much they would need")
    func resultTooLarge() throws {
        defer { removeDirectory(directory) }
        let index = try FlatIndex(items: EmbeddingTable.gaussian(rows: 1000, dimensions: 2, seed: 1))
        do {
            _ = try index.resultSize(queryCount: 1 << 40, k: 1000)
            Issue.record("2^40 queries × 1000 results were accepted")
        } catch let ScoringError.resultTooLarge(queries, k, bytes, available) {
            #expect(queries == 1 << 40 && k == 1000 && bytes == (1 << 40) * 1000 * 16 && available < bytes)
        }
        #expect(try index.resultSize(queryCount: 10, k: .max) == 1000)
    }

    @Test("class 6: finite vectors whose products overflow give an error, not a query silently dropped")
    func scoreOverflow() throws {
        defer { removeDirectory(directory) }
        let big = Float.greatestFiniteMagnitude
        let items = try EmbeddingTable([[big, 0], [0, big], [1, 1]])
        for metric in SimilarityMetric.allCases {
            let index = try FlatIndex(items: items, metric: metric)
            #expect(throws: ScoringError.self, "\(metric)") { try index.search(try EmbeddingTable([[1, 1], [big, big]]), k: 3) }
            // An ordinary query against ordinary items still works.
            let small = try FlatIndex(items: try EmbeddingTable([[1, 0], [0, 1]]), metric: metric)
            #expect(try small.search([1, 0.5], k: 2).count == 2)
        }
        do {
            _ = try FlatIndex(items: items).search(try EmbeddingTable([[1, 1], [big, big]]), k: 3)
        } catch let ScoringError.scoreOverflow(query, bound) {
            #expect(query == 0 && bound > Double(big))  // query 0's norm √2 × item norm 3.4e38 overflows
        }
    }

    @Test("class 6: sparse search — products past the float range are refused; norms that over- or underflow a float still rank right")
    func sparseScoreOverflow() throws {
        func matrix(_ rows: [[(Int, Float)]]) throws -> SparseMatrix {
            try SparseMatrix(rows: rows.count, columns: 2,
                             triples: rows.enumerated().flatMap { r, entries in entries.map { (row: r, column: $0.0, value: $0.1) } })
        }
        // Inner products of 1e30 × 1e30 overflow: an error, not a document silently dropped.
        let huge = try SparseIndex(documents: try matrix([[(0, 1e30)], [(1, 1)]]), metric: .innerProduct)
        #expect(throws: ScoringError.self) { try huge.search(try matrix([[(0, 1e30), (1, 1)]]), k: 2) }
        #expect(try huge.search(try matrix([[(0, 1), (1, 1)]]), k: 2)[0].map(\.id) == [0, 1])

        // Document 0 = (3e19, 3e19): its float squared norm overflows. Against the query (1, 1)
        // its cosine is exactly 1 and document 1 = (1, 0) has 1/√2.
        let documents = try matrix([[(0, 3e19), (1, 3e19)], [(0, 1)]])
        let cosine = try SparseIndex(documents: documents, metric: .cosine)
        let ranked = try cosine.search(columns: [0, 1], weights: [1, 1], k: 2)
        #expect(ranked.map(\.id) == [0, 1])
        #expect(abs(ranked[0].score - 1) < 1e-6 && abs(ranked[1].score - Float(0.5).squareRoot()) < 1e-6)
        // A query of tiny weights (its float squared norm underflows to 0) is not a zero query.
        let tiny = try cosine.search(columns: [0], weights: [1e-30], k: 2)
        #expect(tiny.map(\.id) == [1, 0])
        #expect(abs(tiny[0].score - 1) < 1e-6 && abs(tiny[1].score - Float(0.5).squareRoot()) < 1e-6)
    }

    @Test("class 7: a FIFO given as a file is refused at once instead of blocking in open")
    func fifo() throws {
        defer { removeDirectory(directory) }
        let path = directory + "/pipe"
        #expect(mkfifo(path, 0o600) == 0)
        #expect(throws: NotARegularFileError(path: path, kind: "a FIFO (named pipe)")) { try MappedFile(path: path) }
        #expect(throws: NotARegularFileError(path: directory, kind: "a directory")) { try MappedFile(path: directory) }
        #expect(throws: NotARegularFileError.self) { try NumPyFile.read(path) }
        #expect(throws: NotARegularFileError.self) { try ModelFile(contentsOf: path) }
    }
}

@Suite("Property: a mutated .npy file gives a clean error or the original table")
struct NumPyMutationTests {
    enum Mutation: CaseIterable { case flipHeader, truncate, extend, hugeShape, headerLength, version }

    /// 7 × 5 values: every single-byte change to the shape's digits changes the byte count.
    static let table = EmbeddingTable.gaussian(rows: 7, dimensions: 5, seed: 9)

    static func values(_ table: EmbeddingTable) -> [Float] { table.withUnsafeBufferPointer { Array($0) } }

    /// `original` (a version 1.0 file whose data starts at `dataStart`) with one seeded mutation.
    static func mutate(_ original: [UInt8], dataStart: Int, _ kind: Mutation, using generator: inout SeededGenerator) -> [UInt8] {
        var bytes = original
        switch kind {
        case .flipHeader:
            bytes[Int.random(in: 0 ..< dataStart, using: &generator)] ^= UInt8.random(in: 1 ... 255, using: &generator)
        case .truncate:
            bytes.removeLast(Int.random(in: 1 ... bytes.count, using: &generator))
        case .extend:
            bytes += (0 ..< Int.random(in: 1 ... 16, using: &generator)).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        case .hugeShape:
            let shapes = ["(4611686018427387904, 5)", "(9223372036854775807, 1)", "(100000000000000000000, 2)", "(-7, 5)",
                          "(7, 2305843009213693952)", "(0, 5)", "(7, 0)", "(3037000500, 3037000500)", "(7, 5, 1)", "()"]
            let header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapes.randomElement(using: &generator)!), }"
            let padded = Array(header.utf8) + [UInt8](repeating: 0x20, count: dataStart - 11 - header.utf8.count) + [0x0A]
            bytes.replaceSubrange(10 ..< dataStart, with: padded)
        case .headerLength:
            bytes.store(UInt16.random(in: 0 ... .max, using: &generator), at: 8)
        case .version:
            bytes[6] = UInt8.random(in: 0 ... 255, using: &generator)
        }
        return bytes
    }

    @Test("seeded mutations of an .npy file", arguments: Mutation.allCases)
    func mutations(kind: Mutation) throws {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/table.npy"
        try NumPyFile.write(Self.table, to: path)
        let original = try ModelFileSurgery.read(path)
        let dataStart = original.count - Self.table.rows * Self.table.dimensions * 4
        var generator = SeededGenerator(seed: 0x4E50 + UInt64(Mutation.allCases.firstIndex(of: kind)!))
        var refused = 0, equal = 0
        for _ in 0 ..< 100 {
            try AtomicFile.write(Self.mutate(original, dataStart: dataStart, kind, using: &generator), to: path)
            let read: EmbeddingTable
            do { read = try NumPyFile.read(path) } catch { refused += 1; continue }
            // Accepted: then it must be the same table (e.g. a changed padding byte).
            #expect(read.rows == Self.table.rows && read.dimensions == Self.table.dimensions
                    && Self.values(read) == Self.values(Self.table), "\(kind) accepted with a different table")
            equal += 1
        }
        #expect(refused + equal == 100)
        #expect(refused > 0, "no mutation of kind \(kind) was refused: the mutator is not mutating")
    }
}
