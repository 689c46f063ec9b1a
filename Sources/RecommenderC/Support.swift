// The plumbing of the C ABI (include/recommender.h): status codes, the thread-local error
// message, handles and the translation of Swift errors. Nothing here is visible to C except
// through the @_cdecl functions of the other files.
import RecKernels
import RecModels
import RecText
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `rec_status` of the header; raw values are part of the ABI.
enum Status: Int32 {
    case ok = 0
    case nullArgument = 1
    case invalidArgument = 2
    case dimensionMismatch = 3
    case io = 4
    case format = 5
    case notFound = 6
    case bufferTooSmall = 7
    case abiMismatch = 8
    case internalError = 99
}

/// The ABI version (REC_ABI_VERSION of include/recommender.h).
let abiVersion: Int32 = 1
/// The library's version string.
let libraryVersion = "0.1.0"

/// A failure to report across the boundary: a status and the message naming the problem.
struct ABIError: Error {
    let status: Status
    let message: String
    init(_ status: Status, _ message: String) {
        self.status = status
        self.message = message
    }
}

// MARK: The thread-local error message

/// One message per thread, in a pthread key whose destructor frees it when the thread ends.
private let errorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

/// Static empty string returned before any failure (never freed).
nonisolated(unsafe) private let emptyMessage: UnsafeMutablePointer<CChar> = strdup("")!

func setLastError(_ message: String) {
    let old = pthread_getspecific(errorKey)
    pthread_setspecific(errorKey, strdup(message))
    free(old)
}

func lastError() -> UnsafePointer<CChar> {
    guard let message = pthread_getspecific(errorKey) else { return UnsafePointer(emptyMessage) }
    return UnsafePointer(message.assumingMemoryBound(to: CChar.self))
}

// MARK: Running a call

/// Runs one ABI call: REC_OK when `body` returns, the classified status (and the thread's
/// message set to "<function>: <problem>") when it throws.
func call(_ function: String, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return Status.ok.rawValue
    } catch let error as ABIError {
        setLastError("\(function): \(error.message)")
        return error.status.rawValue
    } catch {
        setLastError("\(function): \(error)")
        return classify(error).rawValue
    }
}

/// The status a Swift error of the engine maps to.
func classify(_ error: any Error) -> Status {
    switch error {
    case is SystemCallError: return .io
    case is ModelFileError, is NumPyError: return .format
    case let error as ScoringError:
        if case .dimensionMismatch = error { return .dimensionMismatch }
        return .invalidArgument
    case let error as MatrixError:
        if case .shapeMismatch = error { return .dimensionMismatch }
        return .invalidArgument
    case let error as ModelError:
        switch error {
        case .incompatibleFile: return .format
        case .unknownUser, .unknownItem: return .notFound
        default: return .invalidArgument
        }
    case let error as TextModelError:
        switch error {
        case .mismatchedModelFile: return .format
        case .unknownDocument, .noKnownTerms, .missingRepresentation: return .notFound
        default: return .invalidArgument
        }
    default: return .internalError
    }
}

/// `pointer`, or a REC_ERROR_NULL_ARGUMENT naming the argument.
func required<T>(_ pointer: T?, _ name: String) throws -> T {
    guard let pointer else { throw ABIError(.nullArgument, "\(name) is NULL") }
    return pointer
}

// MARK: Handles

/// A `rec_table`: a table (heap, mapped or borrowed).
final class TableHandle {
    let table: EmbeddingTable
    init(_ table: EmbeddingTable) { self.table = table }
}

/// A `rec_index`.
final class IndexHandle {
    let index: FlatIndex
    init(_ index: FlatIndex) { self.index = index }
}

/// A `rec_model`.
final class ModelHandle {
    let model: FactorModel
    init(_ model: FactorModel) { self.model = model }
}

/// A `rec_text_index`.
final class TextHandle {
    let index: TextIndex
    init(_ index: TextIndex) { self.index = index }
}

/// A new handle for C: one retain, released by the matching `rec_…_free`.
func retained(_ object: AnyObject) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

/// The object behind a handle, without changing its reference count.
func object<T: AnyObject>(_ handle: OpaquePointer?, as type: T.Type, _ name: String) throws -> T {
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(try required(handle, name))).takeUnretainedValue()
}

/// Releases a handle made by `retained`; NULL does nothing.
func release<T: AnyObject>(_ handle: OpaquePointer?, as type: T.Type) {
    guard let handle else { return }
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).release()
}

/// Copies `text` NUL-terminated into `buffer` of `capacity` bytes and its length into `length`.
func copyString(_ text: String, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int, _ length: UnsafeMutablePointer<Int>?,
                _ name: String) throws {
    let bytes = Array(text.utf8)
    length?.pointee = bytes.count
    guard let buffer else {
        if capacity != 0 { throw ABIError(.nullArgument, "\(name) is NULL with a capacity of \(capacity)") }
        return
    }
    guard capacity > bytes.count else {
        throw ABIError(.bufferTooSmall, "\(name) holds \(capacity) bytes; \(bytes.count + 1) are needed")
    }
    bytes.withUnsafeBufferPointer { source in
        UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress!, byteCount: bytes.count)
    }
    buffer[bytes.count] = 0
}

/// Writes a result list to caller arrays of `k` slots, padding with id -1 and NaN.
func write(_ items: [(id: Int, score: Float)], k: Int, ids: UnsafeMutablePointer<Int64>, scores: UnsafeMutablePointer<Float>) {
    for slot in 0 ..< k {
        if slot < items.count {
            ids[slot] = Int64(items[slot].id)
            scores[slot] = items[slot].score
        } else {
            ids[slot] = -1
            scores[slot] = .nan
        }
    }
}
