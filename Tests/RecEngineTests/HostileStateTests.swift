#if canImport(Glibc)
import Glibc
#endif
@testable import RecEngine
import RecKernels
import Testing

@Suite("Hostile store state")
struct HostileStateTests {
    @Test("class 5: a state file whose next is Int.max is refused naming the field, not a trap on add")
    func nextIntMax() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        _ = try store.add(popularity, name: "m", fingerprint: "f")
        let statePath = store.directory + "/m/" + ModelState.fileName
        var text = String(decoding: try MappedFile(path: statePath).withUnsafeBytes { Array($0) }, as: UTF8.self)
        #expect(text.contains("\"next\" : 2"))
        text = text.replacing("\"next\" : 2", with: "\"next\" : \(Int.max)")
        try AtomicFile.write(Array(text.utf8), to: statePath)
        do {
            _ = try store.add(popularity, name: "m", fingerprint: "f")
            Issue.record("a state with next = Int.max was accepted")
        } catch let ModelStoreError.unreadableState(path, reason) {
            #expect(path == statePath)
            #expect(reason == "field 'next' is \(Int.max), expected 1...\(Int.max - 1)")
        }
        // One below the bound still works, and the version it adds is the last one possible.
        try AtomicFile.write(Array(text.replacing("\(Int.max)", with: "\(Int.max - 1)").utf8), to: statePath)
        #expect(try store.add(popularity, name: "m", fingerprint: "f").version == Int.max - 1)
    }
}
