import Foundation
import Hummingbird
import HummingbirdTesting
import RecEngine
import RecModels
@testable import RecServer
import Testing

@Suite("The JSON API: each route's success and each class of bad input")
struct RouteTests {
    @Test("a known user gets k items from their preferred genre, with metadata, versions and stage timings")
    func knownUser() async throws {
        let service = try await makeService("known")
        try await withRouter(service) { client in
            try await client.execute(uri: "/v1/pipelines/home/users/u3/recommendations?k=5", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let body = try object(response)
                let list = body["items"] as! [[String: Any]]
                #expect(list.count == 5)
                // u3 prefers the genre DemoStore.genre(ofUser: 3); nine in ten of its events are from it.
                let genres = list.map { ($0["metadata"] as! [String: String])["genre"] }
                #expect(genres.filter { $0 == DemoStore.genre(ofUser: 3) }.count >= 4, "\(genres)")
                #expect((body["models"] as! [String: Int])["als"] == 1)
                #expect(Set((body["timings"] as! [String: Double]).keys).isSuperset(of: ["preprocess", "similarity", "postprocess", "total"]))
            }
        }
    }

    @Test("an anonymous session is folded in: results follow the session's genre and leave its items out")
    func session() async throws {
        let service = try await makeService("session")
        // Items 5, 13, 21 are all of genre 5 (items cycle through 8 genres).
        try await withRouter(service) { client in
            try await client.execute(uri: "/v1/pipelines/home/sessions", method: .post, headers: jsonHeaders,
                                     body: jsonBody(#"{"items":["i5","i13"],"events":[{"item":"i21","type":"buy"}],"k":6}"#)) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let found = try items(response)
                #expect(found.count == 6)
                #expect(Set(found).isDisjoint(with: ["i5", "i13", "i21"]))
                let genre = DemoStore.genre(ofItem: 5)
                #expect(found.filter { DemoStore.genre(ofItem: Int($0.dropFirst())!) == genre }.count >= 5, "\(found)")
            }
        }
    }

    @Test("similar items, a text query, a general request and item metadata")
    func similarSearchItem() async throws {
        let service = try await makeService("similar")
        try await withRouter(service) { client in
            try await client.execute(uri: "/v1/pipelines/home/items/i7/similar?k=4", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let found = try items(response)
                #expect(found.count == 4 && !found.contains("i7"))
            }
            try await client.execute(uri: "/v1/pipelines/home/items/nope/similar", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .notFound)
                #expect(try failure(response).field == "item")
            }
            try await client.execute(uri: "/v1/pipelines/search/search", method: .post, headers: jsonHeaders, body: jsonBody(#"{"text":"dragon wizard","k":3}"#)) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let list = try object(response)["items"] as! [[String: Any]]
                #expect(list.count == 3)
                #expect(list.allSatisfy { ($0["metadata"] as! [String: String])["genre"] == "fantasy" })
            }
            try await client.execute(uri: "/v1/recommend", method: .post, headers: jsonHeaders, body: jsonBody(#"{"pipeline":"home","user":"u1","k":2,"exclude":[]}"#)) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(try items(response).count == 2)
            }
            try await client.execute(uri: "/v1/items/i7", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let body = try object(response)
                #expect((body["metadata"] as! [String: String])["genre"] == DemoStore.genre(ofItem: 7))
                #expect(Set(body["models"] as! [String]) == ["als", "docs", "popular"])
            }
            try await client.execute(uri: "/v1/items/no-such-item", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test("a batch answers each request in order with its own status")
    func batch() async throws {
        let service = try await makeService("batch")
        try await withRouter(service) { client in
            let body = #"{"requests":[{"pipeline":"home","user":"u2","k":3},{"pipeline":"nope","user":"u2"},{"pipeline":"search","text":"pirate island","k":2}]}"#
            try await client.execute(uri: "/v1/batch", method: .post, headers: jsonHeaders, body: jsonBody(body)) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let results = try object(response)["results"] as! [[String: Any]]
                #expect(results.map { ($0["status"] as! NSNumber).intValue } == [200, 404, 200])
                #expect(((results[0]["response"] as! [String: Any])["items"] as! [Any]).count == 3)
                #expect(((results[1]["error"] as! [String: Any])["field"] as? String) == "requests[1].pipeline")
                #expect(((results[2]["response"] as! [String: Any])["pipeline"] as? String) == "search")
            }
        }
    }

    @Test("an explanation's contributions add up to the score; models without explanations say so")
    func explain() async throws {
        let service = try await makeService("explain")
        try await withRouter(service) { client in
            try await client.execute(uri: "/v1/explain", method: .post, headers: jsonHeaders, body: jsonBody(#"{"model":"als","user":"u4","item":"i12"}"#)) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let body = try object(response)
                let score = (body["score"] as! NSNumber).doubleValue
                let contributions = (body["contributions"] as! [[String: Any]]).map { ($0["contribution"] as! NSNumber).doubleValue }
                #expect(!contributions.isEmpty)
                // Only the 20 largest are returned; they are sorted, largest first.
                #expect(contributions == contributions.sorted(by: >))
                if contributions.count < 20 { #expect(abs(contributions.reduce(0, +) - score) < 1e-3 * max(1, abs(score))) }
            }
            try await client.execute(uri: "/v1/explain", method: .post, headers: jsonHeaders, body: jsonBody(#"{"model":"popular","user":"u4","item":"i12"}"#)) { (response: TestResponse) async throws in
                #expect(response.status == .unprocessableContent)
                #expect(try failure(response).field == "model")
            }
        }
    }

    @Test("item-kNN explanations add up to the model's own score; BPR explanations rank the item's nearest neighbour first")
    func explainOtherModels() async throws {
        let log = try Interactions.synthetic(users: 300, items: 120, interactions: 6_000, seed: 11)
        let catalog = try ModelCatalog(training: log)
        let knn = try ItemKNNModel(catalog, neighbours: 30)
        var trainer = BPR()
        trainer.factors = 8
        trainer.iterations = 20
        let bpr = try trainer.fit(catalog)
        let manager = ModelManager()
        manager.install(.recommender(knn), as: "knn", version: 1)
        manager.install(.recommender(bpr), as: "bpr", version: 1)
        let service = RecommenderService(configuration: ServerConfiguration())
        await service.load { try Engine(models: manager) }
        let history = [3, 17, 42, 64, 99]
        let quoted = history.map { "\"\(catalog.items[$0])\"" }.joined(separator: ",")
        // item-kNN: the best item for the history, scored by the sparse kernel.
        let best = try #require(try knn.recommend(history: history, weights: [Float](repeating: 1, count: history.count), k: 1).first)
        // BPR: the target's nearest neighbour by the model's own similar-items search.
        let target = 7, neighbour = try #require(try bpr.similarItems(to: target, k: 1).first).id
        let withNeighbour = ([neighbour] + history.filter { $0 != target && $0 != neighbour }).map { "\"\(catalog.items[$0])\"" }.joined(separator: ",")
        try await withRouter(service) { client in
            try await client.execute(uri: "/v1/explain", method: .post, headers: jsonHeaders,
                                     body: jsonBody(#"{"model":"knn","items":[\#(quoted)],"item":"\#(catalog.items[best.id])"}"#)) { (response: TestResponse) async throws in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let body = try object(response)
                #expect(body["method"] as? String == "contribution")
                let entries = body["contributions"] as! [[String: Any]]
                let shares = entries.map { ($0["contribution"] as! NSNumber).doubleValue }
                #expect(!shares.isEmpty && shares == shares.sorted(by: >))
                #expect(Set(entries.map { $0["item"] as! String }).isSubset(of: Set(history.map { catalog.items[$0] })))
                #expect(abs(shares.reduce(0, +) - Double(best.score)) < 1e-4 * max(1, Double(best.score)))
                #expect(abs((body["score"] as! NSNumber).doubleValue - Double(best.score)) < 1e-4 * max(1, Double(best.score)))
            }
            try await client.execute(uri: "/v1/explain", method: .post, headers: jsonHeaders,
                                     body: jsonBody(#"{"model":"bpr","items":[\#(withNeighbour)],"item":"\#(catalog.items[target])"}"#)) { (response: TestResponse) async throws in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let body = try object(response)
                #expect(body["method"] as? String == "similarity")
                #expect(body["score"] is NSNull)
                let entries = body["contributions"] as! [[String: Any]]
                #expect(entries.first?["item"] as? String == catalog.items[neighbour])
                let similarities = entries.map { ($0["similarity"] as! NSNumber).doubleValue }
                #expect(similarities == similarities.sorted(by: >) && similarities.allSatisfy { $0 <= 1.0001 })
            }
        }
    }

    @Test("pipelines, models with versions and metrics, and the OpenAPI document are served")
    func listings() async throws {
        let service = try await makeService("listings")
        try await withRouter(service) { client in
            try await client.execute(uri: "/v1/pipelines", method: .get) { (response: TestResponse) async throws in
                let names = (try object(response)["pipelines"] as! [[String: Any]]).map { $0["name"] as! String }
                #expect(names == ["home", "search"])
            }
            try await client.execute(uri: "/v1/models", method: .get) { (response: TestResponse) async throws in
                let models = try object(response)["models"] as! [[String: Any]]
                let als = models.first { $0["name"] as? String == "als" }!
                #expect((als["active"] as! NSNumber).intValue == 1)
                let versions = als["versions"] as! [[String: Any]]
                #expect(versions.map { ($0["active"] as! Bool) } == [true, false])
                #expect(((versions[1]["metrics"] as! [String: Any])["demo"] as! NSNumber).intValue == 2)
                #expect((versions[0]["fingerprint"] as! String).count >= 12)
            }
            try await client.execute(uri: "/v1/openapi.json", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect((try object(response)["openapi"] as? String)?.hasPrefix("3.") == true)
            }
            try await client.execute(uri: "/", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("id=\"results\""))
            }
        }
    }

    @Test("bad input gets a 4xx naming the field and the problem", arguments: [
        // (method, uri, body, status, field)
        ("POST", "/v1/recommend", #"{"pipeline":"home","user":"u1""#, 400, "(body)"),                       // malformed JSON
        ("POST", "/v1/recommend", #"{"pipeline":"home","k":"ten"}"#, 400, "k"),                             // wrong type
        ("POST", "/v1/recommend", #"{"pipeline":"home","items":[1,2]}"#, 400, "items[0]"),                   // wrong element type
        ("POST", "/v1/recommend", #"{"pipeline":"home","colour":"red"}"#, 400, "colour"),                    // unknown field
        ("POST", "/v1/recommend", #"{"user":"u1"}"#, 400, "pipeline"),                                       // missing field
        ("POST", "/v1/recommend", #"{"pipeline":"nope","user":"u1"}"#, 404, "pipeline"),                     // unknown pipeline
        ("GET", "/v1/pipelines/nope/users/u1/recommendations", "", 404, "pipeline"),
        ("POST", "/v1/recommend", #"{"pipeline":"home","user":"u1","k":0}"#, 400, "k"),                      // k below 1
        ("POST", "/v1/recommend", #"{"pipeline":"home","user":"u1","k":101}"#, 400, "k"),                    // k over the maximum
        ("GET", "/v1/pipelines/home/users/u1/recommendations?k=abc", "", 400, "k"),
        ("POST", "/v1/recommend", #"{"pipeline":"home","k":1e300}"#, 400, "k"),
        ("POST", "/v1/recommend", "[1,2,3]", 400, "(body)"),                                                 // not an object
        ("POST", "/v1/recommend", "", 400, "(body)"),                                                        // empty body
        ("POST", "/v1/pipelines/home/sessions", #"{"items":[]}"#, 400, "items"),                             // empty session
        ("POST", "/v1/pipelines/home/sessions", #"{"events":[{"type":"buy"}]}"#, 400, "events[0].item"),
        ("POST", "/v1/pipelines/home/sessions", #"{"events":[{"item":"i1","weight":-2}]}"#, 400, "events[0].weight"),
        ("POST", "/v1/pipelines/search/search", #"{"text":"   "}"#, 400, "text"),
        ("POST", "/v1/feedback", #"{"item":"i1"}"#, 400, "user"),
        ("POST", "/v1/feedback", #"{"user":"u1","type":"like"}"#, 400, "item"),
        ("POST", "/v1/batch", #"{"requests":[]}"#, 400, "requests"),
        ("POST", "/v1/batch", #"{"requests":[{"pipeline":"home","k":"x"}]}"#, 400, "requests[0].k"),
        ("POST", "/v1/explain", #"{"model":"als"}"#, 400, "item"),
        ("GET", "/v1/nothing-here", "", 404, nil),
    ] as [(String, String, String, Int, String?)])
    func badInput(method: String, uri: String, body: String, status: Int, field: String?) async throws {
        let service = try await sharedService()
        try await withRouter(service) { client in
            try await client.execute(uri: uri, method: method == "GET" ? .get : .post, headers: jsonHeaders, body: method == "GET" ? nil : jsonBody(body)) { (response: TestResponse) async throws in
                #expect(Int(response.status.code) == status, "\(uri) \(body): \(String(buffer: response.body))")
                let (errorField, problem) = try failure(response)
                #expect(errorField == field, "\(problem)")
                #expect(!problem.isEmpty)
            }
        }
    }

    @Test("k is bounded by the catalog as well as the configured maximum")
    func kBoundedByCatalog() async throws {
        let service = try await makeService("kcatalog") { $0.maximumK = 100_000 }
        try await withRouter(service) { client in
            try await client.execute(uri: "/v1/pipelines/home/users/u1/recommendations?k=401", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
                let (field, problem) = try failure(response)
                #expect(field == "k" && problem.contains("400"), "\(problem)")
            }
        }
    }

    @Test("oversized bodies, too many session items and invalid UTF-8 are refused")
    func limits() async throws {
        let service = try await makeService("limits") { $0.maximumBodyBytes = 4096; $0.maximumSessionItems = 10 }
        try await withRouter(service) { client in
            let big = #"{"pipeline":"home","text":""# + String(repeating: "a", count: 5000) + #""}"#
            try await client.execute(uri: "/v1/recommend", method: .post, headers: jsonHeaders, body: jsonBody(big)) { (response: TestResponse) async throws in
                #expect(response.status == .contentTooLarge)
                #expect(try failure(response).field == "(body)")
            }
            let many = #"{"items":["# + (0 ..< 11).map { "\"i\($0)\"" }.joined(separator: ",") + "]}"
            try await client.execute(uri: "/v1/pipelines/home/sessions", method: .post, headers: jsonHeaders, body: jsonBody(many)) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
                #expect(try failure(response).field == "items")
            }
            var invalid = ByteBuffer(string: #"{"pipeline":"home","user":""#)
            invalid.writeBytes([0xC3, 0x28, 0xFF])
            invalid.writeString(#""}"#)
            try await client.execute(uri: "/v1/recommend", method: .post, headers: jsonHeaders, body: invalid) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
                let (field, problem) = try failure(response)
                #expect(field == "(body)" && problem.contains("UTF-8"), "\(problem)")
            }
        }
    }

    @Test("model management needs the bearer token: 401 without it, 403 with a wrong one; activation and rollback change the served version")
    func administration() async throws {
        let service = try await makeService("admin")
        try await withRouter(service) { client in
            let body = jsonBody(#"{"version":2}"#)
            try await client.execute(uri: "/v1/models/als/activate", method: .post, headers: jsonHeaders, body: body) { (response: TestResponse) async throws in
                #expect(response.status == .unauthorized)
                #expect(try failure(response).field == "Authorization")
            }
            var wrong = jsonHeaders
            wrong[.authorization] = "Bearer not-the-token"
            try await client.execute(uri: "/v1/models/als/activate", method: .post, headers: wrong, body: body) { (response: TestResponse) async throws in
                #expect(response.status == .forbidden)
                #expect(!String(buffer: response.body).contains("s3cret"))
            }
            var right = jsonHeaders
            right[.authorization] = "Bearer s3cret-token"
            try await client.execute(uri: "/v1/models/als/activate", method: .post, headers: right, body: body) { (response: TestResponse) async throws in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
            }
            try await client.execute(uri: "/v1/pipelines/home/users/u1/recommendations", method: .get) { (response: TestResponse) async throws in
                #expect((try object(response)["models"] as! [String: Int])["als"] == 2)
            }
            try await client.execute(uri: "/v1/models/als/activate", method: .post, headers: right, body: jsonBody(#"{"version":9}"#)) { (response: TestResponse) async throws in
                #expect(response.status == .notFound)
                #expect(try failure(response).field == "version")
            }
            try await client.execute(uri: "/v1/models/als/rollback", method: .post, headers: right) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/pipelines/home/users/u1/recommendations", method: .get) { (response: TestResponse) async throws in
                #expect((try object(response)["models"] as! [String: Int])["als"] == 1)
            }
            try await client.execute(uri: "/v1/models/als/rollback", method: .post, headers: right) { (response: TestResponse) async throws in
                #expect(response.status == .conflict)
            }
        }
    }

    @Test("a model trained from an uploaded CSV, and an uploaded model file, become new versions")
    func trainAndUpload() async throws {
        let service = try await makeService("train")
        let headers: HTTPFields = [.authorization: "Bearer s3cret-token", .contentType: "text/csv"]
        try await withRouter(service) { client in
            var csv = "user,item\n"
            for user in 0 ..< 50 { for item in 0 ..< 6 { csv += "u\(user),i\((user % 4) * 10 + item)\n" } }
            try await client.execute(uri: "/v1/models/fresh/train?kind=als&factors=8&iterations=3&activate=true", method: .post, headers: headers, body: jsonBody(csv)) { (response: TestResponse) async throws in
                #expect(response.status == .created, "\(String(buffer: response.body))")
                #expect((try object(response)["version"] as! NSNumber).intValue == 1)
            }
            try await client.execute(uri: "/v1/models/fresh/train", method: .post, headers: headers, body: jsonBody("who,what\na,b\n")) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
            }
            // The stored v2 of 'als' uploaded as a new version of 'copy'.
            let file = try Data(contentsOf: URL(fileURLWithPath: service.engine!.store!.versions(of: "als")[1].path))
            try await client.execute(uri: "/v1/models/copy/versions?activate=true&fingerprint=abc", method: .post, headers: headers, body: ByteBuffer(bytes: file)) { (response: TestResponse) async throws in
                #expect(response.status == .created, "\(String(buffer: response.body))")
            }
            try await client.execute(uri: "/v1/models/copy/versions", method: .post, headers: headers, body: ByteBuffer(bytes: file.prefix(200))) { (response: TestResponse) async throws in
                #expect(response.status == .unprocessableContent)
            }
            try await client.execute(uri: "/v1/models", method: .get) { (response: TestResponse) async throws in
                let names = (try object(response)["models"] as! [[String: Any]]).map { $0["name"] as! String }
                #expect(Set(names).isSuperset(of: ["fresh", "copy"]))
            }
        }
    }
}

/// One loaded service shared by tests that only read.
private let shared = Task { try await makeService("shared") }
func sharedService() async throws -> RecommenderService { try await shared.value }
