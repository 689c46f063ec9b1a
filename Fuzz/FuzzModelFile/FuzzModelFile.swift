// Model files of every RecModels kind (factor models, item-kNN, popularity) and the bare
// ModelFile reader: any bytes must open cleanly or be refused with an error.
import FuzzSupport
import RecKernels
import RecModels

@_cdecl("FuzzModelFile_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, seeds: seeds, body: LLVMFuzzerTestOneInput)
}

func seeds() throws -> [(name: String, bytes: [UInt8])] {
    let log = try Interactions.synthetic(users: 6, items: 5, interactions: 18, tasteDimensions: 2, seed: 1)
    let catalog = try ModelCatalog(training: log)
    var als = ImplicitALS()
    als.factors = 2
    als.iterations = 1
    als.threads = 1
    var bpr = BPR()
    bpr.factors = 2
    bpr.iterations = 1
    bpr.threads = 1
    let models: [(String, any Recommender)] = [("als", try als.fit(catalog)), ("bpr", try bpr.fit(catalog)),
                                               ("knn", try ItemKNNModel(catalog, neighbours: 2, threads: 1)),
                                               ("popularity", try PopularityModel(catalog))]
    var result: [(String, [UInt8])] = []
    for (name, model) in models {
        try model.save(to: scratchPath)
        result.append((name + ".rkm", try readFile(scratchPath)))
    }
    try EmbeddingTable([[1, 2], [3, 4]]).save(to: scratchPath)
    result.append(("table.rkm", try readFile(scratchPath)))
    return result
}

/// Uses a model the way a service would, so a file that opens but is inconsistent shows up.
func exercise(_ model: any Recommender) {
    _ = try? model.recommend(users: [0], k: 3, excludeSeen: true, filter: nil)
    _ = try? model.recommend(history: [0], weights: [1], k: 3, excludeSeen: true, filter: nil)
    _ = try? model.similarItems(to: 0, k: 3)
}

@_cdecl("LLVMFuzzerTestOneInput")
func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    _ = withScratchFile(data, size) { path in
        if let file = try? ModelFile(contentsOf: path) {
            for section in file.sections {
                switch section.elementType {
                case .float32: _ = try? file.table(section.name)
                case .int32: _ = try? file.int32s(section.name)
                case .int64: _ = try? file.int64s(section.name)
                case .uint8: _ = try? file.bytes(section.name)
                }
            }
        }
        _ = try? EmbeddingTable(contentsOf: path, verification: .structure)
        if let model = try? FactorModel(contentsOf: path) { exercise(model) }
        if let model = try? ItemKNNModel(contentsOf: path) { exercise(model) }
        if let model = try? PopularityModel(contentsOf: path) { exercise(model) }
    }
    return 0
}
