// swift-tools-version: 6.1
// A realtime recommender engine: a numeric core (contiguous Float tables, OpenBLAS and SIMD
// scoring, fused top-K) and what puts it to work.
import PackageDescription

/// Where librdkafka.so.1 (≥ 2.2) is found at run time: scripts/install.d/30-kafka puts the one from
/// the confluent-kafka 2.16.1 wheel there; users bring their own by setting the variable at build.
let kafkaLibrary = Context.environment["RECOMMENDER_KAFKA_LIB"] ?? "/usr/local/lib/recommender-kafka"

let package = Package(
    name: "recommender",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RecKernels", targets: ["RecKernels"]),
        .library(name: "RecModels", targets: ["RecModels"]),
        .library(name: "RecEngine", targets: ["RecEngine"]),
        .library(name: "RecText", targets: ["RecText"]),
        .library(name: "RecTextPostgres", targets: ["RecTextPostgres"]),
        .library(name: "RecServer", targets: ["RecServer"]),
        .library(name: "RecStreaming", targets: ["RecStreaming"]),
        .library(name: "RecRegistry", targets: ["RecRegistry"]),
        .executable(name: "recommender", targets: ["recommender"]),
        .executable(name: "recommender-bench", targets: ["RecBench"]),
        // The C ABI (include/recommender.h) as librecommender.so, for C, Python, Spark, Go, Java.
        .library(name: "recommender-c", type: .dynamic, targets: ["RecommenderC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
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
            dependencies: [
                "COpenBLAS", "CRecKernels",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        .target(
            name: "RecModels",
            dependencies: ["RecKernels", .product(name: "RealModule", package: "swift-numerics")]
        ),
        // Content-based recommendation from text: tokenizer, TF-IDF, LSI, word2vec.
        .target(
            name: "RecText",
            dependencies: ["RecKernels", "RecModels", .product(name: "RealModule", package: "swift-numerics")]
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
            dependencies: [
                "RecKernels", "RecModels", "RecText",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        // The C ABI: @_cdecl functions over RecKernels, RecModels and RecText (include/recommender.h).
        .target(
            name: "RecommenderC",
            dependencies: ["RecKernels", "RecModels", "RecText"]
        ),
        // The engine over HTTP (Hummingbird 2): JSON API, feedback, web page, metrics.
        .target(
            name: "RecServer",
            dependencies: [
                "RecEngine", "RecModels", "RecKernels", "RecText",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // librdkafka (Kafka's C client): Debian's librdkafka-dev headers to build; at run time the
        // librdkafka.so.1 in RECOMMENDER_KAFKA_LIB (default /usr/local/lib/recommender-kafka,
        // installed by scripts/install.d/30-kafka), set as the run path; LD_LIBRARY_PATH overrides.
        .systemLibrary(
            name: "CRdKafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // Streaming mode: events from Kafka, micro-batched through the engine, results to Kafka.
        .target(
            name: "RecStreaming",
            dependencies: ["RecEngine", "RecModels", "RecKernels", "CRdKafka", .product(name: "Metrics", package: "swift-metrics")],
            linkerSettings: [.unsafeFlags(["-Xlinker", "-rpath", "-Xlinker", kafkaLibrary])]
        ),
        // The model registry in PostgreSQL (libpq through CLibPQ): publish, activate, follow.
        .target(
            name: "RecRegistry",
            dependencies: [
                "RecEngine", "RecModels", "RecKernels", "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(
            name: "recommender",
            dependencies: [
                "RecKernels",
                "RecModels",
                "RecText",
                "RecEngine",
                "RecServer",
                "RecStreaming",
                "RecRegistry",
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
        // The throwaway PostgreSQL server the text-document and registry tests start.
        .target(name: "PostgresTestSupport", path: "Tests/PostgresTestSupport"),
        .testTarget(
            name: "RecTextTests",
            dependencies: ["RecText", "RecTextPostgres", "RecKernels", "RecModels", "PostgresTestSupport"],
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
            name: "RecServerTests",
            dependencies: [
                "RecServer", "RecEngine", "RecModels", "RecKernels", "recommender",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "RecStreamingTests",
            dependencies: ["RecStreaming", "RecEngine", "RecModels"]
        ),
        .testTarget(
            name: "RecRegistryTests",
            dependencies: ["RecRegistry", "RecEngine", "RecModels", "RecKernels", "PostgresTestSupport"]
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
        ("FuzzHTTPBody", ["RecServer", "RecEngine"]),
        ("FuzzKafkaEvent", ["RecEngine", "RecStreaming"]),
    ]
    for (name, dependencies) in fuzzTargets {
        package.targets.append(.executableTarget(name: name, dependencies: ["FuzzSupport"] + dependencies, path: "Fuzz/\(name)",
                                                 swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
