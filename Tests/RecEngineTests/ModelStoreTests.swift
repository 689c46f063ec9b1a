#if canImport(Glibc)
import Glibc
#endif
@testable import RecEngine
import RecKernels
import RecModels
import RecText
import Testing

/// The small seeded training set every test trains on.
let training = try! Interactions.synthetic(users: 200, items: 100, interactions: 3000, seed: 1)
let trainingCatalog = try! ModelCatalog(training: training)
let popularity = try! PopularityModel(trainingCatalog)

/// A fresh store in a new directory under /tmp; the test removes it with `removeTree`.
func temporaryStore() throws -> ModelStore {
    var template = Array("/tmp/recengine-store-XXXXXX".utf8CString)
    let directory = String(cString: mkdtemp(&template)!)
    return try ModelStore(directory: directory + "/store")
}

func removeTree(_ store: ModelStore) {
    let parent = String(store.directory[..<store.directory.lastIndex(of: "/")!])
    _ = system("rm -rf '\(parent)'")
}

/// The names in `directory`, or none when it cannot be read.
/// The entries of a store directory, without the writer lock file every store has.
func entries(_ directory: String) -> [String] {
    ((try? StoreFileSystem.entries(of: directory)) ?? []).filter { $0 != ".lock" }
}

func flipLastByte(of path: String) throws {
    var bytes = try MappedFile(path: path).withUnsafeBytes { Array($0) }
    bytes[bytes.count - 1] ^= 0xFF
    try AtomicFile.write(bytes, to: path)
}

/// A valid model file whose metadata names a kind the store does not load.
func writeUnknownKindFile(to path: String) throws {
    var writer = ModelFileWriter()
    writer.metadata = Array(#"{"kind":"mystery"}"#.utf8)
    try writer.add(bytes: [1, 2, 3], named: "payload")
    try writer.write(to: path)
}

@Suite("ModelStore")
struct ModelStoreTests {
    @Test("added versions count up, are never reused after delete, persist, and leave no temporary files")
    func addListDelete() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        #expect(try store.names() == [])
        let first = try store.add(popularity, name: "movies-pop", fingerprint: training.fingerprint)
        let second = try store.add(popularity, name: "movies-pop", fingerprint: "abc")
        #expect((first.version, second.version) == (1, 2))
        #expect(first.kind == "popularity" && first.metadata?.kind == "popularity" && first.metadata?.users == 200)
        #expect(first.path == store.directory + "/movies-pop/v1.rkm" && first.fingerprint == training.fingerprint)
        #expect(first.bytes > 0 && first.createdAt > 1_700_000_000)
        #expect(try store.activeVersion(of: "movies-pop") == nil)
        let third = try store.add(popularity, name: "movies-pop", fingerprint: "abc", activate: true)
        #expect(try store.activeVersion(of: "movies-pop") == third)

        try store.delete(name: "movies-pop", version: 2)
        let fourth = try store.add(popularity, name: "movies-pop", fingerprint: "abc")
        try store.delete(name: "movies-pop", version: 4)
        let fifth = try store.add(popularity, name: "movies-pop", fingerprint: "abc")
        #expect(fourth.version == 4 && fifth.version == 5)
        _ = try store.add(popularity, name: "a-second.model_1", fingerprint: "abc")

        let reopened = try ModelStore(directory: store.directory)
        #expect(try reopened.names() == ["a-second.model_1", "movies-pop"])
        #expect(try reopened.versions(of: "movies-pop").map(\.version) == [1, 3, 5])
        #expect(try reopened.versions(of: "movies-pop") == store.versions(of: "movies-pop"))
        #expect(try reopened.activeVersion(of: "movies-pop")?.version == 3)
        #expect(entries(store.directory) == ["a-second.model_1", "movies-pop"])
        #expect(entries(store.directory + "/movies-pop") == ["state.json", "v1.rkm", "v3.rkm", "v5.rkm"])
    }

    @Test("activation verifies every checksum: a flipped byte or a cut file is refused and the active version stays")
    func activateRefusesCorruptFiles() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let good = try store.add(popularity, name: "m", fingerprint: "f", activate: true)
        let flipped = try store.add(popularity, name: "m", fingerprint: "f")
        let cut = try store.add(popularity, name: "m", fingerprint: "f")
        try flipLastByte(of: flipped.path)
        #expect(truncate(cut.path, off_t(cut.bytes / 2)) == 0)

        let checksum = #expect(throws: ModelStoreError.self) { try store.activate(name: "m", version: 2) }
        guard case let .corrupt(path, reason) = checksum else { Issue.record("expected corrupt, got \(String(describing: checksum))"); return }
        #expect(path == flipped.path && reason.contains("checksum mismatch in the section 'counts'"))
        #expect(checksum?.description.hasPrefix(flipped.path + ": ") == true)

        let truncated = #expect(throws: ModelStoreError.self) { try store.activate(name: "m", version: 3) }
        guard case let .corrupt(cutPath, cutReason) = truncated else { Issue.record("expected corrupt, got \(String(describing: truncated))"); return }
        #expect(cutPath == cut.path && cutReason.contains("truncated"))
        #expect(try store.activeVersion(of: "m") == good)
        #expect(throws: ModelStoreError.corrupt(path: flipped.path, reason: reason)) { try store.load(flipped) }
    }

    @Test("rollback walks back through the activation history, then says there is nothing left")
    func rollbackHistory() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        for _ in 1 ... 3 { _ = try store.add(popularity, name: "m", fingerprint: "f") }
        #expect(throws: ModelStoreError.nothingToRollBackTo("m")) { try store.rollback(name: "m") }
        for version in [1, 2, 3] { try store.activate(name: "m", version: version) }
        try store.activate(name: "m", version: 3)  // re-activating the active version adds no history
        #expect(try store.rollback(name: "m").version == 2)
        #expect(try store.activeVersion(of: "m")?.version == 2)
        #expect(try store.rollback(name: "m").version == 1)
        #expect(throws: ModelStoreError.nothingToRollBackTo("m")) { try store.rollback(name: "m") }
        #expect(try store.activeVersion(of: "m")?.version == 1)
    }

    @Test("rollback skips deleted versions")
    func rollbackAfterDelete() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        for _ in 1 ... 3 { _ = try store.add(popularity, name: "m", fingerprint: "f") }
        for version in [1, 2, 1, 3] { try store.activate(name: "m", version: version) }
        try store.delete(name: "m", version: 2)
        #expect(try store.rollback(name: "m").version == 1)
        #expect(throws: ModelStoreError.nothingToRollBackTo("m")) { try store.rollback(name: "m") }
    }

    @Test("delete refuses the active version without force, and unknown names and versions")
    func deleteRules() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let active = try store.add(popularity, name: "m", fingerprint: "f", activate: true)
        #expect(throws: ModelStoreError.activeVersion(name: "m", version: 1)) { try store.delete(name: "m", version: 1) }
        #expect(throws: ModelStoreError.unknownVersion(name: "m", version: 7)) { try store.delete(name: "m", version: 7) }
        #expect(throws: ModelStoreError.unknownVersion(name: "m", version: 7)) { try store.activate(name: "m", version: 7) }
        #expect(throws: ModelStoreError.unknownModel("other")) { try store.delete(name: "other", version: 1) }
        #expect(throws: ModelStoreError.unknownModel("other")) { try store.delete(name: "other") }
        #expect(throws: ModelStoreError.unknownModel("other")) { try store.versions(of: "other") }
        try store.delete(name: "m", version: 1, force: true)
        #expect(try store.activeVersion(of: "m") == nil && store.versions(of: "m") == [])
        #expect(entries(store.directory + "/m") == ["state.json"])
        #expect(active.version == 1)

        _ = try store.add(popularity, name: "m", fingerprint: "f", activate: true)
        try store.delete(name: "m")
        #expect(try store.names() == [])
        #expect(entries(store.directory) == [])
        #expect(throws: ModelStoreError.unknownModel("m")) { try store.activeVersion(of: "m") }
    }

    @Test("load returns each kind's concrete type with the saved model's recommendations")
    func loadEveryKind() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        var als = ImplicitALS()
        als.factors = 8
        als.iterations = 3
        als.threads = 1
        let models: [any Recommender] = [popularity, try als.fit(trainingCatalog), try ItemKNNModel(trainingCatalog)]
        for model in models {
            let version = try store.add(model, name: model.kind, fingerprint: training.fingerprint, activate: true)
            guard case let .recommender(loaded) = try store.load(version) else { Issue.record("\(model.kind) loaded as text"); continue }
            #expect(type(of: loaded) == type(of: model))
            #expect(loaded.kind == model.kind && version.kind == model.kind)
            #expect(try loaded.recommend(users: [0, 1, 2, 3], k: 10, excludeSeen: true, filter: nil)
                == model.recommend(users: [0, 1, 2, 3], k: 10, excludeSeen: true, filter: nil))
        }

        let index = try TextIndex(documents: [
            TextDocument(id: "d1", text: "A young wizard attends a school of magic.", label: "Wizards"),
            TextDocument(id: "d2", text: "A school of magic admits a young witch.", label: "Witches"),
            TextDocument(id: "d3", text: "Astronauts travel through a wormhole.", label: "Space"),
        ])
        let version = try store.add(index, name: "docs", fingerprint: "f")
        #expect(version.kind == "text-index" && version.metadata == nil)
        let loaded = try store.load(version)
        guard case let .text(loadedIndex) = loaded else { Issue.record("text index loaded as a recommender"); return }
        #expect(loaded.kind == "text-index")
        #expect(try loadedIndex.query("school of magic", k: 3) == index.query("school of magic", k: 3))
        #expect(try store.names() == ["als", "docs", "item-knn", "popularity"])
    }

    @Test("import copies a verified file in; a corrupt or unknown-kind file is refused and leaves nothing behind")
    func importFiles() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let outside = store.directory + "/../outside.rkm"
        try popularity.save(to: outside)
        let imported = try store.importFile(outside, name: "m", fingerprint: "f", activate: true)
        #expect(imported.kind == "popularity" && imported.path == store.directory + "/m/v1.rkm")
        guard case let .recommender(model) = try store.load(imported) else { Issue.record("loaded as text"); return }
        #expect(try model.recommend(users: [5], k: 5, excludeSeen: true, filter: nil)
            == popularity.recommend(users: [5], k: 5, excludeSeen: true, filter: nil))

        try flipLastByte(of: outside)
        let error = #expect(throws: ModelStoreError.self) { try store.importFile(outside, name: "n", fingerprint: "f") }
        guard case let .corrupt(path, _) = error else { Issue.record("expected corrupt, got \(String(describing: error))"); return }
        #expect(path == outside)
        let mystery = store.directory + "/../mystery.rkm"
        try writeUnknownKindFile(to: mystery)
        #expect(throws: ModelStoreError.unsupportedKind(path: mystery, kind: "mystery")) {
            try store.importFile(mystery, name: "m", fingerprint: "f")
        }
        #expect(try store.names() == ["m"] && store.versions(of: "m") == [imported])
        #expect(entries(store.directory) == ["m"])
        #expect(entries(store.directory + "/m") == ["state.json", "v1.rkm"])
    }

    @Test("a stored file replaced by one of an unknown kind loads as unsupportedKind")
    func loadUnknownKind() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let version = try store.add(popularity, name: "m", fingerprint: "f")
        try writeUnknownKindFile(to: version.path)
        #expect(throws: ModelStoreError.unsupportedKind(path: version.path, kind: "mystery")) { try store.load(version) }
    }

    @Test("a missing or unreadable state.json is an error, never a fresh start")
    func unreadableState() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        _ = try store.add(popularity, name: "m", fingerprint: "f", activate: true)
        let statePath = store.directory + "/m/state.json"
        try AtomicFile.write(Array("{not json".utf8), to: statePath)
        let garbled = #expect(throws: ModelStoreError.self) { try store.versions(of: "m") }
        guard case let .unreadableState(path, _) = garbled else { Issue.record("expected unreadableState, got \(String(describing: garbled))"); return }
        #expect(path == statePath)

        #expect(unlink(statePath) == 0)
        let missing = #expect(throws: ModelStoreError.self) { try store.add(popularity, name: "m", fingerprint: "f") }
        guard case let .unreadableState(missingPath, reason) = missing else { Issue.record("expected unreadableState, got \(String(describing: missing))"); return }
        #expect(missingPath == statePath && reason.contains("missing"))
        #expect(entries(store.directory + "/m") == ["v1.rkm"])
        #expect(throws: ModelStoreError.self) { try store.activate(name: "m", version: 1) }
    }

    @Test("invalid names are refused", arguments: ["", "/", "..", ".", ".hidden", "a b", "a/b", "é", String(repeating: "x", count: 65)])
    func invalidNames(name: String) throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        #expect(throws: ModelStoreError.invalidName(name)) { try store.add(popularity, name: name, fingerprint: "f") }
        #expect(throws: ModelStoreError.invalidName(name)) { try store.versions(of: name) }
        #expect(throws: ModelStoreError.invalidName(name)) { try store.delete(name: name) }
        #expect(entries(store.directory) == [])
    }

    @Test("a 64-character name is accepted")
    func longestName() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let name = String(repeating: "x", count: 64)
        #expect(try store.add(popularity, name: name, fingerprint: "f").name == name)
    }

    @Test("concurrent adds from two store values on one directory get distinct versions")
    func concurrentAdds() async throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let other = try ModelStore(directory: store.directory)
        let numbers = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0 ..< 8 {
                group.addTask { try (task % 2 == 0 ? store : other).add(popularity, name: "m", fingerprint: "f").version }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(numbers.sorted() == Array(1 ... 8))
        #expect(try store.versions(of: "m").map(\.version) == Array(1 ... 8))
    }
}

@Suite("Interactions fingerprint")
struct FingerprintTests {
    @Test("the fingerprint ignores entry order and id-map order, and pins a known value")
    func orderIndependent() throws {
        var forward = Interactions(), backward = Interactions()
        let triples: [(String, String, Float)] = [("u1", "i1", 1), ("u2", "i1", 3), ("u1", "i2", 2), ("u3", "i9", 1)]
        for (user, item, value) in triples { forward.append(user: user, item: item, value: value) }
        for (user, item, value) in triples.reversed() { backward.append(user: user, item: item, value: value) }
        #expect(forward.users.ids != backward.users.ids)
        #expect(forward.fingerprint == backward.fingerprint)
        #expect(forward.fingerprint.count == 16 && forward.fingerprint.allSatisfy(\.isHexDigit))
        // Computed independently (Python) from the documented byte layout.
        #expect(forward.fingerprint == "1f03775362919d8f")
        let regenerated = try Interactions.synthetic(users: 200, items: 100, interactions: 3000, seed: 1)
        #expect(training.fingerprint == regenerated.fingerprint)
    }

    @Test("the fingerprint changes with a value, a pair, or an extra entry")
    func sensitive() {
        var base = Interactions()
        base.append(user: "u1", item: "i1", value: 1)
        base.append(user: "u2", item: "i2", value: 1)
        var changedValue = base, swappedPair = Interactions(), extra = base
        changedValue.values[1] = 2
        swappedPair.append(user: "u1", item: "i2", value: 1)
        swappedPair.append(user: "u2", item: "i1", value: 1)
        extra.append(user: "u2", item: "i2", value: 1)
        let prints = [base, changedValue, swappedPair, extra].map(\.fingerprint)
        #expect(Set(prints).count == 4)
    }
}
