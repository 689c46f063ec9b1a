@testable import RecKernels
import Testing

/// The two additions the C ABI needs: tables over a caller's buffer, bitsets from C words.
@Suite("Borrowed tables and bitsets from words")
struct BorrowedStorageTests {
    @Test("a borrowed table reads the caller's buffer in place and never writes to it")
    func borrowedTable() throws {
        var values: [Float] = (0 ..< 12).map { Float($0) }
        try values.withUnsafeBufferPointer { buffer in
            var table = try EmbeddingTable(unsafeBorrowing: buffer, rows: 3, dimensions: 4)
            #expect(table.withUnsafeBufferPointer { $0.baseAddress } == buffer.baseAddress)
            #expect(table.row(2) == [8, 9, 10, 11])
            #expect(!table.isMemoryMapped)
            // The first mutation copies: the caller's buffer is unchanged.
            try table.setRow(0, to: [-1, -1, -1, -1])
            #expect(table.withUnsafeBufferPointer { $0.baseAddress } != buffer.baseAddress)
            #expect(buffer[0] == 0 && table.row(0) == [-1, -1, -1, -1])
        }
        values[0] = 5
        #expect(throws: MatrixError.shapeMismatch(expected: 12, actual: 11)) {
            try values.withUnsafeBufferPointer { try EmbeddingTable(unsafeBorrowing: UnsafeBufferPointer(rebasing: $0[0 ..< 11]), rows: 3, dimensions: 4) }
        }
        #expect(throws: MatrixError.invalidShape(rows: 3, dimensions: 0)) {
            try values.withUnsafeBufferPointer { try EmbeddingTable(unsafeBorrowing: $0, rows: 3, dimensions: 0) }
        }
    }

    @Test("an index over a borrowed table finds what one over a copy finds")
    func borrowedIndex() throws {
        let values: [Float] = (0 ..< 60).map { Float(($0 * 7) % 11) - 5 }
        let owned = try FlatIndex(items: EmbeddingTable(rows: 15, dimensions: 4, values: values), metric: .cosine)
        try values.withUnsafeBufferPointer { buffer in
            let borrowed = try FlatIndex(items: EmbeddingTable(unsafeBorrowing: buffer, rows: 15, dimensions: 4), metric: .cosine)
            #expect(try borrowed.search([1, 2, 0, -1], k: 5) == owned.search([1, 2, 0, -1], k: 5))
        }
    }

    @Test("a bitset from 64-bit words holds exactly the set bits below its capacity")
    func bitsetFromWords() throws {
        let set = try ItemBitset(capacity: 70, words: [1 << 3 | 1 << 63, ~0])
        #expect((0 ..< 70).filter(set.contains) == [3, 63] + Array(64 ..< 70))
        #expect(set.count == 8)  // bits 70...127 of the second word are dropped
        #expect(throws: ScoringError.self) { try ItemBitset(capacity: 70, words: [0]) }
    }
}
