import RecKernels

/// The store's view of RecKernels' POSIX layer (``SystemCalls``): the same calls, each failure
/// reported as ``ModelStoreError/fileSystem(operation:path:reason:)`` naming the call and path.
enum StoreFileSystem {
    /// Creates `path` and any missing parents (`mkdir -p`).
    static func createDirectories(_ path: String) throws { try translating { try SystemCalls.createDirectories(path) } }

    /// The absolute path with symbolic links and `.`/`..` resolved.
    static func canonicalPath(_ path: String) throws -> String { try translating { try SystemCalls.canonicalPath(path) } }

    static func isDirectory(_ path: String) -> Bool { SystemCalls.isDirectory(path) }

    static func fileExists(_ path: String) -> Bool { SystemCalls.fileExists(path) }

    static func fileSize(_ path: String) throws -> Int { try translating { try SystemCalls.fileSize(path) } }

    /// The names in `directory`, without `.` and `..`, sorted.
    static func entries(of directory: String) throws -> [String] { try translating { try SystemCalls.entries(of: directory) } }

    static func rename(_ source: String, to destination: String) throws {
        try translating { try SystemCalls.rename(source, to: destination) }
    }

    /// Makes renames and removals inside `directory` durable.
    static func syncDirectory(_ directory: String) throws { try translating { try SystemCalls.syncDirectory(directory) } }

    /// Removes the file at `path`; a file that is already gone is not an error.
    static func removeFile(_ path: String) throws { try translating { try SystemCalls.removeFile(path) } }

    /// Removes `directory` and the files in it (store directories hold no subdirectories).
    static func removeFlatDirectory(_ directory: String) throws {
        for name in try entries(of: directory) { try removeFile(directory + "/" + name) }
        try translating { try SystemCalls.removeDirectory(directory) }
    }

    /// A name no other writer will pick, for staging and tombstone entries.
    static func uniqueSuffix() -> String { SystemCalls.uniqueSuffix() }

    /// Runs `body`, turning its ``SystemCallError`` into the store's error.
    private static func translating<R>(_ body: () throws -> R) throws -> R {
        do { return try body() } catch let error as SystemCallError {
            throw ModelStoreError.fileSystem(operation: error.call, path: error.path, reason: error.reason)
        }
    }
}
