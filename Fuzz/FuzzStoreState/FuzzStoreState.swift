// A model store's <name>/state.json: read and checked, or refused with an error.
import FuzzSupport
@testable import RecEngine

@_cdecl("FuzzStoreState_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, seeds: seeds, body: LLVMFuzzerTestOneInput)
}

func seeds() throws -> [(name: String, bytes: [UInt8])] {
    [("empty.json", Array(#"{"history":[],"next":1,"versions":[]}"#.utf8)),
     ("two.json", Array(#"""
     {"active":2,"history":[1],"next":3,"versions":[
       {"bytes":100,"createdAt":1700000000,"fingerprint":"a","kind":"als","metadata":"{}","name":"m","path":"/s/m/v1.rkm","version":1},
       {"bytes":120,"createdAt":1700000100,"fingerprint":"b","kind":"als","metadata":"{}","name":"m","path":"/s/m/v2.rkm","version":2}]}
     """#.utf8))]
}

@_cdecl("LLVMFuzzerTestOneInput")
func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    _ = withScratchFile(data, size) { path in
        guard var state = try? ModelState.read(path, name: "m", store: "/s") else { return }
        // What the store does next with a state it accepted.
        if let version = state.versions.last?.version { state.activate(version) }
        _ = state.next + 1
        if let first = state.versions.first?.version { state.remove(first) }
    }
    return 0
}
