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
    /// The training budget (iterations) the trial ran with, in successive halving; nil in random search.
    public var budget: Int? = nil
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

    /// Successive halving (Jamieson & Talwalkar 2016; the inner loop of Hyperband, Li et al.
    /// 2017): `configurations` settings drawn from `space` are trained with `minimumBudget`
    /// iterations; the best 1/`reduction` of them (at least one) go on with `reduction` times the
    /// budget, and so on until one setting is left or the budget would pass `maximumBudget`
    /// (the last rung runs at most `maximumBudget`). Each rung's trials run on `workers` threads;
    /// no rung starts once `timeBudget` seconds have passed. Settings are drawn as
    /// ``randomSearch(space:trials:timeBudget:seed:workers:higherIsBetter:progress:objective:)``
    /// draws them, so the same seed starts from the same settings.
    ///
    /// - Parameters:
    ///   - objective: trains a setting with the given budget (iterations) and returns its
    ///     validation score.
    /// - Returns: the best trial of the last rung that ran (the one trained longest), and every
    ///   finished trial, rung by rung, each with its ``SearchTrial/budget``.
    /// - Throws: ``ModelError/invalidParameter(_:)`` for an empty or invalid space,
    ///   configurations < 1, minimumBudget < 1, maximumBudget < minimumBudget, reduction < 2,
    ///   workers < 1, or when every trial of a rung failed.
    /// - Complexity: about configurations × minimumBudget × log_reduction(configurations) iterations
    ///   of training in all: each rung costs about as much as the first.
    public static func successiveHalving(space: [String: ParameterRange], configurations: Int, minimumBudget: Int, maximumBudget: Int,
                                         reduction: Int = 3, timeBudget: Double? = nil, seed: UInt64 = 1, workers: Int = 2,
                                         higherIsBetter: Bool = true,
                                         progress: (@Sendable (_ trial: SearchTrial, _ best: SearchTrial) -> Void)? = nil,
                                         objective: @Sendable ([String: Double], _ budget: Int) throws -> Double) throws
        -> (best: SearchTrial, trials: [SearchTrial]) {
        guard configurations >= 1, minimumBudget >= 1, maximumBudget >= minimumBudget, reduction >= 2, workers >= 1 else {
            throw ModelError.invalidParameter("successive halving needs configurations ≥ 1, 1 ≤ minimumBudget ≤ maximumBudget, reduction ≥ 2 and workers ≥ 1 (got \(configurations), \(minimumBudget), \(maximumBudget), \(reduction), \(workers))")
        }
        if let bad = space.first(where: { !$0.value.isValid }) {
            throw ModelError.invalidParameter("parameter '\(bad.key)' has an invalid range \(bad.value)")
        }
        var generator = SeededGenerator(seed: seed)
        let names = space.keys.sorted()
        // (setting number, setting) still in the race.
        var alive: [(Int, [String: Double])] = (0 ..< configurations).map { n in
            (n + 1, Dictionary(uniqueKeysWithValues: names.map { ($0, space[$0]!.draw(using: &generator)) }))
        }
        let clock = ContinuousClock(), start = clock.now
        var all: [SearchTrial] = []
        let overall = Mutex<SearchTrial?>(nil)
        var budget = minimumBudget
        var lastRung: [SearchTrial] = []
        while true {
            if let timeBudget, !lastRung.isEmpty, seconds(clock.now - start) >= timeBudget { break }
            let rung = Mutex<[SearchTrial]>([])
            let firstError = Mutex<String?>(nil)
            let entrants = alive, rungBudget = budget
            Parallel.forEach(entrants.count, threads: workers) { n in
                let trialStart = clock.now
                var score = Double.nan
                do { score = try objective(entrants[n].1, rungBudget) } catch {
                    firstError.withLock { if $0 == nil { $0 = "\(error)" } }
                }
                let trial = SearchTrial(number: entrants[n].0, parameters: entrants[n].1, score: score,
                                        seconds: seconds(clock.now - trialStart), budget: rungBudget)
                rung.withLock { $0.append(trial) }
                overall.withLock { best in
                    // The best so far is judged within the longest budget run so far.
                    if score.isFinite, best.map({ rungBudget > $0.budget! || (rungBudget == $0.budget! && (higherIsBetter ? score > $0.score : score < $0.score)) }) ?? true {
                        best = trial
                    }
                    if let best { progress?(trial, best) }
                }
            }
            // Ranked best first; failed trials last; ties by setting number.
            let ranked = rung.withLock { $0 }.sorted { a, b in
                if a.score.isFinite != b.score.isFinite { return a.score.isFinite }
                if a.score != b.score, a.score.isFinite { return higherIsBetter ? a.score > b.score : a.score < b.score }
                return a.number < b.number
            }
            guard ranked.first?.score.isFinite == true else {
                throw ModelError.invalidParameter("every trial of the rung at budget \(rungBudget) failed\(firstError.withLock { $0 }.map { ": \($0)" } ?? "")")
            }
            all += ranked.sorted { $0.number < $1.number }
            lastRung = ranked
            let survivors = max(1, ranked.count / reduction)
            if ranked.count == 1 || budget >= maximumBudget { break }
            alive = ranked.prefix(survivors).filter(\.score.isFinite).map { ($0.number, $0.parameters) }
            budget = min(maximumBudget, budget * reduction)
        }
        return (lastRung[0], all)
    }

    /// A validation split carved from `training` alone: `fraction` of each user's entries held
    /// out (seeded), the rest to fit on. The test split is never touched.
    public static func validationSplit(_ training: Interactions, fraction: Double = 0.2, seed: UInt64 = 7) throws -> Split {
        try training.randomHoldout(testFraction: fraction, seed: seed)
    }
}
