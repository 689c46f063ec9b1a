internal import CRecKernels
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

    public var description: String {
        "\(call)(\(path)) failed: \(String(cString: strerror(code))) (errno \(code))"
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

/// Every operating-system call RecKernels makes goes through here, so that errno handling,
/// retries on EINTR and error wording live in one place.
enum SystemCalls {
    /// Opens `path` for reading only if it is a regular file. O_NONBLOCK makes opening a FIFO
    /// return at once instead of waiting for a writer; the type is checked on the descriptor
    /// (no race with a rename), and the flag is harmless for regular files.
    static func openRegularFileForReading(_ path: String) throws -> Int32 {
        let descriptor = try retrying("open", path) { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        var status = stat()
        if fstat(descriptor, &status) != 0 {
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

    /// The machine's physical memory in bytes (Int.max when unknown).
    static var physicalMemory: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? Int.max : bytes
    }

    static func createExclusive(_ path: String) throws -> Int32 {
        try retrying("open", path) { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
    }

    static func close(_ descriptor: Int32) {
        _ = systemClose(descriptor)
    }

    static func fileSize(_ descriptor: Int32, path: String) throws -> Int {
        var status = stat()
        if fstat(descriptor, &status) != 0 { throw SystemCallError(call: "fstat", path: path, code: errno) }
        return Int(status.st_size)
    }

    /// Maps `length` bytes of the file read-only; the mapping outlives the descriptor.
    static func mapReadOnly(_ descriptor: Int32, length: Int, path: String) throws -> UnsafeRawPointer {
        guard let address = mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor, 0),
              address != MAP_FAILED
        else { throw SystemCallError(call: "mmap", path: path, code: errno) }
        return UnsafeRawPointer(address)
    }

    static func unmap(_ address: UnsafeRawPointer, length: Int) {
        _ = munmap(UnsafeMutableRawPointer(mutating: address), length)
    }

    /// Writes all of `bytes`, resuming after short writes and EINTR.
    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(call: "write", path: path, code: errno)
            }
            offset += written
        }
    }

    static func sync(_ descriptor: Int32, path: String) throws {
        if fsync(descriptor) != 0 { throw SystemCallError(call: "fsync", path: path, code: errno) }
    }

    /// Makes a rename durable by syncing the directory that holds `path`.
    static func syncDirectory(containing path: String) throws {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let descriptor = try retrying("open", directory) {
            open(directory.isEmpty ? "/" : directory, O_RDONLY | O_CLOEXEC)
        }
        defer { close(descriptor) }
        try sync(descriptor, path: directory)
    }

    static func rename(_ from: String, to: String) throws {
        if systemRename(from, to) != 0 { throw SystemCallError(call: "rename", path: "\(from) -> \(to)", code: errno) }
    }

    static func remove(_ path: String) {
        _ = unlink(path)
    }

    static var processID: Int32 { getpid() }

    /// The CPUs this process may run on: its affinity mask where the system has one (so
    /// `taskset -c 0` means 1), the online processor count otherwise.
    static var onlineProcessors: Int { max(1, Int(rk_available_cpus())) }

    private static func retrying(_ call: String, _ path: String, _ body: () -> Int32) throws -> Int32 {
        while true {
            let result = body()
            if result >= 0 { return result }
            if errno != EINTR { throw SystemCallError(call: call, path: path, code: errno) }
        }
    }
}

#if canImport(Glibc)
private let systemClose = Glibc.close
private let systemRename = Glibc.rename
#elseif canImport(Darwin)
private let systemClose = Darwin.close
private let systemRename = Darwin.rename
#endif
