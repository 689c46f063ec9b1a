import ArgumentParser
import Foundation
import RecEngine
import RecKernels
import RecModels
import RecRegistry

/// Where the engine's models and pipelines come from.
struct StoreOptions: ParsableArguments {
    @Option(help: "Model store directory.") var store = "models"
    @Option(help: "Pipeline settings (JSON); default: one pipeline per served model.") var settings: String?

    func engine() throws -> Engine { try Engine(store: store, settings: settings) }
}

/// Manages the model store: list, add (train), activate, roll back, delete.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the versioned model store.",
        subcommands: [List.self, Add.self, Activate.self, Rollback.self, Delete.self, Push.self, Pull.self],
        defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List models, their versions, and which one is active.")
        @Option(help: "Model store directory.") var store = "models"
        @OptionGroup var registry: RegistryOptions

        func run() throws {
            if let location = registry.location { return try printRegistry(location) }
            let modelStore = try ModelStore(directory: store)
            let names = try modelStore.names()
            if names.isEmpty { print("no models in \(store)") }
            for name in names {
                let activeVersion = try modelStore.activeVersion(of: name)
                let active = activeVersion?.version
                // Open the active version as the engine would, so a file that cannot be served shows here.
                var problem = ""
                if let activeVersion {
                    do { _ = try modelStore.load(activeVersion) } catch { problem = "  ACTIVE VERSION FAILS TO LOAD: \(error)" }
                }
                print(name + problem)
                for version in try modelStore.versions(of: name) {
                    let marker = version.version == active ? "*" : " "
                    let metrics = version.metadata?.metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(fixed($0.value, 4))" }.joined(separator: ", ") ?? ""
                    print("  \(marker) v\(version.version)  \(version.kind)  \(fixed(Double(version.bytes) / 1e6, 2)) MB  data \(version.fingerprint.prefix(12))  \(metrics)")
                }
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Train a model on a data set and add it to the store as a new version.")
        @OptionGroup var data: DataOptions
        @OptionGroup var options: ModelOptions
        @Option(help: "Model store directory.") var store = "models"
        @Option(help: "The model's name in the store.") var name: String
        @Flag(help: "Make the new version the active one.") var activate = false
        @Option(help: "Hold out this fraction per user, train on the rest, and record the test metrics with the version.")
        var holdout: Double?
        @Option(name: .shortAndLong, help: "Cut-off for the recorded ranking metrics.") var k = 10
        @OptionGroup var registry: RegistryOptions

        func run() throws {
            guard let path = data.data else { throw ValidationError("give --data") }
            var log = Interactions()
            _ = try log.load(path, format: try data.interactionFormat, onMalformed: data.skipMalformed ? .skip : .fail)
            let kept = data.keep(log)
            var training = kept, metrics: [String: Double] = [:]
            var test: Interactions? = nil
            if let holdout {
                guard holdout > 0 && holdout < 1 else { throw ValidationError("--holdout must be between 0 and 1") }
                let split = try kept.randomHoldout(testFraction: holdout, seed: options.seed)
                (training, test) = (split.train, split.test)
            }
            let model = try options.train(try ModelCatalog(training: training), progress: progressPrinter(label: options.model))
            if let test {
                if options.isRatingModel, let factors = model as? FactorModel {
                    let rating = try Evaluation.rating(factors, test: test)
                    metrics = ["RMSE": rating.rmse, "MAE": rating.mae]
                } else {
                    metrics = Dictionary(uniqueKeysWithValues: try Evaluation.ranking(model, test: test, k: k).named)
                }
            }
            let version = try ModelStore(directory: store).add(model, name: name, fingerprint: training.fingerprint, metrics: metrics,
                                                               activate: activate)
            print("added \(name) v\(version.version) (\(version.kind))\(activate ? ", active" : "")"
                  + metrics.sorted { $0.key < $1.key }.map { "  \($0.key) \(fixed($0.value, 4))" }.joined())
            if let location = registry.location {
                let published = try ModelRegistry(location).push(version, from: try ModelStore(directory: store), activate: activate)
                print("published \(name) as registry v\(published.version)\(activate ? ", active" : "")")
            }
        }
    }

    struct Activate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Verify a version and make it the active one.")
        @Option(help: "Model store directory.") var store = "models"
        @Argument(help: "Model name.") var name: String
        @Argument(help: "Version number.") var version: Int
        @OptionGroup var registry: RegistryOptions

        func run() throws {
            if let location = registry.location {
                let activated = try ModelRegistry(location).activate(name: name, version: version)
                return print("\(name): registry v\(activated.version) is active")
            }
            let activated = try ModelStore(directory: store).activate(name: name, version: version)
            print("\(name): v\(activated.version) is active")
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-activate the version that was active before the current one.")
        @Option(help: "Model store directory.") var store = "models"
        @Argument(help: "Model name.") var name: String
        @OptionGroup var registry: RegistryOptions

        func run() throws {
            if let location = registry.location {
                return print("\(name): registry rolled back to v\(try ModelRegistry(location).rollback(name: name).version)")
            }
            print("\(name): rolled back to v\(try ModelStore(directory: store).rollback(name: name).version)")
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a version (not the active one unless --force), or a whole model.")
        @Option(help: "Model store directory.") var store = "models"
        @Argument(help: "Model name.") var name: String
        @Argument(help: "Version number; omit to delete every version.") var version: Int?
        @Flag(help: "Allow deleting the active version.") var force = false

        func run() throws {
            let modelStore = try ModelStore(directory: store)
            if let version {
                try modelStore.delete(name: name, version: version, force: force)
                print("deleted \(name) v\(version)")
            } else {
                try modelStore.delete(name: name)
                print("deleted \(name)")
            }
        }
    }
}

/// One request through a pipeline, from the command line.
struct Recommend: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recommend for a user, for a list of items, or for a text, through a pipeline; prints per-stage timings.")

    @OptionGroup var engine: StoreOptions
    @Option(help: "Pipeline name (default: the only one, or the first).") var pipeline: String?
    @Option(help: "A user id.") var user: String?
    @Option(help: "Items, comma-separated: recommend for this history, or with --similar, items like these.") var items: String?
    @Flag(help: "Treat --items as seeds for similar items rather than a history.") var similar = false
    @Option(help: "A text query.") var text: String?
    @Option(name: .shortAndLong, help: "Results.") var k: Int?

    func run() throws {
        let served = try engine.engine()
        let name = try pipelineName(served, pipeline)
        var request = RecommendationRequest(user: user, text: text, k: k)
        let list = items?.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } ?? []
        if similar { request.items = list } else { request.history = list.map { Event(item: $0) } }
        guard user != nil || !list.isEmpty || text != nil else { throw ValidationError("give --user, --items or --text") }
        let response = try served.pipelines[name]!.run(request, models: served.models)
        printResponse(response)
    }
}

func pipelineName(_ engine: Engine, _ requested: String?) throws -> String {
    if let requested {
        guard engine.pipelines[requested] != nil else {
            throw ValidationError("no pipeline '\(requested)' (have \(engine.pipelines.keys.sorted().joined(separator: ", ")))")
        }
        return requested
    }
    guard let first = engine.pipelines.keys.sorted().first else { throw ValidationError("the store serves no model: add one with 'recommender models add'") }
    return first
}

func printResponse(_ response: RecommendationResponse) {
    for (rank, item) in response.items.enumerated() {
        let details = item.metadata.map { fields in "  " + fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") } ?? ""
        print("\(rank + 1). \(item.item)  \(fixed(Double(item.score), 4))\(details)")
    }
    let stages = (Pipeline.stages + ["total"]).compactMap { stage in response.timings[stage].map { "\(stage) \(fixed($0, 0)) µs" } }
    print("[\(response.pipeline); models \(response.models.sorted { $0.key < $1.key }.map { "\($0.key) v\($0.value)" }.joined(separator: ", "))] " + stages.joined(separator: ", "))
    for note in response.notes { print("note: \(note)") }
}

/// The original project's interactive prompt: type a user id or a text, see results and timings.
struct Prompt: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Interactive prompt: type a user id, 'items: a,b,c', or any text; see results with per-stage timings. Empty line or EOF quits.")

    @OptionGroup var engine: StoreOptions
    @Option(help: "Pipeline for user ids and items.") var pipeline: String?
    @Option(help: "Pipeline for texts (a text-index pipeline).") var textPipeline: String?
    @Option(name: .shortAndLong, help: "Results.") var k = 10

    func run() throws {
        let served = try engine.engine()
        let main = try pipelineName(served, pipeline)
        let forText = textPipeline ?? served.pipelines.values.first { pipeline in pipeline.sources.contains { $0 is TextQuerySource } }?.name
        print("recommender prompt: pipelines \(served.pipelines.keys.sorted().joined(separator: ", ")). Type a user id, 'items: a,b', or text.")
        while true {
            print("> ", terminator: "")
            guard let line = readLine(), !line.trimmingCharacters(in: .whitespaces).isEmpty else { break }
            let input = line.trimmingCharacters(in: .whitespaces)
            do {
                let userPipeline = served.pipelines[main]!
                if input.hasPrefix("items:") {
                    let items = input.dropFirst(6).split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
                    printResponse(try userPipeline.run(RecommendationRequest(items: items, k: k), models: served.models))
                } else if !input.contains(" "), let model = try? served.models.snapshot().recommender(main), model.catalog.users.index(of: input) != nil {
                    printResponse(try userPipeline.run(RecommendationRequest(user: input, k: k), models: served.models))
                } else if let forText, let textPipeline = served.pipelines[forText] {
                    printResponse(try textPipeline.run(RecommendationRequest(text: input, k: k), models: served.models))
                } else {
                    print("'\(input)' is not a known user, and no text pipeline is served")
                }
            } catch {
                print("error: \(error)")
            }
        }
    }
}

/// Batch scoring of a whole user base to a file, streamed: bounded memory, progress with rate
/// and ETA.
struct Batch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recommend for every user of a served model and write CSV (user,rank,item,score) or JSON Lines, streamed.")

    @Option(help: "Model store directory.") var store = "models"
    @Option(help: "Model name in the store (its active version).") var model: String
    @Option(name: .shortAndLong, help: "Results per user.") var k = 10
    @Option(help: "Users per kernel call.") var batch = 4096
    @Option(name: .shortAndLong, help: "Output file: .csv or .jsonl.") var output: String

    func run() throws {
        let modelStore = try ModelStore(directory: store)
        guard let active = try modelStore.activeVersion(of: model) else { throw ValidationError("\(model) has no active version in \(store)") }
        guard case let .recommender(recommender) = try modelStore.load(active) else { throw ValidationError("\(model) is not a recommender") }
        guard let file = fopen(output, "w") else { throw ValidationError("cannot write \(output): \(String(cString: strerror(errno)))") }
        defer { fclose(file) }
        let jsonLines = output.hasSuffix(".jsonl")
        if !jsonLines { fputs("user,rank,item,score\n", file) }
        let users = recommender.catalog.users, items = recommender.catalog.items
        let clock = ContinuousClock(), start = clock.now
        try recommender.recommendAll(k: k, batch: batch) { first, results in
            var text = ""
            for row in 0 ..< results.queryCount {
                let user = users[first + row], list = results[row]
                if jsonLines {
                    text += "{\"user\":\(jsonString(user)),\"items\":[\(list.map { jsonString(items[$0.id]) }.joined(separator: ","))],\"scores\":[\(list.map { "\($0.score)" }.joined(separator: ","))]}\n"
                } else {
                    for (rank, item) in list.enumerated() { text += "\(csvField(user)),\(rank + 1),\(csvField(items[item.id])),\(item.score)\n" }
                }
            }
            guard fputs(text, file) >= 0 else { throw ValidationError("writing \(output) failed: \(String(cString: strerror(errno)))") }
            let done = first + results.queryCount, elapsed = seconds(since: start), rate = Double(done) / elapsed
            fputs("\rscored \(done)/\(users.count) users, \(fixed(rate, 0)) users/s, ETA \(fixed(Double(users.count - done) / rate, 1)) s   ", standardError)
        }
        fputs("\n", standardError)
        print("wrote \(users.count) users × top-\(k) from \(model) v\(active.version) to \(output)")
    }
}

func jsonString(_ text: String) -> String {
    let data = try! JSONEncoder().encode(text)
    return String(decoding: data, as: UTF8.self)
}

func csvField(_ text: String) -> String {
    text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
}
