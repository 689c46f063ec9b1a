#if canImport(Glibc)
import Glibc
#endif
import RecKernels
@testable import RecModels
import Testing

/// Writes `text` to a fresh temporary file and returns its path.
func temporaryFile(_ text: String, name: String = "data.txt") -> String {
    var template = Array("/tmp/recmodels-test-XXXXXX".utf8CString)
    let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    let path = directory + "/" + name
    let file = fopen(path, "w")!
    fputs(text, file)
    fclose(file)
    return path
}

func records(_ file: DelimitedFile) throws -> [[String]] {
    var all: [[String]] = []
    try file.forEachRecord { record in all.append((0 ..< record.count).map { record.string($0) }) }
    return all
}

@Suite("DelimitedFile")
struct DelimitedFileTests {
    @Test("RFC 4180 quoting: delimiters, doubled quotes, line breaks and CRLF inside fields")
    func quoting() throws {
        let path = temporaryFile("id,text,n\r\n1,\"a, b\",2\r\n2,\"say \"\"hi\"\"\",3\r\n\r\n3,\"two\nlines\r\nhere\",4\n4,,5")
        let file = try DelimitedFile(path: path)
        #expect(file.header == ["id", "text", "n"])
        #expect(try records(file) == [["1", "a, b", "2"], ["2", "say \"hi\"", "3"], ["3", "two\nlines\r\nhere", "4"], ["4", "", "5"]])
        var lines: [Int] = []
        try file.forEachRecord { lines.append($0.line) }
        #expect(lines == [2, 3, 5, 8])
        #expect(try file.column(named: "n") == 2)
        #expect(throws: DataError.missingColumn(path: path, column: "score", available: ["id", "text", "n"])) { try file.column(named: "score") }
    }

    @Test("multi-character delimiters and tab-separated files without a header")
    func delimiters() throws {
        let movielens = try DelimitedFile(path: temporaryFile("1::1193::5::978300760\n1::661::3::978302109\n"), delimiter: "::", hasHeader: false)
        #expect(try records(movielens) == [["1", "1193", "5", "978300760"], ["1", "661", "3", "978302109"]])
        let tabs = try DelimitedFile(path: temporaryFile("196\t242\t3\t881250949\n"), delimiter: "\t", hasHeader: false)
        var parsed: [Int?] = []
        try tabs.forEachRecord { record in parsed = (0 ..< 4).map { record.int($0) } }
        #expect(parsed == [196, 242, 3, 881_250_949])
    }

    @Test("numbers parse strictly; malformed quoting names the line")
    func errors() throws {
        let file = try DelimitedFile(path: temporaryFile("a,b\n 12 ,-3.5\nx,1e3\n99999999999999999999,+7\n"))
        var values: [[Double?]] = []
        try file.forEachRecord { record in values.append([record.int(0).map(Double.init), record.double(1)]) }
        #expect(values == [[12, -3.5], [nil, 1000], [nil, 7]])
        let unterminated = temporaryFile("a,b\n1,\"open\n2,3\n")
        #expect(throws: DataError.malformedRecord(path: unterminated, line: 2, reason: "unterminated quoted field")) {
            try records(DelimitedFile(path: unterminated))
        }
        let trailing = temporaryFile("a,b\n1,\"x\"y\n")
        #expect(throws: DataError.malformedRecord(path: trailing, line: 2, reason: "text after a closing quote in field 2")) {
            try records(DelimitedFile(path: trailing))
        }
        let empty = temporaryFile("\n\n", name: "empty.csv")
        #expect(throws: DataError.empty(path: empty)) { _ = try DelimitedFile(path: empty) }
        #expect(throws: SystemCallError.self) { _ = try DelimitedFile(path: "/nonexistent/file.csv") }
    }
}
