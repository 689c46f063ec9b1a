import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The directory holding the test runner, where SwiftPM also puts the package's executables.
private let binaries: String = {
    let runner = CommandLine.arguments[0]
    let directory = runner.contains("/") ? String(runner[..<runner.lastIndex(of: "/")!]) : "."
    if let bundle = directory.firstRange(of: ".xctest") {
        let inside = directory[..<bundle.lowerBound]
        return String(inside[..<inside.lastIndex(of: "/")!])
    }
    return directory
}()

@Suite("recommender serve as a process")
struct ShutdownTests {
    @Test("SIGTERM while a request is in flight: the request completes, then the process exits 0")
    func gracefulShutdown() throws {
        let (process, listening) = try startServe([])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        // Send the head and half the body, signal, then the rest: the request is in flight
        // across the SIGTERM.
        let body = #"{"pipeline":"home","user":"u3","k":3}"#
        let half = body.utf8.count / 2
        let socket = try connect(port: listening)
        defer { close(socket) }
        try send(socket, "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + String(body.prefix(half)))
        usleep(200_000)
        kill(process.processIdentifier, SIGTERM)
        usleep(500_000)
        #expect(process.isRunning, "the server exited with a request in flight")
        try send(socket, String(body.dropFirst(half)))
        let response = try receiveAll(socket)
        #expect(response.hasPrefix("HTTP/1.1 200"), "\(response)")
        #expect(response.contains("\"items\""))

        let exitDeadline = Date().addingTimeInterval(20)
        while process.isRunning, Date() < exitDeadline { usleep(50_000) }
        #expect(!process.isRunning)
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "status \(process.terminationStatus)")
        // A new connection is refused after shutdown.
        #expect((try? connect(port: listening)).map { close($0); return false } ?? true)
    }

    @Test("route handlers run on the event loops, of the number asked; the engine's workers run at the niceness asked")
    func threads() throws {
        let (process, port) = try startServe(["--event-loops", "3", "--workers", "2", "--worker-niceness", "6"])  // 3: neither serve's default nor SwiftNIO's (one per core)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let (pooled, pooledPort) = try startServe(["--handlers-on-cooperative-pool"])
        defer { if pooled.isRunning { kill(pooled.processIdentifier, SIGKILL) } }
        for _ in 0 ..< 20 {
            for listening in [port, pooledPort] {
                let answer = try httpExchange(port: listening, request: "GET /v1/pipelines/home/users/u3/recommendations?k=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
            }
        }
        let onEventLoops = threadsOf(process.processIdentifier), onPool = threadsOf(pooled.processIdentifier)
        // Swift's cooperative pool on Linux is libdispatch's root queue threads ("com.apple.root.user-initiated-qos", cut to 15 bytes).
        let cooperative = { (name: String) in name.hasSuffix("initiated-qos") }
        #expect(onPool.contains { cooperative($0.name) }, "the comparison server shows no cooperative pool thread: \(onPool.map(\.name))")
        #expect(!onEventLoops.contains { cooperative($0.name) }, "\(onEventLoops.map(\.name))")
        #expect(onEventLoops.filter { $0.name.hasPrefix("NIO-") }.count == 3, "\(onEventLoops.map(\.name))")
        let workers = onEventLoops.filter { $0.name.hasPrefix("rec-engine-") }
        #expect(workers.count == 2 && workers.allSatisfy { $0.niceness == 6 }, "\(onEventLoops)")
        #expect(onEventLoops.filter { $0.name.hasPrefix("NIO-") }.allSatisfy { $0.niceness == 0 })
    }

    /// Starts `recommender serve` on a free port with the small demo catalog and `arguments`,
    /// and waits until it is ready. - Returns: the process and its port.
    private func startServe(_ arguments: [String]) throws -> (Process, UInt16) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(binaries)/recommender")
        process.arguments = ["serve", "--port", "0", "--demo-items", "400", "--demo-users", "100"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The server prints "listening on http://127.0.0.1:PORT" once it accepts connections.
        var printed = ""
        var port: UInt16? = nil
        let deadline = Date().addingTimeInterval(60)
        while port == nil, Date() < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            printed += String(decoding: chunk, as: UTF8.self)
            if let range = printed.range(of: "listening on http://127.0.0.1:") {
                port = UInt16(printed[range.upperBound...].prefix { $0.isNumber })
            }
        }
        guard let listening = port else {
            kill(process.processIdentifier, SIGKILL)
            throw TestFailure("no 'listening on' line: \(printed)")
        }
        // Wait for readiness so requests are answered by the engine, not a 503.
        var ready = false
        for _ in 0 ..< 100 where !ready {
            ready = (try? httpExchange(port: listening, request: "GET /health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))?.hasPrefix("HTTP/1.1 200") == true
            if !ready { usleep(100_000) }
        }
        #expect(ready)
        return (process, listening)
    }

    /// The threads of process `pid`: names (at most 15 bytes, as Linux keeps them) and niceness.
    private func threadsOf(_ pid: Int32) -> [(name: String, niceness: Int)] {
        let directory = "/proc/\(pid)/task"
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap { tid in
            guard let name = try? String(contentsOfFile: "\(directory)/\(tid)/comm", encoding: .utf8),
                  let stat = try? String(contentsOfFile: "\(directory)/\(tid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // Fields after "(comm)": state is field 3, nice field 19.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 16, let nice = Int(fields[16]) else { return nil }
            return (name.trimmingCharacters(in: .newlines), nice)
        }
    }
}

func connect(port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard result == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
    return fd
}

func send(_ fd: Int32, _ text: String) throws {
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else { throw POSIXError(.EPIPE) }
}

/// Reads one response: up to the close, or the end of a Content-Length body.
func receiveAll(_ fd: Int32) throws -> String {
    var timeout = timeval(tv_sec: 20, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        data += buffer[0 ..< count]
        let text = String(decoding: data, as: UTF8.self)
        if let headerEnd = text.range(of: "\r\n\r\n"),
           let lengthLine = text[..<headerEnd.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
           let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)),
           text.utf8.count - text[..<headerEnd.upperBound].utf8.count >= length {
            return text
        }
    }
    return String(decoding: data, as: UTF8.self)
}

func httpExchange(port: UInt16, request: String) throws -> String {
    let fd = try connect(port: port)
    defer { close(fd) }
    try send(fd, request)
    return try receiveAll(fd)
}
