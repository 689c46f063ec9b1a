#if canImport(Glibc)
import Glibc
#endif
import RecKernels
import Testing

/// The directory holding the test runner, where SwiftPM also puts the package's executables.
let binaries: String = {
    let runner = CommandLine.arguments[0]
    let directory = runner.contains("/") ? String(runner[..<runner.lastIndex(of: "/")!]) : "."
    // The runner may sit inside a bundle directory (…/debug/xPackageTests.xctest/…).
    if let bundle = directory.firstRange(of: ".xctest") {
        let inside = directory[..<bundle.lowerBound]
        return String(inside[..<inside.lastIndex(of: "/")!])
    }
    return directory
}()

/// Runs a shell command and returns its exit status and standard output.
func run(_ command: String) -> (status: Int32, output: String) {
    guard let pipe = popen(command + " 2>&1", "r") else { return (-1, "") }
    var output = ""
    var buffer = [CChar](repeating: 0, count: 4096)
    while fgets(&buffer, Int32(buffer.count), pipe) != nil {
        output += String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    let status = pclose(pipe)
    return ((status >> 8) & 0xFF, output)
}

@Suite("The recommender command line, run as a user runs it")
struct CLITests {
    @Test("the demo recovers the planted genres and reports its timings")
    func demo() throws {
        let (status, output) = run("'\(binaries)/recommender' demo --items 5000 --users 100 --genres 10 --catalog-path /tmp/cli-test-\(getpid()).rkm")
        #expect(status == 0, "\(output)")
        let line = output.split(separator: "\n").first { $0.hasPrefix("recommendations from the user's own genre") }
        let share = line.flatMap { Double($0.split(separator: " ").first { $0.hasSuffix("%") }!.dropLast()) }
        #expect(share != nil && share! > 90, "\(output)")
        #expect(output.contains("recommended for all 100 users"))
        unlink("/tmp/cli-test-\(getpid()).rkm")
    }

    @Test("score writes the top-K of every query, matching the library")
    func score() throws {
        let directory = "/tmp/cli-score-\(getpid())"
        mkdir(directory, 0o755)
        defer { _ = run("rm -rf '\(directory)'") }
        let items = EmbeddingTable.gaussian(rows: 300, dimensions: 8, seed: 1)
        let queries = EmbeddingTable.gaussian(rows: 25, dimensions: 8, seed: 2)
        try NumPyFile.write(items, to: directory + "/items.npy")
        try items.save(to: directory + "/items.rkm")
        try NumPyFile.write(queries, to: directory + "/queries.npy")
        let expected = try FlatIndex(items: items, metric: .cosine).search(queries, k: 3)
        for catalog in ["items.npy", "items.rkm"] {
            let (status, output) = run("'\(binaries)/recommender' score --items \(directory)/\(catalog) --queries \(directory)/queries.npy -k 3 --metric cosine --chunk 7")
            #expect(status == 0, "\(output)")
            let rows = output.split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
            #expect(rows.count == 25 * 3)
            for row in rows {
                let (q, rank, item) = (Int(row[0])!, Int(row[1])!, Int(row[2])!)
                #expect(expected[q][rank - 1].id == item)
            }
        }
        let (status, output) = run("'\(binaries)/recommender' score --items \(directory)/items.npy --queries \(directory)/missing.npy")
        #expect(status != 0 && output.contains("missing.npy"))
        let zero = run("'\(binaries)/recommender' score --items \(directory)/items.npy --queries \(directory)/queries.npy -k 0")
        #expect(zero.status != 0 && zero.output.contains("--k must be at least 1"))
    }
}
