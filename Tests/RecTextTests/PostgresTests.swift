#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import RecText
import RecTextPostgres
import PostgresTestSupport

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
