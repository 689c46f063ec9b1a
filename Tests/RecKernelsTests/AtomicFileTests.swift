#if canImport(Glibc)
import Glibc
#endif
@testable import RecKernels
import Testing

@Suite("Atomic file writes")
struct AtomicFileTests {
    /// A write to /dev/null through the old temporary-file-and-rename path, run as root, replaces
    /// the device with a regular file (this machine's /dev/null was found so, and PostgreSQL's
    /// initdb then failed). A FIFO stands in for the device here: the test must not be able to
    /// break the machine it runs on.
    @Test("a FIFO destination is written into and stays a FIFO; it is not replaced by a regular file")
    func specialFileIsWrittenInPlace() throws {
        let directory = temporaryDirectory(), fifo = directory + "/pipe"
        defer { removeDirectory(directory) }
        #expect(mkfifo(fifo, 0o600) == 0)
        // A reader that does not block, so the writer's open succeeds at once.
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        #expect(reader >= 0)
        defer { close(reader) }
        let bytes: [UInt8] = Array("written through the pipe".utf8)
        try AtomicFile.write(bytes, to: fifo)
        var status = stat()
        #expect(stat(fifo, &status) == 0)
        #expect(status.st_mode & S_IFMT == S_IFIFO, "the FIFO was replaced")
        var received = [UInt8](repeating: 0, count: 256)
        let count = read(reader, &received, received.count)
        #expect(Array(received.prefix(max(0, count))) == bytes)
        #expect(try SystemCalls.entries(of: directory) == ["pipe"], "no temporary file is left")
    }

    @Test("a symbolic link stays a link; its target gets the new contents atomically")
    func symbolicLinkIsFollowed() throws {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        try AtomicFile.write(Array("old".utf8), to: directory + "/v1.bin")
        #expect(symlink(directory + "/v1.bin", directory + "/current.bin") == 0)
        try AtomicFile.write(Array("new".utf8), to: directory + "/current.bin")
        expectLink(directory + "/current.bin", holding: "new", at: directory + "/v1.bin")
        #expect(try SystemCalls.entries(of: directory).sorted() == ["current.bin", "v1.bin"])
    }

    @Test("a link whose target does not exist yet stays a link, and a relative target is created beside it")
    func danglingRelativeLinkIsFollowed() throws {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        #expect(mkdir(directory + "/versions", 0o755) == 0)
        #expect(symlink("versions/v2.bin", directory + "/current.bin") == 0)
        try AtomicFile.write(Array("fresh".utf8), to: directory + "/current.bin")
        expectLink(directory + "/current.bin", holding: "fresh", at: directory + "/versions/v2.bin")
    }

    /// Expects `link` to be still a symbolic link and `target` to hold `text`.
    private func expectLink(_ link: String, holding text: String, at target: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var status = stat()
        #expect(lstat(link, &status) == 0, sourceLocation: sourceLocation)
        #expect(status.st_mode & S_IFMT == S_IFLNK, "the link was replaced by a file", sourceLocation: sourceLocation)
        let descriptor = open(target, O_RDONLY)
        defer { close(descriptor) }
        var contents = [UInt8](repeating: 0, count: 64)
        let count = read(descriptor, &contents, contents.count)
        #expect(Array(contents.prefix(max(0, count))) == Array(text.utf8), sourceLocation: sourceLocation)
    }
}
