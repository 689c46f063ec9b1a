/// A hash set of keys that are short sequences of integers (UTF-8 bytes of a token, token ids
/// of an n-gram), each given a dense id in insertion order. Keys live back to back in one
/// array, so a million terms cost two arrays, not a million strings; lookups compare code units
/// exactly (no Unicode normalization, as Python's `dict` of `str` does).
struct InternTable<Element: FixedWidthInteger & Sendable>: Sendable {
    /// Key i is `storage[starts[i] ..< starts[i + 1]]`.
    private(set) var storage: [Element] = []
    private(set) var starts: [Int] = [0]
    private var hashes: [UInt64] = []
    /// Open addressing with linear probing: an id, or -1 for an empty slot. Kept at most half full.
    private var slots: [Int32] = [Int32](repeating: -1, count: 1024)

    /// Number of keys.
    var count: Int { starts.count - 1 }

    /// Key `id`'s elements.
    func key(_ id: Int) -> ArraySlice<Element> { storage[starts[id] ..< starts[id + 1]] }

    /// The id of `key`, or nil. - Complexity: O(key length) expected.
    func find(_ key: UnsafeBufferPointer<Element>) -> Int? {
        let hash = Self.hash(key)
        var slot = Int(truncatingIfNeeded: hash) & (slots.count - 1)
        while true {
            let id = Int(slots[slot])
            if id < 0 { return nil }
            if hashes[id] == hash && equals(id, key) { return id }
            slot = (slot + 1) & (slots.count - 1)
        }
    }

    /// The id of `key`, inserting it when new. - Complexity: O(key length) amortized.
    @discardableResult
    mutating func insert(_ key: UnsafeBufferPointer<Element>) -> Int {
        let hash = Self.hash(key)
        var slot = Int(truncatingIfNeeded: hash) & (slots.count - 1)
        while true {
            let id = Int(slots[slot])
            if id < 0 { break }
            if hashes[id] == hash && equals(id, key) { return id }
            slot = (slot + 1) & (slots.count - 1)
        }
        let id = count
        storage.append(contentsOf: key)
        starts.append(storage.count)
        hashes.append(hash)
        slots[slot] = Int32(id)
        if 2 * count > slots.count { grow() }
        return id
    }

    /// Inserts a key given as an array.
    @discardableResult
    mutating func insert(_ key: [Element]) -> Int { key.withUnsafeBufferPointer { insert($0) } }

    /// Looks up a key given as an array.
    func find(_ key: [Element]) -> Int? { key.withUnsafeBufferPointer { find($0) } }

    private func equals(_ id: Int, _ key: UnsafeBufferPointer<Element>) -> Bool {
        let start = starts[id], length = starts[id + 1] - start
        guard length == key.count else { return false }
        return storage.withUnsafeBufferPointer { stored in
            for i in 0 ..< length where stored[start + i] != key[i] { return false }
            return true
        }
    }

    private mutating func grow() {
        var larger = [Int32](repeating: -1, count: slots.count * 2)
        let mask = larger.count - 1
        for id in 0 ..< count {
            var slot = Int(truncatingIfNeeded: hashes[id]) & mask
            while larger[slot] >= 0 { slot = (slot + 1) & mask }
            larger[slot] = Int32(id)
        }
        slots = larger
    }

    private static func hash(_ key: UnsafeBufferPointer<Element>) -> UInt64 { termHash(key) }
}
