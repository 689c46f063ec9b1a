import RecModels

extension Interactions {
    /// A stable fingerprint of the training set: 16 lowercase hex digits of FNV-1a 64.
    ///
    /// The hash runs over the entries sorted by (user id, item id, value), ids compared as UTF-8
    /// bytes, each entry fed as: user id length (UInt32 LE), user id UTF-8, item id length
    /// (UInt32 LE), item id UTF-8, value bits (Float32 LE, -0 as +0). So it depends on the
    /// multiset of (user id, item id, value) triples only: not on entry order, on the order of
    /// the id maps, on ids without entries, or on timestamps. It is the same on every run and
    /// platform, but not cryptographic: it detects changed data, not a deliberate collision.
    ///
    /// - Complexity: O(n log n) for n entries, plus O(u log u + i log i) for the id maps.
    public var fingerprint: String {
        let userIDs = users.ids.map { Array($0.utf8) }, itemIDs = items.ids.map { Array($0.utf8) }
        let userRanks = Self.byteOrderRanks(userIDs), itemRanks = Self.byteOrderRanks(itemIDs)
        func valueBits(_ position: Int) -> UInt32 { (values[position] == 0 ? 0 : values[position]).bitPattern }
        // Ranks stand in for the ids so the sort compares integers, not byte strings.
        let order = (0 ..< count).sorted {
            (userRanks[Int(userIndices[$0])], itemRanks[Int(itemIndices[$0])], valueBits($0))
                < (userRanks[Int(userIndices[$1])], itemRanks[Int(itemIndices[$1])], valueBits($1))
        }
        var hash = FNV1a64()
        for position in order {
            for id in [userIDs[Int(userIndices[position])], itemIDs[Int(itemIndices[position])]] {
                hash.add(UInt32(id.count))
                hash.add(id)
            }
            hash.add(valueBits(position))
        }
        let digits = String(hash.value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Each id's position when the ids are sorted by their bytes.
    private static func byteOrderRanks(_ ids: [[UInt8]]) -> [Int] {
        var ranks = [Int](repeating: 0, count: ids.count)
        for (rank, index) in ids.indices.sorted(by: { ids[$0].lexicographicallyPrecedes(ids[$1]) }).enumerated() {
            ranks[index] = rank
        }
        return ranks
    }
}

/// The 64-bit Fowler–Noll–Vo 1a hash.
private struct FNV1a64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: [UInt8]) {
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
    }

    /// Adds `integer`'s bytes, least significant first.
    mutating func add(_ integer: UInt32) {
        add((0 ..< 4).map { UInt8(truncatingIfNeeded: integer >> ($0 * 8)) })
    }
}
