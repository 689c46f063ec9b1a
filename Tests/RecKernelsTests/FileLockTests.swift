import Foundation
import Synchronization
@testable import RecKernels
import Testing

@Suite("FileLock: one holder across descriptors and processes")
struct FileLockTests {
    let path = "/tmp/rk-filelock-\(getpid())-\(UInt32.random(in: 0 ... .max)).lock"

    @Test("a second contender gives up after its wait, naming the file and the holder")
    func timeoutNamesHolder() throws {
        let held = try FileLock(path: path, owner: "adding movies v3")
        defer { try? SystemCalls.removeFile(path) }
        #expect {
            try FileLock(path: path, owner: "second writer", timeout: .milliseconds(50))
        } throws: { error in
            guard let timeout = error as? FileLockTimeout else { return false }
            return timeout.path == path && timeout.holder == "pid \(getpid()): adding movies v3"
                && timeout.description.contains(path) && timeout.description.contains("adding movies v3")
                && timeout.waited >= .milliseconds(50)
        }
        #expect(held.isHeld)
    }

    @Test("release and deinit free the lock")
    func releaseAndDeinit() throws {
        defer { try? SystemCalls.removeFile(path) }
        let first = try FileLock(path: path, owner: "first")
        first.release()
        #expect(!first.isHeld)
        do { _ = try FileLock(path: path, owner: "second", timeout: .zero) }  // deinit releases
        let third = try FileLock(path: path, owner: "third", timeout: .zero)
        #expect(third.isHeld)
    }

    @Test("a waiter gets the lock only after the holder releases it")
    func waiterWaits() throws {
        defer { try? SystemCalls.removeFile(path) }
        let holder = try FileLock(path: path, owner: "holder")
        let released = Atomic<Bool>(false)
        let thread = Thread {
            Thread.sleep(forTimeInterval: 0.2)
            released.store(true, ordering: .sequentiallyConsistent)
            holder.release()
        }
        thread.start()
        let waiter = try FileLock(path: path, owner: "waiter", timeout: .seconds(20))
        let releasedFirst = released.load(ordering: .sequentiallyConsistent)
        #expect(releasedFirst)
        waiter.release()
    }

    @Test("withLock releases when its body throws")
    func withLockReleases() throws {
        defer { try? SystemCalls.removeFile(path) }
        struct Failure: Error {}
        #expect(throws: Failure.self) { try FileLock.withLock(path: path, owner: "body") { throw Failure() } }
        #expect(try FileLock.withLock(path: path, owner: "again", timeout: .zero) { 7 } == 7)
    }

    @Test("another process holding the lock (flock(1)) makes this one wait, then yields it")
    func otherProcess() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/flock") else { return }
        defer { try? SystemCalls.removeFile(path); try? SystemCalls.removeFile(path + ".ready") }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        child.arguments = ["-x", path, "/bin/sh", "-c", "touch \(path).ready; sleep 1"]
        try child.run()
        let deadline = ContinuousClock.now + .seconds(20)
        while !SystemCalls.fileExists(path + ".ready") && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect {
            try FileLock(path: path, owner: "this process", timeout: .milliseconds(100))
        } throws: { error in
            guard let timeout = error as? FileLockTimeout else { return false }
            return timeout.holder == nil && timeout.description.contains(path)
        }
        let lock = try FileLock(path: path, owner: "this process", timeout: .seconds(30))
        #expect(!child.isRunning || child.terminationStatus == 0)
        child.waitUntilExit()
        #expect(child.terminationStatus == 0)
        lock.release()
    }
}
