import RecEngine
import RecKernels
import RecModels
import Testing

@Suite("Engine: store, served models and pipelines")
struct EngineTests {
    /// Two popularity models over disjoint item sets, as versions 1 and 2 of one name.
    func disjointVersions(_ store: ModelStore) throws -> (ModelVersion, ModelVersion) {
        func model(_ prefix: String) throws -> PopularityModel {
            var log = Interactions()
            for user in 0 ..< 20 { for item in 0 ..< 10 where (user + item) % 3 == 0 { log.append(user: "u\(user)", item: "\(prefix)\(item)") } }
            return try PopularityModel(ModelCatalog(training: log))
        }
        let first = try store.add(model("a"), name: "pop", fingerprint: "a", activate: true)
        let second = try store.add(model("b"), name: "pop", fingerprint: "b")
        return (first, second)
    }

    @Test("serves the active versions with default pipelines; activate and roll back swap what answers")
    func activateAndRollBack() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let (first, second) = try disjointVersions(store)
        let engine = try Engine(store: store.directory)
        #expect(engine.pipelines.keys.sorted() == ["pop"])
        let before = try engine.recommend(pipeline: "pop", input: #"{"user": "u1", "k": 3}"#)
        #expect(before.models == ["pop": first.version] && before.items.allSatisfy { $0.item.hasPrefix("a") })
        try engine.activate("pop", version: second.version)
        let after = try engine.recommend(pipeline: "pop", input: #"{"user": "u1", "k": 3}"#)
        #expect(after.models == ["pop": second.version] && after.items.allSatisfy { $0.item.hasPrefix("b") })
        #expect(try engine.rollback("pop").version == first.version)
        #expect(try engine.recommend(pipeline: "pop", input: #"{"user": "u1"}"#).items.allSatisfy { $0.item.hasPrefix("a") })
        #expect(throws: PipelineError.self) { try engine.recommend(pipeline: "nope", input: "{}") }
    }

    @Test("a corrupt or truncated version is refused and the active version keeps serving")
    func corruptVersionRefused() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let (first, second) = try disjointVersions(store)
        let engine = try Engine(store: store.directory)
        try flipLastByte(of: second.path)
        #expect(throws: (any Error).self) { try engine.activate("pop", version: second.version) }
        #expect(try store.activeVersion(of: "pop")?.version == first.version)
        let answer = try engine.recommend(pipeline: "pop", input: #"{"user": "u2", "k": 2}"#)
        #expect(answer.models == ["pop": first.version] && answer.items.count == 2)
    }

    @Test("activating under concurrent requests fails none of them")
    func activationUnderLoad() async throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let (first, second) = try disjointVersions(store)
        let engine = try Engine(store: store.directory)
        let failures = await withTaskGroup(of: Int.self) { group in
            group.addTask {
                var failed = 0
                for swap in 0 ..< 40 {
                    do { try engine.activate("pop", version: swap % 2 == 0 ? second.version : first.version) } catch { failed += 1 }
                }
                return failed
            }
            for _ in 0 ..< 4 {
                group.addTask {
                    var failed = 0
                    for _ in 0 ..< 200 {
                        do {
                            let response = try engine.recommend(pipeline: "pop", input: #"{"user": "u3", "k": 4}"#)
                            let prefix = response.models["pop"] == first.version ? "a" : "b"
                            if !response.items.allSatisfy({ $0.item.hasPrefix(prefix) }) { failed += 1 }
                        } catch { failed += 1 }
                    }
                    return failed
                }
            }
            return await group.reduce(0, +)
        }
        #expect(failures == 0)
    }
}
