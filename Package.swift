// swift-tools-version: 6.1
// A realtime recommender engine: a numeric core (contiguous Float tables, OpenBLAS and SIMD
// scoring, fused top-K) and what puts it to work.
import PackageDescription

let package = Package(
    name: "recommender",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "RecKernels", targets: ["RecKernels"]),
        .library(name: "RecModels", targets: ["RecModels"]),
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
        .executableTarget(
            name: "recommender",
            dependencies: [
                "RecKernels",
                "RecModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The hardware-sizing benchmark: each shape against the bare OpenBLAS call, same run.
        .executableTarget(
            name: "RecBench",
            dependencies: [
                "RecKernels",
                "RecModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/RecBench"
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
            name: "RecommenderCLITests",
            dependencies: ["RecKernels", "recommender"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
