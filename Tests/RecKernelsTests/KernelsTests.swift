import CRecKernels
@testable import RecKernels
import Testing

@Suite("C kernels at every SIMD level")
struct KernelsTests {
    /// Every remainder of the micro-kernels' row (8 and 6) and column (32 and 16) tiles and of the
    /// vector width along k.
    @Test("tile products equal the naive product", arguments: SIMDLevel.supported)
    func tileProducts(level: SIMDLevel) {
        var generator = SeededGenerator(seed: 77)
        for m in [1, 2, 5, 6, 7, 8, 9, 13, 17] {
            for n in [1, 15, 16, 17, 31, 32, 33, 64, 70] {
                for k in [1, 3, 8, 15, 16, 17, 33, 64] {
                    let a = EmbeddingTable.gaussian(rows: m, dimensions: k, seed: generator.next())
                    let b = EmbeddingTable.gaussian(rows: n, dimensions: k, seed: generator.next())
                    var c = [Float](repeating: .nan, count: m * n)
                    var pack = [Float](repeating: 0, count: Kernels.packFloats(items: n, dimensions: k) + 16)
                    a.withUnsafeBufferPointer { a in
                        b.withUnsafeBufferPointer { b in
                            c.withUnsafeMutableBufferPointer { c in
                                pack.withUnsafeMutableBufferPointer { pack in
                                    // Aligned as the index's scratch is.
                                    let raw = UnsafeMutableRawPointer(pack.baseAddress!)
                                    let aligned = raw.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
                                    Kernels.tileProduct(level: level, queries: a.baseAddress!, queryCount: m, items: b.baseAddress!,
                                                        itemCount: n, dimensions: k, scores: c.baseAddress!, pack: aligned)
                                }
                            }
                        }
                    }
                    for i in 0 ..< m {
                        for j in 0 ..< n {
                            let want = zip(a.row(i), b.row(j)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                            #expect(abs(Double(c[i * n + j]) - want) <= 1e-4 * max(1, abs(want)), "m \(m) n \(n) k \(k) at (\(i), \(j))")
                        }
                    }
                }
            }
        }
    }

    @Test("finiteness is detected at every position", arguments: SIMDLevel.supported)
    func finiteness(level: SIMDLevel) {
        for count in [0, 1, 7, 8, 9, 15, 16, 17, 40] {
            let clean = [Float](repeating: 1.5, count: count)
            #expect(clean.withUnsafeBufferPointer { Kernels.allFinite($0, level: level) })
            for position in 0 ..< count {
                for bad in [Float.nan, .infinity, -.infinity, .signalingNaN] {
                    var values = clean
                    values[position] = bad
                    #expect(!values.withUnsafeBufferPointer { Kernels.allFinite($0, level: level) }, "\(bad) at \(position) of \(count)")
                }
            }
        }
        let extremes: [Float] = [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0]
        #expect(extremes.withUnsafeBufferPointer { Kernels.allFinite($0, level: level) })
    }

    @Test("squared row norms equal the naive ones", arguments: SIMDLevel.supported)
    func squaredRowNorms(level: SIMDLevel) {
        for dimensions in [1, 7, 16, 33, 64, 100] {
            let table = EmbeddingTable.gaussian(rows: 9, dimensions: dimensions, seed: UInt64(dimensions))
            let norms = Kernels.squaredRowNorms(table, level: level)
            for r in 0 ..< 9 {
                let want = table.row(r).reduce(0.0) { $0 + Double($1) * Double($1) }
                #expect(abs(Double(norms[r]) - want) <= 1e-5 * want)
            }
            // Integer rows are exact.
            let integers = integerTable(rows: 5, dimensions: dimensions, range: -9 ... 9, seed: 3)
            #expect(Kernels.squaredRowNorms(integers, level: level) == (0 ..< 5).map { integers.row($0).reduce(0) { $0 + $1 * $1 } })
        }
    }

    @Test("CRC-32C: the standard check value, both paths, and continuation")
    func crc32c() {
        let check = Array("123456789".utf8)
        #expect(check.withUnsafeBytes { Kernels.crc32c($0) } == 0xE306_9283)
        #expect(check.withUnsafeBytes { rk_crc32c_portable(0, $0.baseAddress, $0.count) } == 0xE306_9283)
        var generator = SeededGenerator(seed: 5)
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 1000] {
            let bytes = (0 ..< length).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
            let whole = bytes.withUnsafeBytes { Kernels.crc32c($0) }
            #expect(whole == bytes.withUnsafeBytes { rk_crc32c_portable(0, $0.baseAddress, $0.count) })
            let cut = length / 3
            let first = bytes[..<cut].withUnsafeBytes { Kernels.crc32c($0) }
            #expect(whole == bytes[cut...].withUnsafeBytes { Kernels.crc32c($0, continuing: first) })
        }
    }

    /// Every arrangement of a small multiset with ties: the heap keeps the best K, ties to the
    /// lower id, whatever the arrival order.
    @Test("top-K heap keeps the best K, ties to the lower id, for every arrival order")
    func heapExhaustive() {
        let entries: [(score: Float, id: Int32)] = [(3, 4), (1, 0), (3, 2), (2, 5), (3, 1), (1, 3)]
        let ranked = entries.sorted { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
        for k in 1 ... entries.count + 1 {
            var permutation = Array(entries.indices)
            repeat {
                var scores = [Float](repeating: 0, count: k), ids = [Int32](repeating: 0, count: k)
                scores.withUnsafeMutableBufferPointer { s in
                    ids.withUnsafeMutableBufferPointer { i in
                        var heap = rk_topk(scores: s.baseAddress, ids: i.baseAddress, count: 0, capacity: Int32(k))
                        for index in permutation { rk_topk_push(&heap, entries[index].score, entries[index].id) }
                        rk_topk_push(&heap, .nan, 99)  // never kept
                        rk_topk_sort(&heap)
                        let kept = Int(heap.count)
                        #expect(kept == min(k, entries.count))
                        #expect(Array(i.prefix(kept)) == ranked.prefix(kept).map(\.id))
                    }
                }
            } while nextPermutation(&permutation)
        }
    }
}

/// Advances to the next lexicographic permutation; false after the last.
private func nextPermutation(_ a: inout [Int]) -> Bool {
    var i = a.count - 2
    while i >= 0 && a[i] >= a[i + 1] { i -= 1 }
    if i < 0 { return false }
    var j = a.count - 1
    while a[j] <= a[i] { j -= 1 }
    a.swapAt(i, j)
    a[(i + 1)...].reverse()
    return true
}
