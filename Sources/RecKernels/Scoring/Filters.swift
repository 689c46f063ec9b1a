/// A fixed-capacity set of item indices `0 ..< capacity`, one bit per item.
public struct ItemBitset: Sendable, Equatable {
    /// Items the set can hold: indices `0 ..< capacity`.
    public let capacity: Int
    private(set) var words: [UInt64]

    /// An empty set. - Complexity: O(capacity / 64).
    public init(capacity: Int) {
        precondition(capacity >= 0, "capacity must not be negative")
        self.capacity = capacity
        self.words = [UInt64](repeating: 0, count: (capacity + 63) / 64)
    }

    /// A set holding `items`.
    ///
    /// - Throws: ``ScoringError/itemOutOfRange(item:itemCount:)`` for an index outside the capacity.
    public init(capacity: Int, containing items: some Sequence<Int>) throws {
        self.init(capacity: capacity)
        for item in items {
            guard item >= 0 && item < capacity else { throw ScoringError.itemOutOfRange(item: item, itemCount: capacity) }
            insert(item)
        }
    }

    /// A set from its bits, 64 items a word, item `i` at bit `i % 64` of word `i / 64` (the
    /// layout of a C `uint64_t` bitset); bits at or beyond `capacity` are ignored.
    ///
    /// - Throws: ``ScoringError/filterCapacityMismatch(expected:actual:)`` when `words` does not
    ///   hold `(capacity + 63) / 64` words.
    /// - Complexity: O(capacity / 64).
    public init(capacity: Int, words: some Collection<UInt64>) throws {
        precondition(capacity >= 0, "capacity must not be negative")
        guard words.count == (capacity + 63) / 64 else {
            throw ScoringError.filterCapacityMismatch(expected: capacity, actual: words.count * 64)
        }
        self.capacity = capacity
        self.words = Array(words)
        if capacity % 64 != 0 { self.words[self.words.count - 1] &= (1 << UInt64(capacity % 64)) - 1 }
    }

    /// Adds `item`. - Precondition: `0 <= item < capacity`.
    public mutating func insert(_ item: Int) {
        precondition(item >= 0 && item < capacity, "item \(item) out of range 0..<\(capacity)")
        words[item >> 6] |= 1 << UInt64(item & 63)
    }

    /// Removes `item`. - Precondition: `0 <= item < capacity`.
    public mutating func remove(_ item: Int) {
        precondition(item >= 0 && item < capacity, "item \(item) out of range 0..<\(capacity)")
        words[item >> 6] &= ~(1 << UInt64(item & 63))
    }

    /// Whether `item` is in the set; false for indices outside the capacity.
    public func contains(_ item: Int) -> Bool {
        item >= 0 && item < capacity && words[item >> 6] & (1 << UInt64(item & 63)) != 0
    }

    /// Number of items in the set. - Complexity: O(capacity / 64).
    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }
}

/// Catalog-wide restrictions applied inside the scoring kernel, for every query of a search.
///
/// An item may be returned when it is in `allowed` (or `allowed` is nil) and not in `denied`.
public struct ItemFilter: Sendable, Equatable {
    /// When set, only these items may be returned.
    public var allowed: ItemBitset?
    /// These items are never returned.
    public var denied: ItemBitset?

    /// A filter from an allow set (nil: every item) and a deny set (nil: none); both must have the
    /// catalog's item count as capacity.
    public init(allowed: ItemBitset? = nil, denied: ItemBitset? = nil) {
        self.allowed = allowed
        self.denied = denied
    }

    /// One bit per catalog item, set where an item may be returned.
    func eligibility(itemCount: Int) throws -> [UInt64] {
        var words = [UInt64](repeating: ~0, count: (itemCount + 63) / 64)
        if let allowed {
            guard allowed.capacity == itemCount else {
                throw ScoringError.filterCapacityMismatch(expected: itemCount, actual: allowed.capacity)
            }
            for i in words.indices { words[i] &= allowed.words[i] }
        }
        if let denied {
            guard denied.capacity == itemCount else {
                throw ScoringError.filterCapacityMismatch(expected: itemCount, actual: denied.capacity)
            }
            for i in words.indices { words[i] &= ~denied.words[i] }
        }
        return words
    }
}

/// Items each query of a batch must not get back (typically what each user already has), kept
/// as one sorted, duplicate-free id list per query.
public struct ExcludedItems: Sendable, Equatable {
    /// `offsets[q] ..< offsets[q + 1]` indexes query q's ids.
    let offsets: [Int]
    let ids: [Int32]

    /// Number of queries the lists are for.
    public var queryCount: Int { offsets.count - 1 }

    /// One list per query, in any order, duplicates allowed.
    ///
    /// - Throws: ``ScoringError/itemOutOfRange(item:itemCount:)`` for a negative or too large index.
    /// - Complexity: O(total × log(longest list)).
    public init(_ lists: [[Int]]) throws {
        var offsets = [0]
        var ids: [Int32] = []
        offsets.reserveCapacity(lists.count + 1)
        for list in lists {
            let start = ids.count
            for item in list.sorted() {
                guard item >= 0, item < EmbeddingTable.maximumRows else {
                    throw ScoringError.itemOutOfRange(item: item, itemCount: EmbeddingTable.maximumRows)
                }
                if ids.count == start || ids[ids.count - 1] != Int32(item) { ids.append(Int32(item)) }
            }
            offsets.append(ids.count)
        }
        self.offsets = offsets
        self.ids = ids
    }

    /// The column indices of the given rows of a sparse matrix (a user × item interaction
    /// matrix's rows are the items each user has). - Complexity: O(entries of those rows).
    public init(rows: [Int], of matrix: SparseMatrix) {
        var offsets = [0]
        var ids: [Int32] = []
        for row in rows {
            precondition(row >= 0 && row < matrix.rows, "row \(row) out of range 0..<\(matrix.rows)")
            ids.append(contentsOf: matrix.columnIndices[matrix.rowOffsets[row] ..< matrix.rowOffsets[row + 1]])
            offsets.append(ids.count)
        }
        self.offsets = offsets
        self.ids = ids
    }

    /// Checks that the lists fit a search of `queryCount` queries over `itemCount` items.
    ///
    /// - Throws: ``ScoringError/exclusionCountMismatch(expected:actual:)``,
    ///   ``ScoringError/itemOutOfRange(item:itemCount:)``.
    func check(queryCount: Int, itemCount: Int) throws {
        guard self.queryCount == queryCount else {
            throw ScoringError.exclusionCountMismatch(expected: queryCount, actual: self.queryCount)
        }
        if let bad = ids.first(where: { Int($0) >= itemCount }) {
            throw ScoringError.itemOutOfRange(item: Int(bad), itemCount: itemCount)
        }
    }

    /// Query `query`'s excluded ids, ascending.
    public func items(forQuery query: Int) -> ArraySlice<Int32> {
        ids[offsets[query] ..< offsets[query + 1]]
    }
}
