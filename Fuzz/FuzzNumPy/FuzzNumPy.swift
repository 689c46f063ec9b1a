// NumPy .npy files: parsed into a table, or refused with an error.
import FuzzSupport
@testable import RecKernels

@_cdecl("FuzzNumPy_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, seeds: seeds, body: LLVMFuzzerTestOneInput)
}

func seeds() throws -> [(name: String, bytes: [UInt8])] {
    try NumPyFile.write(try EmbeddingTable([[1, 2, 3], [4, 5, 6]]), to: scratchPath)
    let float32 = try readFile(scratchPath)
    var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"
    header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
    var float64 = NumPyFile.magic + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8)
    for value in [1.5, -2.0, 3.25] { withUnsafeBytes(of: value.bitPattern.littleEndian) { float64 += $0 } }
    return [("f4-2x3.npy", float32), ("f8-3.npy", float64)]
}

@_cdecl("LLVMFuzzerTestOneInput")
func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    if let table = try? input.withUnsafeBytes({ try NumPyFile.parse($0, path: "fuzz.npy") }), table.rows > 0 {
        // A table that parsed must be usable as a catalog.
        if let index = try? FlatIndex(items: table) { _ = try? index.search(table.row(0), k: 2) }
    }
    return 0
}
