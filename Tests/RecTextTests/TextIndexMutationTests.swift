#if canImport(Glibc)
import Glibc
#endif
import RecKernels
import Testing
@testable import RecText

@Suite("Property: a mutated text-index file gives a clean error or the original's results")
struct TextIndexMutationTests {
    /// An index with every part (TF-IDF, LSI, word2vec), so every section kind is mutated.
    static let index = try! TextIndex(documents: TextIndexTests.documents, options: TextIndexTests.everyPart)

    /// What a caller sees of an index: its ids, labels, weights, and answers in every representation.
    static func answers(_ index: TextIndex) throws -> [[TextMatch]] {
        try TextRepresentation.allCases.flatMap { representation in
            [try index.query("young wizard finds a home on mars", k: 4, using: representation),
             try index.similar(toDocument: "d1", k: 3, using: representation)]
        }
    }

    @Test("a damaged metadata key or topic count (checksums recomputed) is refused, not an index silently missing its LSI part")
    func damagedMetadata() throws {
        let directory = temporaryDirectory()
        let path = directory + "/index.rkm"
        defer { unlink(path); rmdir(directory) }
        try Self.index.save(to: path)
        let original = try ModelFileSurgery.read(path)
        func replacing(_ old: String, with new: String) throws -> [UInt8] {
            var bytes = original
            let needle = Array(old.utf8)
            let start = try #require((0 ... bytes.count - needle.count).first { Array(bytes[$0 ..< $0 + needle.count]) == needle }, "no \(old) in the metadata")
            bytes.replaceSubrange(start ..< start + needle.count, with: Array(new.utf8))
            ModelFileSurgery.reseal(&bytes)
            return bytes
        }
        for (old, new) in [("\"lsiTopics\"", "\"lsiTopicz\""), ("\"lsiTopics\":3", "\"lsiTopics\":2"), ("\"word2vec\"", "\"word2vek\"")] {
            try AtomicFile.write(try replacing(old, with: new), to: path)
            #expect(throws: TextModelError.self, "\(old) → \(new)") { try TextIndex(contentsOf: path) }
        }
        try AtomicFile.write(original, to: path)
        #expect(try Self.answers(try TextIndex(contentsOf: path)) == Self.answers(Self.index))
    }

    @Test("seeded mutations of a text-index file", arguments: ModelFileSurgery.Mutation.allCases)
    func mutations(kind: ModelFileSurgery.Mutation) throws {
        let directory = temporaryDirectory()
        let path = directory + "/index.rkm"
        defer { unlink(path); rmdir(directory) }
        try Self.index.save(to: path)
        let original = try ModelFileSurgery.read(path)
        let expected = try Self.answers(Self.index)
        var generator = SeededGenerator(seed: 0x7E47 + UInt64(ModelFileSurgery.Mutation.allCases.firstIndex(of: kind)!))
        var refused = 0, equal = 0
        for _ in 0 ..< 60 {
            let bytes = ModelFileSurgery.mutate(original, kind, using: &generator)
            try AtomicFile.write(bytes, to: path)
            let opened: TextIndex
            do { opened = try TextIndex(contentsOf: path) } catch { refused += 1; continue }
            // Accepted: then it must be the same index (a flip in padding or a reserved field).
            #expect(opened.ids == Self.index.ids && opened.labels == Self.index.labels && opened.weights == Self.index.weights)
            #expect(try Self.answers(opened) == expected)
            equal += 1
        }
        #expect(refused + equal == 60)
        #expect(refused > 0, "no mutation of kind \(kind) was refused: the mutator is not mutating")
    }
}
