import ArgumentParser
import RecKernels
#if canImport(Glibc)
import Glibc
#endif

/// Batch scoring: every query row against the whole catalog, streamed to CSV or JSON Lines in
/// chunks, so memory stays bounded whatever the number of queries.
struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score every query vector against a catalog and write the top-K items per query.",
        discussion: """
            Tables are NumPy .npy files (float32 or float64, C order) or model files written by this \
            engine (memory-mapped). Output rows are query index, rank (1 = best), item index, score.
            """)

    @Option(help: "Catalog table (.npy or model file).") var items: String
    @Option(help: "Query table (.npy or model file), one query per row.") var queries: String
    @Option(name: .shortAndLong, help: "Items per query.") var k = 10
    @Option(help: "innerProduct, cosine or squaredEuclidean.") var metric: SimilarityMetric = .innerProduct
    @Option(help: "automatic, blas or simd.") var backend: BackendChoice = .automatic
    @Option(help: "Worker threads.") var threads = FlatIndex.defaultThreads
    @Option(help: "Queries scored per chunk (bounds memory).") var chunk = 8192
    @Option(name: .shortAndLong, help: "Output file: .csv or .jsonl; - for standard output (CSV).") var output = "-"

    func validate() throws {
        guard k > 0 else { throw ValidationError("--k must be at least 1, got \(k)") }
        guard threads > 0, chunk > 0 else { throw ValidationError("--threads and --chunk must be positive") }
    }

    func run() throws {
        let start = ContinuousClock.now
        let catalog = try loadTable(items)
        let queryTable = try loadTable(queries)
        let index = try FlatIndex(items: catalog, metric: metric)
        guard queryTable.dimensions == catalog.dimensions else {
            throw ScoringError.dimensionMismatch(expected: catalog.dimensions, actual: queryTable.dimensions)
        }
        let jsonLines = output.hasSuffix(".jsonl")
        guard let file = output == "-" ? fdopen(1, "w") : fopen(output, "w") else {
            throw ValidationError("cannot open \(output) for writing: \(String(cString: strerror(errno)))")
        }
        var closed = false
        defer { if !closed { fclose(file) } }
        if !jsonLines { fputs("query,rank,item,score\n", file) }
        var done = 0
        while done < queryTable.rows {
            let count = min(chunk, queryTable.rows - done)
            let part = queryTable.gathering(rows: done ..< done + count)
            let results = try index.search(part, k: k, backend: backend.backend, threads: threads)
            var text = ""
            for q in 0 ..< count {
                let row = results[q]
                if jsonLines {
                    text += "{\"query\":\(done + q),\"items\":[\(row.map { "\($0.id)" }.joined(separator: ","))],\"scores\":[\(row.map { "\($0.score)" }.joined(separator: ","))]}\n"
                } else {
                    for (rank, item) in row.enumerated() { text += "\(done + q),\(rank + 1),\(item.id),\(item.score)\n" }
                }
            }
            guard fputs(text, file) >= 0 else { throw OutputError("writing \(output) failed: \(String(cString: strerror(errno)))") }
            done += count
            if output != "-" {
                let elapsed = seconds(since: start)
                let rate = Double(done) / elapsed
                fputs("\rscored \(done)/\(queryTable.rows) queries, \(fixed(rate, 0))/s, ETA \(fixed(Double(queryTable.rows - done) / rate, 1)) s   ", standardError)
            }
        }
        // The last chunk may still sit in stdio's buffer: a full disk (or /dev/full) shows up
        // only when it is flushed, so flush and close are checked too.
        let flushFailed = fflush(file) != 0 || ferror(file) != 0
        let flushError = errno
        closed = true
        let closeFailed = fclose(file) != 0
        if flushFailed || closeFailed {
            if output != "-" { fputs("\n", standardError) }
            throw OutputError("writing \(output == "-" ? "standard output" : output) failed: \(String(cString: strerror(flushFailed ? flushError : errno)))")
        }
        if output != "-" { fputs("\n", standardError) }
    }
}

/// A failure to write results: reported as an error (exit status 1), not a usage problem.
struct OutputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
