#if canImport(Glibc)
import Glibc
#endif
import RecKernels
@testable import RecModels
import Testing

@Suite("MRR on a hand-checked case")
struct ReciprocalRankTests {
    /// Six users a…f, six items; item i was seen by users 0 ..< 6 − i, so popularity ranks
    /// 0 > 1 > … > 5 and user u's training items are 0 ..< 6 − u.
    @Test("the reciprocal rank of the first hit, cut at K, averaged over test users")
    func meanReciprocalRank() throws {
        var train = Interactions(users: try IDMap(["a", "b", "c", "d", "e", "f"]), items: try IDMap(["0", "1", "2", "3", "4", "5"]))
        for item in 0 ..< 6 {
            for user in 0 ..< (6 - item) { train.userIndices.append(Int32(user)); train.itemIndices.append(Int32(item)); train.values.append(1) }
        }
        var test = Interactions(users: train.users, items: train.items)
        // f (5) saw {0}: list [1, 2, 3, 4, 5], relevant {3, 5} → first hit at rank 3.
        // e (4) saw {0, 1}: list [2, 3, 4, 5], relevant {2, 5} → first hit at rank 1.
        // d (3) saw {0, 1, 2}: list [3, 4, 5], relevant {5} → first hit at rank 3.
        test.userIndices = [5, 5, 4, 4, 3]; test.itemIndices = [3, 5, 2, 5, 5]; test.values = [1, 1, 1, 1, 1]
        let model = try PopularityModel(ModelCatalog(training: train))
        let at3 = try Evaluation.ranking(model, test: test, k: 3)
        #expect(at3.users == 3)
        #expect(abs(at3.mrr - (1.0 / 3 + 1 + 1.0 / 3) / 3) < 1e-12)
        // At K = 2 only e's hit is inside the list.
        let at2 = try Evaluation.ranking(model, test: test, k: 2)
        #expect(abs(at2.mrr - 1.0 / 3) < 1e-12)
        #expect(at2.named.contains { $0.0 == "MRR@2" && abs($0.1 - 1.0 / 3) < 1e-12 })
    }
}

@Suite("EASE")
struct EASETests {
    /// A small catalog: 40 users × 12 items with overlapping tastes.
    static let small: ModelCatalog = {
        var log = Interactions()
        var generator = SeededGenerator(seed: 21)
        for u in 0 ..< 40 {
            let group = u % 3
            for i in 0 ..< 12 where (i % 3 == group && Int.random(in: 0 ..< 10, using: &generator) < 8)
                || Int.random(in: 0 ..< 10, using: &generator) == 0 {
                log.append(user: "u\(u)", item: "i\(i)", value: 1)
            }
        }
        return try! ModelCatalog(training: log)
    }()

    /// B from the definition, in double precision by Gauss-Jordan elimination — independent of
    /// LAPACK and of the float path.
    static func referenceB(_ catalog: ModelCatalog, lambda: Double, dropout: Double = 0) -> [[Double]] {
        let n = catalog.items.count
        var g = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for u in 0 ..< catalog.users.count {
            let (items, values) = catalog.history.row(u)
            for (a, va) in zip(items, values) { for (b, vb) in zip(items, values) { g[Int(a)][Int(b)] += Double(va * vb) } }
        }
        for i in 0 ..< n { g[i][i] += lambda + dropout / (1 - dropout) * g[i][i] }
        let inverse = NormalizedEASETests.inverse(g)
        return (0 ..< n).map { i in (0 ..< n).map { j in i == j ? 0 : -inverse[i][j] / inverse[j][j] } }
    }

    @Test("B matches the closed form computed independently in double precision")
    func closedForm() throws {
        let lambda: Float = 3
        let model = try EASEModel(Self.small, regularization: lambda, threads: 2)
        let reference = Self.referenceB(Self.small, lambda: Double(lambda))
        let n = Self.small.items.count
        var worst = 0.0
        for j in 0 ..< n {
            let column = model.table.row(j)   // row j of the table is column j of B
            for i in 0 ..< n { worst = max(worst, abs(Double(column[i]) - reference[i][j])) }
        }
        #expect(worst < 1e-5, "largest difference \(worst)")
        // EDLAE: dropout p adds p/(1 − p)·G_ii to item i's penalty.
        let edlae = try EASEModel(Self.small, regularization: lambda, dropout: 0.25, threads: 1)
        let edlaeReference = Self.referenceB(Self.small, lambda: Double(lambda), dropout: 0.25)
        var edlaeWorst = 0.0, shift = 0.0
        for j in 0 ..< n {
            let column = edlae.table.row(j)
            for i in 0 ..< n {
                edlaeWorst = max(edlaeWorst, abs(Double(column[i]) - edlaeReference[i][j]))
                shift = max(shift, abs(edlaeReference[i][j] - reference[i][j]))
            }
        }
        #expect(edlaeWorst < 1e-5, "EDLAE largest difference \(edlaeWorst)")
        #expect(shift > 1e-3, "dropout should change B")
        // And a user's scores are their history times B.
        let user = 5
        let (items, values) = Self.small.history.row(user)
        let top = try model.recommend(users: [user], k: n, excludeSeen: false, filter: nil)[0]
        for scored in top {
            let expected = zip(items, values).reduce(0.0) { $0 + Double($1.1) * reference[Int($1.0)][scored.id] }
            #expect(abs(Double(scored.score) - expected) < 1e-4, "item \(scored.id): \(scored.score) vs \(expected)")
        }
    }

    @Test("a fresh history gets exactly what the same user got from training")
    func foldsInForFree() throws {
        let model = try EASEModel(plantedCatalog, regularization: 20, threads: 2)
        let users = Array(0 ..< 30)
        let trained = try model.recommend(users: users, k: 10, excludeSeen: true, filter: nil)
        for (row, user) in users.enumerated() {
            let (items, weights) = plantedCatalog.history.row(user)
            let folded = try model.recommend(history: items.map(Int.init), weights: Array(weights), k: 10, excludeSeen: true, filter: nil)
            #expect(folded.map(\.id) == trained[row].map(\.id))
            #expect(zip(folded, trained[row]).allSatisfy { abs($0.score - $1.score) <= 1e-5 * max(1, abs($1.score)) })
        }
    }

    @Test("a catalog whose items² floats do not fit memory is refused, naming the bytes")
    func refusesHugeCatalogs() throws {
        let n = 400_000   // 2 × n² floats = 1.28 TB
        let items = try IDMap((0 ..< n).map { "i\($0)" })
        let catalog = try ModelCatalog(users: try IDMap(["u"]), items: items,
                                       history: SparseMatrix(rows: 1, columns: n, triples: [(row: 0, column: 0, value: 1)]))
        do {
            _ = try EASEModel(catalog, regularization: 10, threads: 1)
            Issue.record("a 400,000-item EASE was not refused")
        } catch let ModelError.invalidParameter(reason) {
            #expect(reason.contains("400000"), "\(reason)")
            #expect(reason.contains("bytes") || reason.contains("GB") || reason.contains("TB"), "\(reason)")
        }
        #expect(throws: ModelError.self) { try EASEModel(Self.small, regularization: 0) }
    }
}

@Suite("RP3beta")
struct RP3betaTests {
    @Test("weights follow the walk's definition, with the popularity penalty and top-K per row")
    func definition() throws {
        let catalog = EASETests.small
        let (alpha, beta): (Float, Float) = (0.8, 0.4)
        let model = try RP3betaModel(catalog, alpha: alpha, beta: beta, neighbours: 4, threads: 2)
        let n = catalog.items.count, users = catalog.users.count
        var itemUsers = [[Int]](repeating: [], count: n)
        var userItems = [[Int]](repeating: [], count: users)
        for u in 0 ..< users { for i in catalog.history.row(u).columns { itemUsers[Int(i)].append(u); userItems[u].append(Int(i)) } }
        for i in 0 ..< n {
            var expected: [(Int, Double)] = []
            for j in 0 ..< n where j != i && !itemUsers[j].isEmpty {
                var walk = 0.0
                for u in itemUsers[i] where userItems[u].contains(j) {
                    walk += pow(1 / Double(itemUsers[i].count), Double(alpha)) * pow(1 / Double(userItems[u].count), Double(alpha))
                }
                if walk > 0 { expected.append((j, walk / pow(Double(itemUsers[j].count), Double(beta)))) }
            }
            expected.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
            let kept = expected.prefix(4)
            let (columns, values) = model.similarities.row(i)
            #expect(columns.count == kept.count, "row \(i)")
            let stored = Dictionary(uniqueKeysWithValues: zip(columns.map(Int.init), values))
            for (j, weight) in kept {
                #expect(abs(Double(stored[j] ?? -1) - weight) < 1e-5 * max(1, weight), "W[\(i)][\(j)]")
            }
        }
    }

    @Test("a larger β moves recommendations away from popular items")
    func popularityPenalty() throws {
        let plain = try RP3betaModel(plantedCatalog, alpha: 1, beta: 0, neighbours: 50, threads: 2)
        let penalised = try RP3betaModel(plantedCatalog, alpha: 1, beta: 1, neighbours: 50, threads: 2)
        var popularity = [Int](repeating: 0, count: plantedCatalog.items.count)
        for i in plantedCatalog.history.columnIndices { popularity[Int(i)] += 1 }
        func meanPopularity(_ model: RP3betaModel) throws -> Double {
            let lists = try model.recommend(users: Array(0 ..< 200), k: 10, excludeSeen: true, filter: nil)
            let ids = (0 ..< lists.queryCount).flatMap { lists[$0].map(\.id) }
            return Double(ids.reduce(0) { $0 + popularity[$1] }) / Double(ids.count)
        }
        #expect(try meanPopularity(penalised) < 0.8 * meanPopularity(plain))
    }
}

@Suite("iALS options (Rendle et al. 2022)")
struct TunedALSTests {
    /// Each row solved with its own λ gets exactly what a run with that λ for every row gives it.
    @Test("per-row regularization applies each row's own λ", arguments: [Factorization.Solver.cholesky, .conjugateGradient(steps: 3)])
    func rowRegularization(solver: Factorization.Solver) throws {
        let matrix = plantedCatalog.history
        let items = EmbeddingTable.gaussian(rows: matrix.columns, dimensions: 6, seed: 3, scale: 0.3)
        let start = EmbeddingTable.gaussian(rows: matrix.rows, dimensions: 6, seed: 4, scale: 0.3)
        func step(_ regularization: Float, rows: [Float]?) throws -> EmbeddingTable {
            var users = start
            try Factorization.implicitALSStep(solving: &users, fixed: items, matrix: matrix, alpha: 2, regularization: regularization,
                                              rowRegularization: rows, solver: solver, threads: 2)
            return users
        }
        let (small, large): (Float, Float) = (0.05, 40)
        let mixed = try step(0, rows: (0 ..< matrix.rows).map { $0 % 2 == 0 ? large : small })
        let allSmall = try step(small, rows: nil), allLarge = try step(large, rows: nil)
        for row in 0 ..< 50 {
            #expect(mixed.row(row) == (row % 2 == 0 ? allLarge : allSmall).row(row), "row \(row)")
        }
        #expect(allSmall.row(0) != allLarge.row(0))
    }

    /// The unobserved weight scales the Gram term: the row solves (α₀YᵀY + λI + Σ (c − 1) yyᵀ) x
    /// = Σ c y, checked here against a dense solve in double precision.
    @Test("the unobserved weight scales the all-items term")
    func unobservedWeight() throws {
        let matrix = plantedCatalog.history
        let d = 4
        let items = EmbeddingTable.gaussian(rows: matrix.columns, dimensions: d, seed: 5, scale: 0.5)
        var users = EmbeddingTable.gaussian(rows: matrix.rows, dimensions: d, seed: 6, scale: 0.5)
        let (alpha, lambda, weight): (Float, Float, Float) = (3, 0.5, 0.25)
        try Factorization.implicitALSStep(solving: &users, fixed: items, matrix: matrix, alpha: alpha, regularization: lambda,
                                          unobservedWeight: weight, solver: .cholesky, threads: 1)
        // Dense normal equations for user 0 in double: (α₀YᵀY + λI + Σ α w yyᵀ) x = Σ (1 + α w) y.
        var a = [[Double]](repeating: [Double](repeating: 0, count: d), count: d), b = [Double](repeating: 0, count: d)
        for i in 0 ..< matrix.columns {
            let y = items.row(i).map(Double.init)
            for r in 0 ..< d { for c in 0 ..< d { a[r][c] += Double(weight) * y[r] * y[c] } }
        }
        for r in 0 ..< d { a[r][r] += Double(lambda) }
        let (columns, values) = matrix.row(0)
        for (i, w) in zip(columns, values) {
            let y = items.row(Int(i)).map(Double.init)
            let c = 1 + Double(alpha) * Double(w)
            for r in 0 ..< d { b[r] += c * y[r]; for k in 0 ..< d { a[r][k] += (c - 1) * y[r] * y[k] } }
        }
        for column in 0 ..< d {   // Gauss-Jordan
            let pivot = a[column][column]
            for k in 0 ..< d { a[column][k] /= pivot }
            b[column] /= pivot
            for row in 0 ..< d where row != column {
                let factor = a[row][column]
                for k in 0 ..< d { a[row][k] -= factor * a[column][k] }
                b[row] -= factor * b[column]
            }
        }
        for (got, expected) in zip(users.row(0), b) { #expect(abs(Double(got) - expected) < 1e-3 * max(1, abs(expected)), "\(got) vs \(expected)") }
    }
}

@Suite("Hyper-parameter search")
struct HyperparameterSearchTests {
    /// Explicit ALS with 10 factors on the planted rank-3 ratings: a tiny λ over-fits and a large
    /// one shrinks every prediction to 0, so only a middle band of λ predicts well.
    /// Validation RMSE of explicit ALS (10 factors) with λ and `iterations`, fitted on a split carved from the planted training ratings.
    @Sendable static func validationRMSE(_ lambda: Double, iterations: Int = 10) throws -> Double {
        var als = ExplicitALS(); als.factors = 10; als.iterations = iterations; als.regularization = Float(lambda); als.threads = 1
        return try Evaluation.rating(als.fit(carvedCatalog), test: carved.test).rmse
    }
    static let carved = try! HyperparameterSearch.validationSplit(plantedRatings.train, fraction: 0.2, seed: 9)
    static let carvedCatalog = try! ModelCatalog(training: carved.train)
    /// The planted landscape, on a grid of λ at the full 10 iterations: the band where λ is good (within 5% of the grid's best).
    static let plantedBand: ClosedRange<Double> = {
        let grid = (0 ... 28).map { pow(10, -4 + Double($0) / 4) }   // 1e-4 … 1e3
        let landscape = try! grid.map { ($0, try validationRMSE($0)) }
        let gridBest = landscape.map(\.1).min()!
        let good = landscape.filter { $0.1 <= 1.05 * gridBest }.map(\.0)
        precondition(landscape.first!.1 > 1.1 * gridBest && landscape.last!.1 > 1.5 * gridBest, "\(landscape)")
        return good.min()! / pow(10, 0.25) ... good.max()! * pow(10, 0.25)
    }()

    @Test("random search finds the planted good λ band, judged on a validation split of the training data")
    func findsPlantedRegion() throws {
        let carved = Self.carved
        #expect(carved.train.count + carved.test.count == plantedRatings.train.count)
        let band = Self.plantedBand
        #expect(band.upperBound / band.lowerBound < 1e4, "the planted good band \(band) should be a small part of 1e-4…1e3")
        @Sendable func validationRMSE(_ lambda: Double) throws -> Double { try Self.validationRMSE(lambda) }

        let (best, trials) = try HyperparameterSearch.randomSearch(
            space: ["regularization": .logUniform(1e-4 ... 1e3)], trials: 14, seed: 3, workers: 2, higherIsBetter: false
        ) { try validationRMSE($0["regularization"]!) }
        #expect(trials.count == 14)
        #expect(band.contains(best.parameters["regularization"]!), "best λ \(best.parameters) outside the planted band \(band)")
        #expect(best.score == trials.map(\.score).min())
        // The chosen λ generalizes to the test split the search never saw.
        var als = ExplicitALS(); als.factors = 10; als.iterations = 10; als.regularization = Float(best.parameters["regularization"]!)
        let mean = plantedRatings.train.values.reduce(0, +) / Float(plantedRatings.train.count)
        let baseline = (plantedRatings.test.values.reduce(0.0) { $0 + Double(($1 - mean) * ($1 - mean)) } / Double(plantedRatings.test.count)).squareRoot()
        #expect(try Evaluation.rating(als.fit(ratingCatalog), test: plantedRatings.test).rmse < 0.75 * baseline)
    }

    @Test("successive halving finds the planted good λ band, training most settings for only a few iterations")
    func halvingFindsPlantedRegion() throws {
        let band = Self.plantedBand
        let (best, trials) = try HyperparameterSearch.successiveHalving(
            space: ["regularization": .logUniform(1e-4 ... 1e3)], configurations: 18, minimumBudget: 1, maximumBudget: 10, reduction: 3,
            seed: 3, workers: 2, higherIsBetter: false
        ) { try Self.validationRMSE($0["regularization"]!, iterations: $1) }
        // Rungs: 18 settings at 1 iteration, 6 at 3, 2 at 9 → stop (9 · 3 passes 10 only after a rung of 2, which halves to 1 at 10).
        let rungs = Dictionary(grouping: trials, by: { $0.budget! }).mapValues(\.count)
        #expect(rungs == [1: 18, 3: 6, 9: 2, 10: 1], "\(rungs)")
        #expect(best.budget == 10)
        #expect(band.contains(best.parameters["regularization"]!), "best λ \(best.parameters) outside the planted band \(band)")
        // Far fewer iterations than training all 18 settings fully (180).
        #expect(trials.reduce(0) { $0 + $1.budget! } < 90)
    }

    @Test("each rung keeps exactly the best 1/η of the previous one, with η times the budget")
    func halvingRungs() throws {
        // A noisy objective whose noise shrinks with the budget: low rungs misjudge some settings.
        let objective: @Sendable ([String: Double], Int) throws -> Double = { values, budget in
            let x = values["x"]!
            var noise = SeededGenerator(seed: UInt64(bitPattern: Int64(x * 1e9)) &+ UInt64(budget))
            return -(x - 0.3) * (x - 0.3) + 0.05 * Double(noise.nextGaussian()) / Double(budget)
        }
        let (best, trials) = try HyperparameterSearch.successiveHalving(space: ["x": .uniform(-1 ... 1)], configurations: 27, minimumBudget: 1,
                                                                         maximumBudget: 9, reduction: 3, seed: 4, workers: 2, objective: objective)
        let byBudget = Dictionary(grouping: trials, by: { $0.budget! })
        #expect(byBudget.keys.sorted() == [1, 3, 9])
        for (budget, next) in [(1, 3), (3, 9)] {
            let ranked = byBudget[budget]!.sorted { $0.score > $1.score }
            let kept = Set(ranked.prefix(ranked.count / 3).map(\.number))
            #expect(Set(byBudget[next]!.map(\.number)) == kept, "rung \(next) should hold the best third of rung \(budget)")
        }
        #expect(best.budget == 9 && best.score == byBudget[9]!.map(\.score).max())
        #expect(abs(best.parameters["x"]! - 0.3) < 0.15)
        // The same settings are drawn as random search draws them.
        let random = try HyperparameterSearch.randomSearch(space: ["x": .uniform(-1 ... 1)], trials: 27, seed: 4) { try objective($0, 1) }
        #expect(random.trials.map(\.parameters) == byBudget[1]!.sorted { $0.number < $1.number }.map(\.parameters))
        #expect(throws: ModelError.self) {
            try HyperparameterSearch.successiveHalving(space: ["x": .uniform(0 ... 1)], configurations: 3, minimumBudget: 5, maximumBudget: 2, objective: objective)
        }
    }

    @Test("the same seed tries the same settings at any worker count; the best is the highest when higher is better")
    func seededAndParallel() throws {
        let space: [String: ParameterRange] = ["x": .uniform(-1 ... 1), "n": .integerLog(1 ... 100), "c": .choice([0, 0.5, 1])]
        let objective: @Sendable ([String: Double]) throws -> Double = { -($0["x"]! - 0.3) * ($0["x"]! - 0.3) }
        let one = try HyperparameterSearch.randomSearch(space: space, trials: 30, seed: 5, workers: 1, objective: objective)
        let two = try HyperparameterSearch.randomSearch(space: space, trials: 30, seed: 5, workers: 2, objective: objective)
        #expect(one.trials.map(\.parameters) == two.trials.map(\.parameters))
        #expect(one.best.score == one.trials.map(\.score).max())
        #expect(one.trials.allSatisfy { (1 ... 100).contains($0.parameters["n"]!) && $0.parameters["n"]!.rounded() == $0.parameters["n"]! })
        #expect(Set(one.trials.map { $0.parameters["c"]! }).isSubset(of: [0, 0.5, 1]))
        #expect(abs(one.best.parameters["x"]! - 0.3) < 0.15)
        #expect(throws: ModelError.self) { try HyperparameterSearch.randomSearch(space: ["x": .logUniform(0 ... 1)], trials: 3, objective: objective) }
    }
}

@Suite("Bayesian MF (Gibbs sampling)")
struct BayesianMFTests {
    static func rmse(_ model: FactorModel) throws -> Double { try Evaluation.rating(model, test: plantedRatings.test).rmse }

    @Test("the posterior predictive mean over kept samples predicts held-out planted ratings better than one sample and than the mean")
    func averagingSamplesHelps() throws {
        var mf = BayesianMF(); mf.factors = 3; mf.iterations = 80; mf.burnIn = 20; mf.threads = 2
        let averaged = try mf.fit(ratingCatalog)
        #expect(averaged.userFactors.dimensions == 30 * 4, "30 samples of 3 factors and a bias")
        var single = mf
        single.burnIn = 79; single.thinning = 1  // keeps only the last sweep's sample
        let one = try single.fit(ratingCatalog)
        #expect(one.userFactors.dimensions == 4)
        let mean = plantedRatings.train.values.reduce(0, +) / Float(plantedRatings.train.count)
        let baseline = (plantedRatings.test.values.reduce(0.0) { $0 + Double(($1 - mean) * ($1 - mean)) } / Double(plantedRatings.test.count)).squareRoot()
        let (averagedRMSE, singleRMSE) = (try Self.rmse(averaged), try Self.rmse(one))
        #expect(averagedRMSE < 0.7 * baseline, "averaged \(averagedRMSE) vs mean-only \(baseline)")
        #expect(averagedRMSE < singleRMSE - 0.01, "averaged \(averagedRMSE) vs one sample \(singleRMSE)")
    }

    @Test("the same seed gives identical models at one and two threads; another seed does not")
    func deterministic() throws {
        var mf = BayesianMF(); mf.factors = 3; mf.iterations = 12; mf.burnIn = 4; mf.threads = 1
        let one = try mf.fit(ratingCatalog)
        mf.threads = 2
        let two = try mf.fit(ratingCatalog)
        #expect(one.itemFactors == two.itemFactors && one.userFactors == two.userFactors && one.userBiases == two.userBiases)
        mf.seed = 7
        #expect(try mf.fit(ratingCatalog).itemFactors != one.itemFactors)
    }

    @Test("the hyper-prior draw recovers the mean and precision of many Gaussian rows")
    func normalWishartDraw() throws {
        // Rows from N(m, Σ) with Σ = diag(0.25, 1, 4) + 0.3 off the first two: the draw's mean ≈ m, precision ≈ Σ⁻¹.
        let m: [Double] = [1, -2, 0.5]
        let sigma: [[Double]] = [[0.25, 0.3, 0], [0.3, 1, 0], [0, 0, 4]]
        // Σ = C·Cᵀ by hand-checked Cholesky: c00 = 0.5, c10 = 0.6, c11 = 0.8, c22 = 2.
        let c: [[Double]] = [[0.5, 0, 0], [0.6, 0.8, 0], [0, 0, 2]]
        #expect((0 ..< 3).allSatisfy { i in (0 ..< 3).allSatisfy { j in abs((0 ..< 3).reduce(0) { $0 + c[i][$1] * c[j][$1] } - sigma[i][j]) < 1e-12 } })
        var generator = SeededGenerator(seed: 21)
        let rows = 20_000
        var table = EmbeddingTable(rows: rows, dimensions: 3)
        table.withUnsafeMutableBufferPointer { x in
            for r in 0 ..< rows {
                let z = (0 ..< 3).map { _ in Double(generator.nextGaussian()) }
                for i in 0 ..< 3 { x[r * 3 + i] = Float(m[i] + (0 ..< 3).reduce(0) { $0 + c[i][$1] * z[$1] }) }
            }
        }
        let (mean, precision) = NormalWishart(dimensions: 3, strength: 2).posteriorDraw(given: table, using: &generator)
        for i in 0 ..< 3 { #expect(abs(Double(mean[i]) - m[i]) < 0.05, "mean \(mean) vs \(m)") }
        // Λ·Σ ≈ I.
        for i in 0 ..< 3 {
            for j in 0 ..< 3 {
                let product = (0 ..< 3).reduce(0.0) { $0 + Double(precision.row(i)[$1]) * sigma[$1][j] }
                #expect(abs(product - (i == j ? 1 : 0)) < 0.06, "(ΛΣ)[\(i)][\(j)] = \(product)")
            }
        }
    }

    @Test("a saved model predicts the same ratings, and refuses a prior section of the wrong shape")
    func savedPredictions() throws {
        var mf = BayesianMF(); mf.factors = 2; mf.iterations = 10; mf.burnIn = 4
        let model = try mf.fit(ratingCatalog)
        let path = "/tmp/bpmf-\(getpid()).rkm"
        defer { unlink(path) }
        try model.save(to: path)
        let loaded = try FactorModel(contentsOf: path)
        #expect(loaded.kind == "bpmf")
        for (u, i) in [(0, 0), (5, 17), (120, 3)] { #expect(loaded.predict(user: u, item: i) == model.predict(user: u, item: i)) }
        #expect(try Self.rmse(loaded) == Self.rmse(model))
        let bad = try FactorModel(algorithm: model.algorithm, catalog: model.catalog, userFactors: model.userFactors, itemFactors: model.itemFactors,
                                  userBiases: model.userBiases, parameters: model.parameters,
                                  userPriors: EmbeddingTable(rows: 3, dimensions: 5))
        try bad.save(to: path)
        #expect(throws: ModelError.self) { try FactorModel(contentsOf: path) }
    }
}

@Suite("EASE with DAN normalization and a relaxed diagonal")
struct NormalizedEASETests {
    /// Dense double-precision X (users × items) of a catalog.
    static func dense(_ catalog: ModelCatalog) -> [[Double]] {
        var x = [[Double]](repeating: [Double](repeating: 0, count: catalog.items.count), count: catalog.users.count)
        for u in 0 ..< catalog.users.count {
            let (items, values) = catalog.history.row(u)
            for (i, v) in zip(items, values) { x[u][Int(i)] += Double(v) }
        }
        return x
    }

    /// The inverse of a symmetric positive definite matrix by Gauss-Jordan elimination.
    static func inverse(_ matrix: [[Double]]) -> [[Double]] {
        var g = matrix
        let n = g.count
        var inverse = (0 ..< n).map { i in (0 ..< n).map { j in i == j ? 1.0 : 0 } }
        for column in 0 ..< n {
            let pivot = g[column][column]
            for j in 0 ..< n { g[column][j] /= pivot; inverse[column][j] /= pivot }
            for row in 0 ..< n where row != column {
                let factor = g[row][column]
                for j in 0 ..< n { g[row][j] -= factor * g[column][j]; inverse[row][j] -= factor * inverse[column][j] }
            }
        }
        return inverse
    }

    /// Xᵀ·diag(d^−β)·X built as X̃ᵀX̃ with X̃ = diag(d^(−β/2))·X scaled row by row: another route
    /// to the weighted Gram matrix than the model's per-entry weights.
    static func normalizedGram(_ x: [[Double]], beta: Double) -> [[Double]] {
        let n = x.first?.count ?? 0
        let scaled = x.map { row -> [Double] in
            let degree = row.reduce(0, +)
            let factor = degree > 0 ? pow(degree, -beta / 2) : 0
            return row.map { $0 * factor }
        }
        return (0 ..< n).map { i in (0 ..< n).map { j in scaled.reduce(0) { $0 + $1[i] * $1[j] } } }
    }

    @Test("DAN: B from the normalized Gram matrix, rescaled by item degrees, computed independently in double precision")
    func normalizedClosedForm() throws {
        let catalog = EASETests.small
        let (lambda, p, alpha, beta) = (2.0, 0.2, 0.3, 0.5)
        let model = try EASEModel(catalog, regularization: Float(lambda), dropout: Float(p), itemNormalization: Float(alpha),
                                  userNormalization: Float(beta), threads: 2)
        let x = Self.dense(catalog), n = catalog.items.count
        var g = Self.normalizedGram(x, beta: beta)
        // The penalty uses the unweighted diagonal, here item i's count (X is binary).
        let counts = (0 ..< n).map { i in x.reduce(0) { $0 + $1[i] } }
        for i in 0 ..< n { g[i][i] += lambda + p / (1 - p) * counts[i] }
        let inverse = Self.inverse(g)
        var worst = 0.0, largest = 0.0, shift = 0.0
        let plain = EASETests.referenceB(catalog, lambda: lambda, dropout: p)
        for j in 0 ..< n {
            let column = model.table.row(j)
            for i in 0 ..< n where i != j {
                // EASE on the normalized Gram matrix, then diag(c^α)·B·diag(c^−α).
                let b = -inverse[i][j] / inverse[j][j] * pow(counts[i] / counts[j], alpha)
                worst = max(worst, abs(Double(column[i]) - b))
                largest = max(largest, abs(b))
                shift = max(shift, abs(b - plain[i][j]))
            }
            #expect(column[j] == 0)
        }
        #expect(worst < 1e-5 * max(1, largest), "largest difference \(worst) (largest entry \(largest))")
        #expect(shift > 1e-2 * largest, "normalization should change B (largest change \(shift))")
    }

    /// Checks the optimality conditions of RDLAE's column problem, min ‖x̃_j − X̃b‖² + Σ Λ_k b_k²
    /// subject to b_j ≤ ξ, for every column of a model's B: with A = G + Λ, the column b (its
    /// dropped diagonal b_j recovered from the conditions themselves) must satisfy
    /// (A·b − G·e_j)_i = 0 for i ≠ j, and −μ_j at i = j with μ_j ≥ 0, b_j ≤ ξ and μ_j·(ξ − b_j) = 0.
    /// Returns how many columns had the constraint active (μ_j > 0), and the recovered diagonal.
    @discardableResult
    static func checkOptimality(_ model: EASEModel, _ catalog: ModelCatalog, lambda: Double, p: Double, xi: Double) -> (active: Int, diagonal: [Double]) {
        let x = dense(catalog), n = catalog.items.count
        let g = normalizedGram(x, beta: 0)
        var a = g
        for i in 0 ..< n { a[i][i] += lambda + p / (1 - p) * g[i][i] }
        var active = 0, diagonal: [Double] = []
        for j in 0 ..< n {
            let column = model.table.row(j).map(Double.init)
            // r_i = G_ij − Σ_{k≠j} A_ik b_k must equal A_ij·b_j for every i ≠ j: fit b_j, check the rest.
            var r = [Double](repeating: 0, count: n)
            for i in 0 ..< n { r[i] = g[i][j] - (0 ..< n).reduce(0) { $1 == j ? $0 : $0 + a[i][$1] * column[$1] } }
            let off = (0 ..< n).filter { $0 != j }
            let bj = off.reduce(0) { $0 + r[$1] * a[$1][j] } / off.reduce(0) { $0 + a[$1][j] * a[$1][j] }
            diagonal.append(bj)
            let scale = max(1, off.map { abs(g[$0][j]) }.max()!)
            for i in off { #expect(abs(r[i] - a[i][j] * bj) < 1e-3 * scale, "column \(j), row \(i): stationarity off by \(r[i] - a[i][j] * bj)") }
            let mu = r[j] - a[j][j] * bj
            #expect(mu > -1e-3 * scale, "column \(j): multiplier \(mu) < 0")
            #expect(bj < xi + 1e-4, "column \(j): diagonal \(bj) above ξ = \(xi)")
            if mu > 1e-3 * scale {
                active += 1
                #expect(abs(bj - xi) < 1e-4, "column \(j): active constraint, yet diagonal \(bj) ≠ ξ")
            }
        }
        return (active, diagonal)
    }

    @Test("RDLAE: every column satisfies the optimality conditions of the relaxed problem; ξ = 0 is EASE, ξ = 1 unconstrained")
    func relaxedDiagonal() throws {
        let catalog = EASETests.small
        let (lambda, p): (Float, Float) = (3, 0.1)
        // ξ = 1: no column is constrained (the DLAE solution).
        let free = try EASEModel(catalog, regularization: lambda, dropout: p, relaxation: 1, threads: 1)
        let unconstrained = Self.checkOptimality(free, catalog, lambda: Double(lambda), p: Double(p), xi: 1)
        #expect(unconstrained.active == 0)
        // ξ at the median of the unconstrained diagonal: about half the columns hit the bound.
        let xi = unconstrained.diagonal.sorted()[catalog.items.count / 2]
        let relaxed = try EASEModel(catalog, regularization: lambda, dropout: p, relaxation: Float(xi), threads: 2)
        let active = Self.checkOptimality(relaxed, catalog, lambda: Double(lambda), p: Double(p), xi: xi).active
        #expect(active > 0 && active < catalog.items.count, "\(active) of \(catalog.items.count) columns at the bound ξ = \(xi)")
        // ξ = 0: every column at b_j = 0, the EASE solution.
        let strict = try EASEModel(catalog, regularization: lambda, dropout: p, relaxation: 0, threads: 1)
        #expect(Self.checkOptimality(strict, catalog, lambda: Double(lambda), p: Double(p), xi: 0).active == catalog.items.count)
    }

    @Test("the options are saved in the model file and checked when it is opened")
    func savedOptions() throws {
        let model = try EASEModel(plantedCatalog, regularization: 15, dropout: 0.2, itemNormalization: 0.25, userNormalization: 0.5,
                                  relaxation: 0.2, threads: 2)
        let path = "/tmp/ease-dan-\(getpid()).rkm"
        defer { unlink(path) }
        try model.save(to: path)
        let opened = try EASEModel(contentsOf: path)
        #expect(opened.itemNormalization == 0.25 && opened.userNormalization == 0.5 && opened.relaxation == 0.2 && opened.dropout == 0.2)
        #expect(try opened.recommend(users: [0, 1, 2], k: 10, excludeSeen: true, filter: nil) == model.recommend(users: [0, 1, 2], k: 10, excludeSeen: true, filter: nil))
        for (item, user, xi) in [(Float(-0.1), Float(0), Float(0)), (0, 2.5, 0), (0, 0, 1.5)] {
            #expect(throws: ModelError.self) {
                try EASEModel(EASETests.small, regularization: 5, itemNormalization: item, userNormalization: user, relaxation: xi)
            }
        }
    }
}
