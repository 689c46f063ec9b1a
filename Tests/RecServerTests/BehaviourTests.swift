import Foundation
import Hummingbird
import HummingbirdTesting
import RecEngine
@testable import RecServer
import Dispatch
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Server behaviour: feedback, readiness, metrics, the OpenAPI document, hot swap, shutdown")
struct BehaviourTests {
    @Test("feedback changes the next answer: the liked item is left out and the list moves towards it")
    func feedbackChangesTheNextAnswer() async throws {
        let service = try await makeService("feedback")
        try await withRouter(service) { client in
            let uri = "/v1/pipelines/home/users/u6/recommendations?k=10"
            let before = try await client.execute(uri: uri, method: .get) { try items($0) }
            #expect(before.count == 10)
            // Like three items of one genre other than u6's.
            let genre = DemoStore.genre(ofItem: (0 ..< 8).first { DemoStore.genre(ofItem: $0) != DemoStore.genre(ofUser: 6) }!)
            let other = Array((0 ..< 400).filter { DemoStore.genre(ofItem: $0) == genre }.prefix(3))
            #expect(other.count == 3)
            for item in other {
                try await client.execute(uri: "/v1/feedback", method: .post, headers: jsonHeaders,
                                         body: jsonBody(#"{"user":"u6","item":"i\#(item)","type":"like","weight":5,"time":1700000000}"#)) { (response: TestResponse) async throws in
                    #expect(response.status == .accepted)
                }
            }
            let after = try await client.execute(uri: uri, method: .get) { try items($0) }
            #expect(after.count == 10)
            #expect(after != before)
            #expect(Set(after).isDisjoint(with: other.map { "i\($0)" }))
            let share = { (list: [String]) in list.filter { DemoStore.genre(ofItem: Int($0.dropFirst())!) == genre }.count }
            #expect(share(after) > share(before), "before \(before), after \(after)")
            // Another user's answer is untouched.
            try await client.execute(uri: "/v1/explain", method: .post, headers: jsonHeaders, body: jsonBody(#"{"model":"als","user":"u6","item":"i\#(other.first!)"}"#)) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
        }
    }

    @Test("feedback memory is bounded per user and overall: the least recently updated user is evicted, and /metrics counts it")
    func feedbackBounds() async throws {
        let service = try await makeService("bounds") { $0.engine.recentEventsPerUser = 3; $0.engine.recentEventsUsers = 2 }
        try await withRouter(service) { client in
            func like(_ user: String, _ items: [String]) async throws -> Int {
                let events = items.map { #"{"item":"\#($0)","type":"like"}"# }.joined(separator: ",")
                return try await client.execute(uri: "/v1/feedback", method: .post, headers: jsonHeaders,
                                                body: jsonBody(#"{"user":"\#(user)","events":[\#(events)]}"#)) { (response: TestResponse) async throws -> Int in
                    #expect(response.status == .accepted)
                    return (try object(response)["recent"] as! NSNumber).intValue
                }
            }
            #expect(try await like("u1", ["i1", "i2", "i3", "i4", "i5"]) == 3)   // at most 3 per user
            #expect(try await like("u2", ["i9"]) == 1)
            #expect(try await like("u1", ["i6"]) == 3)                           // u1 is now the most recent
            #expect(try await like("u3", ["i7"]) == 1)                           // evicts u2
            let engine = try #require(service.engine)
            #expect(engine.recentEvents.events(of: "u1").map(\.item) == ["i4", "i5", "i6"])
            #expect(engine.recentEvents.events(of: "u2").isEmpty)
            try await client.execute(uri: "/metrics", method: .get) { (response: TestResponse) async throws in
                let text = String(buffer: response.body)
                #expect(text.contains("recommender_feedback_evicted_users_total 1"), "\(text)")
                #expect(text.contains("recommender_feedback_users 2"))
            }
            // The evicted user's feedback no longer changes their answer; the kept one's does.
            try await client.execute(uri: "/v1/pipelines/home/users/u1/recommendations?k=50", method: .get) { (response: TestResponse) async throws in
                #expect(Set(try items(response)).isDisjoint(with: ["i4", "i5", "i6"]))
            }
        }
    }

    @Test("a full queue answers 503 with Retry-After at once; the queued requests still succeed (with and without gathering)", arguments: [4, 1])
    func overload(gathered: Int) async throws {
        let service = try await makeService("overload-\(gathered)") {
            $0.engine.workerThreads = 1
            $0.engine.maximumQueuedRequests = 1
            $0.engine.gatheredRequests = gathered
        }
        let engine = try #require(service.engine)
        // Hold the engine's only worker until released.
        let release = DispatchSemaphore(value: 0)
        let holder = Task { try await engine.run { release.wait() } }
        while engine.queueDepth.running == 0 { try await Task.sleep(for: .milliseconds(1)) }
        try await withRouter(service) { client in
            let uri = "/v1/pipelines/home/users/u1/recommendations"
            // Fill the engine's queue (one request).
            var queued: [Task<TestResponse, any Error>] = []
            for depth in 1 ... 1 {
                queued.append(Task { try await client.execute(uri: uri, method: .get, headers: [:], body: nil) })
                while service.queueDepth.waiting < depth { try await Task.sleep(for: .milliseconds(1)) }
            }
            try await client.execute(uri: uri, method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] == "1")
                #expect(try failure(response).problem.contains("overloaded"))
            }
            release.signal()
            try await holder.value
            for request in queued { #expect(try await request.value.status == .ok) }
        }
    }

    @Test("readiness is 503 until the engine is loaded, and engine routes answer 503 meanwhile; liveness is 200 throughout")
    func readiness() async throws {
        let (directory, settings) = try makeStore("ready")
        let service = RecommenderService(configuration: ServerConfiguration())
        try await withRouter(service) { client in
            try await client.execute(uri: "/health/ready", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/health/live", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/pipelines/home/users/u1/recommendations", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .serviceUnavailable)
                #expect(try failure(response).problem.contains("not ready"))
            }
            await service.load(store: directory, settings: settings)
            try await client.execute(uri: "/health/ready", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect((try object(response)["models"] as! [Any]).count == 3)
            }
            try await client.execute(uri: "/v1/pipelines/home/users/u1/recommendations", method: .get) { #expect($0.status == .ok) }
        }
        // One model whose active version failed to load: the others serve, readiness stays 503 naming it.
        let loaded = try #require(service.engine)
        let partial = ModelManager()
        let snapshots = loaded.models.snapshot()
        for model in loaded.models.served { partial.install(try snapshots.snapshot(model.name).model, as: model.name, version: model.version) }
        partial.recordFailure("broken", kind: "als", reason: "checksum mismatch in section 'items'")
        let degraded = RecommenderService(configuration: ServerConfiguration())
        await degraded.load { try Engine(models: partial) }
        try await withRouter(degraded) { client in
            try await client.execute(uri: "/health/ready", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("broken"))
                #expect(String(buffer: response.body).contains("checksum mismatch"))
            }
            try await client.execute(uri: "/v1/pipelines/als/users/u1/recommendations", method: .get) { #expect($0.status == .ok) }
        }
        // A store that cannot be loaded leaves the service not ready, with the reason.
        let broken = RecommenderService(configuration: ServerConfiguration())
        await broken.load(store: directory, settings: "/nonexistent/settings.json")
        try await withRouter(broken) { client in
            try await client.execute(uri: "/health/ready", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("settings.json"))
            }
        }
    }

    @Test("/metrics counts requests by route and status and has per-stage histograms in seconds, queue depth and model versions")
    func metrics() async throws {
        let service = try await makeService("metrics")
        try await withRouter(service) { client in
            for _ in 0 ..< 3 { try await client.execute(uri: "/v1/pipelines/home/users/u1/recommendations", method: .get) { _ in } }
            try await client.execute(uri: "/v1/recommend", method: .post, headers: jsonHeaders, body: jsonBody("{")) { _ in }
            try await client.execute(uri: "/metrics", method: .get) { (response: TestResponse) async throws in
                let text = String(buffer: response.body)
                #expect(text.contains(#"http_requests_total{route="/v1/pipelines/{pipeline}/users/{user}/recommendations",method="GET",status="200"} 3"#), "\(text)")
                #expect(text.contains(#"http_requests_total{route="/v1/recommend",method="POST",status="400"} 1"#))
                #expect(text.contains(#"recommender_stage_duration_seconds_count{pipeline="home",stage="similarity"} 3"#))
                #expect(text.contains(#"recommender_stage_duration_seconds_bucket{pipeline="home",stage="similarity",le="0.001"}"#))
                #expect(text.contains("recommender_queue_depth 0"))
                #expect(text.contains(#"recommender_model_version{model="als"} 1"#))
            }
        }
    }

    @Test("every route is in the OpenAPI document and every documented operation is a route")
    func openAPIMatchesTheRouter() throws {
        let router = RecommenderRoutes.router(RecommenderService(configuration: ServerConfiguration()))
        let routed = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
        let document = try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as! [String: Any]
        var documented = Set<String>()
        for (path, operations) in document["paths"] as! [String: [String: Any]] {
            for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        #expect(routed.subtracting(documented).isEmpty, "routes missing from the document: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "documented operations that are not routes: \(documented.subtracting(routed).sorted())")
        #expect(routed.count >= 20)
    }

    @Test("hot swap under load: requests keep succeeding while a new version is activated, and both versions answer")
    func hotSwapUnderLoad() async throws {
        let service = try await makeService("swap")
        try await withRouter(service) { client in
            let results = try await withThrowingTaskGroup(of: [(status: Int, version: Int?)].self) { group in
                for worker in 0 ..< 4 {
                    group.addTask {
                        var seen: [(Int, Int?)] = []
                        for n in 0 ..< 60 {
                            let uri = n % 2 == 0 ? "/v1/pipelines/home/users/u\((worker * 60 + n) % 200)/recommendations?k=5" : "/v1/pipelines/home/sessions"
                            let response = n % 2 == 0
                                ? try await client.execute(uri: uri, method: .get, headers: [:], body: nil)
                                : try await client.execute(uri: uri, method: .post, headers: jsonHeaders, body: jsonBody(#"{"items":["i\#(n)","i\#(n + 8)"],"k":5}"#))
                            let version = response.status == .ok ? ((try? object(response))?["models"] as? [String: Int])?["als"] : nil
                            seen.append((Int(response.status.code), version))
                        }
                        return seen
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(30))
                    var headers = jsonHeaders
                    headers[.authorization] = "Bearer s3cret-token"
                    let response = try await client.execute(uri: "/v1/models/als/activate", method: .post, headers: headers, body: jsonBody(#"{"version":2}"#))
                    return [(Int(response.status.code), nil)]
                }
                var all: [(status: Int, version: Int?)] = []
                for try await part in group { all += part }
                return all
            }
            #expect(results.allSatisfy { $0.status == 200 }, "\(results.filter { $0.status != 200 })")
            let versions = Set(results.compactMap(\.version))
            #expect(versions == [1, 2], "versions seen: \(versions)")
        }
    }
}

