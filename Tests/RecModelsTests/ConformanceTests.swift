#if canImport(Glibc)
import Glibc
#endif
import RecKernels
@testable import RecModels
import Testing

/// Planted low-rank implicit data shared by the suite: built once.
let planted: Split = try! Interactions.synthetic(users: 1000, items: 800, interactions: 30_000, tasteDimensions: 4,
                                           zipfExponent: 0.3, affinity: 6, selectivity: 1.5, seed: 11)
    .randomHoldout(testFraction: 0.2, seed: 5)
let plantedCatalog = try! ModelCatalog(training: planted.train)
let popularityHitRate = try! Evaluation.ranking(PopularityModel(plantedCatalog), test: planted.test, k: 10).hitRate

/// Planted ratings: r = clip(round(3 + u·v + noise), 1, 5) from rank-3 user and item vectors.
let plantedRatings: Split = {
    var log = Interactions()
    let users = EmbeddingTable.gaussian(rows: 300, dimensions: 3, seed: 1, scale: 0.8)
    let items = EmbeddingTable.gaussian(rows: 200, dimensions: 3, seed: 2, scale: 0.8)
    var generator = SeededGenerator(seed: 3)
    for u in 0 ..< 300 {
        for i in 0 ..< 200 where Int.random(in: 0 ..< 4, using: &generator) == 0 {
            let affinity = zip(users.row(u), items.row(i)).reduce(0) { $0 + $1.0 * $1.1 }
            let rating = min(5, max(1, (3 + affinity + 0.3 * generator.nextGaussian()).rounded()))
            log.append(user: "u\(u)", item: "i\(i)", value: rating)
        }
    }
    return try! log.randomHoldout(testFraction: 0.2, seed: 4)
}()
let ratingCatalog = try! ModelCatalog(training: plantedRatings.train)

/// A model under test: how to train it, open it, and what it is for.
struct Candidate: CustomStringConvertible, Sendable {
    let name: String
    let forRatings: Bool
    let train: @Sendable (ModelCatalog) throws -> any Recommender
    let open: @Sendable (String) throws -> any Recommender
    var description: String { name }
}

let candidates: [Candidate] = [
    Candidate(name: "implicit ALS (CG)", forRatings: false, train: { catalog in
        var als = ImplicitALS(); als.factors = 8; als.iterations = 15; als.alpha = 5; als.regularization = 0.1; als.threads = 2
        return try als.fit(catalog)
    }, open: { try FactorModel(contentsOf: $0) }),
    Candidate(name: "implicit ALS (Cholesky, BM25)", forRatings: false, train: { catalog in
        var als = ImplicitALS(); als.factors = 8; als.iterations = 10; als.alpha = 5; als.regularization = 0.1
        als.solver = .cholesky; als.weighting = .bm25; als.threads = 1
        return try als.fit(catalog)
    }, open: { try FactorModel(contentsOf: $0) }),
    Candidate(name: "iALS (frequency-scaled λ, unobserved weight, Cholesky)", forRatings: false, train: { catalog in
        var als = ImplicitALS(); als.factors = 8; als.iterations = 10; als.alpha = 5; als.regularization = 0.002
        als.unobservedWeight = 0.5; als.frequencyScaling = 1; als.solver = .cholesky; als.threads = 2
        return try als.fit(catalog)
    }, open: { try FactorModel(contentsOf: $0) }),
    Candidate(name: "BPR", forRatings: false, train: { catalog in
        var bpr = BPR(); bpr.factors = 8; bpr.iterations = 60; bpr.learningRate = 0.05; bpr.threads = 1
        return try bpr.fit(catalog)
    }, open: { try FactorModel(contentsOf: $0) }),
    Candidate(name: "item-kNN (cosine)", forRatings: false, train: { try ItemKNNModel($0, neighbours: 30, threads: 2) },
              open: { try ItemKNNModel(contentsOf: $0) }),
    Candidate(name: "item-kNN (BM25)", forRatings: false, train: { try ItemKNNModel($0, neighbours: 30, weighting: .bm25, threads: 1) },
              open: { try ItemKNNModel(contentsOf: $0) }),
    Candidate(name: "popularity", forRatings: false, train: { try PopularityModel($0) }, open: { try PopularityModel(contentsOf: $0) }),
    Candidate(name: "EASE", forRatings: false, train: { try EASEModel($0, regularization: 20, threads: 2) },
              open: { try EASEModel(contentsOf: $0) }),
    Candidate(name: "EASE (DAN normalization, relaxed diagonal)", forRatings: false, train: {
        try EASEModel($0, regularization: 5, dropout: 0.2, itemNormalization: 0.2, userNormalization: 0.5, relaxation: 0.1, threads: 2)
    }, open: { try EASEModel(contentsOf: $0) }),
    Candidate(name: "RP3beta", forRatings: false, train: { try RP3betaModel($0, alpha: 1, beta: 0.5, neighbours: 50, threads: 2) },
              open: { try RP3betaModel(contentsOf: $0) }),
    Candidate(name: "explicit ALS", forRatings: true, train: { catalog in
        var als = ExplicitALS(); als.factors = 3; als.iterations = 15; als.regularization = 0.05
        return try als.fit(catalog)
    }, open: { try FactorModel(contentsOf: $0) }),
    Candidate(name: "biased MF (SGD)", forRatings: true, train: { catalog in
        var mf = BiasedMF(); mf.factors = 3; mf.epochs = 60; mf.learningRate = 0.01; mf.regularization = 0.05
        return try mf.fit(catalog)
    }, open: { try FactorModel(contentsOf: $0) }),
    Candidate(name: "Bayesian MF (Gibbs)", forRatings: true, train: { catalog in
        var mf = BayesianMF(); mf.factors = 3; mf.iterations = 60; mf.burnIn = 20; mf.threads = 2
        return try mf.fit(catalog)
    }, open: { try FactorModel(contentsOf: $0) }),
]

@Suite("Every model passes the same conformance suite")
struct ConformanceTests {
    @Test("it recovers planted structure far above the baseline", arguments: candidates)
    func recoversPlantedStructure(candidate: Candidate) throws {
        if candidate.forRatings {
            let model = try candidate.train(ratingCatalog) as! FactorModel
            let rmse = try Evaluation.rating(model, test: plantedRatings.test).rmse
            // Predicting every rating by the training mean:
            let mean = plantedRatings.train.values.reduce(0, +) / Float(plantedRatings.train.count)
            let baseline = (plantedRatings.test.values.reduce(0.0) { $0 + Double(($1 - mean) * ($1 - mean)) } / Double(plantedRatings.test.count)).squareRoot()
            #expect(rmse < 0.75 * baseline, "RMSE \(rmse) vs mean-only \(baseline)")
        } else if candidate.name != "popularity" {
            let hitRate = try Evaluation.ranking(candidate.train(plantedCatalog), test: planted.test, k: 10).hitRate
            #expect(hitRate > 1.5 * popularityHitRate, "HR@10 \(hitRate) vs popularity \(popularityHitRate)")
        } else {
            #expect(popularityHitRate > 0.1)  // the baseline itself finds popular held-out items
        }
    }

    @Test("save and load give identical recommendations", arguments: candidates)
    func saveAndLoad(candidate: Candidate) throws {
        let catalog = candidate.forRatings ? ratingCatalog : plantedCatalog
        let model = try candidate.train(catalog)
        let path = "/tmp/conformance-\(getpid())-\(candidate.name.filter(\.isLetter)).rkm"
        defer { unlink(path) }
        try model.save(to: path)
        let loaded = try candidate.open(path)
        #expect(loaded.kind == model.kind)
        #expect(loaded.catalog.users == catalog.users && loaded.catalog.items == catalog.items && loaded.catalog.history == catalog.history)
        let users = Array(0 ..< 50)
        #expect(try loaded.recommend(users: users, k: 10, excludeSeen: true, filter: nil) == model.recommend(users: users, k: 10, excludeSeen: true, filter: nil))
        #expect(try loaded.similarItems(to: 3, k: 5) == model.similarItems(to: 3, k: 5))
        // A file of another kind is refused by name.
        if !(model is PopularityModel) {
            #expect(throws: ModelError.self) { try PopularityModel(contentsOf: path) }
        }
    }

    @Test("folding in a training user's history recommends what training did", arguments: candidates)
    func foldIn(candidate: Candidate) throws {
        let catalog = candidate.forRatings ? ratingCatalog : plantedCatalog
        let model = try candidate.train(catalog)
        var overlap = 0.0
        let users = Array((0 ..< catalog.users.count).filter { !catalog.history.row($0).columns.isEmpty }.prefix(40))
        let trained = try model.recommend(users: users, k: 10, excludeSeen: true, filter: nil)
        for (row, user) in users.enumerated() {
            let (items, weights) = catalog.history.row(user)
            let folded = try model.recommend(history: items.map(Int.init), weights: Array(weights), k: 10, excludeSeen: true, filter: nil)
            overlap += Double(Set(folded.map(\.id)).intersection(trained[row].map(\.id)).count) / 10
        }
        overlap /= Double(users.count)
        #expect(overlap >= 0.6, "top-10 overlap \(overlap)")
        if let factors = model as? FactorModel, case .implicitALS = factors.algorithm {
            // ALS fold-in solves the user's own least-squares problem: nearly the trained vector.
            let (items, weights) = catalog.history.row(users[0])
            let vector = try factors.foldIn(history: items.map(Int.init), weights: Array(weights))
            let trainedVector = factors.userFactors.row(users[0])
            let cosine = zip(vector, trainedVector).reduce(0) { $0 + $1.0 * $1.1 }
                / (vector.reduce(0) { $0 + $1 * $1 }.squareRoot() * trainedVector.reduce(0) { $0 + $1 * $1 }.squareRoot())
            #expect(cosine > 0.98, "cosine \(cosine)")
        }
    }

    @Test("external ids in and out agree with indices; recommendAll covers every user", arguments: candidates)
    func externalIDs(candidate: Candidate) throws {
        let catalog = candidate.forRatings ? ratingCatalog : plantedCatalog
        let model = try candidate.train(catalog)
        let user = catalog.users[7]
        let byIndex = try model.recommend(users: [7], k: 5, excludeSeen: true, filter: nil)[0]
        #expect(try model.recommend(user: user, k: 5).map(\.item) == byIndex.map { catalog.items[$0.id] })
        #expect(try model.similarItems(to: catalog.items[2], k: 3).map(\.item) == model.similarItems(to: 2, k: 3).map { catalog.items[$0.id] })
        #expect(throws: ModelError.unknownItem("no such item")) { try model.recommend(history: [(item: "no such item", weight: 1)], k: 3) }
        var covered = 0
        try model.recommendAll(k: 3, batch: 97) { first, results in
            #expect(first == covered)
            covered += results.queryCount
        }
        #expect(covered == catalog.users.count)
    }

    @Test("bad input gets clear errors", arguments: candidates)
    func badInput(candidate: Candidate) throws {
        let catalog = candidate.forRatings ? ratingCatalog : plantedCatalog
        let model = try candidate.train(catalog)
        #expect(throws: ModelError.unknownUser("#\(catalog.users.count)")) {
            try model.recommend(users: [catalog.users.count], k: 5, excludeSeen: true, filter: nil)
        }
        #expect(throws: ModelError.emptyHistory) { try model.recommend(history: [], weights: [], k: 5, excludeSeen: true, filter: nil) }
        #expect(throws: MatrixError.nonFinite(row: 0, column: 1)) {
            try model.recommend(history: [1, 2], weights: [1, .nan], k: 5, excludeSeen: true, filter: nil)
        }
        #expect(throws: ScoringError.itemOutOfRange(item: -1, itemCount: catalog.items.count)) {
            try model.recommend(history: [-1], weights: [1], k: 5, excludeSeen: true, filter: nil)
        }
        #expect(throws: ScoringError.invalidK(0)) { try model.recommend(users: [0], k: 0, excludeSeen: true, filter: nil) }
        #expect(throws: ModelError.unknownUser("nobody")) { try catalog.user("nobody") }
        #expect(throws: ModelError.emptyTrainingSet) {
            try candidate.train(ModelCatalog(users: catalog.users, items: catalog.items,
                                             history: SparseMatrix(rows: catalog.users.count, columns: catalog.items.count, triples: [])))
        }
    }
}

@Suite("Training is deterministic for a seed on one thread")
struct DeterminismTests {
    @Test("ALS (CG and Cholesky), BPR and biased MF give identical factors twice")
    func deterministic() throws {
        var als = ImplicitALS(); als.factors = 6; als.iterations = 3; als.threads = 1
        #expect(try als.fit(plantedCatalog).userFactors == als.fit(plantedCatalog).userFactors)
        als.threads = 2  // rows are independent: ALS is deterministic at any thread count
        #expect(try als.fit(plantedCatalog).itemFactors == als.fit(plantedCatalog).itemFactors)
        var bpr = BPR(); bpr.factors = 6; bpr.iterations = 3; bpr.threads = 1
        #expect(try bpr.fit(plantedCatalog).itemFactors == bpr.fit(plantedCatalog).itemFactors)
        var mf = BiasedMF(); mf.factors = 4; mf.epochs = 3
        #expect(try mf.fit(ratingCatalog).itemFactors == mf.fit(ratingCatalog).itemFactors)
        var other = mf
        other.seed = 99
        #expect(try mf.fit(ratingCatalog).itemFactors != other.fit(ratingCatalog).itemFactors)
    }
}

@Suite("Implicit ALS explanations")
struct ExplainTests {
    @Test("contributions add up to the fold-in score and rank the history by influence")
    func explain() throws {
        var als = ImplicitALS(); als.factors = 8; als.iterations = 10; als.alpha = 5; als.regularization = 0.1; als.solver = .cholesky
        let model = try als.fit(plantedCatalog)
        let user = (0 ..< plantedCatalog.users.count).first { plantedCatalog.history.row($0).columns.count >= 5 }!
        let (items, weights) = plantedCatalog.history.row(user)
        let history = items.map(Int.init)
        let target = try model.recommend(history: history, weights: Array(weights), k: 1, excludeSeen: true, filter: nil)[0]
        let (score, contributions) = try model.explain(history: history, weights: Array(weights), item: target.id)
        #expect(abs(score - target.score) <= 1e-3 * max(1, abs(target.score)), "\(score) vs \(target.score)")
        #expect(Set(contributions.map(\.id)) == Set(history))
        #expect(zip(contributions, contributions.dropFirst()).allSatisfy { $0.score >= $1.score })
        #expect(throws: ModelError.self) {
            var bpr = BPR(); bpr.factors = 4; bpr.iterations = 1
            _ = try bpr.fit(plantedCatalog).explain(history: history, weights: Array(weights), item: 0)
        }
    }
}

@Suite("Ranking and rating metrics on hand-checked cases")
struct MetricsTests {
    /// Two users, five items; the model's ranking is fixed by a one-dimensional popularity.
    @Test("precision, recall, MAP, NDCG, hit rate, AUC and coverage as defined")
    func rankingMetrics() throws {
        // Item i was seen by (5 − i) users in training → popularity ranks 0 > 1 > 2 > 3 > 4.
        var train = Interactions(users: try IDMap(["a", "b", "c", "d", "e"]), items: try IDMap(["0", "1", "2", "3", "4"]))
        for item in 0 ..< 5 { for user in 0 ..< (5 - item) { train.userIndices.append(Int32(user)); train.itemIndices.append(Int32(item)); train.values.append(1) } }
        // User e (index 4) saw only item 0. Its relevant items: 2 and 4.
        var test = Interactions(users: train.users, items: train.items)
        test.userIndices = [4, 4]; test.itemIndices = [2, 4]; test.values = [1, 1]
        let model = try PopularityModel(ModelCatalog(training: train))
        let m = try Evaluation.ranking(model, test: test, k: 2, includeAUC: true)
        // e's list (item 0 excluded): [1, 2]. One hit at rank 2.
        #expect(m.users == 1)
        #expect(m.precision == 0.5 && m.recall == 0.5 && m.hitRate == 1)
        #expect(m.meanAveragePrecision == (1.0 / 2) / 2)
        #expect(abs(m.ndcg - (1 / _log2(3)) / (1 + 1 / _log2(3))) < 1e-12)
        // Full ranking [1, 2, 3, 4]: pairs (relevant above non-relevant): 2>3 right, 4 below 1 and 3: 1 of 4 right.
        #expect(m.auc == 0.25)
        #expect(m.coverage == 2.0 / 5)
    }

    @Test("RMSE and MAE, clipped to the training range")
    func ratingMetrics() throws {
        let split = plantedRatings
        var mf = BiasedMF(); mf.factors = 2; mf.epochs = 5
        let model = try mf.fit(ratingCatalog)
        let m = try Evaluation.rating(model, test: split.test)
        var squared = 0.0, absolute = 0.0
        for e in 0 ..< split.test.count {
            let p = min(5, max(1, model.predict(user: Int(split.test.userIndices[e]), item: Int(split.test.itemIndices[e]))))
            squared += Double((split.test.values[e] - p) * (split.test.values[e] - p))
            absolute += Double(abs(split.test.values[e] - p))
        }
        #expect(abs(m.rmse - (squared / Double(split.test.count)).squareRoot()) < 1e-9)
        #expect(abs(m.mae - absolute / Double(split.test.count)) < 1e-9)
        #expect(m.count == split.test.count)
    }
}

private func _log2(_ x: Double) -> Double { log2(x) }
