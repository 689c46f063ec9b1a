import RecModels

/// Per-item fields (title, category, …) read from a CSV file, for results and diversity caps.
public struct ItemMetadata: Sendable {
    private let rows: [String: [String: String]]
    /// The column that holds each item's category, if any.
    public let categoryColumn: String?

    /// Reads `path` (a CSV with a header), keyed by `idColumn`.
    ///
    /// - Throws: ``DataError`` naming a missing column or a malformed record.
    public init(path: String, idColumn: String, categoryColumn: String? = nil, delimiter: String = ",") throws {
        let file = try DelimitedFile(path: path, delimiter: delimiter)
        let id = try file.column(named: idColumn)
        if let categoryColumn { _ = try file.column(named: categoryColumn) }
        let header = file.header!
        var rows: [String: [String: String]] = [:]
        try file.forEachRecord { record in
            var fields: [String: String] = [:]
            for (index, name) in header.enumerated() where index < record.count && index != id { fields[name] = record.string(index) }
            rows[record.string(try record.require(id))] = fields
        }
        self.init(rows: rows, categoryColumn: categoryColumn)
    }

    /// Metadata given directly: item id → field → value.
    public init(rows: [String: [String: String]], categoryColumn: String? = nil) {
        self.rows = rows
        self.categoryColumn = categoryColumn
    }

    /// The fields of `item` (column name → value, the id column left out); nil for an unknown item.
    public func fields(of item: String) -> [String: String]? { rows[item] }

    /// The category of `item`; nil when there is no category column, the item is unknown, or its
    /// row lacks the field.
    public func category(of item: String) -> String? { categoryColumn.flatMap { rows[item]?[$0] } }
}
