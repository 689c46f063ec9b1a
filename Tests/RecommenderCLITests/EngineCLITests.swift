#if canImport(Glibc)
import Glibc
#endif
import RecModels
import Testing

/// A fresh directory `/tmp/cli-<label>-<pid>` holding a synthetic events CSV (`events.csv`), with
/// the quoted CLI path and the arguments that read the events. ``remove()`` deletes the directory.
struct SyntheticEventsWorkspace {
    let directory: String
    let cli: String
    /// `--format csv --data <directory>/events.csv --value-column value`.
    let data: String
    /// The events written.
    let log: Interactions

    init(_ label: String) throws {
        directory = "/tmp/cli-\(label)-\(getpid())"
        mkdir(directory, 0o755)
        log = try Interactions.synthetic(users: 150, items: 80, interactions: 2500, seed: 4)
        var csv = "user,item,value\n"
        for e in 0 ..< log.count { csv += "\(log.users[Int(log.userIndices[e])]),\(log.items[Int(log.itemIndices[e])]),1\n" }
        let file = fopen(directory + "/events.csv", "w")!
        fputs(csv, file)
        fclose(file)
        cli = "'\(binaries)/recommender'"
        data = "--format csv --data \(directory)/events.csv --value-column value"
    }

    func remove() { _ = run("rm -rf '\(directory)'") }
}

@Suite("The engine from the command line")
struct EngineCLITests {
    @Test("models add, list, recommend, activate, roll back, prompt and batch scoring")
    func storeWorkflow() throws {
        let workspace = try SyntheticEventsWorkspace("engine")
        defer { workspace.remove() }
        let directory = workspace.directory, log = workspace.log, cli = workspace.cli, data = workspace.data
        let store = "--store \(directory)/store"

        #expect(run("\(cli) models add \(store) \(data) --name home --model als --factors 8 --iterations 3 --activate").status == 0)
        let evaluated = run("\(cli) models add \(store) \(data) --name home --model bpr --factors 8 --iterations 3 --holdout 0.2")
        #expect(evaluated.status == 0 && evaluated.output.contains("NDCG@10"), "\(evaluated.output)")
        #expect(run("\(cli) models add \(store) \(data) --name pop --model popularity --activate").status == 0)
        let listing = run("\(cli) models list \(store)")
        #expect(listing.status == 0 && listing.output.contains("* v1  als") && listing.output.contains("  v2  bpr"), "\(listing.output)")
        #expect(listing.output.split(separator: "\n").first { $0.contains("v2  bpr") }?.contains("NDCG@10") == true, "\(listing.output)")

        let user = log.users[0]
        let first = run("\(cli) recommend \(store) --pipeline home --user \(user) -k 3")
        #expect(first.status == 0 && first.output.contains("[home; models home v1]") && first.output.contains("similarity"), "\(first.output)")
        #expect(first.output.split(separator: "\n").filter { $0.hasPrefix("1. ") || $0.hasPrefix("2. ") || $0.hasPrefix("3. ") }.count == 3)

        #expect(run("\(cli) models activate \(store) home 2").output.contains("v2 is active"))
        #expect(run("\(cli) recommend \(store) --pipeline home --user \(user) -k 3").output.contains("[home; models home v2]"))
        #expect(run("\(cli) models rollback \(store) home").output.contains("rolled back to v1"))
        let refused = run("\(cli) models delete \(store) home 1")
        #expect(refused.status != 0 && refused.output.contains("active"), "\(refused.output)")

        let prompt = run("printf '\(user)\\nitems: \(log.items[1]),\(log.items[2])\\n\\n' | \(cli) prompt \(store) --pipeline home -k 2")
        #expect(prompt.status == 0 && prompt.output.components(separatedBy: "[home; models home v1]").count == 3, "\(prompt.output)")

        let batch = run("\(cli) batch \(store) --model home -k 4 -o \(directory)/all.csv")
        #expect(batch.status == 0, "\(batch.output)")
        let lines = run("cat \(directory)/all.csv").output.split(separator: "\n")
        #expect(lines.first == "user,rank,item,score" && lines.count == 1 + 150 * 4)
    }

    @Test("several processes adding to one store at once: every version is kept, each number once")
    func concurrentWriters() throws {
        let directory = "/tmp/cli-writers-\(getpid())"
        mkdir(directory, 0o755)
        defer { _ = run("rm -rf '\(directory)'") }
        var csv = "user,item\n"
        for user in 0 ..< 40 { for item in 0 ..< 30 where (user * 7 + item) % 4 == 0 { csv += "u\(user),i\(item)\n" } }
        let file = fopen(directory + "/events.csv", "w")!
        fputs(csv, file)
        fclose(file)
        let add = "'\(binaries)/recommender' models add --store \(directory)/store --format csv --data \(directory)/events.csv --name shared --model popularity"
        // Six writers started together by xargs (which reaps them with waitpid: a shell's `wait`
        // can hang here, since the test process blocks SIGCHLD); each writes its result.
        let writers = 6
        let command = "seq 0 \(writers - 1) | xargs -P \(writers) -I{} sh -c '\(add) > \(directory)/out{}.txt 2>&1; echo $? >> \(directory)/out{}.txt'"
        #expect(run(command).status == 0)
        var added: [String] = []
        for n in 0 ..< writers {
            let output = run("cat \(directory)/out\(n).txt").output
            #expect(output.hasSuffix("0\n"), "writer \(n): \(output)")
            added += output.split(separator: "\n").filter { $0.hasPrefix("added shared v") }.map(String.init)
        }
        let numbers = added.compactMap { line in line.split(separator: " ").dropFirst(2).first.map { String($0.dropFirst()) } }.compactMap { Int($0) }
        #expect(numbers.sorted() == Array(1 ... writers), "\(added)")
        let listed = run("'\(binaries)/recommender' models list --store \(directory)/store").output
        for version in 1 ... writers { #expect(listed.contains("v\(version) "), "\(listed)") }
    }
}
