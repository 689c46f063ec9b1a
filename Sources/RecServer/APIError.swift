import FoundationEssentials
import Hummingbird
import NIOCore
import RecEngine

/// A client-visible failure: an HTTP status and a JSON body naming the field at fault and the
/// problem, `{"error": {"status": 400, "field": "k", "problem": "must be at most 100, got 500"}}`.
///
/// Every error a route throws becomes one of these (``JSONErrorMiddleware``), so a client never
/// sees an empty or HTML error body.
public struct APIError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status (4xx for the client's mistakes, 503 while not ready or overloaded).
    public let status: HTTPResponse.Status
    /// The request field at fault (`k`, `items[3]`, `(body)`, `Authorization`), if one is.
    public let field: String?
    /// What is wrong, in words.
    public let problem: String
    /// Seconds after which a client may retry (sent as `Retry-After` with 503 when overloaded).
    public let retryAfterSeconds: Int?

    /// An error with `status` about `field`.
    public init(_ status: HTTPResponse.Status, field: String? = nil, _ problem: String, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.field = field
        self.problem = problem
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// A 400 about `field`.
    static func badRequest(_ field: String?, _ problem: String) -> APIError { APIError(.badRequest, field: field, problem) }

    public var description: String { "\(status.code) \(field.map { "\($0): " } ?? "")\(problem)" }

    /// The JSON body.
    var body: [UInt8] {
        var object: [String: JSONValue] = ["status": .number(Double(status.code)), "problem": .string(problem)]
        if let field { object["field"] = .string(field) }
        return JSONValue.object(["error": .object(object)]).encoded()
    }

    /// The response carrying ``body``.
    var response: Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Turns every error thrown below it into an ``APIError`` JSON response: Hummingbird's own
/// (`404` for an unknown route, `413` for a body over the limit) keep their status; anything
/// else is a 500 naming the error (it would be a bug: every client mistake is mapped to a 4xx
/// where it is detected).
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            let problem: String
            switch error.status {
            case .notFound: problem = "no route \(request.method.rawValue) \(request.uri.path)"
            case .contentTooLarge: problem = "the body is larger than the limit"
            default: problem = error.body ?? error.status.reasonPhrase
            }
            return APIError(error.status, field: error.status == .contentTooLarge ? "(body)" : nil, problem).response
        } catch is NIOTooManyBytesError {
            return APIError(.contentTooLarge, field: "(body)", "the body is larger than the limit").response
        } catch {
            context.logger.error("internal error on \(request.method.rawValue) \(request.uri.path): \(error)")
            return APIError(.internalServerError, "internal error: \(error)").response
        }
    }
}
