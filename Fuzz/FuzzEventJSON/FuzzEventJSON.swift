// Event and request JSON as a client sends it: decoded, or refused with an error.
import FoundationEssentials
import FuzzSupport
import RecEngine

@_cdecl("FuzzEventJSON_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, seeds: seeds, body: LLVMFuzzerTestOneInput)
}

func seeds() throws -> [(name: String, bytes: [UInt8])] {
    [("events.json", Array(#"[{"item":"i1","type":"view"},{"item":"i2","type":"buy","timestamp":1.5e9,"weight":2}]"#.utf8)),
     ("request.json", Array(#"{"user":"u1","history":[{"item":"i3","type":"view"}],"items":["i4"],"text":"space","k":5,"exclude":["i1"]}"#.utf8))]
}

@_cdecl("LLVMFuzzerTestOneInput")
func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = Data(bytes(data, size))
    _ = try? JSONDecoder().decode([Event].self, from: input)
    _ = try? JSONDecoder().decode(Event.self, from: input)
    if let request = try? JSONDecoder().decode(RecommendationRequest.self, from: input) {
        _ = try? JSONEncoder().encode(request)
    }
    return 0
}
