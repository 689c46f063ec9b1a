// Delimited files (CSV, TSV, MovieLens ::): every record and field read, and interactions
// loaded, or refused with an error naming the line.
import FuzzSupport
import RecModels

@_cdecl("FuzzDelimited_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, seeds: seeds, body: LLVMFuzzerTestOneInput)
}

func seeds() throws -> [(name: String, bytes: [UInt8])] {
    [("ratings.csv", Array("user,item,rating,time\nu1,i1,4,100\nu2,\"i,2\",3.5,101\r\n\nu3,i3,1e3,1e9\n".utf8)),
     ("bom-cr.csv", Array("\u{FEFF}user,item,rating,time\ru1,i1,5,1\ru2,i2,2,2\r".utf8)),
     ("movielens.dat", Array("1::1193::5::978300760\n1::661::3::978302109\n".utf8)),
     ("quoted.csv", Array("user,item,rating,time\n\"u \"\"1\"\"\",\"multi\nline\",2,3\n".utf8))]
}

@_cdecl("LLVMFuzzerTestOneInput")
func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    _ = withScratchFile(data, size) { path in
        for (delimiter, header) in [(",", true), ("::", false), ("\t", false)] {
            if let file = try? DelimitedFile(path: path, delimiter: delimiter, hasHeader: header) {
                try? file.forEachRecord { record in
                    for field in 0 ..< record.count {
                        _ = record.string(field)
                        _ = record.int(field)
                        _ = record.double(field)
                    }
                }
            }
            let format = InteractionFormat(delimiter: delimiter, hasHeader: header, user: .position(0), item: .position(1),
                                           value: .position(2), timestamp: .position(3))
            for policy in [MalformedRecordPolicy.fail, .skip] {
                if let (log, _) = try? Interactions.load(path, format: format, onMalformed: policy), log.count > 0 {
                    _ = try? log.randomHoldout(testFraction: 0.5, seed: 1)
                    _ = try? log.leaveLastOut(1)
                }
            }
        }
    }
    return 0
}
