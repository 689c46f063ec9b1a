internal import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// The registry's one thin layer over libpq: connect, parameterized statements, transactions,
/// large objects, LISTEN/NOTIFY. Not `Sendable`: one thread uses a connection at a time.
///
/// Messages are libpq's (server errors name the statement's problem, never the password: libpq
/// does not echo it); the connection target in errors is the redacted one.
final class PQConnection {
    private let connection: OpaquePointer
    /// Where it is connected, without the password: for errors and logs.
    let target: String

    /// Connects to `location` (a `postgres://` URL or a `key=value` string; missing parts come
    /// from the PG* environment variables and the password file, as in every libpq client).
    init(_ location: RegistryLocation) throws {
        // Server NOTICEs ("already exists, skipping") are not the user's business.
        var keys = ["dbname", "connect_timeout", "application_name", "options"]
        var values = [location.connectionString, "5", "recommender-registry", "-c client_min_messages=warning"]
        if let passwordFile = location.passwordFile {
            keys.append("passfile")
            values.append(passwordFile)
        }
        target = location.redacted
        let made: OpaquePointer? = withCStrings(keys) { keyPointers in
            withCStrings(values) { valuePointers in PQconnectdbParams(keyPointers, valuePointers, 1) }
        }
        guard let made else { throw RegistryError.unreachable(target: location.redacted, reason: "out of memory") }
        guard PQstatus(made) == CONNECTION_OK else {
            let message = Self.message(made)
            PQfinish(made)
            throw RegistryError.unreachable(target: location.redacted, reason: message)
        }
        connection = made
    }

    deinit { PQfinish(connection) }

    /// Whether the connection is still usable (libpq's view; a dead server shows on next use).
    var isOK: Bool { PQstatus(connection) == CONNECTION_OK }

    /// Runs `sql` with text parameters (`$1`, `$2`, …; nil for NULL) and returns the rows as
    /// text values. - Throws: ``RegistryError/queryFailed(statement:reason:)``.
    @discardableResult
    func query(_ sql: String, _ parameters: [String?] = []) throws -> [[String?]] {
        let result = withOptionalCStrings(parameters) { pointers in
            PQexecParams(connection, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw failure(sql, result.map { String(cString: PQresultErrorMessage($0)) } ?? Self.message(connection))
        }
        return (0 ..< PQntuples(result)).map { row in
            (0 ..< PQnfields(result)).map { column in
                PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
            }
        }
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try query("BEGIN")
        do {
            let result = try body()
            try query("COMMIT")
            return result
        } catch {
            _ = try? query("ROLLBACK")
            throw error
        }
    }

    // MARK: Large objects (inside a transaction)

    private static let writeMode: Int32 = 0x20000, readMode: Int32 = 0x40000

    /// Creates an empty large object. - Returns: its OID.
    func createLargeObject() throws -> UInt32 {
        let oid = lo_creat(connection, Self.readMode | Self.writeMode)
        guard oid != 0 else { throw failure("lo_creat", Self.message(connection)) }
        return oid
    }

    /// Opens large object `oid` for reading or writing. - Returns: the descriptor.
    func openLargeObject(_ oid: UInt32, writing: Bool) throws -> Int32 {
        let descriptor = lo_open(connection, oid, writing ? Self.writeMode : Self.readMode)
        guard descriptor >= 0 else { throw failure("lo_open(\(oid))", Self.message(connection)) }
        return descriptor
    }

    func writeLargeObject(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        let written = lo_write(connection, descriptor, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
        guard Int(written) == bytes.count else { throw failure("lo_write", Self.message(connection)) }
    }

    /// Reads up to `buffer.count` bytes. - Returns: how many (0 at the end).
    func readLargeObject(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let read = lo_read(connection, descriptor, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
        guard read >= 0 else { throw failure("lo_read", Self.message(connection)) }
        return Int(read)
    }

    func seekLargeObject(_ descriptor: Int32, to offset: Int) throws {
        guard lo_lseek64(connection, descriptor, pg_int64(offset), SEEK_SET) == pg_int64(offset) else {
            throw failure("lo_lseek64(\(offset))", Self.message(connection))
        }
    }

    func closeLargeObject(_ descriptor: Int32) { _ = lo_close(connection, descriptor) }

    // MARK: Notifications

    /// Waits up to `milliseconds` for notifications and returns their payloads (possibly none).
    ///
    /// - Throws: ``RegistryError/unreachable(target:reason:)`` when the connection is lost (the
    ///   server stopped, the network failed).
    func notifications(waitingUpTo milliseconds: Int32) throws -> [String] {
        var payloads = drainNotifications()
        guard payloads.isEmpty else { return payloads }
        let socket = PQsocket(connection)
        guard socket >= 0 else { throw RegistryError.unreachable(target: target, reason: "the connection has no socket") }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, milliseconds)
        guard ready > 0 else { return [] }
        guard PQconsumeInput(connection) == 1, isOK else {
            throw RegistryError.unreachable(target: target, reason: Self.message(connection))
        }
        payloads = drainNotifications()
        return payloads
    }

    private func drainNotifications() -> [String] {
        var payloads: [String] = []
        while let notification = PQnotifies(connection) {
            payloads.append(String(cString: notification.pointee.extra))
            PQfreemem(notification)
        }
        return payloads
    }

    // MARK: Helpers

    private func failure(_ statement: String, _ reason: String) -> RegistryError {
        // A lost connection is "unreachable", so callers retry rather than give up.
        if !isOK { return .unreachable(target: target, reason: reason) }
        let firstLine = statement.split(separator: "\n").first.map(String.init) ?? statement
        return .queryFailed(statement: firstLine.trimmed(), reason: reason)
    }

    private static func message(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection)).trimmed()
    }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

private func withOptionalCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let copies = strings.map { $0.map { strdup($0) } ?? nil }
    defer { copies.forEach { free($0) } }
    let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}

extension String {
    /// Without leading and trailing whitespace and newlines.
    func trimmed() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
