/// A whole file mapped read-only into memory; unmapped when the last reference goes.
///
/// Immutable, so `Sendable`. Reading it costs page faults, not copies: use it to parse large
/// input files in place.
public final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    /// The file's size in bytes.
    public let length: Int
    /// The path it was mapped from.
    public let path: String

    /// Maps `path` read-only. An empty file maps to a zero-length buffer.
    ///
    /// - Throws: ``NotARegularFileError`` for a FIFO, directory or device (checked without
    ///   blocking: a FIFO with no writer does not hang the open), ``SystemCallError`` when the
    ///   file cannot be opened or mapped.
    public init(path: String) throws {
        let descriptor = try SystemCalls.openRegularFileForReading(path)
        defer { SystemCalls.close(descriptor) }
        let length = try SystemCalls.fileSize(descriptor, path: path)
        self.path = path
        self.length = length
        if length == 0 {
            self.base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
        } else {
            self.base = try SystemCalls.mapReadOnly(descriptor, length: length, path: path)
        }
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: length) }

    /// Calls `body` with the file's bytes; the buffer is valid only inside `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(bytes)
    }

    deinit {
        if length == 0 { UnsafeMutableRawPointer(mutating: base).deallocate() }
        else { SystemCalls.unmap(base, length: length) }
    }
}
