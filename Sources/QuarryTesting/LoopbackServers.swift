public import Foundation
import QuarryCore

/// Real servers the story tests talk to on loopback, each a child process stopped when the test ends.
public enum LoopbackServers {
    /// Why the servers cannot run here, or nil when they can (`scripts/test` installs them as root).
    public static var missing: String? {
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/unbound") {
            return "unbound is not installed (apt-get install unbound): the DoH end-to-end tests are skipped"
        }
        return smtpMissing
    }

    /// Why the SMTP sink cannot run here (it needs openssl for its certificate and aiosmtpd), or nil.
    public static var smtpMissing: String? {
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") {
            return "openssl is not installed: the end-to-end tests cannot make their certificate and are skipped"
        }
        if !FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/aiosmtpd") {
            return "python3-aiosmtpd is not installed: the SMTP end-to-end tests are skipped"
        }
        return nil
    }

    /// A self-signed certificate for `localhost` and 127.0.0.1: (certificate, key) paths.
    public static func certificate(in directory: URL) async throws -> (String, String) {
        let certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        try await run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "2",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ]
        )
        return (certificate, key)
    }

    /// Debian's unbound answering DNS on UDP/TCP and DNS-over-HTTPS (`/dns-query`) from local zones.
    public final class Unbound {
        public let process = Process()
        public let dnsPort: Int
        public let httpsPort: Int
        public var dohURL: String { "https://localhost:\(httpsPort)/dns-query" }

        public init(directory: URL, certificate: (String, String), localData: [String]) async throws {
            dnsPort = try freeLoopbackPort()
            httpsPort = try freeLoopbackPort()
            var lines = [
                "server:", "  interface: 127.0.0.1@\(dnsPort)", "  interface: 127.0.0.1@\(httpsPort)",
                "  https-port: \(httpsPort)", "  tls-service-pem: \"\(certificate.0)\"",
                "  tls-service-key: \"\(certificate.1)\"", "  http-endpoint: \"/dns-query\"", "  do-daemonize: no",
                "  username: \"\"", "  chroot: \"\"", "  directory: \"\(directory.path)\"",
                "  pidfile: \"\(directory.path)/unbound.pid\"", "  use-syslog: no", "  verbosity: 0",
                "  access-control: 127.0.0.0/8 allow", "  module-config: \"iterator\"", "  do-not-query-localhost: yes",
            ]
            var zones = Set<Substring>()
            for data in localData {
                let name = data.split(separator: " ")[0]
                if zones.insert(name).inserted { lines.append("  local-zone: \"\(name)\" static") }
                lines.append("  local-data: '\(data)'")
            }
            let configuration = directory.appendingPathComponent("unbound.conf")
            try (lines.joined(separator: "\n") + "\n").write(to: configuration, atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/unbound")
            process.arguments = ["-d", "-c", configuration.path]
            process.standardOutput = FileHandle.nullDevice
            let errors = Pipe()
            process.standardError = errors
            try process.run()
            ChildProcesses.register(process)
            ChildProcesses.forward(errors.fileHandleForReading, to: .standardError)
            try await waitForPort(httpsPort)
        }

        deinit { stop(process) }
    }

    /// aiosmtpd writing each message it receives as JSON (Tests/python/smtp_sink.py).
    public final class SMTPSink {
        public let process = Process()
        public let folder: URL
        public let port: Int

        public init(directory: URL, arguments: [String]) async throws {
            folder = directory.appendingPathComponent("mail")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let output = Pipe()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments =
                [ProjectPaths.root.appendingPathComponent("Tests/python/smtp_sink.py").path, folder.path] + arguments
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            ChildProcesses.register(process)
            let (line, complete) = try await onThreadOfItsOwn {
                ChildProcesses.read(output.fileHandleForReading, until: { $0.contains("\n") }, timeLimit: .seconds(120))
            }
            guard complete,
                let port = Int(line.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
            else {
                ChildProcesses.kill(process)
                throw ServerError("the SMTP sink printed no port: \(line)")
            }
            self.port = port
        }

        /// The messages received so far, oldest first.
        public func messages() throws -> [[String: Any]] {
            try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }.sorted()
                .map {
                    try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent($0)))
                        as? [String: Any] ?? [:]
                }
        }

        deinit { stop(process) }
    }

    public static func waitForPort(_ port: Int) async throws {
        for _ in 0..<100 {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(descriptor)
            if connected { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServerError("nothing listens on 127.0.0.1:\(port)")
    }

    /// SIGKILL: a child of the test runner may inherit a signal mask that blocks SIGTERM.
    public static func stop(_ process: Process) {
        ChildProcesses.stop(process, signal: SIGKILL)
    }

    public static func run(_ executable: String, _ arguments: [String]) async throws {
        guard try await runTool(executable, arguments).status == 0 else { throw ServerError("\(executable) failed") }
    }

    public struct ServerError: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }
}
