import RecEngine
import RecKernels
import RecModels
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

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
        #expect(throws: EngineError.self) { try engine.recommend(pipeline: "nope", input: "{}") }
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

    @Test("activating under concurrent requests: none fails, both versions answer, no answer mixes them")
    func activationUnderLoad() async throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let (first, second) = try disjointVersions(store)
        let engine = try Engine(store: store.directory)
        let swapping = Flag(true), seen = Tally()
        // Requests run until the swapping ends, so answers interleave with the swaps.
        let (failures, byVersion) = await withTaskGroup(of: (Int, [Int: Int]).self) { group in
            group.addTask {
                // Swap until requests have seen each version several times (at most 20 s), so the
                // race this test is about has surely happened.
                var failed = 0, swap = 0
                let deadline = ContinuousClock.now + .seconds(20)
                while (seen.count(first.version) < 5 || seen.count(second.version) < 5 || swap < 20) && ContinuousClock.now < deadline {
                    do { try engine.activate("pop", version: swap % 2 == 0 ? second.version : first.version) } catch { failed += 1 }
                    swap += 1
                    try? await Task.sleep(for: .milliseconds(1))
                }
                swapping.set(false)
                return (failed, [:])
            }
            for _ in 0 ..< 4 {
                group.addTask {
                    var failed = 0, versions: [Int: Int] = [:]
                    while swapping.value {
                        do {
                            let response = try await engine.recommend(RecommendationRequest(user: "u3", k: 4), pipeline: "pop")
                            let version = response.models["pop"] ?? 0
                            versions[version, default: 0] += 1
                            seen.add(version)
                            if !response.items.allSatisfy({ $0.item.hasPrefix(version == first.version ? "a" : "b") }) { failed += 1 }
                        } catch { failed += 1 }
                    }
                    return (failed, versions)
                }
            }
            return await group.reduce((0, [Int: Int]())) { ($0.0 + $1.0, $0.1.merging($1.1, uniquingKeysWith: +)) }
        }
        #expect(failures == 0)
        #expect(byVersion[first.version, default: 0] > 0 && byVersion[second.version, default: 0] > 0, "\(byVersion)")
    }

    @Test("concurrent activations leave the store's active version and the served one agreeing")
    func concurrentActivations() async throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let (first, second) = try disjointVersions(store)
        let engine = try Engine(store: store.directory)
        for round in 0 ..< 20 {
            await withTaskGroup(of: Void.self) { group in
                for n in 0 ..< 4 {
                    group.addTask { _ = try? engine.activate("pop", version: (n + round) % 2 == 0 ? first.version : second.version) }
                }
            }
            let stored = try store.activeVersion(of: "pop")?.version
            #expect(engine.models.served.first { $0.name == "pop" }?.version == stored)
            #expect(try await engine.recommend(RecommendationRequest(user: "u1", k: 2), pipeline: "pop").models["pop"] == stored)
        }
    }

    @Test("a model whose active file cannot be loaded is reported; the others keep serving")
    func badModelIsolated() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        let (first, _) = try disjointVersions(store)
        var log = Interactions()
        for user in 0 ..< 10 { log.append(user: "u\(user)", item: "x\(user % 3)") }
        let other = try store.add(try PopularityModel(ModelCatalog(training: log)), name: "other", fingerprint: "o", activate: true)
        try flipLastByte(of: first.path)
        let engine = try Engine(store: store.directory)
        #expect(!engine.isReady)
        let status = engine.status()
        #expect(status.map(\.name) == ["other", "pop"])
        #expect(status[0].loaded && status[0].version == other.version)
        #expect(!status[1].loaded && status[1].error?.contains("v1.rkm") == true)
        #expect(try engine.recommend(RecommendationRequest(user: "u1", k: 2), pipeline: "other").items.count == 2)
        #expect {
            try engine.recommend(RecommendationRequest(user: "u1"), pipeline: "pop")
        } throws: { error in
            guard case let PipelineError.modelFailedToLoad(model, reason)? = error as? PipelineError else { return false }
            return model == "pop" && reason.contains("v1.rkm")
        }
    }

    @Test("crash leftovers are swept when the store is opened")
    func leftoversSwept() throws {
        let store = try temporaryStore()
        defer { removeTree(store) }
        _ = try disjointVersions(store)
        let staging = "\(store.directory)/.new-pop-999-1", temporary = "\(store.directory)/pop/state.json.tmp-999-2"
        mkdir(staging, 0o755)
        fclose(fopen("\(staging)/v1.rkm", "w"))
        fclose(fopen(temporary, "w"))
        let reopened = try ModelStore(directory: store.directory)
        #expect(access(staging, F_OK) != 0 && access(temporary, F_OK) != 0)
        #expect(try reopened.versions(of: "pop").count == 2)
    }
}

/// A flag shared between tasks.
final class Flag: Sendable {
    private let state: Mutex<Bool>
    init(_ value: Bool) { state = Mutex(value) }
    var value: Bool { state.withLock { $0 } }
    func set(_ value: Bool) { state.withLock { $0 = value } }
}

/// Counts per version, shared between tasks.
final class Tally: Sendable {
    private let state = Mutex<[Int: Int]>([:])
    func add(_ version: Int) { state.withLock { $0[version, default: 0] += 1 } }
    func count(_ version: Int) -> Int { state.withLock { $0[version, default: 0] } }
}
