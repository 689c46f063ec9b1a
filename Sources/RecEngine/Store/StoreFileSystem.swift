#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The directory operations the store needs beyond RecKernels' atomic file writes, each
/// failure reported as ``ModelStoreError/fileSystem(operation:path:reason:)``.
enum StoreFileSystem {
    /// Creates `path` and any missing parents (`mkdir -p`).
    static func createDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw failure("mkdir", prefix) }
        }
        guard isDirectory(path) else { throw ModelStoreError.fileSystem(operation: "mkdir", path: path, reason: "exists and is not a directory") }
    }

    /// The absolute path with symbolic links and `.`/`..` resolved.
    static func canonicalPath(_ path: String) throws -> String {
        guard let resolved = realpath(path, nil) else { throw failure("realpath", path) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    static func fileExists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func fileSize(_ path: String) throws -> Int {
        var status = stat()
        if stat(path, &status) != 0 { throw failure("stat", path) }
        return Int(status.st_size)
    }

    /// The names in `directory`, without `.` and `..`, sorted.
    static func entries(of directory: String) throws -> [String] {
        guard let stream = opendir(directory) else { throw failure("opendir", directory) }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func rename(_ source: String, to destination: String) throws {
        if systemRename(source, destination) != 0 { throw failure("rename", "\(source) -> \(destination)") }
    }

    /// Makes renames and removals inside `directory` durable.
    static func syncDirectory(_ directory: String) throws {
        let descriptor = open(directory, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 { throw failure("open", directory) }
        defer { close(descriptor) }
        if fsync(descriptor) != 0 { throw failure("fsync", directory) }
    }

    /// Removes the file at `path`; a file that is already gone is not an error.
    static func removeFile(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw failure("unlink", path) }
    }

    /// Removes `directory` and the files in it (store directories hold no subdirectories).
    static func removeFlatDirectory(_ directory: String) throws {
        for name in try entries(of: directory) { try removeFile(directory + "/" + name) }
        if rmdir(directory) != 0 && errno != ENOENT { throw failure("rmdir", directory) }
    }

    /// A name no other writer will pick, for staging and tombstone entries.
    static func uniqueSuffix() -> String {
        "\(getpid())-\(UInt32.random(in: 0 ... .max))"
    }

    /// The system's wording for `code`.
    static func reason(_ code: Int32) -> String {
        "\(String(cString: strerror(code))) (errno \(code))"
    }

    static var fileNotFound: Int32 { ENOENT }

    private static func failure(_ operation: String, _ path: String) -> ModelStoreError {
        .fileSystem(operation: operation, path: path, reason: reason(errno))
    }
}

#if canImport(Glibc)
private let systemRename = Glibc.rename
#elseif canImport(Darwin)
private let systemRename = Darwin.rename
#endif
