internal import SystemPackage
#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// A failed operating-system call: which call, on which path, and the system's reason.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    /// The call that failed (`open`, `mmap`, `rename`, …).
    public let call: String
    /// The path it was given.
    public let path: String
    /// The `errno` value it set.
    public let code: Int32

    /// The system's wording for ``code``, with the number (`No such file or directory (errno 2)`).
    public var reason: String { SystemCalls.reason(code) }

    public var description: String { "\(call)(\(path)) failed: \(reason)" }

    /// Whether the call failed because the file or directory does not exist (ENOENT).
    public var isFileNotFound: Bool { code == Errno.noSuchFileOrDirectory.rawValue }

    init(call: String, path: String, code: Int32) {
        self.call = call
        self.path = path
        self.code = code
    }

    init(call: String, path: String, _ error: Errno) {
        self.init(call: call, path: path, code: error.rawValue)
    }
}

/// A path that names something other than a regular file (a FIFO, a directory, a device) where
/// a file to read in full was expected: refused rather than blocking or mapping garbage.
public struct NotARegularFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The path given.
    public let path: String
    /// What it is instead ("a FIFO (named pipe)", "a directory", …).
    public let kind: String

    public var description: String { "\(path): is \(kind), expected a regular file" }
}

/// The package's one POSIX layer: every operating-system call RecKernels and RecEngine make goes
/// through here (swift-system's `FileDescriptor` and `Errno` where they have the call, the C
/// library otherwise), so that errno handling, retries on EINTR and error wording live in one
/// place. Every failure is a ``SystemCallError`` naming the call and the path.
package enum SystemCalls {
    // MARK: Descriptors (RecKernels' own files)

    static func openForReading(_ path: String) throws -> FileDescriptor {
        try calling("open", path) { try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec) }
    }

    /// Opens `path` for reading only if it is a regular file. O_NONBLOCK makes opening a FIFO
    /// return at once instead of waiting for a writer; the type is checked on the descriptor
    /// (no race with a rename), and the flag is harmless for regular files.
    static func openRegularFileForReading(_ path: String) throws -> FileDescriptor {
        let descriptor = try calling("open", path) {
            try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec, .nonBlocking], retryOnInterrupt: true)
        }
        var status = stat()
        if fstat(descriptor.rawValue, &status) != 0 {
            let code = errno
            close(descriptor)
            throw SystemCallError(call: "fstat", path: path, code: code)
        }
        let type = status.st_mode & S_IFMT
        guard type == S_IFREG else {
            close(descriptor)
            let kind = switch type {
            case S_IFIFO: "a FIFO (named pipe)"
            case S_IFDIR: "a directory"
            case S_IFCHR: "a character device"
            case S_IFBLK: "a block device"
            case S_IFSOCK: "a socket"
            default: "not a regular file"
            }
            throw NotARegularFileError(path: path, kind: kind)
        }
        return descriptor
    }

    /// The machine's physical memory in bytes (Int.max when unknown), read once: glibc's
    /// `sysconf(_SC_PHYS_PAGES)` is a `sysinfo` system call, and every search checks its result
    /// size against this (a served request would pay one call per search).
    static let physicalMemory: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? Int.max : bytes
    }()

    static func createExclusive(_ path: String) throws -> FileDescriptor {
        try calling("open", path) {
            try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                                    permissions: [.ownerReadWrite, .groupRead, .otherRead])
        }
    }

    static func close(_ descriptor: FileDescriptor) {
        try? descriptor.close()
    }

    static func fileSize(_ descriptor: FileDescriptor, path: String) throws -> Int {
        var status = stat()
        if fstat(descriptor.rawValue, &status) != 0 { throw SystemCallError(call: "fstat", path: path, code: errno) }
        return Int(status.st_size)
    }

    /// Maps `length` bytes of the file read-only; the mapping outlives the descriptor.
    static func mapReadOnly(_ descriptor: FileDescriptor, length: Int, path: String) throws -> UnsafeRawPointer {
        guard let address = mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor.rawValue, 0),
              address != MAP_FAILED
        else { throw SystemCallError(call: "mmap", path: path, code: errno) }
        return UnsafeRawPointer(address)
    }

    static func unmap(_ address: UnsafeRawPointer, length: Int) {
        _ = munmap(UnsafeMutableRawPointer(mutating: address), length)
    }

    /// Writes all of `bytes`, resuming after short writes and EINTR.
    static func writeAll(_ descriptor: FileDescriptor, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        _ = try calling("write", path) { try descriptor.writeAll(bytes) }
    }

    static func sync(_ descriptor: FileDescriptor, path: String) throws {
        if fsync(descriptor.rawValue) != 0 { throw SystemCallError(call: "fsync", path: path, code: errno) }
    }

    /// Takes an exclusive `flock(2)` on the file without waiting.
    /// - Returns: false when another open file description holds it.
    static func tryLockExclusive(_ descriptor: FileDescriptor, path: String) throws -> Bool {
        while flock(descriptor.rawValue, LOCK_EX | LOCK_NB) != 0 {
            switch errno {
            case EINTR: continue
            case EWOULDBLOCK: return false
            case let code: throw SystemCallError(call: "flock", path: path, code: code)
            }
        }
        return true
    }

    // MARK: Paths (also used by RecEngine's store)

    /// Makes renames and removals inside `directory` durable (fsync of the directory).
    package static func syncDirectory(_ directory: String) throws {
        let descriptor = try calling("open", directory) {
            try FileDescriptor.open(FilePath(directory.isEmpty ? "/" : directory), .readOnly, options: .closeOnExec)
        }
        defer { close(descriptor) }
        try sync(descriptor, path: directory)
    }

    /// Makes a rename durable by syncing the directory that holds `path`.
    package static func syncDirectory(containing path: String) throws {
        try syncDirectory(path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ".")
    }

    /// Renames atomically (`rename(2)`): `destination` is replaced if it exists.
    package static func rename(_ source: String, to destination: String) throws {
        if systemRename(source, destination) != 0 {
            throw SystemCallError(call: "rename", path: "\(source) -> \(destination)", code: errno)
        }
    }

    /// Removes the file at `path`; a file that is already gone is not an error.
    package static func removeFile(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw SystemCallError(call: "unlink", path: path, code: errno) }
    }

    /// Removes the file at `path` if it can, ignoring failure (cleanup of a temporary file).
    static func remove(_ path: String) {
        _ = unlink(path)
    }

    /// Removes the empty directory `path`; one that is already gone is not an error.
    package static func removeDirectory(_ path: String) throws {
        if rmdir(path) != 0 && errno != ENOENT { throw SystemCallError(call: "rmdir", path: path, code: errno) }
    }

    /// Creates `path` and any missing parents (`mkdir -p`).
    package static func createDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw SystemCallError(call: "mkdir", path: prefix, code: errno) }
        }
        guard isDirectory(path) else { throw SystemCallError(call: "mkdir", path: path, code: ENOTDIR) }
    }

    /// The absolute path with symbolic links and `.`/`..` resolved.
    package static func canonicalPath(_ path: String) throws -> String {
        guard let resolved = realpath(path, nil) else { throw SystemCallError(call: "realpath", path: path, code: errno) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// What an atomic write to `path` must do instead of replacing it with a new file.
    enum WriteTarget: Equatable {
        /// Nothing there, or a regular file: write a temporary file and rename it over `path`.
        case replace(String)
        /// A device, FIFO or socket (`/dev/null`, a pipe): write into it; a rename would replace
        /// the device node with a regular file.
        case writeInPlace
    }

    /// Where an atomic write to `path` goes: a symbolic link is followed (the link stays and its
    /// target is replaced), also one whose target does not exist yet (the target is created, as a
    /// shell's `>` does), and a path that is not a regular file is written in place. A chain of
    /// more than ``maximumLinkHops`` links (a cycle) is replaced like a missing file.
    static func writeTarget(_ path: String) -> WriteTarget {
        var current = path
        for _ in 0 ... maximumLinkHops {
            var link = stat()
            guard lstat(current, &link) == 0 else { return .replace(current) }
            switch link.st_mode & S_IFMT {
            case S_IFLNK:
                guard let target = linkTarget(current) else { return .replace(current) }
                // A relative target is relative to the link's folder.
                let folder = FilePath(current).removingLastComponent().string
                current = target.hasPrefix("/") || folder.isEmpty ? target : folder + "/" + target
            case S_IFREG, S_IFDIR:
                return .replace(current)
            default:
                return .writeInPlace
            }
        }
        return .replace(path)
    }

    /// Links followed before a path is taken for a cycle (Linux's own limit, `MAXSYMLINKS`).
    static let maximumLinkHops = 40

    /// The path a symbolic link holds (`readlink`), or nil when `path` is not a readable link.
    private static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func openExistingForWriting(_ path: String) throws -> FileDescriptor {
        try calling("open", path) { try FileDescriptor.open(FilePath(path), .writeOnly, options: [.closeOnExec], retryOnInterrupt: true) }
    }

    package static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    package static func fileExists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    package static func fileSize(_ path: String) throws -> Int {
        var status = stat()
        if stat(path, &status) != 0 { throw SystemCallError(call: "stat", path: path, code: errno) }
        return Int(status.st_size)
    }

    /// The names in `directory`, without `.` and `..`, sorted.
    package static func entries(of directory: String) throws -> [String] {
        guard let stream = opendir(directory) else { throw SystemCallError(call: "opendir", path: directory, code: errno) }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// A name no other writer will pick (process id and 32 random bits), for staging files.
    package static func uniqueSuffix() -> String {
        "\(processID)-\(UInt32.random(in: 0 ... .max))"
    }

    package static var processID: Int32 { getpid() }

    /// The system's wording for `code`, with the number.
    package static func reason(_ code: Int32) -> String {
        "\(Errno(rawValue: code).description) (errno \(code))"
    }

    /// Blocks the calling thread for `duration` (resuming after signals).
    static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000)), remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }

    /// The CPUs this process may run on: its affinity mask where the system has one (so
    /// `taskset -c 0` means 1), the online processor count otherwise.
    static var onlineProcessors: Int { max(1, Kernels.availableCPUs()) }

    /// Runs a swift-system call, turning its `Errno` into a ``SystemCallError``.
    static func calling<R>(_ call: String, _ path: String, _ body: () throws -> R) throws -> R {
        do { return try body() } catch let error as Errno { throw SystemCallError(call: call, path: path, error) }
    }
}

#if canImport(Glibc)
private let systemRename = Glibc.rename
#elseif canImport(Darwin)
private let systemRename = Darwin.rename
#endif
