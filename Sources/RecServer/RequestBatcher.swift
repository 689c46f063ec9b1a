import RecEngine
import Synchronization

/// Gathers the requests that arrive while the engine is busy into one engine batch
/// (``Engine/recommend(batch:)``), so that under load a factor model scores many users with one
/// GEMM instead of one GEMV each, and the hops between the server's tasks and the engine's
/// threads are paid once per batch instead of once per request.
///
/// At most ``maximumRunning`` batches run at once; a request that arrives then waits in a
/// bounded list and goes into the next batch (at most ``maximumBatch`` requests, oldest first).
/// A lone request on an idle server is a batch of one, started at once — no timer, no added
/// latency. When ``limit`` requests already wait, a new one is refused at once with
/// ``EngineError/overloaded(queued:limit:)`` (503 with `Retry-After`).
///
/// Each answer equals the one ``Engine/recommend(_:pipeline:)`` gives alone (the engine's batch
/// guarantee; scores to float rounding); one request's failure fails only its own answer.
final class RequestBatcher: Sendable {
    private struct Waiting {
        let request: PipelineRequest
        let continuation: CheckedContinuation<RecommendationResponse, any Error>
    }
    private struct State {
        var waiting: [Waiting] = []
        var running = 0
    }
    private let state = Mutex(State())
    /// Batches running at once (each may use every core for its GEMMs and fold-ins).
    let maximumRunning: Int
    /// Requests in one batch at most.
    let maximumBatch: Int
    /// Requests that may wait for the next batch.
    let limit: Int

    init(maximumRunning: Int = 1, maximumBatch: Int = 64, limit: Int) {
        self.maximumRunning = max(1, maximumRunning)
        self.maximumBatch = max(1, maximumBatch)
        self.limit = max(1, limit)
    }

    /// Requests waiting for the next batch now.
    var waiting: Int { state.withLock { $0.waiting.count } }

    /// Answers `request` through `engine` in the next batch.
    /// - Throws: ``EngineError/overloaded(queued:limit:)``, and the request's own failure.
    func recommend(_ request: PipelineRequest, engine: Engine) async throws -> RecommendationResponse {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RecommendationResponse, any Error>) in
            enum Admission { case start([Waiting]), wait, refused(Int) }
            let admission: Admission = state.withLock { state in
                if state.running < maximumRunning {
                    state.running += 1
                    return .start([Waiting(request: request, continuation: continuation)])
                }
                guard state.waiting.count < limit else { return .refused(state.waiting.count) }
                state.waiting.append(Waiting(request: request, continuation: continuation))
                return .wait
            }
            switch admission {
            case let .start(batch): run(batch, engine: engine)
            case .wait: break
            case let .refused(queued): continuation.resume(throwing: EngineError.overloaded(queued: queued, limit: limit))
            }
        }
    }

    /// Runs `batch`, then whatever gathered meanwhile, until nothing waits.
    private func run(_ batch: [Waiting], engine: Engine) {
        Task {
            var batch = batch
            while !batch.isEmpty {
                let results: [Result<RecommendationResponse, any Error>]
                do { results = try await engine.recommend(batch: batch.map(\.request)) } catch {
                    results = batch.map { _ in .failure(error) }
                }
                for (waiting, result) in zip(batch, results) { waiting.continuation.resume(with: result) }
                batch = state.withLock { state in
                    guard !state.waiting.isEmpty else {
                        state.running -= 1
                        return []
                    }
                    let taken = Array(state.waiting.prefix(maximumBatch))
                    state.waiting.removeFirst(taken.count)
                    return taken
                }
            }
        }
    }
}
