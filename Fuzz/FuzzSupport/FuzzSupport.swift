// What every fuzz target shares: the libFuzzer driver, a scratch file for parsers that read
// paths, and the seed writer. Built only by scripts/fuzz (RECOMMENDER_FUZZ=1), with
// -sanitize=fuzzer,address; see the README's "Bad input and fuzzing".
#if canImport(Glibc)
import Glibc
#endif

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// The body of one input: return normally for any input; a crash, trap or sanitizer report is a
/// finding.
public typealias FuzzBody = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

/// Runs libFuzzer with the process's arguments, or, given `--write-seeds DIR`, writes the
/// target's seed inputs into DIR and exits.
///
/// SwiftPM links an executable's entry point as `<Target>_main`; each target defines that
/// symbol and calls this, so libFuzzer's own `main` is not needed.
public func runFuzzer(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      seeds: () throws -> [(name: String, bytes: [UInt8])], body: FuzzBody) -> Int32 {
    if argc == 3, let flag = argv?[1], String(cString: flag) == "--write-seeds", let directory = argv?[2] {
        let path = String(cString: directory)
        mkdir(path, 0o755)
        do {
            for seed in try seeds() { try writeFile(seed.bytes, to: "\(path)/\(seed.name)") }
        } catch {
            print("writing seeds failed: \(error)")
            return 1
        }
        return 0
    }
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, body)
}

public struct FuzzIOError: Error { public let path: String }

/// Writes `bytes` to `path` (no fsync: scratch data).
public func writeFile(_ bytes: [UInt8], to path: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { throw FuzzIOError(path: path) }
    defer { close(descriptor) }
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written > 0 else { throw FuzzIOError(path: path) }
        offset += written
    }
}

/// A per-process scratch path (in /dev/shm when it exists: no disk I/O per input).
public let scratchPath: String = {
    var status = stat()
    let directory = stat("/dev/shm", &status) == 0 ? "/dev/shm" : "/tmp"
    return "\(directory)/recommender-fuzz-\(getpid())"
}()

/// The input as an array.
public func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Writes the input to the scratch file and calls `body` with its path.
public func withScratchFile<R>(_ data: UnsafePointer<UInt8>?, _ size: Int, _ body: (String) throws -> R) rethrows -> R? {
    do { try writeFile(bytes(data, size), to: scratchPath) } catch { return nil }
    return try body(scratchPath)
}

/// Reads a file written by a library writer (for seeds).
public func readFile(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "rb") else { throw FuzzIOError(path: path) }
    defer { fclose(file) }
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        result += buffer[0 ..< count]
    }
    return result
}
