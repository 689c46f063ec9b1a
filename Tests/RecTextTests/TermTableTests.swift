import RecKernels
import Testing
@testable import RecText

/// Rewrites the model file at `source` to `destination` without the sections `dropped`, or
/// with section `replaced` given new int32 values: how files written by older versions (no
/// vocabulary slots) or damaged ones look.
func rewrite(_ source: String, to destination: String, dropping dropped: Set<String> = [],
             replacing replaced: (name: String, values: [Int32])? = nil) throws {
    let file = try ModelFile(contentsOf: source)
    var writer = ModelFileWriter()
    writer.metadata = file.metadata
    for section in file.sections where !dropped.contains(section.name) {
        switch section.elementType {
        case .float32: try writer.add(try file.table(section.name), named: section.name)
        case .int32:
            let values = section.name == replaced?.name ? replaced!.values : try file.int32s(section.name)
            try writer.add(values, columns: section.columns, named: section.name)
        case .int64: try writer.add(try file.int64s(section.name), columns: section.columns, named: section.name)
        case .uint8: try writer.add(bytes: try file.bytes(section.name), named: section.name)
        default: Issue.record("unexpected section type \(section.elementType)")
        }
    }
    try writer.write(to: destination)
}

@Suite("Text index vocabulary: searched in place")
struct TermTableTests {
    static let documents = TextIndexTests.documents + [
        TextDocument(id: "d6", text: "Café owners in Zürich brew crème brûlée for ΣΟΦΙΑ and the naïve wizard.", label: "Unicode"),
        TextDocument(id: "d7", text: "The wizard's school: magic, magic and more magic in the dark.", label: "Repeats"),
    ]

    /// Every term's column by a table built independently of the hash slots.
    static func reference(_ model: TfidfModel) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: model.vocabulary.enumerated().map { ($1, $0) })
    }

    static func expectSameAnswers(_ opened: TextIndex, _ fitted: TextIndex) throws {
        let reference = reference(fitted.tfidf)
        #expect(opened.tfidf.terms.count == reference.count)
        for (term, column) in reference {
            #expect(opened.tfidf.column(ofTerm: term) == column, "term '\(term)'")
            #expect(opened.tfidf.terms[column] == term)
        }
        for absent in ["", "zzz", "wizar", "wizard ", " wizard", "magic magic magic", "WIZARD"] where reference[absent] == nil {
            #expect(opened.tfidf.column(ofTerm: absent) == nil, "term '\(absent)'")
        }
        let texts = documents.map(\.text) + ["a young wizard and a naïve café owner", "nothing known here: qqq"]
        let (a, b) = (opened.tfidf.transform(texts), fitted.tfidf.transform(texts))
        #expect(a.rowOffsets == b.rowOffsets && a.columnIndices == b.columnIndices && a.values == b.values)
        #expect(try opened.query("dark wizard school", k: 3) == fitted.query("dark wizard school", k: 3))
    }

    /// An index of ``documents`` and the path it was saved to.
    static func savedIndex() throws -> (fitted: TextIndex, directory: String, path: String) {
        let directory = temporaryDirectory(), path = directory + "/index.rkm"
        let fitted = try TextIndex(documents: documents)
        try fitted.save(to: path)
        return (fitted, directory, path)
    }

    @Test("a saved index opens with its vocabulary read in place from the file; a file written before the slots were stored gets them built from the mapped terms; both answer as fitted",
          arguments: [false, true])
    func opensWithoutRebuilding(legacy: Bool) throws {
        let (fitted, directory, saved) = try Self.savedIndex()
        #expect(!fitted.tfidf.terms.isMapped)
        let path = legacy ? directory + "/legacy.rkm" : saved
        if legacy { try rewrite(saved, to: path, dropping: ["vocabulary_slots"]) }
        let opened = try TextIndex(contentsOf: path)
        // The lookup structure is the file's sections, not a table built at open.
        #expect(opened.tfidf.terms.isMapped == !legacy)
        #expect(opened.tfidf.terms.bytes.mapping?.path == path && opened.tfidf.terms.offsets.mapping?.path == path)
        #expect((opened.tfidf.terms.slots.mapping?.path == path) == !legacy)
        try Self.expectSameAnswers(opened, fitted)
    }

    @Test("slots that do not index each term exactly once are refused, naming the file")
    func refusesBadSlots() throws {
        let (_, directory, path) = try Self.savedIndex()
        let broken = directory + "/broken.rkm"
        var slots = try ModelFile(contentsOf: path).int32s("vocabulary_slots")
        let filled = slots.indices.filter { slots[$0] >= 0 }
        slots[filled[1]] = slots[filled[0]]  // one column twice, another lost
        try rewrite(path, to: broken, replacing: ("vocabulary_slots", slots))
        #expect {
            try TextIndex(contentsOf: broken)
        } throws: { error in
            guard case let .mismatchedModelFile(errorPath, reason) = error as? TextModelError else { return false }
            return errorPath == broken && reason.contains("twice")
        }
        try rewrite(path, to: broken, replacing: ("vocabulary_slots", Array(slots.prefix(slots.count / 2))))
        #expect(throws: TextModelError.self) { try TextIndex(contentsOf: broken) }
    }

    @Test("a vocabulary with a repeated term is refused")
    func refusesDuplicateTerms() {
        #expect(throws: TextModelError.self) { try TermTable(["magic", "wizard", "magic"]) }
        #expect(throws: TextModelError.self) {
            try TfidfModel(options: TfidfOptions(), vocabulary: ["a b", "a b"], idf: [1, 1], documentCount: 2)
        }
    }
}
