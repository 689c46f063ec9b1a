#if canImport(Glibc)
import Glibc
#endif
@testable import RecKernels
@testable import RecModels
import Testing


/// A small implicit-ALS model and its file: trained once for the suite.
let hostileModel: (model: FactorModel, bytes: [UInt8]) = {
    let log = try! Interactions.synthetic(users: 40, items: 30, interactions: 400, seed: 21)
    var als = ImplicitALS()
    als.factors = 4
    als.iterations = 3
    als.threads = 1
    let model = try! als.fit(try! ModelCatalog(training: log))
    let path = temporaryFile("", name: "model.rkm")
    try! model.save(to: path)
    return (model, try! ModelFileSurgery.read(path))
}()

func openModel(_ bytes: [UInt8]) throws -> FactorModel {
    let path = temporaryFile("", name: "mutated.rkm")
    defer {
        unlink(path)
        rmdir(String(path.dropLast("/mutated.rkm".count)))
    }
    try AtomicFile.write(bytes, to: path)
    return try FactorModel(contentsOf: path)
}

@Suite("Hostile input to the data and model layer: a clean error naming file, line or field")
struct HostileDataTests {
    @Test("class 8: a UTF-8 byte-order mark is not part of the first column's name")
    func byteOrderMark() throws {
        let path = temporaryFile("\u{FEFF}user,item\nu1,i1\n")
        let file = try DelimitedFile(path: path)
        #expect(file.header == ["user", "item"])
        #expect(try file.column(named: "user") == 0)
        let bare = try DelimitedFile(path: temporaryFile("\u{FEFF}u1,i1\n"), hasHeader: false)
        #expect(try records(bare) == [["u1", "i1"]])
    }

    @Test("class 8: CR-only line endings end records, and lines are counted")
    func carriageReturnOnly() throws {
        let path = temporaryFile("user,item\r\ru1,i1\ru2,\"a\rb\"\ru3,i3")
        let file = try DelimitedFile(path: path)
        #expect(try records(file) == [["u1", "i1"], ["u2", "a\rb"], ["u3", "i3"]])
        var lines: [Int] = []
        try file.forEachRecord { lines.append($0.line) }
        #expect(lines == [3, 4, 6])
    }

    @Test("class 8: a value beyond the float range names the file and line, not a matrix cell")
    func hugeValue() throws {
        let path = temporaryFile("user,item,rating\nu1,i1,4\nu2,i2,1e40\n")
        let format = InteractionFormat(user: .name("user"), item: .name("item"), value: .name("rating"))
        #expect(throws: DataError.malformedRecord(path: path, line: 3,
                                                  reason: "value '1e40' is outside the 32-bit float range (±\(Float.greatestFiniteMagnitude))")) {
            try Interactions.load(path, format: format)
        }
    }

    @Test("class 5: a timestamp of 1e23 is a malformed record (an error, or skipped with the skip policy), not a trap")
    func hugeTimestamp() throws {
        let path = temporaryFile("user,item,time\nu1,i1,100\nu2,i2,1e23\nu3,i3,-9.3e18\n")
        let format = InteractionFormat(user: .name("user"), item: .name("item"), timestamp: .name("time"))
        #expect(throws: DataError.malformedRecord(path: path, line: 3, reason: "timestamp '1e23' is outside the 64-bit integer range")) {
            try Interactions.load(path, format: format)
        }
        let (log, report) = try Interactions.load(path, format: format, onMalformed: .skip)
        #expect(report.loaded == 1 && report.skipped == 2 && report.firstSkipped?.line == 3)
        #expect(log.timestamps == [100])
    }

    @Test("class 5: synthetic interactions with impossible sizes are an error, not a precondition failure; one item works")
    func syntheticSizes() throws {
        for (users, items, interactions) in [(0, 10, 10), (10, 0, 10), (10, 10, 9), (-1, 10, 10)] {
            #expect(throws: DataError.self, "\(users) users, \(items) items, \(interactions) interactions") {
                try Interactions.synthetic(users: users, items: items, interactions: interactions, seed: 1)
            }
        }
        #expect(throws: DataError.self) { try Interactions.synthetic(users: 5, items: 5, interactions: 20, tasteDimensions: 0, seed: 1) }
        let single = try Interactions.synthetic(users: 5, items: 1, interactions: 20, seed: 1)
        #expect(single.items.count == 1 && single.itemIndices.allSatisfy { $0 == 0 })
    }

    @Test("class 5: a hold-out fraction of 0, 1 or NaN is an error, not a precondition failure")
    func holdoutFraction() throws {
        let log = try Interactions.synthetic(users: 10, items: 10, interactions: 50, seed: 1)
        for fraction in [0.0, 1.0, .nan, -0.5, .infinity] {
            #expect(throws: DataError.self, "\(fraction)") { try log.randomHoldout(testFraction: fraction, seed: 1) }
        }
        #expect(try log.randomHoldout(testFraction: 0.3, seed: 1).test.count > 0)
    }

    @Test("class 2: CSR history offsets that decrease (checksums valid) are refused when the model is opened")
    func inconsistentHistory() throws {
        var bytes = hostileModel.bytes
        let offsets = ModelFileSurgery.section(bytes, "history.offsets")!.payload
        // Swap two consecutive row offsets of a user with entries: still 0 … nnz at the ends.
        bytes.store(Int64(bytes.count), at: offsets.lowerBound + 8 * 3)
        ModelFileSurgery.reseal(&bytes)
        do {
            _ = try openModel(bytes)
            Issue.record("an inconsistent history was accepted")
        } catch let ModelError.incompatibleFile(_, reason) {
            #expect(reason.contains("history.offsets") && reason.contains("decrease"), "\(reason)")
        }
    }

    @Test("class 2: metadata counts that disagree with the sections are refused")
    func metadataDisagrees() throws {
        var bytes = hostileModel.bytes
        let (offset, length) = bytes.withUnsafeBytes { (Int($0.load(at: 16) as UInt64), Int($0.load(at: 24) as UInt64)) }
        var json = String(decoding: bytes[offset ..< offset + length], as: UTF8.self)
        #expect(json.contains("\"users\":40"))
        json = json.replacing("\"users\":40", with: "\"users\":39")
        bytes.replaceSubrange(offset ..< offset + length, with: Array(json.utf8))
        ModelFileSurgery.reseal(&bytes)
        do {
            _ = try openModel(bytes)
            Issue.record("metadata disagreeing with the sections was accepted")
        } catch let ModelError.incompatibleFile(_, reason) {
            #expect(reason.contains("39 users") && reason.contains("hold 40"), "\(reason)")
        }
    }

    @Test("factor counts whose tables cannot fit in memory are refused, saying how much they need")
    func factorsTooLarge() throws {
        var log = Interactions()
        for user in 0 ..< 20 { for item in 0 ..< 10 where (user + item) % 3 == 0 { log.append(user: "u\(user)", item: "i\(item)") } }
        let catalog = try ModelCatalog(training: log)
        var als = ImplicitALS()
        als.factors = 200_000   // one 200,000² system alone is 160 GB
        #expect {
            try als.fit(catalog)
        } throws: { error in
            guard case let ModelError.invalidParameter(reason)? = error as? ModelError else { return false }
            return reason.contains("200000 factors do not fit") && reason.contains("factors × factors")
        }
        var bpr = BPR()
        bpr.factors = 200_000
        #expect(throws: ModelError.self) { try bpr.fit(catalog) }
    }
}

@Suite("Property: a mutated model file gives a clean error or the original's results")
struct ModelFileMutationTests {
    @Test("seeded mutations of an implicit-ALS model file", arguments: ModelFileSurgery.Mutation.allCases)
    func mutations(kind: ModelFileSurgery.Mutation) throws {
        let (model, original) = hostileModel
        let users = Array(0 ..< model.catalog.users.count)
        let expected = try model.recommend(users: users, k: 5, excludeSeen: true, filter: nil)
        var generator = SeededGenerator(seed: 0xF00D + UInt64(ModelFileSurgery.Mutation.allCases.firstIndex(of: kind)!))
        var refused = 0, equal = 0
        for _ in 0 ..< 60 {
            let bytes = ModelFileSurgery.mutate(original, kind, using: &generator)
            let loaded: FactorModel
            do { loaded = try openModel(bytes) } catch { refused += 1; continue }
            // Accepted: then it must be the same model (a flip in padding or a reserved field).
            #expect(loaded.catalog.users == model.catalog.users && loaded.catalog.items == model.catalog.items
                    && loaded.catalog.history == model.catalog.history)
            #expect(try loaded.recommend(users: users, k: 5, excludeSeen: true, filter: nil) == expected)
            equal += 1
        }
        #expect(refused + equal == 60)
        #expect(refused > 0, "no mutation of kind \(kind) was refused: the mutator is not mutating")
    }
}
