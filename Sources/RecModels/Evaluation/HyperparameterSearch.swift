import RecKernels
import Synchronization
internal import RealModule

/// Where one hyper-parameter is drawn from.
public enum ParameterRange: Sendable, Equatable {
    /// Uniform on the interval.
    case uniform(ClosedRange<Double>)
    /// Log-uniform on the interval (bounds > 0): as likely in [1, 10] as in [100, 1000].
    case logUniform(ClosedRange<Double>)
    /// A whole number, log-uniform on the interval (bounds ≥ 1).
    case integerLog(ClosedRange<Int>)
    /// One of the listed values, each equally likely.
    case choice([Double])

    func draw(using generator: inout SeededGenerator) -> Double {
        switch self {
        case let .uniform(range): return Double.random(in: range, using: &generator)
        case let .logUniform(range):
            return Double.exp(Double.random(in: Double.log(range.lowerBound) ... Double.log(range.upperBound), using: &generator))
        case let .integerLog(range):
            let value = Double.exp(Double.random(in: Double.log(Double(range.lowerBound)) ... Double.log(Double(range.upperBound) + 0.999),
                                                 using: &generator))
            return Double(min(range.upperBound, max(range.lowerBound, Int(value))))
        case let .choice(values): return values[Int.random(in: 0 ..< values.count, using: &generator)]
        }
    }

    var isValid: Bool {
        switch self {
        case let .uniform(range): range.lowerBound.isFinite && range.upperBound.isFinite
        case let .logUniform(range): range.lowerBound > 0 && range.upperBound.isFinite
        case let .integerLog(range): range.lowerBound >= 1
        case let .choice(values): !values.isEmpty && values.allSatisfy(\.isFinite)
        }
    }
}

/// One evaluated setting.
public struct SearchTrial: Sendable, Equatable {
    /// The trial's number, from 1, in the order settings were drawn.
    public var number: Int
    /// Hyper-parameter name → value.
    public var parameters: [String: Double]
    /// The objective on the validation data (NaN when training failed).
    public var score: Double
    /// Seconds the trial took (training and validation).
    public var seconds: Double
}

/// Random search (Bergstra & Bengio 2012) over a hyper-parameter space, several trials at a time.
///
/// Settings are drawn from a seeded generator up front, so the same seed tries the same
/// settings whatever the worker count; trials run on `workers` threads, each taking the next
/// setting as it frees up, and no new trial starts once `timeBudget` seconds have passed. The
/// objective is the caller's (train on a fit part, score on a validation part carved from the
/// training data — never the test split).
public enum HyperparameterSearch {
    /// Runs up to `trials` settings drawn from `space` and returns the best (and every finished
    /// trial, in number order).
    ///
    /// - Parameters:
    ///   - higherIsBetter: true for ranking metrics (NDCG), false for errors (RMSE).
    ///   - progress: called after each trial with it and the best so far (serialized).
    /// - Throws: ``ModelError/invalidParameter(_:)`` for an empty or invalid space, trials < 1,
    ///   workers < 1, or when every trial failed (naming the first failure).
    /// - Complexity: `trials` objective calls.
    public static func randomSearch(space: [String: ParameterRange], trials: Int, timeBudget: Double? = nil, seed: UInt64 = 1,
                                    workers: Int = 2, higherIsBetter: Bool = true,
                                    progress: (@Sendable (_ trial: SearchTrial, _ best: SearchTrial) -> Void)? = nil,
                                    objective: @Sendable ([String: Double]) throws -> Double) throws -> (best: SearchTrial, trials: [SearchTrial]) {
        guard trials >= 1, workers >= 1 else { throw ModelError.invalidParameter("a search needs trials ≥ 1 and workers ≥ 1") }
        if let bad = space.first(where: { !$0.value.isValid }) {
            throw ModelError.invalidParameter("parameter '\(bad.key)' has an invalid range \(bad.value)")
        }
        var generator = SeededGenerator(seed: seed)
        let names = space.keys.sorted()
        let settings: [[String: Double]] = (0 ..< trials).map { _ in
            Dictionary(uniqueKeysWithValues: names.map { ($0, space[$0]!.draw(using: &generator)) })
        }
        struct State {
            var finished: [SearchTrial] = []
            var best: SearchTrial?
            var firstError: (any Error)?
        }
        let state = Mutex(State())
        let clock = ContinuousClock(), start = clock.now
        Parallel.forEach(trials, threads: workers) { n in
            if let timeBudget, seconds(clock.now - start) >= timeBudget { return }
            let trialStart = clock.now
            var score = Double.nan
            var failure: (any Error)?
            do { score = try objective(settings[n]) } catch { failure = error }
            let trial = SearchTrial(number: n + 1, parameters: settings[n], score: score, seconds: seconds(clock.now - trialStart))
            state.withLock { state in
                state.finished.append(trial)
                if let failure, state.firstError == nil { state.firstError = failure }
                if score.isFinite, state.best.map({ higherIsBetter ? score > $0.score : score < $0.score }) ?? true { state.best = trial }
                if let best = state.best { progress?(trial, best) }
            }
        }
        return try state.withLock { state in
            guard let best = state.best else {
                throw ModelError.invalidParameter("every trial failed\(state.firstError.map { ": \($0)" } ?? "")")
            }
            return (best, state.finished.sorted { $0.number < $1.number })
        }
    }

    /// A validation split carved from `training` alone: `fraction` of each user's entries held
    /// out (seeded), the rest to fit on. The test split is never touched.
    public static func validationSplit(_ training: Interactions, fraction: Double = 0.2, seed: UInt64 = 7) throws -> Split {
        try training.randomHoldout(testFraction: fraction, seed: seed)
    }
}
