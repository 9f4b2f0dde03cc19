import QuarryCore
#if canImport(Glibc)
import Glibc

/// One HTTP/1.1 exchange over a plain TCP socket, with the request given byte for byte: tests send what no HTTP
/// client library would (unknown methods, bytes a URI may not hold, oversized headers, half-sent requests). Linux
/// only (Glibc sockets), as the server tests that use it.
public enum RawHTTP {
    public struct Reply: Sendable {
        public var status: Int
        public var head: String
        public var body: [UInt8]
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Connects to `127.0.0.1:port`, sends `request`, and reads until the server closes the connection (send
    /// `Connection: close`) or `timeout` seconds pass.
    public static func exchange(port: Int, _ request: [UInt8], timeout: Int = 10) async throws -> Reply {
        try await onThreadOfItsOwn { try exchangeBlocking(port: port, request, timeout: timeout) }
    }

    private static func exchangeBlocking(port: Int, _ request: [UInt8], timeout: Int) throws -> Reply {
        let socket = try connect(port: port, timeout: timeout)
        defer { close(socket) }
        try send(socket, request)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        guard let split = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else {
            throw Failure(description: "no HTTP response head in \(bytes.count) bytes")
        }
        let head = String(decoding: bytes[..<split.lowerBound], as: UTF8.self)
        let statusText = head.split(separator: " ").dropFirst().first ?? ""
        guard let status = Int(statusText) else { throw Failure(description: "no status in \(head)") }
        return Reply(status: status, head: head, body: Array(bytes[split.upperBound...]))
    }

    /// A socket connected to `127.0.0.1:port`, with receive and send timeouts.
    public static func connect(port: Int, timeout: Int = 10) throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "socket() failed") }
        var time = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(socket)
            throw Failure(description: "cannot connect to 127.0.0.1:\(port)")
        }
        return socket
    }

    /// Writes all of `bytes`; a server that closed first is not an error (its answer may still be read).
    public static func send(_ socket: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent <= 0 { return }
            offset += sent
        }
    }

    /// Whether the server closed `socket` within `seconds` (reading and discarding anything it sends).
    public static func closedByServer(_ socket: Int32, within seconds: Int) async -> Bool {
        (try? await onThreadOfItsOwn { closedByServerBlocking(socket, within: seconds) }) ?? false
    }

    private static func closedByServerBlocking(_ socket: Int32, within seconds: Int) -> Bool {
        var time = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count == 0 { return true }
            if count < 0 { return errno != EAGAIN && errno != EWOULDBLOCK }
        }
    }
}
#endif
