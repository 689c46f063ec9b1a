internal import SystemPackage
import Synchronization

/// A ``FileLock`` that another holder kept for longer than the wait allowed.
public struct FileLockTimeout: Error, Sendable, CustomStringConvertible {
    /// The lock file.
    public let path: String
    /// How long the caller waited.
    public let waited: Duration
    /// What the holder wrote into the lock file when it took the lock (`pid 1234: recommender
    /// models add`), or nil when it wrote nothing (a holder that is not a ``FileLock``).
    public let holder: String?

    public var description: String {
        "the lock \(path) is held by \(holder ?? "another process (it did not say which)"); gave up after \(waited)."
            + " Wait for it to finish, or stop it if it hangs; the lock is freed when its holder exits."
    }
}

/// An exclusive lock shared across processes: `flock(2)` on a lock file. At most one
/// `FileLock` on a file exists at a time, whether the contenders are threads of one process
/// (each has its own open file description) or different processes. The kernel frees the lock
/// when its holder exits, however it exits, so a crash never leaves it stuck.
///
/// The holder writes `pid N: owner` into the file, so a contender that gives up can say who to
/// blame. The lock is released by ``release()`` or when the object is deinitialized.
/// Acquiring blocks the calling thread (polling every few milliseconds): call it from a thread
/// that may block, not from Swift's cooperative pool.
package final class FileLock: Sendable {
    /// The lock file.
    package let path: String
    private let descriptor: Mutex<FileDescriptor?>

    /// Takes the lock, creating the lock file if needed; waits at most `timeout` for the
    /// current holder.
    ///
    /// - Parameter owner: what this holder is doing, shown to contenders that give up.
    /// - Throws: ``FileLockTimeout`` naming the file and its holder after `timeout`;
    ///   ``SystemCallError`` when the file cannot be opened or locked.
    package init(path: String, owner: String, timeout: Duration = .seconds(30)) throws {
        self.path = path
        let file = try SystemCalls.calling("open", path) {
            try FileDescriptor.open(FilePath(path), .readWrite, options: [.create, .closeOnExec],
                                    permissions: [.ownerReadWrite, .groupRead, .otherRead])
        }
        let clock = ContinuousClock(), start = clock.now
        var pause = Duration.milliseconds(1)
        while true {
            do {
                if try SystemCalls.tryLockExclusive(file, path: path) { break }
            } catch {
                SystemCalls.close(file)
                throw error
            }
            let waited = clock.now - start
            if waited >= timeout {
                let holder = Self.holder(of: file)
                SystemCalls.close(file)
                throw FileLockTimeout(path: path, waited: waited, holder: holder)
            }
            SystemCalls.sleep(min(pause, timeout - waited))
            pause = min(pause * 2, .milliseconds(50))
        }
        let note = Array("pid \(SystemCalls.processID): \(owner)\n".utf8)
        _ = try? file.resize(to: 0)
        _ = try? note.withUnsafeBytes { try file.writeAll(toAbsoluteOffset: 0, $0) }
        descriptor = Mutex(file)
    }

    /// Whether this object still holds the lock.
    package var isHeld: Bool { descriptor.withLock { $0 != nil } }

    /// Frees the lock (clearing the holder's note first); later calls do nothing.
    package func release() {
        guard let file = descriptor.withLock({ held in defer { held = nil }; return held }) else { return }
        _ = try? file.resize(to: 0)
        SystemCalls.close(file)  // closing the last descriptor of the description frees the flock
    }

    /// Runs `body` holding the lock on `path`, released afterwards even when `body` throws.
    package static func withLock<R>(path: String, owner: String, timeout: Duration = .seconds(30),
                                    _ body: () throws -> R) throws -> R {
        let lock = try FileLock(path: path, owner: owner, timeout: timeout)
        defer { lock.release() }
        return try body()
    }

    deinit { release() }

    /// The note the current holder wrote, or nil.
    private static func holder(of file: FileDescriptor) -> String? {
        var bytes = [UInt8](repeating: 0, count: 512)
        let count = (try? bytes.withUnsafeMutableBytes { try file.read(fromAbsoluteOffset: 0, into: $0) }) ?? 0
        let note = String(decoding: bytes.prefix(count), as: UTF8.self).split(separator: "\n").first.map(String.init)
        return note?.isEmpty == false ? note : nil
    }
}
