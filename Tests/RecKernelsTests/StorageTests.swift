#if canImport(Glibc)
import Glibc
#endif
@testable import RecKernels
import Testing

/// A fresh directory under /tmp, removed by the caller's `defer`.
func temporaryDirectory() -> String {
    var template = Array("/tmp/reckernels-test-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

func removeDirectory(_ path: String) {
    _ = system("rm -rf '\(path)'")
}

func readBytes(_ path: String) -> [UInt8] {
    let file = try! MappedFile(path: path)
    return Array(file.bytes)
}

func writeBytes(_ bytes: [UInt8], to path: String) {
    try! AtomicFile.write(bytes, to: path)
}

@Suite("EmbeddingTable")
struct EmbeddingTableTests {
    @Test("rows are contiguous, row-major and 64-byte aligned")
    func layout() throws {
        let table = try EmbeddingTable([[1, 2, 3], [4, 5, 6]])
        #expect(table.rows == 2 && table.dimensions == 3)
        #expect(table.row(1) == [4, 5, 6])
        table.withUnsafeBufferPointer { buffer in
            #expect(Array(buffer) == [1, 2, 3, 4, 5, 6])
            #expect(Int(bitPattern: buffer.baseAddress!) % 64 == 0)
        }
        table.withRow(1) { row in
            table.withUnsafeBufferPointer { #expect(row.baseAddress == $0.baseAddress! + 3) }  // no copy
        }
    }

    @Test("copies share storage until written (copy-on-write)")
    func copyOnWrite() throws {
        let original = try EmbeddingTable([[1, 2], [3, 4]])
        var copy = original
        #expect(copy.storage === original.storage)
        try copy.setRow(0, to: [9, 9])
        #expect(copy.storage !== original.storage)
        #expect(original.row(0) == [1, 2] && copy.row(0) == [9, 9])
    }

    @Test("bad shapes and values are refused")
    func errors() throws {
        #expect(throws: MatrixError.shapeMismatch(expected: 6, actual: 5)) { try EmbeddingTable(rows: 2, dimensions: 3, values: [1, 2, 3, 4, 5]) }
        #expect(throws: MatrixError.invalidShape(rows: 2, dimensions: 0)) { try EmbeddingTable(rows: 2, dimensions: 0, values: []) }
        #expect(throws: MatrixError.nonFinite(row: 1, column: 0)) { try EmbeddingTable([[1, 2], [.nan, 3]]) }
        #expect(throws: MatrixError.shapeMismatch(expected: 2, actual: 3)) { try EmbeddingTable([[1, 2], [1, 2, 3]]) }
        var table = try EmbeddingTable([[1, 2]])
        #expect(throws: MatrixError.nonFinite(row: 0, column: 1)) { try table.setRow(0, to: [1, .infinity]) }
        #expect(table.row(0) == [1, 2])
    }
}

@Suite("Model file format")
struct ModelFileTests {
    @Test("a table round-trips through a memory-mapped file without a copy")
    func roundTrip() throws {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        let table = EmbeddingTable.gaussian(rows: 1000, dimensions: 17, seed: 3)
        let path = directory + "/table.rkm"
        try table.save(to: path)
        for verification in [ModelFileVerification.full, .structure] {
            let loaded = try EmbeddingTable(contentsOf: path, verification: verification)
            #expect(loaded.isMemoryMapped)
            #expect(loaded == table)
            loaded.withUnsafeBufferPointer { #expect(Int(bitPattern: $0.baseAddress!) % 64 == 0) }
        }
        // Writing to a mapped table copies it; the file is untouched.
        var edited = try EmbeddingTable(contentsOf: path)
        try edited.setRow(0, to: [Float](repeating: 7, count: 17))
        #expect(!edited.isMemoryMapped)
        #expect(try EmbeddingTable(contentsOf: path) == table)
    }

    @Test("several typed sections and metadata round-trip; the write is atomic")
    func sectionsAndMetadata() throws {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        var writer = ModelFileWriter()
        writer.metadata = Array(#"{"kind":"als","factors":2}"#.utf8)
        try writer.add(try EmbeddingTable([[1, 2], [3, 4], [5, 6]]), named: "items")
        try writer.add([Int32(7), 8, 9], named: "ids")
        try writer.add([Int64(-1), 1 << 40], named: "times")
        try writer.add(bytes: Array("a\nb".utf8), named: "names")
        try writer.add(EmbeddingTable(rows: 0, dimensions: 5), named: "empty")
        #expect(throws: ModelFileError.invalidName("ids")) { try writer.add([Int32(1)], named: "ids") }
        #expect(throws: ModelFileError.invalidName(String(repeating: "x", count: 32))) {
            try writer.add([Int32(1)], named: String(repeating: "x", count: 32))
        }
        let path = directory + "/model.rkm"
        try writer.write(to: path)
        try writer.write(to: path)  // replacing an existing file
        let file = try ModelFile(contentsOf: path)
        #expect(file.metadata == writer.metadata)
        #expect(file.sections.map(\.name) == ["items", "ids", "times", "names", "empty"])
        #expect(try file.table("items").row(2) == [5, 6])
        #expect(try file.int32s("ids") == [7, 8, 9])
        #expect(try file.int64s("times") == [-1, 1 << 40])
        #expect(try file.bytes("names") == Array("a\nb".utf8))
        #expect(try file.table("empty").rows == 0)
        #expect(throws: ModelFileError.missingSection(path: path, section: "nope")) { try file.table("nope") }
        #expect(throws: ModelFileError.wrongSectionType(path: path, section: "ids", expected: .float32, actual: .int32)) {
            try file.table("ids")
        }
        // No temporary file is left behind.
        let listing = try SystemCalls.entries(of: directory)
        #expect(listing == ["model.rkm"])
    }

    @Test("a non-finite table is never written")
    func refusesNonFinite() throws {
        var table = try EmbeddingTable([[1, 2]])
        table.withUnsafeMutableBufferPointer { $0[1] = .nan }
        #expect(throws: MatrixError.nonFinite(row: 0, column: 1)) { try table.save(to: "/tmp/never-written.rkm") }
    }

    /// Truncation at every region boundary and a flipped byte in every region: each refused
    /// with the check that failed.
    @Test("truncated and corrupt files are refused, naming the failed check")
    func corruption() throws {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/t.rkm"
        let table = EmbeddingTable.gaussian(rows: 10, dimensions: 4, seed: 1)
        try table.save(to: path)
        let good = readBytes(path)
        let section = try ModelFile(contentsOf: path).section("embeddings")!
        let broken = directory + "/broken.rkm"

        func check(_ bytes: [UInt8], verification: ModelFileVerification = .full, _ matches: (ModelFileError) -> Bool,
                   sourceLocation: SourceLocation = #_sourceLocation) {
            writeBytes(bytes, to: broken)
            do {
                _ = try EmbeddingTable(contentsOf: broken, verification: verification)
                Issue.record("accepted a broken file", sourceLocation: sourceLocation)
            } catch let error as ModelFileError {
                #expect(matches(error), "\(error)", sourceLocation: sourceLocation)
                #expect(error.description.contains(broken), sourceLocation: sourceLocation)
            } catch {
                Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
            }
        }
        check([]) { if case .truncated(_, "header", 64, 0) = $0 { true } else { false } }
        check(Array(good[..<40])) { if case .truncated(_, "header", _, 40) = $0 { true } else { false } }
        check(Array(good[..<100])) { if case .truncated(_, let part, _, _) = $0 { part.hasPrefix("section table") } else { false } }
        check(Array(good[..<(good.count - 1)])) { if case .truncated(_, "file", good.count, _) = $0 { true } else { false } }
        check(good + [0]) { if case .trailingBytes = $0 { true } else { false } }
        var bytes = good
        bytes[0] = UInt8(ascii: "X")
        check(bytes) { $0 == .badMagic(path: broken) }
        bytes = good
        bytes[8] = 2
        check(bytes) { $0 == .unsupportedVersion(path: broken, version: 2) }
        bytes = good
        bytes[70] ^= 1  // in the section entry's name
        check(bytes) { if case .checksumMismatch(_, "header", _, _) = $0 { true } else { false } }
        bytes = good
        bytes[section.offset + 5] ^= 0x10  // in the payload
        check(bytes) { if case .checksumMismatch(_, "section 'embeddings'", _, _) = $0 { true } else { false } }
        // Structure-only verification skips the payload: the same file opens.
        writeBytes(bytes, to: broken)
        #expect(throws: Never.self) { try EmbeddingTable(contentsOf: broken, verification: .structure) }
    }

    @Test("a file that is not there is a system error naming the path")
    func missingFile() {
        #expect {
            try EmbeddingTable(contentsOf: "/tmp/does-not-exist/x.rkm")
        } throws: { error in
            (error as? SystemCallError)?.description.contains("/tmp/does-not-exist/x.rkm") == true
        }
    }
}
