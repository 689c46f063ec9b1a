import ArgumentParser
import Foundation
import RecKernels
import RecModels

/// The hyper-parameter file `tune` writes and `train`, `evaluate` and `models add` read with
/// `--params FILE`: `{"model": "ease", "parameters": {"regularization": 512.3}, ...}`.
struct TunedParameters: Codable {
    /// The JSON names `--params` understands (the command-line options in camelCase).
    static let names = ["alpha", "beta", "blendWeight", "burnIn", "dropout", "factors", "frequencyScaling", "itemNormalization", "iterations", "learningRate",
                        "neighbours", "precision", "regularization", "relaxation", "unobservedWeight", "userNormalization"]

    /// The `--model` the settings are for.
    var model: String
    /// Hyper-parameter name → value.
    var parameters: [String: Double]
    /// The validation metric they reached, and its name.
    var metric: String?
    var validation: Double?
    /// Trials run.
    var trials: Int?

    static func read(_ path: String) throws -> TunedParameters {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ValidationError("cannot read --params \(path): \(error.localizedDescription)")
        }
        do { return try JSONDecoder().decode(TunedParameters.self, from: data) } catch {
            throw ValidationError("\(path) is not a parameters file ({\"model\": …, \"parameters\": {name: number}}): \(error)")
        }
    }

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // AtomicFile, not Foundation's `.atomic`: renaming over `-o /dev/null` replaces the device.
        try AtomicFile.write(Array(try encoder.encode(self)), to: path)
    }

    /// The default search space for `model`.
    static func space(for model: String) throws -> [String: ParameterRange] {
        switch model {
        case "ease":
            // DAN's exponents and RDLAE's bound are searched too; fix one (e.g. --relaxation 0) to keep it out.
            return ["regularization": .logUniform(1 ... 5000), "dropout": .choice([0, 0.1, 0.2, 0.33, 0.5]),
                    "itemNormalization": .uniform(0 ... 0.5), "userNormalization": .uniform(0 ... 1), "relaxation": .uniform(0 ... 0.5)]
        case "rp3beta": return ["alpha": .uniform(0.3 ... 1.5), "beta": .uniform(0 ... 1), "neighbours": .integerLog(20 ... 1000)]
        case "als", "als-cholesky":
            return ["factors": .choice([32, 64, 128]), "regularization": .logUniform(0.001 ... 50), "alpha": .logUniform(0.1 ... 50),
                    "unobservedWeight": .logUniform(0.01 ... 1), "frequencyScaling": .choice([0, 0.5, 1])]
        case "bpr": return ["factors": .choice([32, 64, 128]), "learningRate": .logUniform(0.001 ... 0.1), "regularization": .logUniform(0.0001 ... 0.1)]
        case "item-knn": return ["neighbours": .integerLog(5 ... 500)]
        case "als-explicit": return ["factors": .choice([8, 16, 32, 64]), "regularization": .logUniform(0.0001 ... 100)]
        case "biased-mf":
            return ["factors": .choice([50, 100, 200]), "learningRate": .logUniform(0.001 ... 0.02), "regularization": .logUniform(0.005 ... 0.5)]
        case "bpmf": return ["factors": .choice([8, 10, 16, 24, 32]), "precision": .logUniform(1 ... 4)]
        // The components are fixed by --blend-params; only their mix is searched.
        case "blend": return ["blendWeight": .uniform(0 ... 1)]
        default: throw ValidationError("there is nothing to tune for --model \(model)")
        }
    }

    /// Parses `name=uniform:LO:HI`, `name=log:LO:HI`, `name=int:LO:HI` or `name=choice:A,B,C`.
    static func parseRange(_ text: String) throws -> (String, ParameterRange) {
        let pair = text.split(separator: "=", maxSplits: 1).map(String.init)
        let parts = pair.count == 2 ? pair[1].split(separator: ":").map(String.init) : []
        func numbers(_ items: [String]) throws -> [Double] {
            try items.map { guard let value = Double($0), value.isFinite else { throw ValidationError("--space \(text): '\($0)' is not a number") }; return value }
        }
        guard pair.count == 2, names.contains(pair[0]), let kind = parts.first else {
            throw ValidationError("--space must be NAME=uniform:LO:HI, NAME=log:LO:HI, NAME=int:LO:HI or NAME=choice:A,B,… with NAME one of \(names.joined(separator: ", ")); got '\(text)'")
        }
        if kind == "choice", parts.count == 2 { return (pair[0], .choice(try numbers(parts[1].split(separator: ",").map(String.init)))) }
        guard parts.count == 3 else { throw ValidationError("--space \(text): expected \(kind):LO:HI") }
        let bounds = try numbers(Array(parts[1...]))
        guard bounds[0] <= bounds[1] else { throw ValidationError("--space \(text): LO must not exceed HI") }
        switch kind {
        case "uniform": return (pair[0], .uniform(bounds[0] ... bounds[1]))
        case "log":
            guard bounds[0] > 0 else { throw ValidationError("--space \(text): a log range needs LO > 0") }
            return (pair[0], .logUniform(bounds[0] ... bounds[1]))
        case "int":
            guard bounds[0] >= 1, let low = Int(exactly: bounds[0]), let high = Int(exactly: bounds[1]) else {
                throw ValidationError("--space \(text): an int range needs whole numbers ≥ 1")
            }
            return (pair[0], .integerLog(low ... high))
        default: throw ValidationError("--space \(text): unknown range kind '\(kind)'")
        }
    }
}

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search a model's hyper-parameters on a validation split carved from the training data; write the best as JSON.",
        discussion: """
            The data are split as `evaluate` splits them (same --split and --seed); only the training part is \
            used: --validation of each user's training entries is held out to score settings on. The test split \
            is never read. Random search: --trials settings (or as many as fit in --budget seconds), --workers at \
            a time, each trial training with --threads / --workers threads. Ranking models are scored by NDCG@K, \
            rating models by RMSE.
            Example:
              recommender tune --format csv --data ratings.csv --value-column rating --min-value 4 --binary \\
                  --model ease --trials 12 -o ease.json
              recommender evaluate ... --model ease --params ease.json
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var options: ModelOptions
    @Option(help: "The evaluation split whose training part is tuned on: holdout:FRACTION, last:N or kfold:K (first fold).")
    var split = "holdout:0.2"
    @Option(help: "Share of each user's training entries held out for validation.") var validation = 0.2
    @Option(help: "Validation splits carved (each with its own seed); a setting's score is the mean over them. More splits cost proportionally more but rank close settings more reliably.")
    var validationSplits = 1
    @Option(help: "random (random search) or halving (successive halving over the iteration budget).") var strategy = "random"
    @Option(help: "Settings to try (halving: settings in the first rung).") var trials = 20
    @Option(help: "halving: iterations of the first rung (default: the full budget / eta², at least 1). The full budget is --iterations, else the model's default.")
    var minIterations: Int?
    @Option(help: "halving: keep the best 1/eta of each rung, and give them eta times the iterations.") var eta = 3
    @Option(help: "Stop starting trials after this many seconds.") var budget: Double?
    @Option(help: "Trials run at once (each gets threads / workers threads).") var workers = 2
    @Option(name: .shortAndLong, help: "Cut-off for NDCG.") var k = 10
    @Option(parsing: .upToNextOption, help: "Override a range: NAME=log:LO:HI, NAME=uniform:LO:HI, NAME=int:LO:HI, NAME=choice:A,B.")
    var space: [String] = []
    @Option(name: .shortAndLong, help: "Where to write the best settings (JSON).") var output: String

    func run() throws {
        guard let part = try data.splits(split, seed: options.seed).first else { throw ValidationError("the split is empty") }
        guard validationSplits >= 1 else { throw ValidationError("--validation-splits must be ≥ 1, got \(validationSplits)") }
        // Carve f uses seed + 1000 + f: carve 0 is the single carve of earlier versions.
        let carves = try (0 ..< validationSplits).map { f in
            let carved = try HyperparameterSearch.validationSplit(part.train, fraction: validation, seed: options.seed &+ 1000 &+ UInt64(f))
            let catalog = try ModelCatalog(training: carved.train)
            // A blend's components do not change between trials: trained once per carve.
            let components = options.model == "blend" ? try options.trainBlendComponents(catalog, progress: nil) : nil
            return (catalog: catalog, validation: carved.test, components: components)
        }
        var ranges = try TunedParameters.space(for: options.model)
        for text in space { let (name, range) = try TunedParameters.parseRange(text); ranges[name] = range }
        // Options fixed on the command line (or in --params) are not searched.
        var fixedOptions = options
        if let params = options.params {
            fixedOptions.params = nil
            try fixedOptions.fill(from: try TunedParameters.read(params).parameters, overriding: false, source: params)
        }
        for name in fixedOptions.setNames { ranges[name] = nil }
        guard !ranges.isEmpty else { throw ValidationError("every parameter of --model \(options.model) is fixed: nothing to search") }
        fixedOptions.threads = max(1, options.threads / max(1, workers))
        let rating = options.isRatingModel, k = self.k
        let metricName = rating ? "RMSE" : "NDCG@\(k)"
        fputs("tuning \(options.model) on \(carves[0].catalog.history.nonzeroCount) entries, validating on \(carves[0].validation.count)"
              + (validationSplits > 1 ? " (mean over \(validationSplits) carved splits)" : "")
              + " (\(metricName)); searching \(ranges.keys.sorted().joined(separator: ", "))\n", standardError)
        let total = trials, trialBase = fixedOptions
        // A setting's validation score: the mean over the carved splits (each split's score is
        // printed too when there are several).
        let score: @Sendable (ModelOptions, [String: Double]) throws -> Double = { trialOptions, values in
            let scores = try carves.map { carve -> Double in
                let model = try carve.components.map { try trialOptions.blend($0.0, $0.1) } ?? trialOptions.trainResolved(carve.catalog, progress: nil)
                if rating, let factors = model as? FactorModel { return try Evaluation.rating(factors, test: carve.validation).rmse }
                return try Evaluation.ranking(model, test: carve.validation, k: k).ndcg
            }
            let mean = scores.reduce(0, +) / Double(scores.count)
            if scores.count > 1 {
                fputs("  validation splits \(describe(values)): \(scores.map { fixed($0, 6) }.joined(separator: " ")) mean \(fixed(mean, 6))\n", standardError)
            }
            return mean
        }
        if strategy == "halving" {
            guard let defaultIterations = Self.defaultIterations[options.model] else {
                throw ValidationError("--strategy halving needs a model trained in iterations (\(Self.defaultIterations.keys.sorted().joined(separator: ", "))); '\(options.model)' is not")
            }
            let maximum = fixedOptions.iterations ?? defaultIterations
            let minimum = minIterations ?? max(1, maximum / (eta * eta))
            guard eta >= 2, minimum >= 1, minimum <= maximum else {
                throw ValidationError("--strategy halving needs --eta ≥ 2 and 1 ≤ --min-iterations ≤ the full budget (\(maximum)); got eta \(eta), min-iterations \(minimum)")
            }
            ranges["iterations"] = nil
            guard !ranges.isEmpty else { throw ValidationError("every parameter of --model \(options.model) but iterations is fixed: nothing to search") }
            fputs("successive halving: \(trials) settings from \(minimum) iterations, keeping 1/\(eta) per rung, up to \(maximum)\n", standardError)
            let (best, finished) = try HyperparameterSearch.successiveHalving(
                space: ranges, configurations: trials, minimumBudget: minimum, maximumBudget: maximum, reduction: eta, timeBudget: budget,
                seed: options.seed, workers: workers, higherIsBetter: !rating,
                progress: { trial, best in
                    fputs("setting \(trial.number)/\(total) at \(trial.budget!) iterations  \(metricName) \(fixed(trial.score, 4))  \(describe(trial.parameters))  \(fixed(trial.seconds, 1)) s"
                          + "   best \(fixed(best.score, 4)) (setting \(best.number) at \(best.budget!))\n", standardError)
                },
                objective: { values, iterations in
                    var trialOptions = trialBase
                    try trialOptions.fill(from: values, overriding: true, source: "trial")
                    trialOptions.iterations = iterations
                    return try score(trialOptions, values)
                })
            var parameters = best.parameters
            for name in ["factors", "neighbours", "burnIn"] where parameters[name] != nil { parameters[name] = parameters[name]!.rounded() }
            for (name, value) in fixedOptions.setValues { parameters[name] = value }
            parameters["iterations"] = Double(best.budget!)
            try TunedParameters(model: options.model, parameters: parameters, metric: metricName, validation: best.score,
                                trials: finished.count).write(to: output)
            print("best \(metricName) \(fixed(best.score, 4)) at \(best.budget!) iterations after \(finished.count) trials (\(trials) settings): \(describe(parameters)) → \(output)")
            return
        }
        guard strategy == "random" else { throw ValidationError("--strategy must be random or halving, got '\(strategy)'") }
        let (best, finished) = try HyperparameterSearch.randomSearch(
            space: ranges, trials: trials, timeBudget: budget, seed: options.seed, workers: workers, higherIsBetter: !rating,
            progress: { trial, best in
                fputs("trial \(trial.number)/\(total)  \(metricName) \(fixed(trial.score, 4))  \(describe(trial.parameters))  \(fixed(trial.seconds, 1)) s"
                      + "   best \(fixed(best.score, 4)) (trial \(best.number))\n", standardError)
            },
            objective: { values in
                var trialOptions = trialBase
                try trialOptions.fill(from: values, overriding: true, source: "trial")
                return try score(trialOptions, values)
            })
        var parameters = best.parameters
        for name in ["factors", "iterations", "neighbours", "burnIn"] where parameters[name] != nil { parameters[name] = parameters[name]!.rounded() }
        for (name, value) in fixedOptions.setValues { parameters[name] = value }
        try TunedParameters(model: options.model, parameters: parameters, metric: metricName, validation: best.score,
                            trials: finished.count).write(to: output)
        print("best \(metricName) \(fixed(best.score, 4)) after \(finished.count) trials: \(describe(parameters)) → \(output)")
    }
}

extension Tune {
    /// The iterations each iterative model trains for by default: successive halving's full budget.
    static let defaultIterations = ["als": 15, "als-cholesky": 15, "als-explicit": 15, "bpr": 100, "biased-mf": 20, "bpmf": 100]
}

private func describe(_ parameters: [String: Double]) -> String {
    parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.rounded() == $0.value ? String(Int($0.value)) : String(format: "%.4g", $0.value))" }
        .joined(separator: " ")
}

extension ModelOptions {
    /// The hyper-parameters set on the command line, by JSON name.
    var setValues: [String: Double] {
        var values: [String: Double] = [:]
        if let factors { values["factors"] = Double(factors) }
        if let iterations { values["iterations"] = Double(iterations) }
        if let burnIn { values["burnIn"] = Double(burnIn) }
        if let precision { values["precision"] = Double(precision) }
        if let neighbours { values["neighbours"] = Double(neighbours) }
        if let regularization { values["regularization"] = Double(regularization) }
        if let alpha { values["alpha"] = Double(alpha) }
        if let learningRate { values["learningRate"] = Double(learningRate) }
        if let beta { values["beta"] = Double(beta) }
        if let unobservedWeight { values["unobservedWeight"] = Double(unobservedWeight) }
        if let frequencyScaling { values["frequencyScaling"] = Double(frequencyScaling) }
        if let dropout { values["dropout"] = Double(dropout) }
        if let itemNormalization { values["itemNormalization"] = Double(itemNormalization) }
        if let userNormalization { values["userNormalization"] = Double(userNormalization) }
        if let relaxation { values["relaxation"] = Double(relaxation) }
        if let blendWeight { values["blendWeight"] = Double(blendWeight) }
        return values
    }

    var setNames: [String] { Array(setValues.keys) }
}
