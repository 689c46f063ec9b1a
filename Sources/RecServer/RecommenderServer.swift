import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import RecEngine
import ServiceLifecycle

/// The HTTP server: Hummingbird 2 under swift-service-lifecycle.
///
/// On SIGTERM or SIGINT the server stops accepting connections, lets the requests in flight
/// finish, and ``run(engine:onListening:)`` returns (the process then exits 0).
public struct RecommenderServer: Sendable {
    /// The routes' state.
    public let service: RecommenderService

    /// A server for `service`.
    public init(service: RecommenderService) { self.service = service }

    /// Listens, then loads the engine with `engine` in the background (readiness turns 200 when
    /// it is loaded), and serves until a shutdown signal.
    ///
    /// - Parameter onListening: called with the bound port once the server accepts connections.
    public func run(engine: @escaping @Sendable () throws -> Engine, onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        try await run(onListening: onListening) { service in await service.load(engine) }
    }

    /// Listens, then loads the engine over the model store at `store` (with the configured
    /// ``ServerConfiguration/engine`` options) in the background, and serves until a shutdown signal.
    public func run(store: String, settings: String?, onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        try await run(onListening: onListening) { service in await service.load(store: store, settings: settings) }
    }

    private func run(onListening: @escaping @Sendable (Int) -> Void, load: @escaping @Sendable (RecommenderService) async -> Void) async throws {
        let service = self.service
        let configuration = service.configuration
        let app = application { channel in
            onListening(channel.localAddress?.port ?? configuration.port)
            Task { await load(service) }
        }
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: service.logger))
        try await group.run()
    }

    /// The Hummingbird application serving ``service`` on the configured address: HTTP/1, each
    /// connection's handlers on its event loop unless configured otherwise
    /// (``ServerConfiguration/handlersOnConnectionEventLoop``).
    func application(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> Application<RouterResponder<BasicRequestContext>> {
        let configuration = service.configuration
        let executors = service.eventLoopExecutors
        let onEventLoop = configuration.handlersOnConnectionEventLoop
        // Each request's logger gets a request id: stored, rendered only if something is logged.
        var logger = service.logger
        logger.handler = MetadataAtLogTime(logger.handler)
        return Application(
            router: RecommenderRoutes.router(service),
            server: HTTPServerBuilder { responder in
                let http = HTTP1Channel(responder: responder)
                return onEventLoop ? ConnectionOnEventLoop(base: http, executors: executors) : http
            },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "recommender"),
            onServerRunning: onServerRunning,
            logger: logger)
    }
}
