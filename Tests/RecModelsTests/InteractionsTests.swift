import RecKernels
@testable import RecModels
import Testing

/// MovieLens lives in ../shared (it may not be copied into the repository).
let sharedData = String(#filePath.prefix(upTo: #filePath.firstRange(of: "/Tests/")!.lowerBound)) + "/../shared/datasets/"

@Suite("Interactions: loading, id maps and splits")
struct InteractionsTests {
    @Test("external ids of any form map to dense indices and back")
    func idMaps() throws {
        let path = temporaryFile("user,item,rating,time\nalice,tt01,4.5,100\nbob,42,3,101\nalice,42,5,102\n")
        let (log, report) = try Interactions.load(path, format: InteractionFormat(user: .name("user"), item: .name("item"),
                                                                                  value: .name("rating"), timestamp: .name("time")))
        #expect(report == LoadReport(loaded: 3, skipped: 0))
        #expect(log.users.ids == ["alice", "bob"] && log.items.ids == ["tt01", "42"])
        #expect(log.userIndices == [0, 1, 0] && log.itemIndices == [0, 1, 1] && log.values == [4.5, 3, 5] && log.timestamps == [100, 101, 102])
        #expect(log.items.index(of: "42") == 1 && log.items.index(of: "nope") == nil && log.users[1] == "bob")
        #expect(throws: DataError.invalidOption("duplicate id 'a' in an id map")) { try IDMap(["a", "b", "a"]) }
    }

    @Test("a malformed record is an error naming its line, or skipped and counted")
    func malformed() throws {
        let path = temporaryFile("1\t10\t4\n2\t11\n3\t12\tfive\n4\t13\t2\n")
        let format = InteractionFormat(delimiter: "\t", hasHeader: false, user: .position(0), item: .position(1), value: .position(2))
        #expect(throws: DataError.malformedRecord(path: path, line: 2, reason: "expected at least 3 fields, found 2")) {
            try Interactions.load(path, format: format)
        }
        let (log, report) = try Interactions.load(path, format: format, onMalformed: .skip)
        #expect(log.count == 2 && report.skipped == 2 && report.firstSkipped?.line == 2)
        #expect(throws: DataError.missingColumn(path: path, column: "rating", available: ["1", "10", "4"])) {
            try Interactions.load(path, format: InteractionFormat(delimiter: "\t", user: .position(0), item: .position(1), value: .name("rating")))
        }
    }

    @Test("splits are deterministic for a seed, disjoint, and complete")
    func splits() throws {
        var log = Interactions()
        var generator = SeededGenerator(seed: 3)
        for user in 0 ..< 50 {
            for event in 0 ..< Int.random(in: 1 ... 30, using: &generator) {
                log.append(user: "u\(user)", item: "i\(Int.random(in: 0 ..< 40, using: &generator))", timestamp: Int64(event * 7 + user))
            }
        }
        let split = try log.randomHoldout(testFraction: 0.2, seed: 9)
        #expect(split.train.count + split.test.count == log.count)
        let again = try log.randomHoldout(testFraction: 0.2, seed: 9)
        #expect(again.test.userIndices == split.test.userIndices && again.test.itemIndices == split.test.itemIndices)
        for (u, positions) in log.positionsByUser().enumerated() where positions.count >= 2 {
            let held = split.test.userIndices.filter { $0 == u }.count
            #expect(held == min(positions.count - 1, max(1, Int((0.2 * Double(positions.count)).rounded()))))
        }
        let last = try log.leaveLastOut(2)
        for u in 0 ..< log.users.count {
            let trainTimes = (0 ..< last.train.count).filter { last.train.userIndices[$0] == u }.map { last.train.timestamps[$0] }
            let testTimes = (0 ..< last.test.count).filter { last.test.userIndices[$0] == u }.map { last.test.timestamps[$0] }
            #expect(testTimes.count == (trainTimes.count + testTimes.count > 2 ? 2 : 0))
            if let latestTrain = trainTimes.max(), let earliestTest = testTimes.min() { #expect(latestTrain <= earliestTest) }
        }
        let folds = try log.kFold(5, seed: 1)
        #expect(folds.map(\.test.count).reduce(0, +) == log.count)
        #expect(folds.allSatisfy { $0.train.count + $0.test.count == log.count })
        var untimed = Interactions()
        untimed.append(user: "u", item: "i")
        #expect(throws: DataError.invalidOption("leave-last-N needs timestamps, and these interactions have none")) { try untimed.leaveLastOut(1) }
        #expect(throws: DataError.self) { try log.kFold(1, seed: 0) }
    }

    @Test("MovieLens 100K loads with the canonical folds", .enabled(if: fileExists(sharedData + "ml-100k/u.data")))
    func movieLens() throws {
        let (log, report) = try Interactions.load(sharedData + "ml-100k/u.data", format: .movieLens100K)
        #expect(report.loaded == 100_000 && log.users.count == 943 && log.items.count == 1682)
        let split = try Interactions.trainTest(train: sharedData + "ml-100k/u1.base", test: sharedData + "ml-100k/u1.test", format: .movieLens100K)
        #expect(split.train.count == 80_000 && split.test.count == 20_000)
        #expect(split.train.users.count == split.test.users.count && split.train.items.count == split.test.items.count)
        let matrix = try split.train.matrix()
        #expect(matrix.rows == split.train.users.count && matrix.nonzeroCount == 80_000)
    }
}

func fileExists(_ path: String) -> Bool {
    (try? MappedFile(path: path)) != nil
}
