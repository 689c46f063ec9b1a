/// A whole file mapped read-only into memory; unmapped when the last reference goes.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let length: Int
    let path: String

    /// Maps `path`. An empty file maps to a zero-length buffer without a system mapping.
    init(path: String) throws {
        let descriptor = try SystemCalls.openForReading(path)
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

    deinit {
        if length == 0 { UnsafeMutableRawPointer(mutating: base).deallocate() }
        else { SystemCalls.unmap(base, length: length) }
    }
}
