import FoundationEssentials
import RecKernels

/// What every recommender model offers, whatever its algorithm (benfred/implicit's interface):
/// recommendations for known users, for a fresh history (a new user, or a known user's latest
/// events folded in without retraining), similar items, and saving to a model file.
///
/// Users and items are addressed by dense index here; ``ModelCatalog`` maps external ids.
/// Every model keeps its training interactions (`catalog.history`) so it can leave out what a
/// user already has.
public protocol Recommender: Sendable {
    /// The algorithm's name as stored in model files ("als", "bpr", …).
    var kind: String { get }
    /// Ids, training interactions.
    var catalog: ModelCatalog { get }

    /// The best `k` items for each of `users`, leaving out each user's training items when
    /// `excludeSeen`, and applying `filter`.
    ///
    /// - Throws: ``ModelError/unknownUser(_:)`` for an index outside the model,
    ///   ``ScoringError`` for k < 1.
    func recommend(users: [Int], k: Int, excludeSeen: Bool, filter: ItemFilter?) throws -> TopKResults

    /// The best `k` items for the history `items` with strengths `weights` (a new user, or
    /// fresh events), leaving out the history's items when `excludeSeen`.
    ///
    /// - Throws: ``ModelError/emptyHistory``, ``ScoringError/itemOutOfRange(item:itemCount:)``,
    ///   ``MatrixError/nonFinite(row:column:)`` for a NaN weight.
    func recommend(history items: [Int], weights: [Float], k: Int, excludeSeen: Bool, filter: ItemFilter?) throws -> [ScoredItem]

    /// The `k` items most similar to `item`, itself excluded.
    func similarItems(to item: Int, k: Int) throws -> [ScoredItem]

    /// The best `k` items for each query of a batch — known users and histories folded in,
    /// mixed — each leaving out its own `excluded` items and what ``excludeSeen`` asks, and
    /// applying `filter`. One failed query (an unknown user, an empty history) fails only its
    /// own result.
    ///
    /// Factor models fold every history in first and score the whole batch with one GEMM; the
    /// default implementation answers the queries one at a time. Either way each query's answer
    /// is the one ``recommend(users:k:excludeSeen:filter:)`` or
    /// ``recommend(history:weights:k:excludeSeen:filter:)`` gives it alone (the same ids in the
    /// same order; scores agree to float rounding, since a batch sums products in another order).
    ///
    /// - Complexity: one pass over the item table for the whole batch.
    func recommend(batch queries: [RecommenderQuery], k: Int, excludeSeen: Bool, filter: ItemFilter?) -> [Result<[ScoredItem], any Error>]

    /// Writes the model to a model file, atomically, with evaluation `metrics` (name → value)
    /// recorded in its metadata.
    func save(to path: String, metrics: [String: Double]) throws
}

/// One query of a batch (``Recommender/recommend(batch:k:excludeSeen:filter:)``).
public struct RecommenderQuery: Sendable, Equatable {
    /// Whom the query is for.
    public enum Subject: Sendable, Equatable {
        /// A known user, by index: answered from the trained vector.
        case user(Int)
        /// A history of item indices with strengths, folded in (a new user, or a known user's
        /// training history with fresh events appended).
        case history(items: [Int], weights: [Float])
    }

    /// Whom the query is for.
    public var subject: Subject
    /// Items this query must not get back, besides what `excludeSeen` leaves out.
    public var excluded: [Int]

    /// A query for `subject` that leaves out `excluded`.
    public init(_ subject: Subject, excluding excluded: [Int] = []) {
        self.subject = subject
        self.excluded = excluded
    }

    /// The items the query leaves out: its own `excluded`, plus — with `excludeSeen` — a
    /// user's training items or the history's items.
    func exclusions(excludeSeen: Bool, catalog: ModelCatalog) -> [Int] {
        guard excludeSeen else { return excluded }
        switch subject {
        case let .user(user):
            return excluded + catalog.history.row(user).columns.map(Int.init)
        case let .history(items, _):
            return excluded + items
        }
    }
}

extension Recommender {
    /// Answers each query alone (the default for models without a batched kernel path).
    public func recommend(batch queries: [RecommenderQuery], k: Int, excludeSeen: Bool, filter: ItemFilter?) -> [Result<[ScoredItem], any Error>] {
        queries.map { query in
            Result {
                switch query.subject {
                case let .user(user):
                    try catalog.checkUsers([user])
                    guard !query.excluded.isEmpty else { return try recommend(users: [user], k: k, excludeSeen: excludeSeen, filter: filter)[0] }
                    return try recommendFiltered(k: k, excluding: Set(query.exclusions(excludeSeen: excludeSeen, catalog: catalog)), filter: filter) {
                        try recommend(users: [user], k: $0, excludeSeen: excludeSeen, filter: filter)[0]
                    }
                case let .history(items, weights):
                    guard !query.excluded.isEmpty else { return try recommend(history: items, weights: weights, k: k, excludeSeen: excludeSeen, filter: filter) }
                    return try recommendFiltered(k: k, excluding: Set(query.excluded), filter: filter) {
                        try recommend(history: items, weights: weights, k: $0, excludeSeen: excludeSeen, filter: filter)
                    }
                }
            }
        }
    }

    /// Asks `search` for more items until `k` survive `excluded` or the catalog is exhausted:
    /// each round doubles the request, so at most log₂(items / k) + 1 rounds run.
    private func recommendFiltered(k: Int, excluding excluded: Set<Int>, filter: ItemFilter?,
                                   _ search: (Int) throws -> [ScoredItem]) throws -> [ScoredItem] {
        var asked = min(k + excluded.count, catalog.items.count)
        while true {
            let found = try search(max(asked, 1))
            let kept = found.filter { !excluded.contains($0.id) }
            if kept.count >= k || found.count < asked || asked >= catalog.items.count { return Array(kept.prefix(k)) }
            asked = min(asked * 2, catalog.items.count)
        }
    }

    /// Writes the model to a model file, atomically.
    public func save(to path: String) throws { try save(to: path, metrics: [:]) }
}

/// Why a model call was refused.
public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownUser(String)
    case unknownItem(String)
    case emptyHistory
    case emptyTrainingSet
    case invalidParameter(String)
    /// A model file of another kind, format or shape than expected.
    case incompatibleFile(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownUser(id): "unknown user '\(id)'"
        case let .unknownItem(id): "unknown item '\(id)'"
        case .emptyHistory: "the history is empty: there is nothing to recommend from (use a popularity fallback for cold users)"
        case .emptyTrainingSet: "the training set has no interactions"
        case let .invalidParameter(reason): "invalid parameter: \(reason)"
        case let .incompatibleFile(path, reason): "\(path): \(reason)"
        }
    }
}

/// The ids and training interactions a model was trained on.
public struct ModelCatalog: Sendable {
    /// User ids, one per history row.
    public let users: IDMap
    /// Item ids, one per history column.
    public let items: IDMap
    /// users × items training interactions (strengths or ratings).
    public let history: SparseMatrix

    /// A catalog of `history` over the given id maps.
    ///
    /// - Throws: ``ModelError/invalidParameter(_:)`` when the history's shape is not users × items.
    public init(users: IDMap, items: IDMap, history: SparseMatrix) throws {
        guard history.rows == users.count, history.columns == items.count else {
            throw ModelError.invalidParameter("a \(history.rows) × \(history.columns) history for \(users.count) users and \(items.count) items")
        }
        self.users = users
        self.items = items
        self.history = history
    }

    /// The catalog of a training set: its id maps and its users × items matrix (repeated pairs
    /// summed).
    public init(training: Interactions) throws {
        try self.init(users: training.users, items: training.items, history: try training.matrix(duplicates: .sum))
    }

    /// The index of user `id`. - Throws: ``ModelError/unknownUser(_:)``.
    public func user(_ id: String) throws -> Int {
        guard let index = users.index(of: id) else { throw ModelError.unknownUser(id) }
        return index
    }

    /// The index of item `id`. - Throws: ``ModelError/unknownItem(_:)``.
    public func item(_ id: String) throws -> Int {
        guard let index = items.index(of: id) else { throw ModelError.unknownItem(id) }
        return index
    }

    func checkUsers(_ users: [Int]) throws {
        if let bad = users.first(where: { $0 < 0 || $0 >= self.users.count }) { throw ModelError.unknownUser("#\(bad)") }
    }

    func checkHistory(_ items: [Int], _ weights: [Float]) throws {
        guard !items.isEmpty else { throw ModelError.emptyHistory }
        guard items.count == weights.count else {
            throw ModelError.invalidParameter("\(items.count) history items but \(weights.count) weights")
        }
        if let bad = items.first(where: { $0 < 0 || $0 >= self.items.count }) {
            throw ScoringError.itemOutOfRange(item: bad, itemCount: self.items.count)
        }
        if let bad = weights.firstIndex(where: { !$0.isFinite }) { throw MatrixError.nonFinite(row: 0, column: bad) }
    }

    /// Exclusion lists: each user's training items, or nothing.
    func exclusions(for users: [Int], excludeSeen: Bool) -> ExcludedItems? {
        excludeSeen ? ExcludedItems(rows: users, of: history) : nil
    }

    // MARK: Model files

    /// Writes ids and history into `writer`.
    func write(to writer: inout ModelFileWriter) throws {
        try writer.add(bytes: users.serialized, named: "users")
        try writer.add(bytes: items.serialized, named: "items")
        try writer.add(history, named: "history")
    }

    /// Reads ids and history from `file` and checks them against `metadata`: the CSR arrays
    /// must be consistent (monotone offsets, indices in range) and the counts must agree, so an
    /// inconsistent file is refused when opened, never trapped on when used.
    init(file: ModelFile, metadata: ModelMetadata) throws {
        let users = try IDMap(file: file, section: "users"), items = try IDMap(file: file, section: "items")
        let history = try SparseMatrix.read(file, named: "history", rows: users.count, columnCount: items.count)
        guard metadata.users == users.count, metadata.items == items.count, metadata.interactions == history.nonzeroCount else {
            throw ModelError.incompatibleFile(path: file.path, reason: "the metadata says \(metadata.users) users, \(metadata.items) items and \(metadata.interactions) interactions; the sections hold \(users.count), \(items.count) and \(history.nonzeroCount)")
        }
        try self.init(users: users, items: items, history: history)
    }
}

/// The JSON metadata every model file carries.
public struct ModelMetadata: Codable, Sendable, Equatable {
    /// Bumped when a model kind's sections change meaning.
    public static let currentFormat = 1

    /// The model's algorithm, as ``Recommender/kind``.
    public var kind: String
    /// The model-file format version the file was written in; only ``currentFormat`` is read.
    public var format: Int = ModelMetadata.currentFormat
    /// Hyper-parameters by name.
    public var parameters: [String: Double]
    /// Number of users in the catalog.
    public var users: Int
    /// Number of items in the catalog.
    public var items: Int
    /// Number of stored training interactions.
    public var interactions: Int
    /// Seconds since 1970 when the model was trained.
    public var createdAt: Double
    /// Evaluation results recorded with the model, by metric name.
    public var metrics: [String: Double] = [:]

    /// Metadata for a `kind` model trained on `catalog`, timestamped now.
    public init(kind: String, parameters: [String: Double], catalog: ModelCatalog, metrics: [String: Double] = [:]) {
        self.kind = kind
        self.parameters = parameters
        self.users = catalog.users.count
        self.items = catalog.items.count
        self.interactions = catalog.history.nonzeroCount
        self.createdAt = Date().timeIntervalSince1970
        self.metrics = metrics
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(self))
    }

    static func decode(_ file: ModelFile, expectedKinds: Set<String>) throws -> ModelMetadata {
        let metadata: ModelMetadata
        do { metadata = try JSONDecoder().decode(ModelMetadata.self, from: Data(file.metadata)) } catch {
            throw ModelError.incompatibleFile(path: file.path, reason: "the metadata is not a recommender model's (\(error))")
        }
        guard expectedKinds.contains(metadata.kind) else {
            throw ModelError.incompatibleFile(path: file.path, reason: "holds a '\(metadata.kind)' model, expected \(expectedKinds.sorted().joined(separator: " or "))")
        }
        guard metadata.format == currentFormat else {
            throw ModelError.incompatibleFile(path: file.path, reason: "model format \(metadata.format), this build reads \(currentFormat)")
        }
        return metadata
    }
}

/// Progress of a training run, reported once per iteration.
public struct TrainingProgress: Sendable {
    /// The iteration just finished, from 1.
    public var iteration: Int
    /// Iterations in the whole run.
    public var iterations: Int
    /// The loss or training metric the algorithm reports, and its name.
    public var value: Double
    /// What ``value`` is ("loss", "train RMSE", "correct").
    public var valueName: String
    /// Seconds since training started.
    public var elapsed: Double

    /// Seconds left at the rate so far.
    public var remaining: Double { iteration > 0 ? elapsed / Double(iteration) * Double(iterations - iteration) : .nan }
}

/// Seconds between two clock instants.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

extension IDMap {
    /// The id map stored in `file`'s uint8 section `section`, refused with the file and section
    /// named when it repeats an id.
    init(file: ModelFile, section: String) throws {
        do { try self.init(serialized: file.bytes(section)) } catch let error as DataError {
            throw ModelError.incompatibleFile(path: file.path, reason: "section '\(section)': \(error)")
        }
    }
}

extension ModelFileWriter {
    /// A writer for a `kind` model trained on `catalog`: the metadata (parameters, catalog
    /// counts, `metrics`, timestamped now) and the catalog's ids and history, to which the model
    /// adds its own sections. Every model's `save` starts here, so every file has the same
    /// header and catalog sections.
    init(kind: String, parameters: [String: Double], catalog: ModelCatalog, metrics: [String: Double]) throws {
        self.init()
        metadata = try ModelMetadata(kind: kind, parameters: parameters, catalog: catalog, metrics: metrics).encoded()
        try catalog.write(to: &self)
    }

    /// Writes a CSR matrix as three sections: `<name>.offsets` (int64 row offsets),
    /// `<name>.items` (int32 column indices) and `<name>.values` (a float32 column), the layout
    /// ``SparseMatrix/read(_:named:rows:columnCount:)`` reads back.
    mutating func add(_ matrix: SparseMatrix, named name: String) throws {
        try add(matrix.rowOffsets.map(Int64.init), named: "\(name).offsets")
        try add(matrix.columnIndices, named: "\(name).items")
        try add(EmbeddingTable(rows: matrix.nonzeroCount, dimensions: 1, values: matrix.values), named: "\(name).values")
    }
}

extension SparseMatrix {
    /// A CSR matrix from a model file's `<name>.offsets`, `<name>.items` and `<name>.values`
    /// sections (written by ``ModelFileWriter/add(_:named:)``), with every invariant checked; a
    /// failure names the file and the sections.
    static func read(_ file: ModelFile, named name: String, rows: Int, columnCount: Int) throws -> SparseMatrix {
        let rowOffsets = try file.int64s("\(name).offsets"), columnIndices = try file.int32s("\(name).items")
        let values = try file.table("\(name).values")
        do {
            return try SparseMatrix(rows: rows, columns: columnCount, rowOffsets: rowOffsets.map { Int($0) },
                                    columnIndices: columnIndices, values: values.withUnsafeBufferPointer(Array.init))
        } catch let error as MatrixError {
            throw ModelError.incompatibleFile(path: file.path, reason: "sections '\(name).offsets' and '\(name).items': \(error)")
        }
    }
}

extension ModelMetadata {
    /// Hyper-parameter `name` as a whole number, or nil when absent.
    ///
    /// - Throws: ``ModelError/incompatibleFile(path:reason:)`` when it is not a whole number in
    ///   `range` (a JSON number such as 1e300 would trap an `Int` conversion).
    func integer(_ name: String, in range: ClosedRange<Int>, path: String) throws -> Int? {
        guard let value = parameters[name] else { return nil }
        guard let whole = Int(exactly: value), range.contains(whole) else {
            throw ModelError.incompatibleFile(path: path, reason: "parameter '\(name)' is \(value), expected a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return whole
    }
}
