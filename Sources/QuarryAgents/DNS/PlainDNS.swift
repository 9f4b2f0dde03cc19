import Foundation
import QuarryStories

/// One DNS exchange over UDP or TCP (RFC 1035 §4.2), with a deadline.
///
/// Blocking sockets on a dispatch queue rather than a NIO pipeline: an agent makes one exchange per call, and
/// the socket calls with `SO_RCVTIMEO` are shorter than the bootstrap and handlers NIO would need for the same.
enum PlainDNS {
    static func exchange(
        _ query: [UInt8],
        host: String,
        port: Int,
        tcp: Bool,
        timeout: Double = 5
    ) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    continuation.resume(
                        returning: try exchangeBlocking(query, host: host, port: port, tcp: tcp, timeout: timeout)
                    )
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private static func exchangeBlocking(
        _ query: [UInt8],
        host: String,
        port: Int,
        tcp: Bool,
        timeout: Double
    ) throws -> [UInt8] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let info = list else {
            throw AgentError.failed("cannot resolve the DNS server address '\(host)'")
        }
        defer { freeaddrinfo(list) }
        let socket = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard socket >= 0 else { throw AgentError.retryable("socket: \(String(cString: strerror(errno)))") }
        defer { close(socket) }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connect(socket, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            throw AgentError.retryable("cannot connect to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        let message = tcp ? [UInt8(query.count >> 8), UInt8(query.count & 0xFF)] + query : query
        let sent = message.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
        guard sent == message.count else {
            throw AgentError.retryable("cannot send to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        func receive(_ count: Int) throws -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: count)
            var filled = 0
            repeat {
                let received = buffer.withUnsafeMutableBytes {
                    recv(socket, $0.baseAddress! + filled, count - filled, 0)
                }
                guard received > 0 else {
                    throw AgentError.retryable(
                        received == 0
                            ? "\(host):\(port) closed the connection"
                            : "no answer from \(host):\(port) within \(timeout) s"
                    )
                }
                filled += received
            } while tcp && filled < count
            return Array(buffer[..<filled])
        }
        if tcp {
            let length = try receive(2)
            return try receive(Int(length[0]) << 8 | Int(length[1]))
        }
        return try receive(65_535)
    }
}
