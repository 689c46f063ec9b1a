#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A throwaway PostgreSQL server from Debian's packages for the tests that need a real one (text
/// documents from a table, the model registry): `initdb` in a temporary directory, run as the
/// unprivileged `postgres` user when the tests run as root (PostgreSQL refuses root), listening on
/// 127.0.0.1 only on a free port, with password authentication over TCP, stopped by its PID.
public final class TemporaryPostgres: @unchecked Sendable {
    /// Why the server could not be set up; names the command or log to read.
    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    public let directory: String
    public let port: Int
    /// The `postgres` user's password over TCP (scram-sha-256).
    public let password = "s3cret-\(UInt32.random(in: 100_000 ... 999_999))-pw"
    private let asUser: String?
    private let bin: String
    private var pid: pid_t = 0

    /// The newest installed server's `bin` directory, or nil when PostgreSQL is not installed.
    public static var binaries: String? {
        for version in (11 ... 20).reversed() where access("/usr/lib/postgresql/\(version)/bin/postgres", X_OK) == 0 {
            return "/usr/lib/postgresql/\(version)/bin"
        }
        return nil
    }

    /// Creates the cluster and starts the server. - Throws: ``SetupError`` when PostgreSQL is not
    /// installed or the server does not start.
    public init() throws {
        guard let bin = Self.binaries else { throw SetupError(description: "PostgreSQL is not installed: run scripts/install-deps") }
        self.bin = bin
        directory = NSTemporaryDirectory() + "test-pg-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        mkdir(directory, 0o755)
        port = Self.freePort()
        asUser = getuid() == 0 ? "postgres" : nil
        if let asUser, let account = getpwnam(asUser) { chown(directory, account.pointee.pw_uid, account.pointee.pw_gid) }
        try run("echo '\(password)' > \(directory)/pw && \(bin)/initdb -D \(directory)/data -U postgres --pwfile=\(directory)/pw --auth-local=trust --auth-host=scram-sha-256 --no-sync > \(directory)/initdb.log 2>&1 && rm \(directory)/pw")
        try start()
    }

    /// Starts the server (again) on the same port and data.
    public func start() throws {
        try run("\(bin)/pg_ctl -D \(directory)/data -l \(directory)/server.log -w -o \"-p \(port) -k \(directory) -c listen_addresses=127.0.0.1\" start > /dev/null")
        let text = (try? String(contentsOfFile: "\(directory)/data/postmaster.pid", encoding: .utf8)) ?? ""
        pid = pid_t(text.split(separator: "\n").first.flatMap { Int32($0) } ?? 0)
        guard pid > 0 else { throw SetupError(description: "the server did not start: see \(directory)/server.log") }
    }

    /// A URL with the password in it.
    public var url: String { "postgres://postgres:\(password)@127.0.0.1:\(port)/postgres" }

    /// A libpq keyword/value connection string with the password in it.
    public var connectionString: String {
        "host=127.0.0.1 port=\(port) user=postgres password=\(password) dbname=postgres connect_timeout=10"
    }

    /// Stops the server by signal to its PID (fast shutdown) and waits for it to exit; the data stays.
    public func pause() {
        guard pid > 0 else { return }
        kill(pid, SIGINT)
        for _ in 0 ..< 400 where kill(pid, 0) == 0 { usleep(25_000) }
        pid = 0
    }

    /// Stops the server and removes its directory.
    public func stop() {
        pause()
        _ = system("rm -rf \(directory)")
    }

    deinit { stop() }

    private func run(_ command: String) throws {
        let full = asUser.map { "runuser -u \($0) -- sh -c '\(command.replacingOccurrences(of: "'", with: "'\\''"))'" } ?? command
        guard system(full) == 0 else {
            // The directory goes when the half-made server is released: keep what its logs said.
            let logs = ["initdb.log", "server.log"].compactMap { try? String(contentsOfFile: "\(directory)/\($0)", encoding: .utf8) }
            throw SetupError(description: "failed: \(command)\n\(logs.joined(separator: "\n"))")
        }
    }

    private static func freePort() -> Int {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socketFD) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
