/// Where the registry is and how to log in: a PostgreSQL URL (`postgres://user:password@host:port/db`)
/// or a libpq `key=value` string, an optional password file (`.pgpass` format), and libpq's own
/// defaults for whatever both leave out (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
/// `PGPASSFILE`, `PGDATABASE`, …).
///
/// The password never leaves this value except to libpq: ``redacted`` (what errors, logs, status
/// pages and metrics show) has it replaced by `***`.
public struct RegistryLocation: Sendable, CustomStringConvertible {
    /// The URL or `key=value` string as given. Holds the password when the URL has one: never
    /// print it; print ``redacted``.
    let connectionString: String
    /// A `.pgpass`-format file to take the password from.
    public let passwordFile: String?

    /// A location from a URL or `key=value` string and an optional password file.
    public init(_ connectionString: String, passwordFile: String? = nil) {
        self.connectionString = connectionString
        self.passwordFile = passwordFile
    }

    /// The location with any password replaced by `***`.
    public var redacted: String { Self.redact(connectionString) }

    public var description: String { redacted }

    /// `text` with the password of a URL's user-info part, a `password=` query parameter or a
    /// `password=` key replaced by `***`. - Complexity: O(text).
    static func redact(_ text: String) -> String {
        var result = text
        // postgres://user:secret@host → postgres://user:***@host
        if let scheme = result.firstRange(of: "://") {
            let afterScheme = result[scheme.upperBound...]
            let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
            if let at = afterScheme[..<authorityEnd].lastIndex(of: "@"),
               let colon = afterScheme[..<at].firstIndex(of: ":") {
                result.replaceSubrange(afterScheme.index(after: colon) ..< at, with: "***")
            }
        }
        // password=secret (key=value form, or ?password=secret in a URL)
        var output = ""
        var rest = Substring(result)
        while let range = rest.firstRange(of: "password=") {
            output += rest[..<range.upperBound]
            rest = rest[range.upperBound...]
            let end = rest.firstIndex(where: { $0 == " " || $0 == "&" }) ?? rest.endIndex
            output += "***"
            rest = rest[end...]
        }
        return output + rest
    }
}

/// Why a registry operation failed. Messages name the registry by its redacted location, the
/// model and version concerned, and what was expected; never a password.
public enum RegistryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The server could not be reached or the connection was lost: retry later.
    case unreachable(target: String, reason: String)
    /// The server refused a statement.
    case queryFailed(statement: String, reason: String)
    /// The registry's schema is newer than this program knows.
    case schemaTooNew(found: Int, supported: Int)
    /// No model of that name in the registry.
    case unknownModel(String)
    /// The model has no such version in the registry.
    case unknownVersion(name: String, version: Int)
    /// Rollback asked for, but the activation history holds no earlier version.
    case nothingToRollBackTo(String)
    /// The downloaded bytes do not match the size or CRC-32C recorded at upload.
    case checksumMismatch(name: String, version: Int, expected: String, found: String)
    /// A local file could not be read or written.
    case file(path: String, reason: String)
    /// The local store's numbering is ahead of the registry's: it holds versions made elsewhere.
    case storeAhead(name: String, registryVersion: Int, storeVersions: [Int])

    public var description: String {
        switch self {
        case let .unreachable(target, reason): "model registry \(target) unreachable: \(RegistryLocation.redact(reason))"
        case let .queryFailed(statement, reason): "model registry: '\(statement)' failed: \(RegistryLocation.redact(reason))"
        case let .schemaTooNew(found, supported):
            "model registry schema version \(found) is newer than this program supports (\(supported)): upgrade recommender"
        case let .unknownModel(name): "no model named '\(name)' in the registry"
        case let .unknownVersion(name, version): "model '\(name)' has no version \(version) in the registry"
        case let .nothingToRollBackTo(name): "model '\(name)' has no earlier active version in the registry to roll back to"
        case let .checksumMismatch(name, version, expected, found):
            "model '\(name)' v\(version) from the registry refused: expected \(expected), downloaded bytes have \(found)"
        case let .file(path, reason): "\(path): \(reason)"
        case let .storeAhead(name, registryVersion, storeVersions):
            "model '\(name)': the local store already numbers versions \(storeVersions) and cannot take registry version \(registryVersion): follow the registry into a store of its own"
        }
    }
}
