// Engine settings (PipelineSettings) against served models: pipelines built, or the first
// problem reported with the file and key path.
import FuzzSupport
import RecEngine
import RecModels
import RecText

@_cdecl("FuzzSettingsJSON_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, seeds: seeds, body: LLVMFuzzerTestOneInput)
}

func seeds() throws -> [(name: String, bytes: [UInt8])] {
    [("home.json", Array("""
     { "pipelines": { "home": {
         "input": "csv",
         "preprocess": [ { "type": "idMapping", "model": "als" }, { "type": "eventWeights", "weights": { "view": 1, "buy": 5 } } ],
         "similarity": [ { "type": "userFactors", "model": "als" }, { "type": "itemToItem", "model": "knn" } ],
         "scoring": { "type": "blend", "weights": [0.7, 0.3] },
         "postprocess": [ { "type": "excludeSeen", "model": "als" }, { "type": "popularityFallback", "model": "pop" } ],
         "k": 5, "candidates": 50 },
       "search": { "input": "text", "similarity": [ { "type": "text", "model": "docs" } ], "k": 2 } } }
     """.utf8))]
}

/// The models the settings may name, built once.
let manager: ModelManager = {
    let log = try! Interactions.synthetic(users: 8, items: 6, interactions: 30, tasteDimensions: 2, seed: 2)
    let catalog = try! ModelCatalog(training: log)
    var als = ImplicitALS()
    als.factors = 2
    als.iterations = 1
    als.threads = 1
    let manager = ModelManager()
    manager.install(.recommender(try! als.fit(catalog)), as: "als", version: 1)
    manager.install(.recommender(try! ItemKNNModel(catalog, neighbours: 2, threads: 1)), as: "knn", version: 1)
    manager.install(.recommender(try! PopularityModel(catalog)), as: "pop", version: 1)
    let documents = [TextDocument(id: "i0", text: "space stars"), TextDocument(id: "i1", text: "magic school")]
    manager.install(.text(try! TextIndex(documents: documents)), as: "docs", version: 1)
    return manager
}()

@_cdecl("LLVMFuzzerTestOneInput")
func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let pipelines = try? PipelineSettings.parse(bytes(data, size), file: "fuzz.json", models: manager) else { return 0 }
    // Settings that were accepted must run: one request per pipeline.
    for pipeline in pipelines {
        _ = try? pipeline.run(input: "u1", models: manager)
        _ = try? pipeline.run(input: "space", models: manager)
    }
    return 0
}
