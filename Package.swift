// swift-tools-version: 6.1
// A realtime recommender engine: a numeric core (contiguous Float tables, OpenBLAS and SIMD
// scoring, fused top-K) and what puts it to work.
import PackageDescription

let package = Package(
    name: "recommender",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RecKernels", targets: ["RecKernels"]),
        .library(name: "RecModels", targets: ["RecModels"]),
        .library(name: "RecEngine", targets: ["RecEngine"]),
        .library(name: "RecText", targets: ["RecText"]),
        .library(name: "RecTextPostgres", targets: ["RecTextPostgres"]),
        .executable(name: "recommender", targets: ["recommender"]),
        .executable(name: "recommender-bench", targets: ["RecBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenBLAS (CBLAS) and LAPACKE from Debian's libopenblas-dev and liblapacke-dev.
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        // SIMD kernels with per-function target attributes and run-time CPU dispatch.
        .target(name: "CRecKernels"),
        .target(
            name: "RecKernels",
            dependencies: ["COpenBLAS", "CRecKernels"]
        ),
        .target(
            name: "RecModels",
            dependencies: ["RecKernels"]
        ),
        // Content-based recommendation from text: tokenizer, TF-IDF, LSI, word2vec.
        .target(
            name: "RecText",
            dependencies: ["RecKernels", "RecModels"]
        ),
        // libpq (PostgreSQL's C client) from Debian's libpq-dev.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // Documents from a PostgreSQL table: its own target so RecText users need not link libpq.
        .target(
            name: "RecTextPostgres",
            dependencies: ["RecText", "CLibPQ"]
        ),
        // The engine: pipelines of six stages over served models, settings, the model store.
        .target(
            name: "RecEngine",
            dependencies: ["RecKernels", "RecModels", "RecText"]
        ),
        .executableTarget(
            name: "recommender",
            dependencies: [
                "RecKernels",
                "RecModels",
                "RecText",
                "RecEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The hardware-sizing benchmark: kernels against the bare OpenBLAS call, training speed,
        // and text models against scikit-learn and gensim, each in the same run.
        .executableTarget(
            name: "RecBench",
            dependencies: [
                "RecKernels",
                "RecModels",
                "RecText",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/RecBench"
        ),
        .testTarget(
            name: "RecTextTests",
            dependencies: ["RecText", "RecTextPostgres", "RecKernels", "RecModels"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "RecKernelsTests",
            dependencies: ["RecKernels", "CRecKernels"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "RecModelsTests",
            dependencies: ["RecModels", "RecKernels"]
        ),
        .testTarget(
            name: "RecEngineTests",
            dependencies: ["RecEngine", "RecModels", "RecKernels", "RecText"]
        ),
        .testTarget(
            name: "RecommenderCLITests",
            dependencies: ["RecKernels", "RecModels", "recommender"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Fuzz targets (libFuzzer), one per parser a user or a file can reach. Declared only when
// RECOMMENDER_FUZZ is set: they link libFuzzer's driver, so scripts/fuzz builds them in their own
// scratch path with -sanitize=fuzzer,address. Seeds: Fuzz/corpus/<target>.
if Context.environment["RECOMMENDER_FUZZ"] != nil {
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/FuzzSupport"))
    let fuzzTargets: [(String, [Target.Dependency])] = [
        ("FuzzModelFile", ["RecKernels", "RecModels"]),
        ("FuzzTextIndex", ["RecKernels", "RecText"]),
        ("FuzzStoreState", ["RecEngine"]),
        ("FuzzNumPy", ["RecKernels"]),
        ("FuzzDelimited", ["RecModels"]),
        ("FuzzEventJSON", ["RecEngine"]),
        ("FuzzSettingsJSON", ["RecEngine", "RecModels", "RecText"]),
    ]
    for (name, dependencies) in fuzzTargets {
        package.targets.append(.executableTarget(name: name, dependencies: ["FuzzSupport"] + dependencies, path: "Fuzz/\(name)",
                                                 swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
