// Kafka event messages as the stream processor receives them: arbitrary key and value bytes
// through the event decoder, which gives an event or the reason it goes to the dead-letter
// topic; a refused message's dead-letter record must carry the reason and the original bytes.
import Foundation
import FuzzSupport
import RecEngine
import RecStreaming

@_cdecl("FuzzKafkaEvent_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, seeds: seeds, body: LLVMFuzzerTestOneInput)
}

/// Input layout: one control byte — bit 7: the decoder with small limits and its own event
/// types; bit 6: the message has no key; bits 0–4: the key's length — then the key, then the value.
func seeds() throws -> [(name: String, bytes: [UInt8])] {
    func input(_ control: UInt8, key: String, value: String) -> [UInt8] { [control] + Array(key.utf8) + Array(value.utf8) }
    return [
        ("view.bin", input(6, key: "user-1", value: #"{"user":"user-1","item":"i42","type":"view","time":1732945000.25}"#)),
        ("weighted.bin", input(2, key: "u7", value: #"{"user":7,"item":3,"type":"buy","weight":2.5,"time":"1000"}"#)),
        ("weight-only.bin", input(0x40, key: "", value: #"{"user":"u","item":"i","weight":1e38,"type":"buy","time":1}"#)),
        ("small-limits.bin", input(0x80 | 1, key: "k", value: #"{"user":"u","item":"i","type":"x","time":1}"#)),
        ("poison-json.bin", input(3, key: "bad", value: "{not json")),
        ("poison-array.bin", input(0x40, key: "", value: "[1,2,3]")),
        ("poison-type.bin", input(1, key: "u", value: #"{"user":"u","item":"50","type":"teleport","time":5,"extra":{"a":[null,true]}}"#)),
        ("unicode.bin", input(2, key: "ü", value: "{\"user\":\"\\u00fc\\ud83d\\ude00\",\"item\":\"\\\"x\\\\\",\"type\":\"view\",\"time\":-1e300}")),
    ]
}

let decoders: [EventDecoder] = {
    var small = StreamOptions()
    small.maximumEventBytes = 48
    small.eventTypes = ["x": 0.5, "buy": 5]
    return [EventDecoder(options: StreamOptions()), EventDecoder(options: small)]
}()

@_cdecl("LLVMFuzzerTestOneInput")
func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    guard let control = input.first else { return 0 }
    let decoder = decoders[Int(control >> 7)]
    let keyLength = min(Int(control & 0x1F), input.count - 1)
    let key: [UInt8]? = control & 0x40 != 0 ? nil : Array(input[1 ..< 1 + keyLength])
    let value = Array(input[(control & 0x40 != 0 ? 1 : 1 + keyLength)...])
    switch decoder.decode(value) {
    case let .success(decoded):
        // What the processor relies on for a valid event.
        precondition(value.count <= decoder.options.maximumEventBytes, "an oversized message was accepted")
        precondition(!decoded.user.isEmpty && !decoded.event.item.isEmpty, "an event without user or item was accepted")
        precondition(decoded.event.timestamp?.isFinite == true, "an event without a finite time was accepted")
        precondition(decoded.event.weight.map { $0.isFinite } ?? true, "an event with a non-finite weight was accepted")
        // A weight-only event is labelled "view" whatever the types configured.
        precondition(decoder.options.eventTypes[decoded.event.type] != nil || decoded.event.type == "view",
                     "an event of an unknown type was accepted")
    case let .failure(invalid):
        precondition(!invalid.reason.isEmpty, "a refusal without a reason")
        let record = DeadLetter.record(topic: "events", partition: 3, offset: 42, key: key, value: value, reason: invalid.reason)
        guard let object = (try? JSONSerialization.jsonObject(with: Data(record))) as? [String: Any] else {
            preconditionFailure("the dead-letter record is not a JSON object")
        }
        precondition(object["reason"] as? String == invalid.reason, "the dead-letter record lost the reason")
        precondition((object["value"] as? String).flatMap { Data(base64Encoded: $0) } == Data(value), "the dead-letter record lost the value")
        if let key {
            precondition((object["key"] as? String).flatMap { Data(base64Encoded: $0) } == Data(key), "the dead-letter record lost the key")
        } else {
            precondition(object["key"] is NSNull, "a message without a key got one in its dead-letter record")
        }
    }
    return 0
}
