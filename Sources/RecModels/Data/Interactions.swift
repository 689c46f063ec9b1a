import RecKernels

/// Maps external ids — strings or integers as they appear in input files — to dense indices
/// `0 ..< count` and back. Every API that users see speaks external ids; models work on indices.
public struct IDMap: Sendable, Equatable {
    /// External ids in index order.
    public private(set) var ids: [String] = []
    private var indices: [String: Int32] = [:]

    /// An empty map.
    public init() {}

    /// A map over `ids` in order.
    ///
    /// - Throws: ``DataError/invalidOption(_:)`` naming a repeated id.
    public init(_ ids: [String]) throws {
        for id in ids {
            guard index(of: id) == nil else { throw DataError.invalidOption("duplicate id '\(id)' in an id map") }
            insert(id)
        }
    }

    /// Number of ids.
    public var count: Int { ids.count }

    /// The index of `id`, adding it at the end when new. - Complexity: amortized O(1).
    @discardableResult
    public mutating func insert(_ id: String) -> Int {
        if let index = indices[id] { return Int(index) }
        indices[id] = Int32(ids.count)
        ids.append(id)
        return ids.count - 1
    }

    /// The index of `id`, or nil when it is unknown. - Complexity: O(1).
    public func index(of id: String) -> Int? { indices[id].map(Int.init) }

    /// The external id at `index`.
    public subscript(index: Int) -> String { ids[index] }

    /// The ids joined by newlines, for a model file's uint8 section.
    var serialized: [UInt8] { Array(ids.joined(separator: "\n").utf8) }

    init(serialized bytes: [UInt8]) throws {
        if bytes.isEmpty { self.init(); return }
        try self.init(String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
    }
}

/// A log of user–item interactions (views, clicks, purchases, ratings) over shared id maps.
///
/// Entries are parallel arrays; `timestamps` is empty when the source has none. Indices refer to
/// `users` and `items`, which may hold ids with no entries here (a test split shares its
/// training split's maps, so indices agree between them).
public struct Interactions: Sendable {
    /// The user ids that `userIndices` refer to.
    public var users: IDMap
    /// The item ids that `itemIndices` refer to.
    public var items: IDMap
    /// Each entry's user, as an index into ``users``.
    public var userIndices: [Int32] = []
    /// Each entry's item, as an index into ``items``.
    public var itemIndices: [Int32] = []
    /// The interaction's strength: a rating, a count, 1 for a bare event.
    public var values: [Float] = []
    /// Seconds (or any increasing unit); empty when unknown.
    public var timestamps: [Int64] = []

    /// No entries, over the given id maps (empty by default).
    public init(users: IDMap = IDMap(), items: IDMap = IDMap()) {
        self.users = users
        self.items = items
    }

    /// Number of entries.
    public var count: Int { userIndices.count }

    /// Appends an entry by external ids, adding unknown ids to the maps.
    public mutating func append(user: String, item: String, value: Float = 1, timestamp: Int64? = nil) {
        userIndices.append(Int32(users.insert(user)))
        itemIndices.append(Int32(items.insert(item)))
        values.append(value)
        if let timestamp { timestamps.append(timestamp) }
    }

    /// The entries at `positions`, over the same id maps.
    public func subset(_ positions: some Sequence<Int>) -> Interactions {
        var result = Interactions(users: users, items: items)
        for p in positions {
            result.userIndices.append(userIndices[p])
            result.itemIndices.append(itemIndices[p])
            result.values.append(values[p])
            if !timestamps.isEmpty { result.timestamps.append(timestamps[p]) }
        }
        return result
    }

    /// The users × items matrix of these entries (all ids in the maps, so shapes agree across
    /// splits). Repeated (user, item) pairs follow `duplicates`.
    ///
    /// - Complexity: O(entries × log(entries per user)).
    public func matrix(duplicates: SparseMatrix.DuplicatePolicy = .sum) throws -> SparseMatrix {
        try SparseMatrix(rows: users.count, columns: items.count,
                         triples: (0 ..< count).lazy.map { (Int(userIndices[$0]), Int(itemIndices[$0]), values[$0]) },
                         duplicates: duplicates)
    }

    /// Positions of each user's entries: `byUser[u]` lists user u's entries in log order.
    func positionsByUser() -> [[Int]] {
        var byUser = [[Int]](repeating: [], count: users.count)
        for p in 0 ..< count { byUser[Int(userIndices[p])].append(p) }
        return byUser
    }
}

/// A training set and the test set it is evaluated on, over the same id maps.
public struct Split: Sendable {
    /// The interactions to train on.
    public var train: Interactions
    /// The held-out interactions to evaluate on.
    public var test: Interactions

    /// A split of `train` and `test`, which should share id maps.
    public init(train: Interactions, test: Interactions) {
        self.train = train
        self.test = test
    }
}

extension Interactions {
    /// Per user, a random `testFraction` of the user's entries (rounded, at least one when the
    /// user has two or more, never all) goes to the test set. Deterministic for a seed.
    ///
    /// - Throws: ``DataError/invalidOption(_:)`` unless `0 < testFraction < 1` (NaN included).
    public func randomHoldout(testFraction: Double, seed: UInt64) throws -> Split {
        guard testFraction > 0 && testFraction < 1 else {
            throw DataError.invalidOption("a hold-out test fraction must be strictly between 0 and 1, got \(testFraction)")
        }
        var generator = SeededGenerator(seed: seed)
        var train: [Int] = [], test: [Int] = []
        for var positions in positionsByUser() where !positions.isEmpty {
            positions.shuffle(using: &generator)
            let held = positions.count < 2 ? 0 : min(positions.count - 1, max(1, Int((Double(positions.count) * testFraction).rounded())))
            test += positions[..<held]
            train += positions[held...]
        }
        return Split(train: subset(train.sorted()), test: subset(test.sorted()))
    }

    /// Per user, the `n` latest entries (by timestamp, ties by log order) go to the test set;
    /// users with `n` or fewer entries stay in training whole.
    ///
    /// - Throws: ``DataError/invalidOption(_:)`` when there are no timestamps or `n < 1`.
    public func leaveLastOut(_ n: Int = 1) throws -> Split {
        guard n >= 1 else { throw DataError.invalidOption("leave-last-N needs N ≥ 1, got \(n)") }
        guard timestamps.count == count else { throw DataError.invalidOption("leave-last-N needs timestamps, and these interactions have none") }
        var train: [Int] = [], test: [Int] = []
        for positions in positionsByUser() where !positions.isEmpty {
            let ordered = positions.sorted { (timestamps[$0], $0) < (timestamps[$1], $1) }
            let held = positions.count > n ? n : 0
            train += ordered[..<(ordered.count - held)]
            test += ordered[(ordered.count - held)...]
        }
        return Split(train: subset(train.sorted()), test: subset(test.sorted()))
    }

    /// `k` folds over all entries, shuffled once with `seed`: fold f tests on every k-th entry
    /// from f of the shuffled order and trains on the rest (Surprise's KFold).
    ///
    /// - Throws: ``DataError/invalidOption(_:)`` when `k < 2` or there are fewer than k entries.
    public func kFold(_ k: Int, seed: UInt64) throws -> [Split] {
        guard k >= 2, count >= k else { throw DataError.invalidOption("k-fold needs 2 ≤ k ≤ entries, got k = \(k) for \(count) entries") }
        var generator = SeededGenerator(seed: seed)
        var order = Array(0 ..< count)
        order.shuffle(using: &generator)
        return (0 ..< k).map { fold in
            var train: [Int] = [], test: [Int] = []
            for (rank, position) in order.enumerated() {
                if rank % k == fold { test.append(position) } else { train.append(position) }
            }
            return Split(train: subset(train.sorted()), test: subset(test.sorted()))
        }
    }
}
