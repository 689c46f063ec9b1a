#if canImport(Glibc)
import Glibc
#endif
@testable import RecKernels
import Testing

/// Rewrites a model file's bytes and recomputes the header CRC, as a hostile writer would: the
/// checks under test are the ones behind the checksum.
enum ModelFileSurgery {
    static func read(_ path: String) throws -> [UInt8] {
        try MappedFile(path: path).withUnsafeBytes { Array($0) }
    }

    static func sectionCount(_ bytes: [UInt8]) -> Int {
        Int(bytes.withUnsafeBytes { $0.load(at: 12) as UInt32 })
    }

    /// Byte offset of section `index`'s entry.
    static func entry(_ index: Int) -> Int { ModelFileFormat.headerSize + index * ModelFileFormat.entrySize }

    static func set<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T, at offset: Int) {
        bytes.store(value, at: offset)
    }

    /// Recomputes the header-and-table CRC (field 40) so the edit passes the checksum.
    static func resealHeader(_ bytes: inout [UInt8]) {
        let tableEnd = min(bytes.count, entry(sectionCount(bytes)))
        guard tableEnd >= ModelFileFormat.headerSize else { return }
        bytes.store(UInt32(0), at: 40)
        let crc = bytes[0 ..< tableEnd].withUnsafeBytes { Kernels.crc32c($0) }
        bytes.store(crc, at: 40)
    }

    /// Recomputes section `index`'s payload CRC from the bytes its entry now points at.
    static func resealSection(_ bytes: inout [UInt8], _ index: Int) {
        let base = entry(index)
        let (offset, length) = bytes.withUnsafeBytes { (Int($0.load(at: base + 56) as UInt64), Int($0.load(at: base + 64) as UInt64)) }
        guard offset >= 0, length >= 0, offset <= bytes.count, length <= bytes.count - offset else { return }
        let crc = bytes[offset ..< offset + length].withUnsafeBytes { Kernels.crc32c($0) }
        bytes.store(crc, at: base + 36)
    }
}

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
