#if canImport(Glibc)
import Glibc
#endif
import Foundation
import RecModels
import Testing

@Suite("recommender tune and --params")
struct TuneCLITests {
    @Test("tune writes the best settings as JSON; evaluate, train and models add read them back with --params")
    func tuneThenParams() throws {
        let workspace = try SyntheticEventsWorkspace("tune")
        defer { workspace.remove() }
        let directory = workspace.directory, cli = workspace.cli, data = workspace.data

        // -o names a symbolic link: the link stays a link and its target gets the JSON (an atomic
        // rename over the link, as Foundation's `.atomic` does, would replace it; over /dev/null, the device).
        try FileManager.default.createSymbolicLink(atPath: "\(directory)/link.json", withDestinationPath: "\(directory)/ease.json")
        let tuned = run("\(cli) tune \(data) --model ease --trials 4 --space regularization=log:1:100 -o \(directory)/link.json")
        #expect(tuned.status == 0 && tuned.output.contains("trial 4/4") && tuned.output.contains("best NDCG@10"), "\(tuned.output)")
        let linkType = try FileManager.default.attributesOfItem(atPath: "\(directory)/link.json")[.type] as? FileAttributeType
        #expect(linkType == .typeSymbolicLink, "tune -o replaced the symbolic link")
        let json = try settingsFile("\(directory)/ease.json")
        #expect(json["model"] as? String == "ease")
        let lambda = (json["parameters"] as? [String: Double])?["regularization"]
        #expect(lambda.map { (1 ... 100).contains($0) } == true, "\(json)")

        let evaluated = run("\(cli) evaluate \(data) --model ease --params \(directory)/ease.json --quiet")
        #expect(evaluated.status == 0 && evaluated.output.contains("MRR@10"), "\(evaluated.output)")
        let trained = run("\(cli) train \(data) --model ease --params \(directory)/ease.json -o \(directory)/ease.rkm")
        #expect(trained.status == 0, "\(trained.output)")
        // The default space searches DAN's exponents and RDLAE's bound too; the trained model carries them.
        let saved = try EASEModel(contentsOf: "\(directory)/ease.rkm"), parameters = json["parameters"] as? [String: Double] ?? [:]
        #expect(saved.regularization == Float(lambda ?? 0))
        for (name, value, range) in [("itemNormalization", saved.itemNormalization, 0 ... 0.5), ("userNormalization", saved.userNormalization, 0 ... 1),
                                     ("relaxation", saved.relaxation, 0 ... 0.5)] {
            #expect(parameters[name].map { range.contains($0) && Float($0) == value } == true, "\(name): \(json)")
        }
        let added = run("\(cli) models add --store \(directory)/store \(data) --name e --model ease --params \(directory)/ease.json")
        #expect(added.status == 0 && added.output.contains("(ease)"), "\(added.output)")
        let mismatched = run("\(cli) evaluate \(data) --model als --params \(directory)/ease.json --quiet")
        #expect(mismatched.status != 0 && mismatched.output.contains("pass --model ease"), "\(mismatched.output)")
    }

    @Test("tune --model blend searches only the blend weight over fixed components; evaluate reads it back; weight 0 scores as the first component")
    func blendWeight() throws {
        let workspace = try SyntheticEventsWorkspace("tune-blend")
        defer { workspace.remove() }
        let directory = workspace.directory, cli = workspace.cli, data = workspace.data
        try Data(#"{"model": "ease", "parameters": {"regularization": 20}}"#.utf8).write(to: URL(fileURLWithPath: "\(directory)/ease.json"))
        try Data(#"{"model": "popularity", "parameters": {}}"#.utf8).write(to: URL(fileURLWithPath: "\(directory)/pop.json"))
        let components = "--blend-params \(directory)/ease.json \(directory)/pop.json"
        let tuned = run("\(cli) tune \(data) --model blend \(components) --trials 3 -o \(directory)/blend.json")
        #expect(tuned.status == 0 && tuned.output.contains("searching blendWeight") && tuned.output.contains("trial 3/3"), "\(tuned.output)")
        let json = try settingsFile("\(directory)/blend.json")
        #expect(json["model"] as? String == "blend")
        #expect((json["parameters"] as? [String: Double]).map { $0.count == 1 && (0 ... 1).contains($0["blendWeight"] ?? -1) } == true, "\(json)")
        let evaluated = run("\(cli) evaluate \(data) --model blend \(components) --params \(directory)/blend.json --quiet")
        #expect(evaluated.status == 0 && evaluated.output.contains("NDCG@10"), "\(evaluated.output)")

        /// The NDCG@10 column of an `evaluate` table.
        func ndcg(_ output: String) -> String? {
            let lines = output.split(separator: "\n").map { $0.split(separator: " ") }
            // Counted from the right: the header's "train s" is two words.
            guard let header = lines.first(where: { $0.contains("NDCG@10") }), let column = header.firstIndex(of: "NDCG@10"),
                  let row = lines.last, row.count > header.count - column else { return nil }
            return String(row[row.count - (header.count - column)])
        }
        let atZero = run("\(cli) evaluate \(data) --model blend \(components) --blend-weight 0 --quiet")
        let first = run("\(cli) evaluate \(data) --model ease --params \(directory)/ease.json --quiet")
        #expect(ndcg(atZero.output) != nil && ndcg(atZero.output) == ndcg(first.output), "\(atZero.output)\n\(first.output)")
        let one = run("\(cli) evaluate \(data) --model blend --blend-params \(directory)/ease.json --quiet")
        #expect(one.status != 0 && one.output.contains("two settings files"), "\(one.output)")
    }

    @Test("tune --validation-splits K scores a setting by its mean over K carved splits, the first being the single carve")
    func severalValidationSplits() throws {
        let workspace = try SyntheticEventsWorkspace("tune-splits")
        defer { workspace.remove() }
        let directory = workspace.directory, cli = workspace.cli, data = workspace.data
        let point = "--space regularization=choice:20 dropout=choice:0 itemNormalization=choice:0 userNormalization=choice:0 relaxation=choice:0"
        let single = run("\(cli) tune \(data) --model ease --trials 1 \(point) -o \(directory)/one.json")
        let three = run("\(cli) tune \(data) --model ease --trials 1 --validation-splits 3 \(point) -o \(directory)/three.json")
        #expect(single.status == 0 && three.status == 0, "\(single.output)\n\(three.output)")
        func validation(_ file: String) throws -> Double {
            let json = try settingsFile("\(directory)/\(file)")
            return json["validation"] as! Double
        }
        let line = three.output.split(separator: "\n").first { $0.contains("validation splits") }.map(String.init) ?? ""
        let numbers = line.split(separator: ":").last!.split(separator: " ").compactMap { Double($0) }
        #expect(numbers.count == 4, "\(three.output)")   // three splits, then the mean
        if numbers.count == 4 {
            #expect(abs(numbers[0] - (try validation("one.json"))) < 1e-6, "the first carve is the single carve: \(line)")
            #expect(Set(numbers[0 ..< 3]).count == 3, "the carves differ: \(line)")
            #expect(abs((numbers[0] + numbers[1] + numbers[2]) / 3 - (try validation("three.json"))) < 1e-5, "\(line)")
        }
    }

    @Test("tune --strategy halving races settings over growing iteration budgets and writes the budget the best reached")
    func successiveHalving() throws {
        let workspace = try SyntheticEventsWorkspace("halving")
        defer { workspace.remove() }
        let directory = workspace.directory, cli = workspace.cli, data = workspace.data
        // 9 settings at 1 iteration, the best 3 at 3, the best 1 at 9.
        let tuned = run("\(cli) tune \(data) --model als --factors 8 --iterations 9 --strategy halving --trials 9 --eta 3 --min-iterations 1 -o \(directory)/als.json")
        #expect(tuned.status == 0, "\(tuned.output)")
        #expect(tuned.output.components(separatedBy: " at 1 iterations ").count - 1 == 9, "\(tuned.output)")
        #expect(tuned.output.components(separatedBy: " at 3 iterations ").count - 1 == 3, "\(tuned.output)")
        #expect(tuned.output.contains("best NDCG@10") && tuned.output.contains("at 9 iterations after 13 trials"), "\(tuned.output)")
        let json = try settingsFile("\(directory)/als.json")
        #expect((json["parameters"] as? [String: Double])?["iterations"] == 9, "\(json)")
        let evaluated = run("\(cli) evaluate \(data) --model als --params \(directory)/als.json --quiet")
        #expect(evaluated.status == 0 && evaluated.output.contains("NDCG@10"), "\(evaluated.output)")
        let refused = run("\(cli) tune \(data) --model ease --strategy halving --trials 3 -o \(directory)/ease.json")
        #expect(refused.status != 0 && refused.output.contains("trained in iterations"), "\(refused.output)")
    }
}

/// The JSON object a `tune -o` file holds. - Throws: when it cannot be read or is not an object.
private func settingsFile(_ path: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
    return try #require(object as? [String: Any], "\(path) holds no JSON object")
}
