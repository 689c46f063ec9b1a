import FoundationEssentials
import RecEngine
import RecKernels
import RecModels
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// One version of a model in the registry, as recorded when it was uploaded.
public struct RegistryVersion: Sendable, Equatable, Codable {
    /// The model's name (the same rules as the local store's names).
    public let name: String
    /// 1, 2, 3… per name, assigned by the registry; never reused.
    public let version: Int
    /// The model kind from the file's metadata ("als", "popularity", "text-index", …).
    public let kind: String
    /// The file's JSON metadata (parameters, sizes, metrics), as the local store read it.
    public let metadata: String?
    /// The metrics recorded with the version (from its metadata), as a JSON object.
    public let metrics: String
    /// The training-data fingerprint.
    public let fingerprint: String
    /// The file's size in bytes.
    public let bytes: Int
    /// CRC-32C of the whole file, computed while uploading.
    public let crc32c: UInt32
    /// When it was uploaded (the server's clock), as PostgreSQL prints it.
    public let createdAt: String
}

/// A model registry in PostgreSQL: the one place where model versions live and the one switch
/// that moves every instance following it (``RegistryFollower``).
///
/// ## Schema (PostgreSQL schema `recommender_registry`, created and migrated by ``migrate()``)
///
/// - `schema_version(version)`: the migrations applied; a newer one than this program knows is
///   refused (``RegistryError/schemaTooNew(found:supported:)``).
/// - `models(name, next_version, created_at)`;
/// - `versions(name, version, kind, metadata jsonb, metrics jsonb, fingerprint, bytes, crc32c,
///   content oid, created_at)`: the file bytes are a large object, written and read in 1 MiB
///   chunks, so a file of any size never sits whole in memory;
/// - `active(name, version, changed_at)`, `history(id, name, version)` (the rollback stack) and
///   `activations(id, name, version, action, at)` (the audit log).
///
/// ## Guarantees
///
/// - Activation and rollback are one transaction each, holding the model's row lock, and send
///   `NOTIFY recommender_registry` at commit: followers never see a change that was undone.
/// - An upload is one transaction: a failed upload leaves no version and no large object.
/// - Not `Sendable`: one connection, used from one thread.
public final class ModelRegistry {
    /// The NOTIFY channel followers LISTEN on; payloads are `activated <name> <version>` or
    /// `published <name> <version>`.
    public static let channel = "recommender_registry"
    /// The schema version this program creates and understands.
    public static let schemaVersion = 1
    /// Bytes moved per large-object call.
    static let chunkBytes = 1 << 20

    let connection: PQConnection
    /// Where it is connected, without the password.
    public let location: RegistryLocation

    /// Connects to `location` and creates or migrates the schema.
    ///
    /// - Throws: ``RegistryError/unreachable(target:reason:)``, ``RegistryError/schemaTooNew(found:supported:)``.
    public init(_ location: RegistryLocation) throws {
        self.location = location
        connection = try PQConnection(location)
        try migrate()
    }

    /// Creates the schema when absent and applies the migrations it lacks, under an advisory
    /// lock so that several instances starting together migrate once. Idempotent.
    public func migrate() throws {
        try connection.transaction {
            try connection.query("SELECT pg_advisory_xact_lock(7461630151)")
            try connection.query("CREATE SCHEMA IF NOT EXISTS recommender_registry")
            try connection.query("""
                CREATE TABLE IF NOT EXISTS recommender_registry.schema_version (
                  version integer PRIMARY KEY, migrated_at timestamptz NOT NULL DEFAULT now())
                """)
            let current = Int(try connection.query("SELECT coalesce(max(version), 0) FROM recommender_registry.schema_version")[0][0] ?? "0") ?? 0
            guard current <= Self.schemaVersion else { throw RegistryError.schemaTooNew(found: current, supported: Self.schemaVersion) }
            for (number, statements) in Self.migrations.enumerated() where number + 1 > current {
                for statement in statements { try connection.query(statement) }
                try connection.query("INSERT INTO recommender_registry.schema_version (version) VALUES ($1)", [String(number + 1)])
            }
        }
    }

    /// Migration n (1-based) is `migrations[n - 1]`; append, never edit.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE recommender_registry.models (
              name text PRIMARY KEY, next_version integer NOT NULL DEFAULT 1,
              created_at timestamptz NOT NULL DEFAULT now())
            """,
            """
            CREATE TABLE recommender_registry.versions (
              name text NOT NULL REFERENCES recommender_registry.models (name),
              version integer NOT NULL, kind text NOT NULL, metadata jsonb, metrics jsonb NOT NULL DEFAULT '{}',
              fingerprint text NOT NULL, bytes bigint NOT NULL CHECK (bytes >= 0),
              crc32c bigint NOT NULL CHECK (crc32c BETWEEN 0 AND 4294967295), content oid NOT NULL,
              created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (name, version))
            """,
            """
            CREATE TABLE recommender_registry.active (
              name text PRIMARY KEY REFERENCES recommender_registry.models (name), version integer NOT NULL,
              changed_at timestamptz NOT NULL DEFAULT now(),
              FOREIGN KEY (name, version) REFERENCES recommender_registry.versions (name, version))
            """,
            """
            CREATE TABLE recommender_registry.history (
              id bigserial PRIMARY KEY, name text NOT NULL, version integer NOT NULL,
              FOREIGN KEY (name, version) REFERENCES recommender_registry.versions (name, version))
            """,
            """
            CREATE TABLE recommender_registry.activations (
              id bigserial PRIMARY KEY, name text NOT NULL, version integer NOT NULL, action text NOT NULL,
              at timestamptz NOT NULL DEFAULT now())
            """,
        ],
    ]

    // MARK: Reading

    private static let versionColumns = "name, version, kind, metadata::text, metrics::text, fingerprint, bytes, crc32c, created_at::text"

    private static func version(_ row: [String?]) -> RegistryVersion {
        RegistryVersion(name: row[0] ?? "", version: Int(row[1] ?? "") ?? 0, kind: row[2] ?? "", metadata: row[3],
                        metrics: row[4] ?? "{}", fingerprint: row[5] ?? "", bytes: Int(row[6] ?? "") ?? 0,
                        crc32c: UInt32(row[7] ?? "") ?? 0, createdAt: row[8] ?? "")
    }

    /// The model names, sorted.
    public func names() throws -> [String] {
        try connection.query("SELECT name FROM recommender_registry.models ORDER BY name").compactMap { $0[0] }
    }

    /// The versions of `name`, ascending. - Throws: ``RegistryError/unknownModel(_:)``.
    public func versions(of name: String) throws -> [RegistryVersion] {
        try requireModel(name)
        return try connection.query("SELECT \(Self.versionColumns) FROM recommender_registry.versions WHERE name = $1 ORDER BY version", [name])
            .map(Self.version)
    }

    /// Every model's active version, by name.
    public func activeVersions() throws -> [String: RegistryVersion] {
        let rows = try connection.query("""
            SELECT \(Self.versionColumns.split(separator: ",").map { "v." + String($0).trimmed() }.joined(separator: ", "))
            FROM recommender_registry.active a JOIN recommender_registry.versions v USING (name, version)
            """)
        return Dictionary(uniqueKeysWithValues: rows.map(Self.version).map { ($0.name, $0) })
    }

    /// The newest version of every model, by name (what a follower prefetches).
    public func latestVersions() throws -> [String: RegistryVersion] {
        let rows = try connection.query("""
            SELECT DISTINCT ON (name) \(Self.versionColumns) FROM recommender_registry.versions ORDER BY name, version DESC
            """)
        return Dictionary(uniqueKeysWithValues: rows.map(Self.version).map { ($0.name, $0) })
    }

    private func requireModel(_ name: String) throws {
        guard try !connection.query("SELECT 1 FROM recommender_registry.models WHERE name = $1", [name]).isEmpty else {
            throw RegistryError.unknownModel(name)
        }
    }

    // MARK: Publishing

    /// Uploads a local store version as the next version of its model in the registry,
    /// streaming the file in 1 MiB chunks (memory does not grow with the file) and computing its
    /// CRC-32C on the way; `activate` makes it active in the same transaction.
    ///
    /// Every checksum of the model file format is verified first (reading the mapped file, not
    /// loading the model, so memory stays small), so a corrupt file is never published.
    /// - Returns: the registry's version.
    /// - Complexity: O(file size).
    @discardableResult
    public func push(_ local: ModelVersion, from store: ModelStore, activate: Bool = false) throws -> RegistryVersion {
        do { _ = try ModelFile(contentsOf: local.path, verification: .full) } catch {
            throw RegistryError.file(path: local.path, reason: "refused: \(error)")
        }
        let metadata = try local.metadata.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        let metrics = String(decoding: try JSONEncoder().encode(local.metadata?.metrics ?? [:]), as: UTF8.self)
        return try upload(path: local.path, name: local.name, kind: local.kind, metadata: metadata, metrics: metrics,
                          fingerprint: local.fingerprint, activate: activate)
    }

    /// Uploads the file at `path` as a new version of `name` (no verification: ``push(_:from:activate:)``
    /// is the public way; tests use this to publish bytes a follower must refuse).
    func upload(path: String, name: String, kind: String, metadata: String?, metrics: String, fingerprint: String,
                activate: Bool) throws -> RegistryVersion {
        let file: FileDescriptor
        do { file = try FileDescriptor.open(path, .readOnly) } catch {
            throw RegistryError.file(path: path, reason: "cannot open: \(error)")
        }
        defer { try? file.close() }
        return try connection.transaction {
            try connection.query("INSERT INTO recommender_registry.models (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", [name])
            let number = Int(try connection.query("SELECT next_version FROM recommender_registry.models WHERE name = $1 FOR UPDATE", [name])[0][0] ?? "") ?? 1
            let oid = try connection.createLargeObject()
            let descriptor = try connection.openLargeObject(oid, writing: true)
            var crc: UInt32 = 0, total = 0
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkBytes, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let read: Int
                do { read = try file.read(into: buffer) } catch { throw RegistryError.file(path: path, reason: "read failed: \(error)") }
                if read == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0 ..< read])
                crc = Checksum.crc32c(chunk, continuing: crc)
                try connection.writeLargeObject(descriptor, chunk)
                total += read
            }
            connection.closeLargeObject(descriptor)
            try connection.query("""
                INSERT INTO recommender_registry.versions (name, version, kind, metadata, metrics, fingerprint, bytes, crc32c, content)
                VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9)
                """, [name, String(number), kind, metadata, metrics, fingerprint, String(total), String(crc), String(oid)])
            try connection.query("UPDATE recommender_registry.models SET next_version = $2 WHERE name = $1", [name, String(number + 1)])
            try connection.query("SELECT pg_notify($1, $2)", [Self.channel, "published \(name) \(number)"])
            if activate { try activateLocked(name: name, version: number) }
            return try connection.query("SELECT \(Self.versionColumns) FROM recommender_registry.versions WHERE name = $1 AND version = $2",
                                        [name, String(number)]).map(Self.version)[0]
        }
    }

    /// Makes `version` the active version of `name`, remembering the one it replaces, and
    /// notifies followers — one transaction.
    ///
    /// - Throws: ``RegistryError/unknownModel(_:)``, ``RegistryError/unknownVersion(name:version:)``.
    @discardableResult
    public func activate(name: String, version: Int) throws -> RegistryVersion {
        try connection.transaction {
            try lockModel(name)
            return try activateLocked(name: name, version: version)
        }
    }

    /// Re-activates the version active before the current one and drops it from the history,
    /// and notifies followers — one transaction.
    ///
    /// - Throws: ``RegistryError/nothingToRollBackTo(_:)``, ``RegistryError/unknownModel(_:)``.
    @discardableResult
    public func rollback(name: String) throws -> RegistryVersion {
        try connection.transaction {
            try lockModel(name)
            guard let row = try connection.query("""
                DELETE FROM recommender_registry.history WHERE id =
                  (SELECT max(id) FROM recommender_registry.history WHERE name = $1) RETURNING version
                """, [name]).first, let previous = Int(row[0] ?? "") else {
                throw RegistryError.nothingToRollBackTo(name)
            }
            try connection.query("UPDATE recommender_registry.active SET version = $2, changed_at = now() WHERE name = $1", [name, String(previous)])
            return try recordAndNotify(name: name, version: previous, action: "rollback")
        }
    }

    private func lockModel(_ name: String) throws {
        guard try !connection.query("SELECT 1 FROM recommender_registry.models WHERE name = $1 FOR UPDATE", [name]).isEmpty else {
            throw RegistryError.unknownModel(name)
        }
    }

    /// Inside a transaction holding the model's row lock.
    private func activateLocked(name: String, version: Int) throws -> RegistryVersion {
        guard try !connection.query("SELECT 1 FROM recommender_registry.versions WHERE name = $1 AND version = $2", [name, String(version)]).isEmpty else {
            throw RegistryError.unknownVersion(name: name, version: version)
        }
        let current = try connection.query("SELECT version FROM recommender_registry.active WHERE name = $1", [name]).first.flatMap { Int($0[0] ?? "") }
        if let current, current != version {
            try connection.query("INSERT INTO recommender_registry.history (name, version) VALUES ($1, $2)", [name, String(current)])
        }
        try connection.query("""
            INSERT INTO recommender_registry.active (name, version) VALUES ($1, $2)
            ON CONFLICT (name) DO UPDATE SET version = excluded.version, changed_at = now()
            """, [name, String(version)])
        return try recordAndNotify(name: name, version: version, action: "activate")
    }

    private func recordAndNotify(name: String, version: Int, action: String) throws -> RegistryVersion {
        try connection.query("INSERT INTO recommender_registry.activations (name, version, action) VALUES ($1, $2, $3)", [name, String(version), action])
        try connection.query("SELECT pg_notify($1, $2)", [Self.channel, "activated \(name) \(version)"])
        return try connection.query("SELECT \(Self.versionColumns) FROM recommender_registry.versions WHERE name = $1 AND version = $2",
                                    [name, String(version)]).map(Self.version)[0]
    }

    // MARK: Downloading

    /// What a download did.
    public struct DownloadReport: Sendable, Equatable {
        /// Bytes already in the partial file, kept and not downloaded again.
        public var resumedFrom: Int
        /// Bytes moved from the server in this call.
        public var transferred: Int
    }

    /// Downloads `version`'s bytes into `partialPath`, resuming after the bytes already there,
    /// and checks the whole file's size and CRC-32C against the upload's. On a mismatch the
    /// partial file is deleted and ``RegistryError/checksumMismatch(name:version:expected:found:)``
    /// thrown: the caller never gets unverified bytes. Memory: one 1 MiB buffer.
    ///
    /// - Parameter stopAfter: stop (without verifying) once the file holds this many bytes —
    ///   how tests interrupt a download.
    /// - Complexity: O(file size).
    public func download(_ version: RegistryVersion, to partialPath: String, stopAfter: Int? = nil) throws -> DownloadReport {
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(partialPath, .readWrite, options: [.create], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch { throw RegistryError.file(path: partialPath, reason: "cannot open for writing: \(error)") }
        defer { try? file.close() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkBytes, alignment: 16)
        defer { buffer.deallocate() }
        func fileError(_ what: String, _ error: any Error) -> RegistryError { .file(path: partialPath, reason: "\(what): \(error)") }

        // The bytes already there: keep them if they can be a prefix, and checksum them.
        var crc: UInt32 = 0, have = 0
        do {
            let existing = Int(try file.seek(offset: 0, from: .end))
            if existing > version.bytes {
                guard ftruncate(file.rawValue, 0) == 0 else { throw Errno(rawValue: errno) }
            } else {
                _ = try file.seek(offset: 0, from: .start)
                while have < existing {
                    let read = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< min(buffer.count, existing - have)]))
                    if read == 0 { break }
                    crc = Checksum.crc32c(UnsafeRawBufferPointer(rebasing: buffer[0 ..< read]), continuing: crc)
                    have += read
                }
            }
            _ = try file.seek(offset: Int64(have), from: .start)
        } catch { throw fileError("cannot read the partial download", error) }
        let resumedFrom = have

        let oid = try connection.query("SELECT content FROM recommender_registry.versions WHERE name = $1 AND version = $2",
                                       [version.name, String(version.version)]).first?[0]
        guard let oid, let objectID = UInt32(oid) else { throw RegistryError.unknownVersion(name: version.name, version: version.version) }
        try connection.transaction {
            let descriptor = try connection.openLargeObject(objectID, writing: false)
            defer { connection.closeLargeObject(descriptor) }
            try connection.seekLargeObject(descriptor, to: have)
            while stopAfter.map({ have < $0 }) ?? true {
                let want = min(buffer.count, (stopAfter ?? Int.max) - have)
                let read = try connection.readLargeObject(descriptor, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< want]))
                if read == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0 ..< read])
                crc = Checksum.crc32c(chunk, continuing: crc)
                do { _ = try file.writeAll(chunk) } catch { throw fileError("write failed", error) }
                have += read
            }
        }
        guard fsync(file.rawValue) == 0 else { throw fileError("fsync failed", Errno(rawValue: errno)) }
        let report = DownloadReport(resumedFrom: resumedFrom, transferred: have - resumedFrom)
        if let stopAfter, have >= stopAfter, have < version.bytes { return report }
        guard have == version.bytes, crc == version.crc32c else {
            try? FileDescriptor.remove(partialPath)
            throw RegistryError.checksumMismatch(name: version.name, version: version.version,
                                                 expected: "\(version.bytes) bytes, CRC-32C \(hex(version.crc32c))",
                                                 found: "\(have) bytes, CRC-32C \(hex(crc))")
        }
        return report
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}

extension FileDescriptor {
    /// Removes the file at `path` (unlink).
    static func remove(_ path: String) throws {
        guard unlink(path) == 0 else { throw Errno(rawValue: errno) }
    }
}
