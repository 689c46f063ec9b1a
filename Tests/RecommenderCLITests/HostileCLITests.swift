#if canImport(Glibc)
import Glibc
#endif
@testable import RecKernels
import Testing

/// Runs a command line under a time limit and reports how it ended: the exit status (128 + n
/// for a signal, 124 for the time limit), so a trap is never mistaken for success.
func runChecked(_ command: String, seconds: Int = 60) -> (status: Int32, output: String) {
    let (_, output) = run("(timeout \(seconds) \(command)) 2>&1; echo \"exit=$?\"")
    // The status is what follows the last "exit=" (a progress line may precede it unterminated).
    guard let marker = output.ranges(of: "exit=").last else { return (-1, output) }
    let digits = output[marker.upperBound...].prefix { $0.isNumber }
    return (Int32(digits) ?? -1, output)
}

/// Expects a clean refusal: exit status 1 (an error) or 64 (ArgumentParser's usage error), not a
/// signal (128 + n) or the time limit (124), and `message` in the output.
func expectRefused(_ command: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let (status, output) = runChecked(command)
    #expect(status == 1 || status == 64, "exit \(status): \(output)", sourceLocation: sourceLocation)
    #expect(output.contains(message), "\(output)", sourceLocation: sourceLocation)
}

@Suite("The command line refuses hostile input cleanly (issue 9's hand-made cases)")
struct HostileCLITests {
    let cli = "'\(binaries)/recommender'"

    func directory() -> String {
        let path = "/tmp/cli-hostile-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        mkdir(path, 0o755)
        return path
    }

    @Test("score: a header integer ≥ 2^63 with the CRC recomputed, an overflowing .npy shape, a FIFO: errors naming the file")
    func hostileFiles() throws {
        let dir = directory()
        defer { _ = run("rm -rf '\(dir)'") }
        try EmbeddingTable.gaussian(rows: 20, dimensions: 4, seed: 1).save(to: dir + "/items.rkm")
        try NumPyFile.write(EmbeddingTable.gaussian(rows: 3, dimensions: 4, seed: 2), to: dir + "/queries.npy")
        var bytes = try MappedFile(path: dir + "/items.rkm").withUnsafeBytes { Array($0) }
        bytes.store(UInt64(1) << 63, at: ModelFileFormat.headerSize + 56)  // the section's payload offset
        bytes.store(UInt32(0), at: 40)
        bytes.store(bytes[0 ..< ModelFileFormat.headerSize + ModelFileFormat.entrySize].withUnsafeBytes { Kernels.crc32c($0) }, at: 40)
        try AtomicFile.write(bytes, to: dir + "/huge.rkm")
        expectRefused("\(cli) score --items \(dir)/huge.rkm --queries \(dir)/queries.npy", "\(dir)/huge.rkm: section 'embeddings' is invalid")

        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4611686018427387904), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        try AtomicFile.write(NumPyFile.magic + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8) + [UInt8](repeating: 0, count: 64),
                             to: dir + "/shape.npy")
        expectRefused("\(cli) score --items \(dir)/items.rkm --queries \(dir)/shape.npy", "\(dir)/shape.npy: unsupported .npy content")

        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        expectRefused("\(cli) score --items \(dir)/fifo --queries \(dir)/queries.npy", "\(dir)/fifo: is a FIFO (named pipe), expected a regular file")
    }

    @Test("score: k = 10^12 is bounded by the catalog; huge vectors and a full disk are errors, not exit 0")
    func scoreSizesAndOutput() throws {
        let dir = directory()
        defer { _ = run("rm -rf '\(dir)'") }
        try NumPyFile.write(EmbeddingTable.gaussian(rows: 20, dimensions: 4, seed: 1), to: dir + "/items.npy")
        try NumPyFile.write(EmbeddingTable.gaussian(rows: 3, dimensions: 4, seed: 2), to: dir + "/queries.npy")
        for k in ["1000000000000", "\(Int.max)"] {
            let (status, output) = runChecked("\(cli) score --items \(dir)/items.npy --queries \(dir)/queries.npy -k \(k)")
            #expect(status == 0, "\(output)")
            #expect(output.split(separator: "\n").filter { $0.first?.isNumber == true }.count == 3 * 20, "every item once per query")
        }
        let big = Float.greatestFiniteMagnitude
        try NumPyFile.write(try EmbeddingTable([[big, big, 0, 0], [1, 1, 1, 1]]), to: dir + "/huge.npy")
        expectRefused("\(cli) score --items \(dir)/items.npy --queries \(dir)/huge.npy", "query 0: scores could reach")
        expectRefused("\(cli) score --items \(dir)/items.npy --queries \(dir)/queries.npy -o /dev/full", "writing /dev/full failed")
    }

    @Test("evaluate: --split holdout:0|1|nan, last:1e30, kfold:nan are refused; a 1e23 timestamp is an error or skipped")
    func evaluateArguments() throws {
        let dir = directory()
        defer { _ = run("rm -rf '\(dir)'") }
        var csv = "user,item,time\n"
        for u in 0 ..< 30 { for i in 0 ..< 6 { csv += "u\(u),i\((u + i * 7) % 40),\(1000 + i)\n" } }
        let data = dir + "/events.csv"
        try AtomicFile.write(Array(csv.utf8), to: data)
        let base = "\(cli) evaluate --data \(data) --time-column time --model popularity"
        for split in ["holdout:0", "holdout:1", "holdout:nan"] {
            expectRefused("\(base) --split \(split)", "--split holdout:FRACTION needs a fraction strictly between 0 and 1")
        }
        expectRefused("\(base) --split last:1e30", "--split last:N needs a whole number N ≥ 1, got '1e30'")
        expectRefused("\(base) --split kfold:nan", "--split kfold:K needs a whole number K ≥ 2, got 'nan'")
        #expect(runChecked("\(base) --split last:1").status == 0)

        let bad = dir + "/bad.csv"
        try AtomicFile.write(Array((csv + "u1,i1,1e23\n").utf8), to: bad)
        expectRefused("\(cli) evaluate --data \(bad) --time-column time --model popularity --split last:1",
                      "\(bad):182: timestamp '1e23' is outside the 64-bit integer range")
        let (status, output) = runChecked("\(cli) evaluate --data \(bad) --time-column time --model popularity --split last:1 --skip-malformed")
        #expect(status == 0 && output.contains("skipped 1 malformed records (first: line 182"), "\(output)")
    }

    @Test("benchmark: --users 0 and --k 0 are refused before any work, not summarized")
    func benchmarkArguments() {
        expectRefused("\(cli) benchmark --users 0", "must be at least 1")
        expectRefused("\(cli) benchmark --k 0", "--k must be at least 1, got 0")
    }
}
