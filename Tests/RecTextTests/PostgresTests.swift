#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import RecText
import RecTextPostgres

/// A throwaway PostgreSQL server from Debian's packages: initdb in a temporary directory, run
/// as the unprivileged `postgres` user when the tests run as root (PostgreSQL refuses root),
/// listening on 127.0.0.1 only on a free port, stopped by its PID.
final class TemporaryPostgres {
    let directory: String
    let port: Int
    private let asUser: String?
    private var pid: pid_t = 0

    static var binaries: String? {
        for version in (11 ... 20).reversed() where access("/usr/lib/postgresql/\(version)/bin/postgres", X_OK) == 0 {
            return "/usr/lib/postgresql/\(version)/bin"
        }
        return nil
    }

    init() throws {
        guard let bin = Self.binaries else {
            throw PostgresError.connectionFailed("PostgreSQL is not installed: run scripts/install-deps")
        }
        directory = temporaryDirectory()
        port = Self.freePort()
        asUser = getuid() == 0 ? "postgres" : nil
        if let asUser, let account = getpwnam(asUser) {
            chown(directory, account.pointee.pw_uid, account.pointee.pw_gid)
        }
        try run("\(bin)/initdb -D \(directory)/data -A trust -U postgres --no-sync > \(directory)/initdb.log 2>&1")
        try run("\(bin)/pg_ctl -D \(directory)/data -l \(directory)/server.log -w -o \"-p \(port) -k \(directory) -c listen_addresses=127.0.0.1\" start > /dev/null")
        let pidFile = fopen("\(directory)/data/postmaster.pid", "r")
        defer { if pidFile != nil { fclose(pidFile) } }
        var line = [CChar](repeating: 0, count: 64)
        if let pidFile, fgets(&line, 64, pidFile) != nil { pid = pid_t(atoi(line)) }
        guard pid > 0 else { throw PostgresError.connectionFailed("the server did not start: see \(directory)/server.log") }
    }

    var connectionString: String { "host=127.0.0.1 port=\(port) user=postgres dbname=postgres connect_timeout=10" }

    /// Stops the server (fast shutdown by signal to its PID) and waits for it to exit.
    func stop() {
        guard pid > 0 else { return }
        kill(pid, SIGINT)
        for _ in 0 ..< 200 where kill(pid, 0) == 0 { usleep(50_000) }
        pid = 0
        system("rm -rf \(directory)")
    }

    deinit { stop() }

    private func run(_ command: String) throws {
        let full = asUser.map { "runuser -u \($0) -- sh -c '\(command.replacingOccurrences(of: "'", with: "'\\''"))'" } ?? command
        guard system(full) == 0 else { throw PostgresError.connectionFailed("failed: \(command)") }
    }

    private static func freePort() -> Int {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socketFD) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

@Suite("PostgreSQL documents", .serialized)
struct PostgresTests {
    @Test("documents load from a table of a real server, and index")
    func loadFromTable() throws {
        let server = try TemporaryPostgres()
        defer { server.stop() }
        let connection = try PostgresConnection(server.connectionString)
        try connection.execute("""
            CREATE TABLE "Org Profiles" (org_id integer PRIMARY KEY, name text, mission text, summary text);
            INSERT INTO "Org Profiles" VALUES
              (3, 'Ocean Trust', 'Protect coral reefs and marine life.', 'Reef restoration; beach clean-ups'),
              (1, 'Code Club', 'Teach children to program computers.', NULL),
              (2, 'Reef Watch', 'Volunteers monitor coral reef health.', 'Marine surveys');
            """)
        let documents = try TextDocuments.read(from: connection, table: "Org Profiles", idColumn: "org_id",
                                               textColumns: ["mission", "summary"], labelColumn: "name")
        #expect(documents == [
            TextDocument(id: "1", text: "Teach children to program computers.", label: "Code Club"),
            TextDocument(id: "2", text: "Volunteers monitor coral reef health. Marine surveys", label: "Reef Watch"),
            TextDocument(id: "3", text: "Protect coral reefs and marine life. Reef restoration; beach clean-ups", label: "Ocean Trust"),
        ])
        let index = try TextIndex(documents: documents)
        #expect(try index.similar(toDocument: "3", k: 1).first?.id == "2")
        #expect(throws: PostgresError.self) {
            try TextDocuments.read(from: connection, table: "missing", idColumn: "id", textColumns: ["x"])
        }
        #expect(throws: PostgresError.self) { try PostgresConnection("host=127.0.0.1 port=\(server.port) user=nobody dbname=none") }
    }
}
