public import QuarryCore

/// Generates Packetbeat-shaped documents for demos, tests and benchmarks: DNS transactions (about 40 fields each)
/// from a fixed population of client hosts (20 per 1,000 documents), domains drawn with Zipf-like popularity,
/// CNAMEs and NXDOMAINs, and network flows (`type: flow`) from clients to the addresses they resolved. A few planted
/// "suspicious" domains give a hunt something to find: some hosts query them and then connect to their
/// addresses, and one host connects to such an address without ever asking DNS for it.
///
/// Deterministic for a given seed, so tests can assert exact counts.
///
/// ```swift
/// var generator = DNSDocumentGenerator(configuration: .init(documents: 10_000, end: now))
/// while let document = generator.next() { ... }
/// ```
public struct DNSDocumentGenerator: Sendable, IteratorProtocol {
    public struct Configuration: Sendable {
        /// How many documents to produce.
        public var documents: Int
        /// Timestamp of the last document, in epoch milliseconds.
        public var end: Int64
        /// The time span the documents cover, ending at `end`.
        public var spanMillis: Int64
        public var seed: UInt64
        /// The sensor that "captured" the traffic (`host.name`, `agent.name`).
        public var sensorName: String

        public init(
            documents: Int,
            end: Int64,
            spanMillis: Int64 = 24 * 3_600_000,
            seed: UInt64 = 0x5EED,
            sensorName: String = "quarry-sensor-1"
        ) {
            self.documents = documents
            self.end = end
            self.spanMillis = spanMillis
            self.seed = seed
            self.sensorName = sensorName
        }
    }

    /// A domain the generator plants, with the hosts that query it.
    public struct PlantedDomain: Sendable, Hashable {
        public var name: String
        public var addresses: [String]
        /// Every `interval`-th document is a query for this domain, from one of `clients`.
        public var interval: Int
        public var clients: [String]
    }

    public let configuration: Configuration
    private var random: SplitMix64
    private var produced = 0
    public let clients: [String]
    public let planted: [PlantedDomain]
    /// A host that connects to the first planted domain's address without querying DNS for it.
    public let silentConnector: String
    private let resolver = "10.0.0.53"
    /// A DNS answer waiting for the connection that follows it.
    private var pendingFlow: (client: String, address: String, timestamp: Int64)?

    static let popularDomains = [
        "www.google.com", "www.youtube.com", "outlook.office365.com", "login.microsoftonline.com",
        "www.facebook.com", "api.github.com", "github.com", "www.wikipedia.org", "slack.com", "zoom.us",
        "update.microsoft.com", "ocsp.digicert.com", "www.amazon.com", "s3.amazonaws.com", "www.bbc.co.uk",
        "cdn.jsdelivr.net", "fonts.googleapis.com", "www.linkedin.com", "mail.google.com", "teams.microsoft.com",
        "www.apple.com", "time.apple.com", "ntp.ubuntu.com", "archive.ubuntu.com", "deb.debian.org",
        "registry.npmjs.org", "pypi.org", "files.pythonhosted.org", "www.reddit.com", "twitter.com",
        "www.netflix.com", "dropbox.com", "docs.google.com", "drive.google.com", "www.cloudflare.com",
        "api.stripe.com", "sentry.io", "www.nytimes.com", "www.theguardian.com", "intranet.corp.example",
    ]

    public init(configuration: Configuration) {
        self.configuration = configuration
        random = SplitMix64(seed: configuration.seed)
        let clientCount = max(20, configuration.documents / 50)
        // 10.1.0.2, 10.1.0.3, … 250 hosts per /24, then the next /24, then the next /16 (up to 15 million hosts).
        clients = (0..<clientCount).map { "10.\(1 + $0 / 62_500).\($0 / 250 % 250).\($0 % 250 + 2)" }
        silentConnector = clients[clients.count - 1]
        planted = [
            PlantedDomain(
                name: "update.evil-cdn.example",
                addresses: ["203.0.113.66", "2001:db8:bad::66"],
                interval: 997,
                clients: Array(clients.prefix(3))
            ),
            PlantedDomain(
                name: "c2.badactor.example",
                addresses: ["198.51.100.23"],
                interval: 4999,
                clients: [clients[clients.count / 2]]
            ),
        ]
    }

    /// Addresses that popular domains resolve to, stable per domain.
    public static func address(for domain: String) -> String {
        var hash: UInt64 = 1_469_598_103_934_665_603
        for byte in domain.utf8 { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        return "93.\(hash % 200 + 20).\(hash >> 8 % 250).\(hash >> 16 % 250 + 1)"
    }

    public mutating func next() -> JSON? {
        guard produced < configuration.documents else { return nil }
        defer { produced += 1 }
        let n = produced
        let step = configuration.spanMillis / Int64(max(1, configuration.documents))
        let timestamp = configuration.end - configuration.spanMillis + Int64(n) * step + Int64(random.next() % 997)
        if let flow = pendingFlow {
            pendingFlow = nil
            return flowDocument(
                client: flow.client,
                address: flow.address,
                timestamp: max(timestamp, flow.timestamp + 5)
            )
        }
        if n % 2003 == 2002, let address = planted.first?.addresses.first {
            return flowDocument(client: silentConnector, address: address, timestamp: timestamp)
        }
        var client = clients[Int(random.next() % UInt64(clients.count))]
        var name: String
        var answers: [String] = []
        var responseCode = "NOERROR"
        var cname: String?
        if let domain = planted.first(where: { n % $0.interval == $0.interval - 1 }) {
            name = domain.name
            client = domain.clients[(n / domain.interval) % domain.clients.count]
            answers = domain.addresses.filter { !$0.contains(":") }
        } else {
            let roll = random.next() % 1000
            if roll < 15 {
                name = "nx\(random.next() % 100_000).invalid-host.example"
                responseCode = "NXDOMAIN"
            } else {
                // Zipf-like: rank r chosen with probability ~ 1/r.
                let rank = zipfRank(
                    count: Self.popularDomains.count,
                    uniform: Double(random.next() % 1_000_000) / 1_000_000
                )
                name = Self.popularDomains[rank]
                if roll < 150 {
                    cname = "edge-\(rank).cdn.example.net"
                }
                answers = [Self.address(for: name)]
            }
        }
        if let address = answers.first, planted.contains(where: { $0.name == name }) || random.next() % 2 == 0 {
            pendingFlow = (client, address, timestamp)
        }
        let port = Int64(32768 + random.next() % 28000)
        let id = Int64(random.next() % 65536)
        let duration = Int64(200_000 + random.next() % 40_000_000)
        let time = ISO8601.format(timestamp)
        let endTime = ISO8601.format(timestamp + duration / 1_000_000)
        let labels = name.split(separator: ".").map(String.init)
        let tld = labels.last ?? ""
        let registered = labels.suffix(2).joined(separator: ".")
        let subdomain = labels.count > 2 ? labels.dropLast(2).joined(separator: ".") : nil
        var answerObjects: [JSON] = []
        if let cname {
            answerObjects.append([
                "name": .string(name), "type": "CNAME", "class": "IN", "ttl": "300", "data": .string(cname),
            ])
        }
        for address in answers {
            answerObjects.append([
                "name": .string(cname ?? name), "type": "A", "class": "IN", "ttl": "60", "data": .string(address),
            ])
        }
        let queryBytes = Int64(28 + name.utf8.count)
        let responseBytes = queryBytes + Int64(answerObjects.count * 16)
        var question: JSONObject = [
            "name": .string(name), "type": "A", "class": "IN", "registered_domain": .string(registered),
            "top_level_domain": .string(tld),
        ]
        if let subdomain { question["subdomain"] = .string(subdomain) }
        question["etld_plus_one"] = .string(registered)
        var dns: JSONObject = [
            "id": .int(id), "op_code": "QUERY",
            "flags": [
                "authoritative": false, "recursion_available": true, "recursion_desired": true,
                "authentic_data": false, "checking_disabled": false, "truncated_response": false,
            ],
            "response_code": .string(responseCode), "type": "answer", "question": .object(question),
            "answers_count": .int(Int64(answerObjects.count)), "authorities_count": 0, "additionals_count": 0,
            "header_flags": ["RD", "RA"],
        ]
        if !answerObjects.isEmpty {
            dns["answers"] = .array(answerObjects)
            dns["resolved_ip"] = .array(answers.map { .string($0) })
        }
        let related: [JSON] = ([client, resolver] + answers).map { .string($0) }
        let event: JSON = [
            "dataset": "network_traffic.dns", "kind": "event", "category": ["network"],
            "type": ["connection", "protocol"], "start": .string(time), "end": .string(endTime),
            "duration": .int(duration),
        ]
        let network: JSON = [
            "type": "ipv4", "transport": "udp", "protocol": "dns", "direction": "egress",
            "community_id": .string("1:\(Self.communityHash(client, port))"),
            "bytes": .int(queryBytes + responseBytes),
        ]
        let clientSide: JSON = ["ip": .string(client), "port": .int(port), "bytes": .int(queryBytes)]
        let serverSide: JSON = ["ip": .string(resolver), "port": 53, "bytes": .int(responseBytes)]
        let agent: JSON = ["type": "packetbeat", "version": "8.17.0", "name": .string(configuration.sensorName)]
        var document = JSONObject()
        document["@timestamp"] = .string(time)
        document["type"] = "dns"
        document["event"] = event
        document["network"] = network
        document["client"] = clientSide
        document["server"] = serverSide
        document["source"] = clientSide
        document["destination"] = serverSide
        document["dns"] = .object(dns)
        document["related"] = ["ip": .array(related)]
        document["status"] = responseCode == "NOERROR" ? "OK" : "Error"
        document["method"] = "QUERY"
        document["query"] = .string("class IN, type A, \(name)")
        document["resource"] = .string(name)
        document["host"] = ["name": .string(configuration.sensorName)]
        document["agent"] = agent
        document["ecs"] = ["version": "8.0.0"]
        return .object(document)
    }

    /// A final Packetbeat flow record of a TCP connection from `client` to `address`:443.
    private mutating func flowDocument(client: String, address: String, timestamp: Int64) -> JSON {
        let port = Int64(32768 + random.next() % 28000)
        let packetsOut = Int64(4 + random.next() % 40)
        let packetsIn = Int64(4 + random.next() % 60)
        let bytesOut = packetsOut * Int64(60 + random.next() % 600)
        let bytesIn = packetsIn * Int64(60 + random.next() % 1400)
        let duration = Int64(10_000_000 + random.next() % 30_000_000_000)
        let start = ISO8601.format(timestamp)
        let end = ISO8601.format(timestamp + duration / 1_000_000)
        let event: JSON = [
            "dataset": "network_traffic.flow", "kind": "event", "category": ["network_traffic", "network"],
            "action": "network_flow", "type": ["connection", "end"], "start": .string(start), "end": .string(end),
            "duration": .int(duration),
        ]
        let network: JSON = [
            "type": address.contains(":") ? "ipv6" : "ipv4", "transport": "tcp",
            "community_id": .string("1:\(Self.communityHash(client + address, port))"),
            "bytes": .int(bytesOut + bytesIn), "packets": .int(packetsOut + packetsIn),
        ]
        let source: JSON = [
            "ip": .string(client), "port": .int(port), "bytes": .int(bytesOut), "packets": .int(packetsOut),
        ]
        let destination: JSON = [
            "ip": .string(address), "port": 443, "bytes": .int(bytesIn), "packets": .int(packetsIn),
        ]
        var document = JSONObject()
        document["@timestamp"] = .string(end)
        document["type"] = "flow"
        document["event"] = event
        document["flow"] = ["id": .string(Self.communityHash(address + client, port * 7)), "final": true]
        document["network"] = network
        document["source"] = source
        document["destination"] = destination
        document["related"] = ["ip": [.string(client), .string(address)]]
        document["host"] = ["name": .string(configuration.sensorName)]
        document["agent"] = ["type": "packetbeat", "version": "8.17.0", "name": .string(configuration.sensorName)]
        document["ecs"] = ["version": "8.0.0"]
        return .object(document)
    }

    static func communityHash(_ client: String, _ port: Int64) -> String {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for byte in (client + ":" + String(port)).utf8 { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var text = ""
        for position in 0..<27 {
            let shift = UInt64(position % 10 * 6)
            let index = Int((hash >> shift) & 63) ^ (position & 7)
            text.append(alphabet[index])
        }
        return text + "="
    }

}

/// A small, fast, seedable random generator (Steele, Lea and Flood's SplitMix64); tests use it too, so that a
/// failure names a seed that reproduces it.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A Zipf-like rank in `0..<count` from a uniform `u` in [0, 1): rank r comes with probability about 1/r.
func zipfRank(count: Int, uniform u: Double) -> Int {
    let rank = Int(exp(u * log(Double(count + 1)))) - 1
    return max(0, min(rank, count - 1))
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
