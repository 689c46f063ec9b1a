import ArgumentParser
import RecKernels
import RecModels
#if canImport(Glibc)
import Glibc
#endif

/// Where interactions come from and how to read them.
struct DataOptions: ParsableArguments {
    @Option(help: "Interaction file (all data; split with --split).") var data: String?
    @Option(help: "Ready-made training file (with --test), e.g. MovieLens u1.base.") var train: String?
    @Option(help: "Ready-made test file (with --train).") var test: String?
    @Option(help: "movielens100k (tab), movielens1m (::), csv or tsv.") var format = "csv"
    @Option(help: "User column, by header name or 0-based position (csv/tsv).") var userColumn = "user"
    @Option(help: "Item column (csv/tsv).") var itemColumn = "item"
    @Option(help: "Value column, e.g. a rating; omit for bare events (csv/tsv).") var valueColumn: String?
    @Option(help: "Timestamp column (csv/tsv).") var timeColumn: String?
    @Flag(help: "Skip malformed records (and count them) instead of stopping.") var skipMalformed = false
    @Option(help: "Keep only entries with a value at least this (e.g. 4: ratings ≥ 4 as positives).") var minValue: Float?
    @Flag(help: "Treat every kept entry as a bare event of strength 1.") var binary = false

    var interactionFormat: InteractionFormat {
        get throws {
            func column(_ text: String) -> InteractionFormat.Column { Int(text).map { .position($0) } ?? .name(text) }
            switch format {
            case "movielens100k": return .movieLens100K
            case "movielens1m": return .movieLens1M
            case "csv", "tsv":
                return InteractionFormat(delimiter: format == "csv" ? "," : "\t", hasHeader: true, user: column(userColumn),
                                         item: column(itemColumn), value: valueColumn.map(column), timestamp: timeColumn.map(column))
            default: throw ValidationError("--format must be movielens100k, movielens1m, csv or tsv, got '\(format)'")
            }
        }
    }

    func keep(_ log: Interactions) -> Interactions {
        var kept = minValue.map { minValue in log.subset((0 ..< log.count).filter { log.values[$0] >= minValue }) } ?? log
        if binary { kept.values = [Float](repeating: 1, count: kept.count) }
        return kept
    }

    /// The splits to evaluate on: one, or k folds.
    func splits(_ split: String, seed: UInt64) throws -> [Split] {
        let format = try interactionFormat
        if let train, let test {
            let pair = try Interactions.trainTest(train: train, test: test, format: format)
            return [Split(train: keep(pair.train), test: keep(pair.test))]
        }
        guard let data else { throw ValidationError("give --data, or --train and --test") }
        var log = Interactions()
        let report = try log.load(data, format: format, onMalformed: skipMalformed ? .skip : .fail)
        if report.skipped > 0, let first = report.firstSkipped {
            fputs("skipped \(report.skipped) malformed records (first: line \(first.line): \(first.reason))\n", standardError)
        }
        log = keep(log)
        let parts = split.split(separator: ":", omittingEmptySubsequences: false)
        let argument = parts.count == 2 ? String(parts[1]) : ""
        // N and K are whole numbers: parsed as integers, never converted from a double (1e30 or
        // nan would trap); the library checks their ranges.
        switch (parts.first, parts.count == 2) {
        case ("holdout", true):
            guard let fraction = Double(argument), fraction > 0, fraction < 1 else {
                throw ValidationError("--split holdout:FRACTION needs a fraction strictly between 0 and 1, got '\(argument)'")
            }
            return [try log.randomHoldout(testFraction: fraction, seed: seed)]
        case ("last", true):
            guard let n = Int(argument), n >= 1 else {
                throw ValidationError("--split last:N needs a whole number N ≥ 1, got '\(argument)'")
            }
            return [try log.leaveLastOut(n)]
        case ("kfold", true):
            guard let k = Int(argument), k >= 2 else {
                throw ValidationError("--split kfold:K needs a whole number K ≥ 2, got '\(argument)'")
            }
            return try log.kFold(k, seed: seed)
        default: throw ValidationError("--split must be holdout:FRACTION, last:N or kfold:K, got '\(split)'")
        }
    }
}

/// Which model to train, with its hyper-parameters.
struct ModelOptions: ParsableArguments {
    @Option(help: "als, als-cholesky, als-explicit, bpr, biased-mf, bpmf, item-knn, ease, rp3beta, popularity or blend.") var model = "als"
    @Option(help: "Latent factors.") var factors: Int?
    @Option(help: "Iterations (ALS, BPR), epochs (biased MF) or Gibbs sweeps (bpmf).") var iterations: Int?
    @Option(help: "bpmf: sweeps discarded before samples are kept (default 20).") var burnIn: Int?
    @Option(help: "bpmf: observation precision α, 1 / noise variance (default 2).") var precision: Float?
    @Option(help: "Regularization λ.") var regularization: Float?
    @Option(help: "ALS confidence scale α (c = 1 + α·r).") var alpha: Float?
    @Option(help: "SGD learning rate (BPR, biased MF).") var learningRate: Float?
    @Option(help: "Interaction weighting before implicit ALS or item-kNN: none, bm25, tfidf.") var weighting = "none"
    @Option(help: "Neighbours kept per item (item-knn: default 20; rp3beta: default 200).") var neighbours: Int?
    @Option(help: "RP3beta popularity penalty β (default 0.6); RP3beta's α is --alpha (default 1).") var beta: Float?
    @Option(help: "EASE dropout p (EDLAE, Steck 2020): item i's λ grows by p/(1 − p)·(XᵀX)ᵢᵢ; 0 = plain EASE.") var dropout: Float?
    @Option(help: "EASE item normalization α (DAN, Park et al. 2025): B → diag(c^α)·B·diag(c^−α), c = item degrees; 0 = none.")
    var itemNormalization: Float?
    @Option(help: "EASE user normalization β (DAN): user u enters XᵀX weighted by (its history length)^−β; 0 = none.")
    var userNormalization: Float?
    @Option(help: "EASE relaxed diagonal bound ξ (RDLAE, Moon et al. 2023): 0 = zero diagonal (EASE), 1 = unconstrained.")
    var relaxation: Float?
    @Option(help: "iALS unobserved weight α₀ (Rendle et al. 2022; 1 = Hu et al.).") var unobservedWeight: Float?
    @Option(help: "iALS frequency-scaled regularization exponent ν: λ·(n + α₀·N)^ν per row (0 = plain λ).") var frequencyScaling: Float?
    @Option(parsing: .upToNextOption, help: "blend: the two component models' settings files (as `tune -o` writes them); each names its --model.")
    var blendParams: [String] = []
    @Option(help: "blend: the second component's share w: score = (1 − w)·first + w·second, each min–max normalized over its top candidates.")
    var blendWeight: Float?
    @Option(help: "Worker threads.") var threads = FlatIndex.defaultThreads
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Hyper-parameters as JSON, e.g. written by `recommender tune`; options given on the command line win.")
    var params: String?

    var isRatingModel: Bool { model == "als-explicit" || model == "biased-mf" || model == "bpmf" }

    func train(_ catalog: ModelCatalog, progress: ProgressHandler?) throws -> any Recommender {
        guard let params else { return try trainResolved(catalog, progress: progress) }
        let file = try TunedParameters.read(params)
        guard file.model == model else {
            throw ValidationError("\(params) holds settings for '\(file.model)', but --model is '\(model)': pass --model \(file.model)")
        }
        var resolved = self
        resolved.params = nil
        try resolved.fill(from: file.parameters, overriding: false, source: params)
        return try resolved.trainResolved(catalog, progress: progress)
    }

    /// Sets the hyper-parameters named in `values` (the JSON names of ``TunedParameters``):
    /// all of them with `overriding`, else only those the command line left unset.
    mutating func fill(from values: [String: Double], overriding: Bool, source: String) throws {
        func whole(_ name: String, _ value: Double) throws -> Int {
            guard let n = Int(exactly: value.rounded()), n >= 1 else { throw ValidationError("\(source): '\(name)' must be a whole number ≥ 1, got \(value)") }
            return n
        }
        for (name, value) in values {
            guard value.isFinite else { throw ValidationError("\(source): '\(name)' is \(value), expected a finite number") }
            switch name {
            case "factors": if overriding || factors == nil { factors = try whole(name, value) }
            case "iterations": if overriding || iterations == nil { iterations = try whole(name, value) }
            case "burnIn": if overriding || burnIn == nil { burnIn = try whole(name, value) }
            case "precision": if overriding || precision == nil { precision = Float(value) }
            case "neighbours": if overriding || neighbours == nil { neighbours = try whole(name, value) }
            case "regularization": if overriding || regularization == nil { regularization = Float(value) }
            case "alpha": if overriding || alpha == nil { alpha = Float(value) }
            case "learningRate": if overriding || learningRate == nil { learningRate = Float(value) }
            case "beta": if overriding || beta == nil { beta = Float(value) }
            case "unobservedWeight": if overriding || unobservedWeight == nil { unobservedWeight = Float(value) }
            case "frequencyScaling": if overriding || frequencyScaling == nil { frequencyScaling = Float(value) }
            case "dropout": if overriding || dropout == nil { dropout = Float(value) }
            case "itemNormalization": if overriding || itemNormalization == nil { itemNormalization = Float(value) }
            case "userNormalization": if overriding || userNormalization == nil { userNormalization = Float(value) }
            case "relaxation": if overriding || relaxation == nil { relaxation = Float(value) }
            case "blendWeight": if overriding || blendWeight == nil { blendWeight = Float(value) }
            default:
                throw ValidationError("\(source): unknown parameter '\(name)' (known: \(TunedParameters.names.joined(separator: ", ")))")
            }
        }
    }

    func trainResolved(_ catalog: ModelCatalog, progress: ProgressHandler?) throws -> any Recommender {
        switch model {
        case "als", "als-cholesky":
            var als = ImplicitALS()
            if let factors { als.factors = factors }
            if let iterations { als.iterations = iterations }
            if let regularization { als.regularization = regularization }
            if let alpha { als.alpha = alpha }
            guard let weights = ImplicitALS.Weighting(rawValue: weighting) else { throw ValidationError("--weighting must be none, bm25 or tfidf") }
            als.weighting = weights
            if model == "als-cholesky" { als.solver = .cholesky }
            if let unobservedWeight { als.unobservedWeight = unobservedWeight }
            if let frequencyScaling { als.frequencyScaling = frequencyScaling }
            als.seed = seed
            als.threads = threads
            return try als.fit(catalog, progress: progress)
        case "als-explicit":
            var als = ExplicitALS()
            if let factors { als.factors = factors }
            if let iterations { als.iterations = iterations }
            if let regularization { als.regularization = regularization }
            als.seed = seed
            als.threads = threads
            return try als.fit(catalog, progress: progress)
        case "bpr":
            var bpr = BPR()
            if let factors { bpr.factors = factors }
            if let iterations { bpr.iterations = iterations }
            if let regularization { bpr.regularization = regularization }
            if let learningRate { bpr.learningRate = learningRate }
            bpr.seed = seed
            bpr.threads = threads
            return try bpr.fit(catalog, progress: progress)
        case "biased-mf":
            var mf = BiasedMF()
            if let factors { mf.factors = factors }
            if let iterations { mf.epochs = iterations }
            if let regularization { mf.regularization = regularization }
            if let learningRate { mf.learningRate = learningRate }
            mf.seed = seed
            return try mf.fit(catalog, progress: progress)
        case "bpmf":
            var mf = BayesianMF()
            if let factors { mf.factors = factors }
            if let iterations { mf.iterations = iterations }
            // Without --burn-in: 20 sweeps, or a fifth of a shorter run (successive halving's first rungs).
            mf.burnIn = burnIn ?? min(20, mf.iterations / 5)
            if let precision { mf.precision = precision }
            mf.seed = seed
            mf.threads = threads
            return try mf.fit(catalog, progress: progress)
        case "item-knn":
            guard let weights = ImplicitALS.Weighting(rawValue: weighting) else { throw ValidationError("--weighting must be none, bm25 or tfidf") }
            return try ItemKNNModel(catalog, neighbours: neighbours ?? 20, weighting: weights, threads: threads)
        case "ease":
            return try EASEModel(catalog, regularization: regularization ?? 500, dropout: dropout ?? 0, itemNormalization: itemNormalization ?? 0,
                                 userNormalization: userNormalization ?? 0, relaxation: relaxation ?? 0, threads: threads)
        case "rp3beta":
            return try RP3betaModel(catalog, alpha: alpha ?? 1, beta: beta ?? 0.6, neighbours: neighbours ?? 200, threads: threads)
        case "popularity":
            return try PopularityModel(catalog)
        case "blend":
            let (first, second) = try trainBlendComponents(catalog, progress: progress)
            return try blend(first, second)
        default:
            throw ValidationError("--model must be als, als-cholesky, als-explicit, bpr, biased-mf, bpmf, item-knn, ease, rp3beta, popularity or blend, got '\(model)'")
        }
    }

    /// `--model blend`: the two components, each trained from its `--blend-params` file with this
    /// command's --seed and --threads (their own hyper-parameters come only from the file).
    func trainBlendComponents(_ catalog: ModelCatalog, progress: ProgressHandler?) throws -> (any Recommender, any Recommender) {
        guard blendParams.count == 2 else {
            throw ValidationError("--model blend needs --blend-params FIRST.json SECOND.json (two settings files), got \(blendParams.count)")
        }
        let components = try blendParams.map { path -> any Recommender in
            let file = try TunedParameters.read(path)
            guard file.model != "blend" else { throw ValidationError("\(path): a blend component must be a single model, not a blend") }
            // Parsed from no arguments: every option at its default, none inherited from the blend's.
            var component = try ModelOptions.parse(["--model", file.model])
            component.seed = seed
            component.threads = threads
            try component.fill(from: file.parameters, overriding: true, source: path)
            return try component.trainResolved(catalog, progress: progress)
        }
        return (components[0], components[1])
    }

    /// The blend of `first` and `second` at --blend-weight (0.5 when unset).
    func blend(_ first: any Recommender, _ second: any Recommender) throws -> BlendModel {
        try BlendModel(first: first, second: second, weight: blendWeight ?? 0.5)
    }
}

/// Prints one line per training iteration to standard error: value, elapsed, ETA.
func progressPrinter(label: String) -> ProgressHandler {
    { p in
        let value = p.value.isNaN ? "" : "  \(p.valueName) \(fixed(p.value, 5))"
        fputs("\(label) iteration \(p.iteration)/\(p.iterations)\(value)  elapsed \(fixed(p.elapsed, 1)) s  ETA \(fixed(p.remaining, 1)) s\n", standardError)
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model on a data set's training split and print its metrics on the test split.",
        discussion: """
            Examples:
              recommender evaluate --format movielens100k --train u1.base --test u1.test --model biased-mf
              recommender evaluate --format movielens1m --data ratings.dat --min-value 4 --split holdout:0.2 --model als
            Ranking metrics (P, R, MAP, NDCG, HR, coverage at K; AUC with --auc) exclude each user's \
            training items; rating models also report RMSE and MAE.
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var options: ModelOptions
    @Option(help: "holdout:FRACTION (per user), last:N (by time) or kfold:K.") var split = "holdout:0.2"
    @Option(name: .shortAndLong, help: "Cut-off for ranking metrics.") var k = 10
    @Flag(help: "Also compute AUC from a full ranking (slower).") var auc = false
    @Flag(help: "No per-iteration progress.") var quiet = false
    @Option(help: "Write each split's train and test sets as DIR/train-N.csv and DIR/test-N.csv (user,item,value) for peer tools.")
    var exportSplit: String?

    func run() throws {
        let splits = try data.splits(split, seed: options.seed)
        var rows: [[(String, Double)]] = []
        for (fold, part) in splits.enumerated() {
            if let directory = exportSplit {
                try writeCSV(part.train, to: "\(directory)/train-\(fold + 1).csv")
                try writeCSV(part.test, to: "\(directory)/test-\(fold + 1).csv")
            }
            let catalog = try ModelCatalog(training: part.train)
            let clock = ContinuousClock(), start = clock.now
            let model = try options.train(catalog, progress: quiet ? nil : progressPrinter(label: "fold \(fold + 1)"))
            let trainSeconds = seconds(since: start)
            var row: [(String, Double)] = [("train s", trainSeconds)]
            if options.isRatingModel, let factors = model as? FactorModel {
                let rating = try Evaluation.rating(factors, test: part.test)
                row += [("RMSE", rating.rmse), ("MAE", rating.mae)]
            }
            if !options.isRatingModel {
                row += try Evaluation.ranking(model, test: part.test, k: k, includeAUC: auc).named
            }
            rows.append(row)
        }
        let names = rows[0].map(\.0)
        print(([pad("fold", 6)] + names.map { pad($0, 12) }).joined())
        for (fold, row) in rows.enumerated() {
            print(([pad("\(fold + 1)", 6)] + row.map { pad(fixed($0.1, 4), 12) }).joined())
        }
        if rows.count > 1 {
            let means = names.indices.map { column in rows.reduce(0) { $0 + $1[column].1 } / Double(rows.count) }
            print(([pad("mean", 6)] + means.map { pad(fixed($0, 4), 12) }).joined())
        }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a model on all of a data set and save it as a model file.")

    @OptionGroup var data: DataOptions
    @OptionGroup var options: ModelOptions
    @Option(name: .shortAndLong, help: "Where to write the model file.") var output: String

    func run() throws {
        guard let path = data.data else { throw ValidationError("give --data") }
        var log = Interactions()
        _ = try log.load(path, format: try data.interactionFormat, onMalformed: data.skipMalformed ? .skip : .fail)
        let catalog = try ModelCatalog(training: data.keep(log))
        let model = try options.train(catalog, progress: progressPrinter(label: options.model))
        try model.save(to: output)
        print("saved \(model.kind) model: \(catalog.users.count) users, \(catalog.items.count) items, \(catalog.history.nonzeroCount) interactions → \(output)")
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
}

/// Writes interactions as `user,item,value` with external ids.
func writeCSV(_ log: Interactions, to path: String) throws {
    guard let file = fopen(path, "w") else { throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))") }
    defer { fclose(file) }
    fputs("user,item,value\n", file)
    var text = ""
    for e in 0 ..< log.count {
        text += "\(log.users[Int(log.userIndices[e])]),\(log.items[Int(log.itemIndices[e])]),\(log.values[e])\n"
        if text.utf8.count > 1 << 20 { fputs(text, file); text = "" }
    }
    fputs(text, file)
}
