import RecKernels

/// Where the fields of an interaction file are and how it is delimited.
public struct InteractionFormat: Sendable {
    /// A column by header name or by 0-based position.
    public enum Column: Sendable, Equatable {
        case name(String)
        case position(Int)
    }

    /// The field separator; may be several characters (`::`).
    public var delimiter: String
    /// Whether the first line names the columns (required for ``Column/name(_:)``).
    public var hasHeader: Bool
    /// The user id's column.
    public var user: Column
    /// The item id's column.
    public var item: Column
    /// The interaction's strength; every entry counts 1 when nil.
    public var value: Column?
    /// The interaction's time (a number, rounded down to whole units); none recorded when nil.
    public var timestamp: Column?

    /// A format of comma-separated fields with a header by default.
    public init(delimiter: String = ",", hasHeader: Bool = true, user: Column, item: Column,
                value: Column? = nil, timestamp: Column? = nil) {
        self.delimiter = delimiter
        self.hasHeader = hasHeader
        self.user = user
        self.item = item
        self.value = value
        self.timestamp = timestamp
    }

    /// MovieLens 100K `u.data` and `u1.base`…: `user item rating timestamp`, tab-separated.
    public static let movieLens100K = InteractionFormat(delimiter: "\t", hasHeader: false, user: .position(0), item: .position(1),
                                                        value: .position(2), timestamp: .position(3))
    /// MovieLens 1M `ratings.dat`: `user::item::rating::timestamp`.
    public static let movieLens1M = InteractionFormat(delimiter: "::", hasHeader: false, user: .position(0), item: .position(1),
                                                      value: .position(2), timestamp: .position(3))
}

/// What to do with a record that cannot be read (a missing field, a non-numeric rating).
public enum MalformedRecordPolicy: Sendable {
    /// Stop with ``DataError/malformedRecord(path:line:reason:)`` naming the line.
    case fail
    /// Skip it and count it in the ``LoadReport``.
    case skip
}

/// What a load read and what it skipped.
public struct LoadReport: Sendable, Equatable {
    /// Records read into the interactions.
    public var loaded = 0
    /// Malformed records skipped (only with ``MalformedRecordPolicy/skip``).
    public var skipped = 0
    /// The first skipped record's line and reason, to show the user.
    public var firstSkipped: (line: Int, reason: String)? = nil

    public static func == (lhs: LoadReport, rhs: LoadReport) -> Bool {
        lhs.loaded == rhs.loaded && lhs.skipped == rhs.skipped && lhs.firstSkipped?.line == rhs.firstSkipped?.line
    }
}

extension Interactions {
    /// Reads interactions from a delimited file, appending to `self`'s id maps (so a test file
    /// read into a training set's maps gets the same indices).
    ///
    /// - Throws: ``DataError`` naming the file, line and problem (with `.fail`), ``SystemCallError``.
    /// - Complexity: O(file size).
    public mutating func load(_ path: String, format: InteractionFormat,
                              onMalformed policy: MalformedRecordPolicy = .fail) throws -> LoadReport {
        let file = try DelimitedFile(path: path, delimiter: format.delimiter, hasHeader: format.hasHeader)
        func position(_ column: InteractionFormat.Column) throws -> Int {
            switch column {
            case let .name(name): try file.column(named: name)
            case let .position(index): index
            }
        }
        let userColumn = try position(format.user), itemColumn = try position(format.item)
        let valueColumn = try format.value.map(position), timeColumn = try format.timestamp.map(position)
        let needed = [userColumn, itemColumn, valueColumn ?? 0, timeColumn ?? 0].max()!
        var report = LoadReport()
        let firstEntry = count
        try file.forEachRecord { record in
            func reject(_ reason: String) throws {
                if policy == .fail { throw DataError.malformedRecord(path: path, line: record.line, reason: reason) }
                report.skipped += 1
                if report.firstSkipped == nil { report.firstSkipped = (record.line, reason) }
            }
            guard record.count > needed else {
                return try reject("expected at least \(needed + 1) fields, found \(record.count)")
            }
            let user = record.string(userColumn), item = record.string(itemColumn)
            guard !user.isEmpty, !item.isEmpty else { return try reject("empty user or item id") }
            var value: Float = 1
            if let valueColumn {
                guard let parsed = record.double(valueColumn), parsed.isFinite else {
                    return try reject("value '\(record.string(valueColumn))' is not a finite number")
                }
                // Values are stored as 32-bit floats: 1e40 would become infinity.
                guard Float(parsed).isFinite else {
                    return try reject("value '\(record.string(valueColumn))' is outside the 32-bit float range (±\(Float.greatestFiniteMagnitude))")
                }
                value = Float(parsed)
            }
            var timestamp: Int64? = nil
            if let timeColumn {
                guard let parsed = record.double(timeColumn), parsed.isFinite else {
                    return try reject("timestamp '\(record.string(timeColumn))' is not a number")
                }
                // Int64(1e23) would trap: out-of-range times are malformed records like any other.
                guard let whole = Int64(exactly: parsed.rounded(.down)) else {
                    return try reject("timestamp '\(record.string(timeColumn))' is outside the 64-bit integer range")
                }
                timestamp = whole
            }
            append(user: user, item: item, value: value, timestamp: timestamp)
            report.loaded += 1
        }
        if timeColumn != nil && timestamps.count != count {
            throw DataError.invalidOption("\(path): timestamps requested but earlier entries had none")
        }
        if report.loaded == 0 && firstEntry == count { throw DataError.empty(path: path) }
        return report
    }

    /// Reads one file into fresh id maps.
    public static func load(_ path: String, format: InteractionFormat,
                            onMalformed policy: MalformedRecordPolicy = .fail) throws -> (Interactions, LoadReport) {
        var interactions = Interactions()
        let report = try interactions.load(path, format: format, onMalformed: policy)
        return (interactions, report)
    }

    /// A ready-made train/test pair (MovieLens u1.base/u1.test…): both read into the same id
    /// maps; test-only ids get indices with no training entries.
    public static func trainTest(train: String, test: String, format: InteractionFormat) throws -> Split {
        var training = Interactions()
        _ = try training.load(train, format: format)
        var testing = Interactions(users: training.users, items: training.items)
        _ = try testing.load(test, format: format)
        training.users = testing.users
        training.items = testing.items
        return Split(train: training, test: testing)
    }
}
