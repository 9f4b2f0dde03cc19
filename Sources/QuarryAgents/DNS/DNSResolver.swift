import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuarryCore
import QuarryDNS
import QuarryStories

/// One DNS question to one resolver, over whichever transport its target names.
struct DNSResolver {
    var target: String
    var format: String
    var usePost: Bool
    var client: HTTPClient

    func resolve(_ name: String, type: DNSType) async throws -> JSON {
        if target.hasPrefix("https://") || target.hasPrefix("http://") {
            return format == "json" ? try await jsonAPI(name, type: type) : try await wire(name, type: type)
        }
        var address = target
        var useTCP = false
        if address.hasPrefix("udp://") { address.removeFirst(6) }
        if address.hasPrefix("tcp://") {
            address.removeFirst(6)
            useTCP = true
        }
        let (host, port) = Self.hostAndPort(address, defaultPort: 53)
        let query = Self.query(name, type: type)
        let response = try await PlainDNS.exchange(query.encode(), host: host, port: port, tcp: useTCP)
        var message = try Self.decode(response, for: query)
        if message.isTruncated && !useTCP {
            message = try Self.decode(
                try await PlainDNS.exchange(query.encode(), host: host, port: port, tcp: true),
                for: query
            )
        }
        return Self.json(message)
    }

    static func query(_ name: String, type: DNSType) -> DNSMessage {
        let dnsName = DNSName(name) ?? DNSName.root
        return DNSMessage(
            id: UInt16.random(in: 1...UInt16.max),
            recursionDesired: true,
            questions: [DNSQuestion(name: dnsName, type: type)]
        )
    }

    static func decode(_ bytes: [UInt8], for query: DNSMessage) throws -> DNSMessage {
        let message: DNSMessage
        do {
            message = try DNSMessage.decode(bytes)
        } catch {
            throw AgentError.retryable("the resolver's answer does not decode: \(error)")
        }
        guard message.isResponse, message.id == query.id || query.id == 0 else {
            throw AgentError.retryable("the resolver answered a different question")
        }
        return message
    }

    /// RFC 8484: the query in wire format, base64url in `?dns=` (GET) or as the body (POST).
    private func wire(_ name: String, type: DNSType) async throws -> JSON {
        var query = Self.query(name, type: type)
        query.id = 0  // RFC 8484 §4.1: 0, so that GET responses can be cached
        let bytes = query.encode()
        var request: HTTPClientRequest
        if usePost {
            request = HTTPClientRequest(url: target)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/dns-message")
            request.body = .bytes(ByteBuffer(bytes: bytes))
        } else {
            let encoded = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            request = HTTPClientRequest(url: target + (target.contains("?") ? "&" : "?") + "dns=" + encoded)
        }
        request.headers.add(name: "Accept", value: "application/dns-message")
        let body = try await send(request)
        return Self.json(try Self.decode(body, for: query))
    }

    /// The JSON API (`application/dns-json`): `?name=…&type=…`, answered in the shape the agent emits.
    private func jsonAPI(_ name: String, type: DNSType) async throws -> JSON {
        var components = URLComponents(string: target)
        let existing = components?.queryItems ?? []
        components?.queryItems =
            existing + [
                URLQueryItem(name: "name", value: name), URLQueryItem(name: "type", value: type.description),
            ]
        guard let url = components?.string else { throw AgentError.failed("resolver '\(target)' is not a URL") }
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/dns-json")
        let body = try await send(request)
        guard let json = try? JSON.parse(body), json["Status"] != nil else {
            throw AgentError.retryable("the resolver's answer is not DNS JSON")
        }
        return json
    }

    private func send(_ request: HTTPClientRequest) async throws -> [UInt8] {
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(15))
        } catch {
            throw AgentError.retryable("cannot reach the resolver \(target): \(error)")
        }
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            let message = "the resolver \(target) answered HTTP \(response.status.code)"
            throw response.status.code >= 500 ? AgentError.retryable(message) : AgentError.failed(message)
        }
        return Array(body.readableBytesView)
    }

    static func json(_ message: DNSMessage) -> JSON {
        var object: JSONObject = [
            "Status": .int(Int64(message.responseCode.rawValue)), "TC": .bool(message.isTruncated),
            "RD": .bool(message.recursionDesired), "RA": .bool(message.recursionAvailable),
            "AD": .bool(message.authenticData), "CD": .bool(message.checkingDisabled),
        ]
        object["Question"] = .array(
            message.questions.map { ["name": .string($0.name.description), "type": .int(Int64($0.type.rawValue))] }
        )
        object["Answer"] = .array(
            message.answers.filter { $0.type != .opt }.map { record in
                [
                    "name": .string(record.name.description), "type": .int(Int64(record.type.rawValue)),
                    "TTL": .int(Int64(record.ttl)), "data": .string(record.data.presentation),
                ]
            }
        )
        return .object(object)
    }

    /// `udp://ADDRESS:53` for the first `nameserver` of /etc/resolv.conf.
    static func systemResolver() -> String {
        let text = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if words.count >= 2, words[0] == "nameserver" {
                return words[1].contains(":") ? "udp://[\(words[1])]:53" : "udp://\(words[1]):53"
            }
        }
        return "udp://127.0.0.1:53"
    }

    static func hostAndPort(_ text: String, defaultPort: Int) -> (String, Int) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            return (host, rest.hasPrefix(":") ? Int(rest.dropFirst()) ?? defaultPort : defaultPort)
        }
        let parts = text.split(separator: ":")
        if parts.count == 2, let port = Int(parts[1]) { return (String(parts[0]), port) }
        return (text, defaultPort)
    }

    /// `192.0.2.1` → `1.2.0.192.in-addr.arpa`; IPv6 nibbles under `ip6.arpa`.
    static func reverseName(_ address: IPAddress) -> String {
        let bytes = address.bytes
        if address.isIPv4 {
            return bytes.suffix(4).reversed().map(String.init).joined(separator: ".") + ".in-addr.arpa"
        }
        let nibbles = bytes.flatMap { [String($0 >> 4, radix: 16), String($0 & 0xF, radix: 16)] }
        return nibbles.reversed().joined(separator: ".") + ".ip6.arpa"
    }
}
