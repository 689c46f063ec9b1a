import ArgumentParser
import Dispatch
import Foundation
import RecEngine
import RecRegistry
import RecStreaming
#if canImport(Glibc)
import Glibc
#endif

/// Streaming mode: events in, fresh recommendations out — from Kafka, or replayed from a file.
struct Stream: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume user events, keep each user's recent history, publish fresh recommendations.",
        discussion: """
            With --brokers: events from a Kafka topic (JSON {user, item, type or weight, time}, keyed by user), \
            results to another, refused messages to a dead-letter topic; processes in one --group split the \
            partitions. Without: --replay FILE (JSON Lines or CSV/TSV events) through the same processing, \
            results as JSON lines to standard output or --output. SIGTERM or SIGINT finishes the batch in \
            flight, commits and exits 0.
            """)

    @Option(help: "Model store directory (its active versions are served, and followed while running).") var store = "models"
    @Option(help: "Pipeline settings (JSON); default: one pipeline per served model.") var settings: String?
    @Option(help: "The pipeline that scores (default: the only one).") var pipeline: String?
    @Option(name: .shortAndLong, help: "Results per user.") var k = 10
    @Option(help: "Events scored together in one micro-batch, at most.") var batchSize = 256
    @Option(help: "Milliseconds the first event of a batch waits for more.") var lingerMs = 5
    @Option(help: "Kernel threads for a micro-batch that closed before it was full (0: all cores, as a full one).")
    var partialBatchThreads = 1
    @Flag(help: "Score each micro-batch on the polling thread, after preparing it (default for batch sizes above 32).")
    var serialScoring = false
    @Flag(help: "Score micro-batches on threads of their own while the next is prepared (default for batch sizes up to 32).")
    var overlapScoring = false
    @Option(help: "Micro-batches scored at once, one kernel thread each (1: one at a time, on every core).")
    var concurrentBatches = 2
    @Option(help: "Recent events kept per user.") var history = 50
    @Option(help: "Users kept per partition (least recently updated dropped first).") var usersPerPartition = 200_000
    @Option(help: "Messages larger than this many bytes go to the dead-letter topic.") var maxEventBytes = 65_536

    @Option(help: "Kafka bootstrap servers, HOST:PORT[,HOST:PORT].") var brokers: String?
    @Option(help: "Events topic.") var events = "events"
    @Option(help: "Results topic.") var results = "recommendations"
    @Option(help: "Dead-letter topic (default: <events>.dead-letter).") var deadLetter: String?
    @Option(help: "Consumer group.") var group = "recommender-stream"
    @Option(help: "Directory for per-partition user state (default: <store>/.stream-state); share it between the group's processes.")
    var stateDir: String?
    @Option(help: "Milliseconds between state snapshots and offset commits.") var checkpointMs = 1000
    @Option(help: "Consumer session timeout, milliseconds (how long before a dead process's partitions move).")
    var sessionTimeoutMs = 10_000
    @Option(help: "Extra librdkafka setting for consumer and producer, KEY=VALUE (repeatable).") var kafka: [String] = []
    @Option(help: "At exit, write where events' time went, stage by stage (JSON: count, mean, p50, p99 ms per stage), to this file.")
    var stageReport: String?

    @OptionGroup var registry: RegistryOptions
    @Option(help: "Replay this events file instead of consuming from Kafka.") var replay: String?
    @Option(help: "Replay pacing: event times run this many times faster (default: as fast as possible).") var speedup: Double?
    @Option(help: "Replay at most this many events.") var limit: Int?
    @Option(name: .shortAndLong, help: "Replay results file (JSON lines; default standard output).") var output: String?
    @Flag(help: "With --replay: time only the kernel work for the same micro-batches (fold-in, one GEMM + top-K per batch) and print events/s.")
    var kernelBound = false

    func validate() throws {
        if brokers == nil && replay == nil { throw ValidationError("give --brokers HOST:PORT or --replay FILE") }
        if brokers != nil && replay != nil { throw ValidationError("give --brokers or --replay, not both") }
        if batchSize < 1 || k < 1 || history < 1 { throw ValidationError("--batch-size, -k and --history must be at least 1") }
        if serialScoring && overlapScoring { throw ValidationError("give --serial-scoring or --overlap-scoring, not both") }
    }

    func run() throws {
        var options = StreamOptions()
        options.pipeline = pipeline
        options.k = k
        options.batchSize = batchSize
        options.lingerMilliseconds = lingerMs
        options.partialBatchThreads = partialBatchThreads > 0 ? partialBatchThreads : nil
        options.historyPerUser = history
        options.overlapScoring = serialScoring ? false : overlapScoring ? true : nil
        options.concurrentBatches = max(1, concurrentBatches)
        options.usersPerPartition = usersPerPartition
        options.maximumEventBytes = maxEventBytes
        options.checkpointMilliseconds = checkpointMs
        let engineBox = EngineBox()
        let follower = try registry.location.map { try prepareFollower($0, store: store, engine: { engineBox.engine }) }
        let engine = try Engine(store: store, settings: settings)
        engineBox.engine = engine
        follower?.start()
        defer { follower?.stop() }
        let processor = MicroBatchProcessor(options: options, scorer: try StreamScorer(engine: engine, pipeline: pipeline, storeDirectory: store))

        if let replay, kernelBound {
            let model = try engine.models.snapshot().recommender(try modelName(of: processor.scorer.pipeline, engine: engine))
            let bound = try KernelBound.measure(path: replay, model: model, options: options, limit: limit)
            print("kernel-only bound: \(bound.events) events, \(bound.users) user scorings in \(fixed(bound.seconds, 3)) s: "
                  + "\(Int(bound.eventsPerSecond)) events/s (batch size \(batchSize)), \(fixed(bound.cores, 2)) cores busy")
            return
        }
        if let replay {
            let sink: FileHandle = try output.map {
                // Opened in place, not made with FileManager.createFile: that writes a temporary
                // file and renames it over the path, so `--output /dev/null` replaced the device.
                let descriptor = open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                guard descriptor >= 0 else { throw ValidationError("--output \($0): cannot write: \(String(cString: strerror(errno)))") }
                return FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            } ?? .standardOutput
            var buffer = Data()
            let summary = try Replay(processor: processor).run(path: replay, speedup: speedup, limit: limit) { line in
                buffer.append(contentsOf: line.utf8)
                buffer.append(10)
                if buffer.count > 1 << 16 { sink.write(buffer); buffer.removeAll(keepingCapacity: true) }
            }
            sink.write(buffer)
            for sample in summary.invalidSamples { logLine("refused: \(sample)") }
            logLine("replayed \(summary.events) events (\(summary.invalid) refused) into \(summary.results) results in "
                  + "\(fixed(summary.seconds, 2)) s: \(Int(Double(summary.events) / max(summary.seconds, 1e-9))) events/s")
            return
        }

        var extra = ["session.timeout.ms": String(sessionTimeoutMs), "heartbeat.interval.ms": String(max(100, sessionTimeoutMs / 6))]
        var producerExtra: [String: String] = [:]
        for setting in kafka {
            let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("--kafka \(setting): expected KEY=VALUE") }
            extra[parts[0]] = parts[1]
            producerExtra[parts[0]] = parts[1]
        }
        var configuration = KafkaStreamConfiguration(brokers: brokers!, eventsTopic: events, resultsTopic: results, deadLetterTopic: deadLetter,
                                                     group: group, stateDirectory: stateDir ?? "\(store)/.stream-state")
        configuration.consumerSettings = extra
        configuration.producerSettings = producerExtra
        let stream = try KafkaStream(configuration: configuration, processor: processor)
        stream.log = { logLine("stream: \($0)") }

        let stop = StopRequest()
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.request() }
            source.resume()
            sources.append(source)
        }
        logLine("stream: librdkafka \(librdkafkaVersion); \(events) → \(results) (dead letters: \(configuration.deadLetterTopic)), group \(group), "
              + "pipeline \(processor.scorer.pipeline), batches of \(batchSize) / \(lingerMs) ms")
        try stream.run(until: stop)
        if let stageReport { try stream.stages.reportJSON().write(to: URL(fileURLWithPath: stageReport)) }
        let counters = stream.counters
        logLine("stream: stopped after \(counters.events) events, \(counters.deadLetters) dead letters, \(counters.results) results "
              + "in \(counters.batches) batches (\(counters.preparedWhileScoring) prepared while the one before was scoring)")
        _ = sources
    }
}

/// One line to standard error, written at once (not buffered: the log of a process that is
/// killed must still be there).
private func logLine(_ line: String) {
    FileHandle.standardError.write(Data((line.hasSuffix("\n") ? line : line + "\n").utf8))
}

/// The model a pipeline scores with: the pipeline's own name for default pipelines.
private func modelName(of pipeline: String, engine: Engine) throws -> String {
    let served = engine.models.served.map(\.name)
    if served.contains(pipeline) { return pipeline }
    guard let first = served.first(where: { $0 != "popular" }) else { throw ValidationError("no model served") }
    return first
}
