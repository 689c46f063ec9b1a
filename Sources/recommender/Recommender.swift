import Foundation
import ArgumentParser
import RecKernels
#if canImport(Glibc)
import Glibc
#endif

@main
struct RecommenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recommender",
        abstract: "A realtime recommender engine: exact top-K scoring on OpenBLAS and SIMD kernels.",
        subcommands: [Demo.self, Score.self, Train.self, Evaluate.self, Models.self, Recommend.self, Prompt.self, Batch.self, Benchmark.self, Text.self,
                      Serve.self, Stream.self,
                      Tune.self],
        defaultSubcommand: Demo.self)
}

extension SimilarityMetric: ExpressibleByArgument {}

enum BackendChoice: String, ExpressibleByArgument, CaseIterable {
    case automatic, blas, simd

    var backend: ScoringBackend {
        switch self {
        case .automatic: .automatic
        case .blas: .blas
        case .simd: .simd
        }
    }
}

/// Standard error, unbuffered, for progress and warnings while results go to standard output.
nonisolated(unsafe) let standardError = fdopen(2, "w")

/// Seconds since `start`, from a monotonic clock.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

func fixed(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }

/// Loads a table from a model file (`.rkm`, memory-mapped) or a NumPy `.npy` file.
func loadTable(_ path: String) throws -> EmbeddingTable {
    path.hasSuffix(".npy") ? try NumPyFile.read(path) : try EmbeddingTable(contentsOf: path)
}
