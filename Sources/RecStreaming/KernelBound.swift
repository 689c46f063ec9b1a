import Foundation
import RecEngine
import RecKernels
import RecModels

/// The kernel-only bound for a stream's work: the same micro-batches of the same events, but
/// only the numeric core runs — each user's history folded in (item factors fixed), the batch's
/// user vectors scored against the catalog with the model's own search (one GEMM with a fused
/// top-K; for small batches the exact scan of the compressed item table its file carries, as the
/// engine does) that leaves out each user's history. No parsing, no broker, no pipeline stages: what the stream processor would
/// reach if everything around the kernel were free. Benchmarks report the processor's rate as a
/// fraction of this one, timed in the same run.
public struct KernelBound {
    /// Events and the seconds the kernel work took.
    public struct Measurement: Sendable {
        /// Events processed.
        public var events: Int
        /// Users scored (one per user per batch).
        public var users: Int
        /// Seconds of kernel work (fold-in and search), excluding reading the file.
        public var seconds: Double
        /// CPU seconds (user + system, all threads of the process) spent in that work.
        public var cpuSeconds: Double = 0
        /// Cores kept busy on average while it ran.
        public var cores: Double { cpuSeconds / max(seconds, 1e-12) }
        /// Events per second.
        public var eventsPerSecond: Double { Double(events) / max(seconds, 1e-12) }
    }

    /// Times the bound for the events of `path` (as ``Replay`` reads them), in micro-batches of
    /// `options.batchSize`, against `model` (a factor model).
    ///
    /// - Throws: when the model is not a factor model or the file cannot be read.
    public static func measure(path: String, model: any Recommender, options: StreamOptions, limit: Int? = nil) throws -> Measurement {
        guard let factors = model as? FactorModel else {
            throw InvalidEvent(reason: "the kernel-only bound needs a factor model (ALS, BPR, MF); this one is \(type(of: model))")
        }
        // Read the batches first, so only the kernel is timed.
        var batches: [[PendingEvent]] = [[]]
        let collect = MicroBatchCollector(options: options)
        try collect.read(path: path, limit: limit) { batches[batches.count - 1].append($0); if batches[batches.count - 1].count >= options.batchSize { batches.append([]) } }
        // The index the model itself searches with: with the compressed item table its file
        // carries (small batches scan it, as the engine's batch path does), so bound and
        // processor do the same kernel work.
        let exact = try FlatIndex(items: factors.itemFactors, metric: .innerProduct)
        let index = try factors.compressedItems.map { try exact.attaching($0) } ?? exact
        let catalog = factors.catalog
        let state = PartitionState(historyPerUser: options.historyPerUser, maximumUsers: options.usersPerPartition)
        var measurement = Measurement(events: 0, users: 0, seconds: 0)
        for batch in batches where !batch.isEmpty {
            let start = ContinuousClock.now
            let cpuStart = processCPUSeconds()
            var order: [String] = []
            var seen = Set<String>()
            for pending in batch {
                state.apply(pending.userEvent.event, user: pending.userEvent.user, offset: pending.offset)
                if seen.insert(pending.userEvent.user).inserted { order.append(pending.userEvent.user) }
            }
            var vectors = EmbeddingTable(rows: order.count, dimensions: factors.itemFactors.dimensions)
            var exclusions: [[Int]] = []
            try vectors.withUnsafeMutableBufferPointer { target in
                for (row, user) in order.enumerated() {
                    let history = state.events(of: user).compactMap { event in catalog.items.index(of: event.item).map { ($0, event.weight ?? 1) } }
                    exclusions.append(history.map(\.0))
                    guard !history.isEmpty else { continue }
                    let vector = try factors.foldIn(history: history.map(\.0), weights: history.map(\.1))
                    for f in vector.indices { target[row * vector.count + f] = vector[f] }
                }
            }
            _ = try index.search(vectors, k: options.k, excluding: try ExcludedItems(exclusions))
            let elapsed = ContinuousClock.now - start
            measurement.seconds += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            measurement.cpuSeconds += processCPUSeconds() - cpuStart
            measurement.events += batch.count
            measurement.users += order.count
        }
        return measurement
    }
}

/// User + system CPU seconds this process (all its threads) has used so far.
func processCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// Reads an events file into ``PendingEvent``s the way ``Replay`` does.
struct MicroBatchCollector {
    let options: StreamOptions

    func read(path: String, limit: Int?, _ each: (PendingEvent) -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw InvalidEvent(reason: "\(path): cannot open") }
        defer { try? handle.close() }
        let decoder = EventDecoder(options: options)
        let isJSON = path.hasSuffix(".jsonl") || path.hasSuffix(".json") || path.hasSuffix(".ndjson")
        var layout: DelimitedLayout?
        var lineNumber: Int64 = 0, count = 0
        for line in LineReader(handle) {
            lineNumber += 1
            if line.isEmpty { continue }
            let decoded: Result<UserEvent, InvalidEvent>
            if isJSON { decoded = decoder.decode(Array(line.utf8)) } else if let layout { decoded = decoder.decode(layout.fields(line)) } else {
                layout = DelimitedLayout(firstLine: line)
                if layout!.hasHeader { continue }
                decoded = decoder.decode(layout!.fields(line))
            }
            guard case let .success(event) = decoded else { continue }
            each(PendingEvent(partition: 0, offset: lineNumber, userEvent: event))
            count += 1
            if let limit, count >= limit { return }
        }
    }
}
