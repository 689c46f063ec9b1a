import Foundation
import Hummingbird
import HummingbirdTesting
import RecEngine
@testable import RecServer
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A fresh demo store in its own temporary directory (tests that activate versions must not
/// share one), with its settings file.
func makeStore(_ tag: String, items: Int = 400, users: Int = 200) throws -> (directory: String, settings: String) {
    let directory = "/tmp/recserver-tests-\(getpid())-\(tag)-\(UInt32.random(in: 0 ... .max))"
    let settings = try DemoStore.create(at: directory, items: items, users: users)
    return (directory, settings)
}

/// A service over a fresh demo store, loaded.
func makeService(_ tag: String, configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> RecommenderService {
    let (directory, settings) = try makeStore(tag)
    var configuration = ServerConfiguration()
    configuration.adminToken = "s3cret-token"
    configure(&configuration)
    let service = RecommenderService(configuration: configuration)
    await service.load(store: directory, settings: settings)
    #expect(service.engine != nil, "the engine did not load: \(service.loadError ?? "")")
    return service
}

/// Runs `body` against the router of `service` (Hummingbird's in-process test client).
func withRouter(_ service: RecommenderService, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
    let app = Application(router: RecommenderRoutes.router(service))
    try await app.test(.router) { client in try await body(client) }
}

/// The body of a response as JSON.
func object(_ response: TestResponse) throws -> [String: Any] {
    let value = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))
    guard let object = value as? [String: Any] else { throw TestFailure("not a JSON object: \(String(buffer: response.body))") }
    return object
}

/// The error object of an error response: `(field, problem)`.
func failure(_ response: TestResponse) throws -> (field: String?, problem: String) {
    let body = try object(response)
    guard let error = body["error"] as? [String: Any], let problem = error["problem"] as? String else {
        throw TestFailure("not a JSON error: \(String(buffer: response.body))")
    }
    #expect((error["status"] as? NSNumber)?.intValue == Int(response.status.code))
    return (error["field"] as? String, problem)
}

/// The ids of a recommendations response, best first.
func items(_ response: TestResponse) throws -> [String] {
    try (object(response)["items"] as? [[String: Any]] ?? []).compactMap { $0["item"] as? String }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func jsonBody(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

let jsonHeaders: HTTPFields = [.contentType: "application/json"]

