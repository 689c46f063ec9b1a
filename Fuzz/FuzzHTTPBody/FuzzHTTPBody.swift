// HTTP request bodies as a client sends them, for every JSON endpoint of the server: read and
// checked exactly as the routes do (RequestDecoder), without a network. Every input must be
// accepted or refused with a 4xx APIError — a 5xx, a crash or a trap is a finding. Accepted JSON
// must also survive a round trip through the encoder unchanged.
import FuzzSupport
import RecEngine
import RecServer

@_cdecl("FuzzHTTPBody_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, seeds: seeds, body: LLVMFuzzerTestOneInput)
}

func seeds() throws -> [(name: String, bytes: [UInt8])] {
    [("session.json", #"{"items":["i1","i2"],"events":[{"item":"i3","type":"like","weight":2,"time":1700000000}],"k":5,"exclude":["i9"]}"#),
     ("search.json", #"{"text":"space \u00e9t\u00e9 \ud83d\ude80 rocket","k":3}"#),
     ("recommend.json", #"{"pipeline":"home","user":"u1","items":["i4"],"text":null,"k":10,"exclude":[]}"#),
     ("batch.json", #"{"requests":[{"pipeline":"home","user":"u1"},{"pipeline":"search","text":"x","k":1e2}]}"#),
     ("explain.json", #"{"model":"als","item":"i12","user":"u4","items":["i1"],"events":[{"item":"i2"}]}"#),
     ("feedback.json", #"{"user":"u6","item":"i3","type":"like","weight":5,"time":1.7e9,"events":[{"item":"i4"}]}"#),
     ("activate.json", #"{"version":2}"#),
     ("nested.json", "[[[[[[[[[[[[[[[[[[[[{\"a\":[-0.0e-5,1E+400,\"\\\\\\\"\\/\\b\\f\\n\\r\\t\"]}]]]]]]]]]]]]]]]]]]]")]
        .map { ($0.0, Array($0.1.utf8)) }
}

/// The server's defaults, and tight limits so that the limit checks are reached.
let decoders: [RequestDecoder] = {
    var tight = ServerConfiguration()
    tight.maximumSessionItems = 3
    tight.maximumBatchRequests = 2
    return [RequestDecoder(limits: ServerConfiguration()), RequestDecoder(limits: tight)]
}()

@_cdecl("LLVMFuzzerTestOneInput")
func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let body = bytes(data, size)
    for decoder in decoders {
        for endpoint in RequestDecoder.Endpoint.allCases {
            do { try decoder.check(endpoint, body: body) } catch let error as APIError {
                guard (400 ..< 500).contains(Int(error.status.code)) else { fatalError("\(endpoint): \(error) is not a 4xx") }
            } catch {
                fatalError("\(endpoint): not an APIError: \(error)")
            }
        }
    }
    if let value = try? JSONValue(parsing: body) {
        guard let again = try? JSONValue(parsing: value.encoded()), again == value else { fatalError("the encoder's text does not parse back to the same value") }
    }
    return 0
}
