import RecKernels
internal import RealModule

extension Interactions {
    /// A synthetic implicit-feedback log with structure to recover: item popularity follows a
    /// Zipf law (item 0 the most popular), and each user keeps a popularity-drawn candidate with
    /// probability σ(affinity · (s − selectivity)), where s = t·v/√dims is the match of the user's
    /// hidden taste t and the item's hidden traits v (both standard normal, rank `tasteDimensions`):
    /// a user likes a narrow slice of the catalog, more so as `selectivity` grows. Events per user
    /// vary (geometric around the mean). Each (user, item) pair appears once, with value 1.
    /// Deterministic for a seed.
    ///
    /// Ids are "u<index>" and "i<index>". - Complexity: O(interactions) expected.
    ///
    /// - Throws: ``DataError/invalidOption(_:)`` unless users ≥ 1, items ≥ 1, interactions ≥ users
    ///   (every user gets at least one event), tasteDimensions ≥ 1, and the exponent, affinity
    ///   and selectivity are finite.
    public static func synthetic(users: Int, items: Int, interactions: Int, tasteDimensions: Int = 8,
                                 zipfExponent: Double = 0.8, affinity: Float = 4, selectivity: Float = 1,
                                 seed: UInt64) throws(DataError) -> Interactions {
        guard users >= 1, items >= 1, tasteDimensions >= 1 else {
            throw .invalidOption("synthetic interactions need at least 1 user, 1 item and 1 taste dimension; got \(users) users, \(items) items, \(tasteDimensions) dimensions")
        }
        guard interactions >= users else {
            throw .invalidOption("synthetic interactions give every user at least one event: \(interactions) interactions for \(users) users is too few")
        }
        guard zipfExponent.isFinite, affinity.isFinite, selectivity.isFinite else {
            throw .invalidOption("synthetic interactions need a finite Zipf exponent, affinity and selectivity")
        }
        var generator = SeededGenerator(seed: seed)
        let tastes = EmbeddingTable.gaussian(rows: users, dimensions: tasteDimensions, seed: seed &+ 1)
        let traits = EmbeddingTable.gaussian(rows: items, dimensions: tasteDimensions, seed: seed &+ 2)
        // Cumulative Zipf weights for inverse-CDF sampling.
        var cumulative = [Double](repeating: 0, count: items)
        var total = 0.0
        for i in 0 ..< items {
            total += 1 / Double.pow(Double(i + 1), zipfExponent)
            cumulative[i] = total
        }
        var log = Interactions()
        log.userIndices.reserveCapacity(interactions)
        log.itemIndices.reserveCapacity(interactions)
        log.values.reserveCapacity(interactions)
        log.users = try! IDMap((0 ..< users).map { "u\($0)" })
        log.items = try! IDMap((0 ..< items).map { "i\($0)" })
        let mean = Double(interactions) / Double(users)
        let scale = 1 / Float(tasteDimensions).squareRoot()
        var remaining = interactions
        for u in 0 ..< users {
            let left = users - u
            // Geometric-ish count around the mean, at least 1, so the total lands near `interactions`.
            let target = u == users - 1 ? remaining
                : max(1, min(remaining - (left - 1), Int((-mean * Double.log(Double.random(in: Double.ulpOfOne ..< 1, using: &generator))).rounded())))
            remaining -= target
            var chosen = Set<Int32>()
            var attempts = 0
            while chosen.count < min(target, items) && attempts < target * 400 {
                attempts += 1
                let r = Double.random(in: 0 ..< total, using: &generator)
                var lo = 0, hi = items - 1
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if cumulative[mid] < r { lo = mid + 1 } else { hi = mid }
                }
                let score = tastes.withRow(u) { t in traits.withRow(lo) { v in zip(t, v).reduce(0) { $0 + $1.0 * $1.1 } } } * scale
                let accept = 1 / (1 + Double.exp(Double(-affinity * (score - selectivity))))
                if Double.random(in: 0 ..< 1, using: &generator) < accept { chosen.insert(Int32(lo)) }
            }
            for item in chosen.sorted() {
                log.userIndices.append(Int32(u))
                log.itemIndices.append(item)
                log.values.append(1)
            }
        }
        return log
    }
}
