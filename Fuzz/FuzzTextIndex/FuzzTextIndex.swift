// Text index files (TF-IDF, LSI, word2vec parts): open cleanly or be refused with an error.
import FuzzSupport
import RecKernels
import RecText

@_cdecl("FuzzTextIndex_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, seeds: seeds, body: LLVMFuzzerTestOneInput)
}

func seeds() throws -> [(name: String, bytes: [UInt8])] {
    let documents = [
        TextDocument(id: "d1", text: "a young wizard at a school of magic", label: "Wizards"),
        TextDocument(id: "d2", text: "astronauts travel through a wormhole", label: "Space"),
        TextDocument(id: "d3", text: "a crew stranded on mars", label: nil),
    ]
    var result: [(String, [UInt8])] = []
    try TextIndex(documents: documents).save(to: scratchPath)
    result.append(("tfidf.rkm", try readFile(scratchPath)))
    var options = TextIndexOptions()
    options.lsiTopics = 2
    options.threads = 1
    try TextIndex(documents: documents, options: options).save(to: scratchPath)
    result.append(("lsi.rkm", try readFile(scratchPath)))
    return result
}

@_cdecl("LLVMFuzzerTestOneInput")
func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    _ = withScratchFile(data, size) { path in
        guard let index = try? TextIndex(contentsOf: path) else { return }
        for representation in TextRepresentation.allCases {
            _ = try? index.query("young wizard on mars", k: 3, using: representation)
            if let id = index.ids.first { _ = try? index.similar(toDocument: id, k: 2, using: representation) }
        }
    }
    return 0
}
