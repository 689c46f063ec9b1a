internal import CLibPQ
import RecText

/// Why reading from PostgreSQL failed; messages are libpq's own.
public enum PostgresError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The connection could not be made.
    case connectionFailed(String)
    /// The server refused or failed the query.
    case queryFailed(String)

    public var description: String {
        switch self {
        case let .connectionFailed(message): "PostgreSQL connection failed: \(message)"
        case let .queryFailed(message): "PostgreSQL query failed: \(message)"
        }
    }
}

/// A connection to a PostgreSQL server through libpq. Not `Sendable`: use it from one thread.
public final class PostgresConnection {
    private let connection: OpaquePointer

    /// Connects with a libpq connection string, e.g.
    /// `"host=127.0.0.1 port=5432 dbname=catalog user=reader"` or a `postgresql://` URI.
    ///
    /// - Throws: ``PostgresError/connectionFailed(_:)`` with the server's message.
    public init(_ connectionString: String) throws {
        guard let connection = PQconnectdb(connectionString) else { throw PostgresError.connectionFailed("out of memory") }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.message(connection)
            PQfinish(connection)
            throw PostgresError.connectionFailed(message)
        }
        self.connection = connection
    }

    deinit { PQfinish(connection) }

    /// Runs a statement that returns no rows (DDL, INSERT).
    ///
    /// - Throws: ``PostgresError/queryFailed(_:)``.
    public func execute(_ sql: String) throws {
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw PostgresError.queryFailed(Self.message(connection))
        }
    }

    /// Runs `sql` and hands each row to `body` as text values (nil for SQL NULL), streaming
    /// them one at a time (libpq's single-row mode), so memory does not grow with the table.
    ///
    /// - Throws: ``PostgresError/queryFailed(_:)``, or what `body` throws (the rest of the
    ///   result is then drained).
    public func forEachRow(_ sql: String, _ body: ([String?]) throws -> Void) throws {
        guard PQsendQuery(connection, sql) == 1 else { throw PostgresError.queryFailed(Self.message(connection)) }
        _ = PQsetSingleRowMode(connection)
        var failure: Error?
        while let result = PQgetResult(connection) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_SINGLE_TUPLE:
                guard failure == nil else { continue }
                let row = (0 ..< PQnfields(result)).map { column -> String? in
                    PQgetisnull(result, 0, column) == 1 ? nil : String(cString: PQgetvalue(result, 0, column))
                }
                do { try body(row) } catch { failure = error }
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
                continue
            default:
                if failure == nil { failure = PostgresError.queryFailed(String(cString: PQresultErrorMessage(result))) }
            }
        }
        if let failure { throw failure }
    }

    /// `name` quoted as an SQL identifier (PQescapeIdentifier), safe to splice into a query.
    ///
    /// - Throws: ``PostgresError/queryFailed(_:)`` for a name libpq cannot quote.
    public func quoteIdentifier(_ name: String) throws -> String {
        let utf8 = Array(name.utf8)
        guard let quoted = utf8.withUnsafeBufferPointer({ buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQescapeIdentifier(connection, $0.baseAddress, $0.count) }
        }) else { throw PostgresError.queryFailed(Self.message(connection)) }
        defer { PQfreemem(quoted) }
        return String(cString: quoted)
    }

    private static func message(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection)).trimmingTrailingWhitespace()
    }
}

extension TextDocuments {
    /// The documents of a table: one per row, with the id column as id, the text columns
    /// joined by a space as text (NULLs skipped), and an optional label column — what the
    /// original project read from its MySQL table. Rows come in id order.
    ///
    /// - Parameter table: a table or view name, optionally schema-qualified (`schema.table`).
    /// - Throws: ``PostgresError``, ``TextModelError/duplicateDocument(_:)``,
    ///   ``TextModelError/invalidOption(_:)`` for no text column.
    public static func read(from connection: PostgresConnection, table: String, idColumn: String, textColumns: [String],
                            labelColumn: String? = nil) throws -> [TextDocument] {
        guard !textColumns.isEmpty else { throw TextModelError.invalidOption("name at least one text column") }
        let quotedTable = try table.split(separator: ".").map { try connection.quoteIdentifier(String($0)) }.joined(separator: ".")
        let id = try connection.quoteIdentifier(idColumn)
        var columns = ["\(id)::text"]
        for column in textColumns { columns.append("\(try connection.quoteIdentifier(column))::text") }
        if let labelColumn { columns.append("\(try connection.quoteIdentifier(labelColumn))::text") }
        var documents: [TextDocument] = []
        try connection.forEachRow("SELECT \(columns.joined(separator: ", ")) FROM \(quotedTable) ORDER BY \(id)") { row in
            let texts = row[1 ... textColumns.count].compactMap { $0 }
            documents.append(TextDocument(id: row[0] ?? "", text: texts.joined(separator: " "),
                                          label: labelColumn == nil ? nil : row[textColumns.count + 1]))
        }
        try TextDocuments.checkUniqueIDs(documents)
        return documents
    }
}

extension String {
    fileprivate func trimmingTrailingWhitespace() -> String {
        var end = endIndex
        while end > startIndex, self[index(before: end)].isWhitespace { end = index(before: end) }
        return String(self[..<end])
    }
}
