import RecKernels

/// The terms of a TF-IDF vocabulary, in column order, stored so that they are searched in
/// place: UTF-8 bytes back to back, int64 offsets (count + 1), and an open-addressing hash
/// table of columns (linear probing, a power-of-two size at least twice the term count, -1 for
/// an empty slot) keyed by ``termHash(_:)`` of each term's bytes.
///
/// A table read from a model file points into the file's mapping: opening costs a validation
/// pass over the offsets and slots (no string, dictionary or hash is built), and a lookup costs
/// one hash of the term and a probe or two. Immutable and `Sendable`; as a collection it is the
/// terms as `String`s, each decoded when read.
public struct TermTable: RandomAccessCollection, Sendable {
    let bytes: MappedElements<UInt8>
    let offsets: MappedElements<Int64>
    let slots: MappedElements<Int32>

    /// Builds the table of `terms` (column i is `terms[i]`).
    ///
    /// - Throws: ``TextModelError/invalidOption(_:)`` when a term appears twice.
    /// - Complexity: O(total bytes).
    public init<Terms: Sequence<String>>(_ terms: Terms) throws {
        var bytes: [UInt8] = [], offsets: [Int64] = [0]
        for term in terms {
            bytes.append(contentsOf: term.utf8)
            offsets.append(Int64(bytes.count))
        }
        try self.init(bytes: MappedElements(bytes), offsets: MappedElements(offsets))
    }

    /// A table over stored bytes and offsets, building the hash slots (files written before the
    /// slots were stored). - Complexity: O(total bytes).
    init(bytes: MappedElements<UInt8>, offsets: MappedElements<Int64>) throws {
        let count = offsets.count - 1
        var slots = [Int32](repeating: -1, count: Self.slotCount(terms: count))
        let mask = slots.count - 1
        let duplicate: Int? = bytes.withUnsafeBufferPointer { all in
            offsets.withUnsafeBufferPointer { offsets in
                let term = { (column: Int) in UnsafeBufferPointer(rebasing: all[Int(offsets[column]) ..< Int(offsets[column + 1])]) }
                for column in 0 ..< count {
                    let key = term(column)
                    var slot = Int(truncatingIfNeeded: termHash(key)) & mask
                    while slots[slot] >= 0 {
                        if Self.equal(term(Int(slots[slot])), key) { return column }
                        slot = (slot + 1) & mask
                    }
                    slots[slot] = Int32(column)
                }
                return nil
            }
        }
        self.bytes = bytes
        self.offsets = offsets
        self.slots = MappedElements(slots)
        if let duplicate { throw TextModelError.invalidOption("term '\(self[duplicate])' appears twice") }
    }

    /// A table over stored sections, checked: offsets that cover the bytes, slots that hold each
    /// column exactly once. - Complexity: O(terms + slots), no allocation beyond a bitset.
    init(bytes: MappedElements<UInt8>, offsets: MappedElements<Int64>, slots: MappedElements<Int32>) throws {
        let count = offsets.count - 1
        guard slots.count >= Self.slotCount(terms: count), slots.count & (slots.count - 1) == 0 else {
            throw TextModelError.invalidOption("\(slots.count) hash slots for \(count) terms (a power of two above twice as many is needed)")
        }
        var seen = [UInt64](repeating: 0, count: (count + 63) / 64), filled = 0
        try slots.withUnsafeBufferPointer { slots in
            for slot in slots where slot >= 0 {
                let column = Int(slot)
                guard column < count, seen[column / 64] & (1 << (column % 64)) == 0 else {
                    throw TextModelError.invalidOption("hash slot holding column \(column) of \(count), or holding it twice")
                }
                seen[column / 64] |= 1 << (column % 64)
                filled += 1
            }
        }
        guard filled == count else { throw TextModelError.invalidOption("\(filled) hash slots filled for \(count) terms") }
        self.bytes = bytes
        self.offsets = offsets
        self.slots = slots
    }

    /// Whether bytes, offsets and slots are all read in place from a file mapping.
    public var isMapped: Bool { bytes.mapping != nil && offsets.mapping != nil && slots.mapping != nil }

    public var startIndex: Int { 0 }
    public var endIndex: Int { offsets.count - 1 }

    /// The term of `column`.
    public subscript(column: Int) -> String { String(decoding: utf8(of: column), as: UTF8.self) }

    /// The column of `term`, or nil. - Complexity: O(term length) expected.
    public func column(of term: String) -> Int? {
        var term = term
        return term.withUTF8 { column(ofUTF8: $0) }
    }

    /// The column of the term spelled by `key` (UTF-8), or nil.
    func column(ofUTF8 key: UnsafeBufferPointer<UInt8>) -> Int? {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: termHash(key)) & mask
        while true {
            let column = Int(slots[slot])
            if column < 0 { return nil }
            if Self.equal(utf8(of: column), key) { return column }
            slot = (slot + 1) & mask
        }
    }

    /// The bytes of term `column`; valid while the table is.
    private func utf8(of column: Int) -> UnsafeBufferPointer<UInt8> {
        bytes.withUnsafeBufferPointer { UnsafeBufferPointer(rebasing: $0[Int(offsets[column]) ..< Int(offsets[column + 1])]) }
    }

    private static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0 ..< a.count where a[i] != b[i] { return false }
        return true
    }

    /// The slot count for `terms` terms: the power of two at least twice as large (at most half full).
    static func slotCount(terms: Int) -> Int {
        var count = 2
        while count < 2 * terms { count *= 2 }
        return count
    }
}

extension ModelFileWriter {
    /// Adds `table` as three sections: `<name>_bytes` (UTF-8, back to back), `<name>_offsets`
    /// (int64, count + 1) and `<name>_slots` (int32 hash slots).
    mutating func add(_ table: TermTable, named name: String) throws {
        try add(bytes: table.bytes.withUnsafeBufferPointer { Array($0) }, named: name + "_bytes")
        try add(table.offsets.withUnsafeBufferPointer { Array($0) }, named: name + "_offsets")
        try add(table.slots.withUnsafeBufferPointer { Array($0) }, named: name + "_slots")
    }
}

extension ModelFile {
    /// The term table stored by `add(_:named:)`, read in place; for files written before the
    /// slots were stored, the slots are built from the mapped terms.
    ///
    /// - Throws: ``ModelFileError`` for missing or malformed sections,
    ///   ``TextModelError/invalidOption(_:)`` for slots that do not index the terms.
    func termTable(_ name: String) throws -> TermTable {
        let bytes = try mappedElements(name + "_bytes", type: .uint8, as: UInt8.self)
        let offsets = try mappedElements(name + "_offsets", type: .int64, as: Int64.self)
        try offsets.withUnsafeBufferPointer { try checkOffsets($0, cover: bytes.count, section: name + "_offsets") }
        guard section(name + "_slots") != nil else { return try TermTable(bytes: bytes, offsets: offsets) }
        return try TermTable(bytes: bytes, offsets: offsets, slots: try mappedElements(name + "_slots", type: .int32, as: Int32.self))
    }

    /// Checks that string offsets start at 0, never decrease and end at the byte count.
    func checkOffsets(_ offsets: UnsafeBufferPointer<Int64>, cover byteCount: Int, section: String) throws {
        guard offsets.first == 0, offsets.last == Int64(byteCount), zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw ModelFileError.invalidSection(path: path, section: section, reason: "offsets do not cover the bytes")
        }
    }
}

/// The hash of a term's bytes (or of any short integer sequence): FNV-1a over the elements, then
/// MurmurHash3's 64-bit finalizer so that the low bits, which pick the slot, depend on every
/// element. Stored hash tables depend on it: it is part of the model file format.
func termHash<Element: FixedWidthInteger>(_ key: UnsafeBufferPointer<Element>) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for element in key { h = (h ^ UInt64(truncatingIfNeeded: element)) &* 0x100_0000_01b3 }
    h ^= h >> 33
    h = h &* 0xff51_afd7_ed55_8ccd
    h ^= h >> 33
    h = h &* 0xc4ce_b9fe_1a85_ec53
    return h ^ (h >> 33)
}
