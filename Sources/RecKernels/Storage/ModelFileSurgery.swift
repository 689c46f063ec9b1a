/// Edits a model file's bytes behind its checksums, as a hostile or buggy writer would — for the
/// package's own tests and fuzz targets (package access: not part of the library's API). The
/// checks these edits reach are the structural and semantic ones behind the CRCs.
package enum ModelFileSurgery {
    /// The kinds of seeded mutation ``mutate(_:_:using:)`` applies.
    package enum Mutation: CaseIterable, Sendable {
        /// One byte anywhere XORed with a random non-zero value (the checksums then disagree).
        case flip
        /// One bit in the header, section table or metadata flipped, every checksum recomputed.
        case flipResealed
        /// The file cut short by a random number of bytes.
        case truncate
        /// A 64-bit size or offset field set to a huge value, checksums recomputed.
        case hugeField
        /// One section's payload pointed at another's (or at the section table), checksums recomputed.
        case overlap
    }

    /// The whole file's bytes.
    package static func read(_ path: String) throws -> [UInt8] { try MappedFile(path: path).withUnsafeBytes { Array($0) } }

    /// The number of sections the header declares.
    package static func sectionCount(_ bytes: [UInt8]) -> Int { Int(bytes.withUnsafeBytes { $0.load(at: 12) as UInt32 }) }

    /// Byte offset of section `index`'s entry in the section table.
    package static func entry(_ index: Int) -> Int { ModelFileFormat.headerSize + index * ModelFileFormat.entrySize }

    /// Writes `value` little-endian at `offset`.
    package static func set<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T, at offset: Int) {
        bytes.store(value, at: offset)
    }

    /// The entry index and payload range of the section called `name`, if there is one.
    package static func section(_ bytes: [UInt8], _ name: String) -> (index: Int, payload: Range<Int>)? {
        for index in 0 ..< sectionCount(bytes) {
            let base = entry(index)
            let stored = bytes[base ..< base + 32].prefix { $0 != 0 }
            if Array(stored) == Array(name.utf8) {
                let (offset, length) = bytes.withUnsafeBytes { (Int($0.load(at: base + 56) as UInt64), Int($0.load(at: base + 64) as UInt64)) }
                return (index, offset ..< offset + length)
            }
        }
        return nil
    }

    /// Recomputes the header-and-table CRC (field 40) so an edit passes the checksum.
    package static func resealHeader(_ bytes: inout [UInt8]) {
        guard bytes.count >= ModelFileFormat.headerSize else { return }
        let tableEnd = min(bytes.count, entry(sectionCount(bytes)))
        bytes.store(UInt32(0), at: 40)
        bytes.store(bytes[0 ..< tableEnd].withUnsafeBytes { Kernels.crc32c($0) }, at: 40)
    }

    /// Recomputes section `index`'s payload CRC from the bytes its entry now points at (left
    /// alone when the entry points outside the file).
    package static func resealSection(_ bytes: inout [UInt8], _ index: Int) {
        let base = entry(index)
        let (offset, length) = bytes.withUnsafeBytes { ($0.load(at: base + 56) as UInt64, $0.load(at: base + 64) as UInt64) }
        guard offset <= UInt64(bytes.count), length <= UInt64(bytes.count) - offset else { return }
        bytes.store(bytes[Int(offset) ..< Int(offset + length)].withUnsafeBytes { Kernels.crc32c($0) }, at: base + 36)
    }

    /// Recomputes every in-range section CRC, the metadata CRC and the header CRC.
    package static func reseal(_ bytes: inout [UInt8]) {
        guard bytes.count >= ModelFileFormat.headerSize else { return }
        let count = sectionCount(bytes)
        guard entry(count) <= bytes.count else { return }
        for index in 0 ..< count { resealSection(&bytes, index) }
        let (metaOffset, metaLength) = bytes.withUnsafeBytes { ($0.load(at: 16) as UInt64, $0.load(at: 24) as UInt64) }
        if metaOffset <= UInt64(bytes.count), metaLength <= UInt64(bytes.count) - metaOffset {
            bytes.store(bytes[Int(metaOffset) ..< Int(metaOffset + metaLength)].withUnsafeBytes { Kernels.crc32c($0) }, at: 44)
        }
        resealHeader(&bytes)
    }

    /// `original` with one seeded mutation of `kind` applied.
    package static func mutate(_ original: [UInt8], _ kind: Mutation, using generator: inout SeededGenerator) -> [UInt8] {
        var bytes = original
        let sections = sectionCount(bytes)
        switch kind {
        case .flip:
            let position = Int.random(in: 0 ..< bytes.count, using: &generator)
            bytes[position] ^= UInt8.random(in: 1 ... 255, using: &generator)
        case .flipResealed:
            let metadataEnd = bytes.withUnsafeBytes { Int($0.load(at: 16) as UInt64) + Int($0.load(at: 24) as UInt64) }
            let position = Int.random(in: 0 ..< metadataEnd, using: &generator)
            bytes[position] ^= 1 << UInt8.random(in: 0 ..< 8, using: &generator)
            reseal(&bytes)
        case .truncate:
            bytes.removeLast(Int.random(in: 1 ... bytes.count, using: &generator))
        case .hugeField:
            let fields = [16, 24, 32] + (0 ..< sections).flatMap { s in [40, 48, 56, 64].map { entry(s) + $0 } }
            let value: UInt64 = [1 << 63, .max, UInt64(Int.max), 1 << 62, 1 << 32, UInt64(UInt32.max)].randomElement(using: &generator)!
            bytes.store(value, at: fields.randomElement(using: &generator)!)
            reseal(&bytes)
        case .overlap:
            let victim = Int.random(in: 0 ..< sections, using: &generator)
            let target = Int.random(in: 0 ... sections, using: &generator)
            let offset = target == sections ? 0 : bytes.withUnsafeBytes { Int($0.load(at: entry(target) + 56) as UInt64) }
            bytes.store(UInt64(offset), at: entry(victim) + 56)
            reseal(&bytes)
        }
        return bytes
    }
}
