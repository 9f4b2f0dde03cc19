public import QuarryCapture
public import QuarryCore
import QuarryDNS

/// Writes a realistic capture of a small network's DNS and the traffic that follows it, for the README, demos,
/// tests and benchmarks (`quarry sample capture`): clients asking a resolver over UDP (EDNS or not) and sometimes
/// TCP, CNAME chains, AAAA, MX, NXDOMAIN, queries that are never answered, responses large enough to be IP
/// fragments, then TCP connections to the resolved addresses. The same planted domains as
/// ``DNSDocumentGenerator`` give the reference hunt something to find: a few hosts resolve
/// `update.evil-cdn.example` and connect to 203.0.113.66, one host resolves `c2.badactor.example`, and one host
/// connects to 203.0.113.66 without asking DNS. As on real networks the planted names go out in mixed case (a
/// resolver's 0x20 randomisation, or malware), one host asks over TCP and one IPv6 host asks for the AAAA record
/// and connects to 2001:db8::66 (``Configuration/plantedVariants``).
///
/// Deterministic for a given seed; ``Summary`` says what was written so that tests can check every document.
public struct CaptureGenerator {
    public struct Configuration: Sendable {
        public var hosts: Int
        public var minutes: Int
        /// Capture start, nanoseconds since the epoch.
        public var start: Int64
        public var seed: UInt64 = 0x5EED
        public var format: CaptureWriter.Format = .pcap()
        public var linkType: LinkType = .ethernet
        public var vlans: [UInt16] = []
        /// DNS lookups per host per minute.
        public var lookupsPerHostPerMinute: Double = 6
        /// The share of answered lookups followed by a connection to the address (a DNS-heavy benchmark capture
        /// lowers it).
        public var connectionShare: Double = 0.5
        /// Planted lookups in mixed case, one host asking over TCP and one over IPv6 (see the type's comment).
        public var plantedVariants = true

        public init(hosts: Int, minutes: Int, start: Int64) {
            self.hosts = hosts
            self.minutes = minutes
            self.start = start
        }
    }

    /// What the capture holds.
    public struct Summary: Sendable {
        public var packets = 0
        public var bytes: Int64 = 0
        /// DNS transactions, each one Packetbeat document.
        public var transactions = 0
        public var unanswered = 0
        public var nxdomain = 0
        public var overTCP = 0
        public var fragmented = 0
        public var connections = 0
        /// Hosts that resolved each planted domain.
        public var plantedLookups: [String: Set<String>] = [:]
        public var silentConnections = 0
    }

    public static let resolver = IPAddress("10.0.0.53")!
    public static let resolverIPv6 = IPAddress("fd00::53")!
    /// The planted domain's IPv6 address, which the IPv6 host resolves and connects to.
    public static let plantedIPv6Address = "2001:db8::66"
    /// The IPv6 host that resolves the first planted domain (with ``Configuration/plantedVariants``).
    public static let ipv6Host = IPAddress("fd00::10:2")!
    public static let plantedDomains: [(name: String, address: String)] = [
        ("update.evil-cdn.example", "203.0.113.66"), ("c2.badactor.example", "198.51.100.23"),
    ]

    public let configuration: Configuration
    private var random: SplitMix64
    private var summary = Summary()
    private var ipIdentification: UInt16 = 1
    private var slot: [(timestamp: Int64, frame: [UInt8])] = []
    private let hosts: [IPAddress]

    public init(configuration: Configuration) {
        self.configuration = configuration
        random = SplitMix64(seed: configuration.seed)
        hosts = (0..<max(4, configuration.hosts)).map {
            IPAddress("10.\(1 + $0 / 62_500).\($0 / 250 % 250).\($0 % 250 + 2)")!
        }
    }

    /// The host that connects to the planted address without resolving it.
    public var silentConnector: IPAddress { hosts[hosts.count - 1] }

    /// Writes the capture to `path`.
    public static func write(path: String, configuration: Configuration) throws(CaptureError) -> Summary {
        var generator = CaptureGenerator(configuration: configuration)
        let writer = try CaptureWriter(path: path, format: configuration.format, linkTypes: [configuration.linkType])
        generator.run(into: writer)
        try writer.close()
        generator.summary.bytes = writer.bytesWritten
        return generator.summary
    }

    private mutating func next(_ bound: Int) -> Int { Int(random.next() % UInt64(max(1, bound))) }

    private mutating func run(into writer: CaptureWriter) {
        let seconds = configuration.minutes * 60
        let perSecond = Double(hosts.count) * configuration.lookupsPerHostPerMinute / 60
        var carry = 0.0
        for second in 0..<seconds {
            let base = configuration.start + Int64(second) * 1_000_000_000
            carry += perSecond
            let actions = Int(carry)
            carry -= Double(actions)
            for _ in 0..<actions {
                let time = base + Int64(next(700_000)) * 1000
                let host = hosts[next(hosts.count)]
                action(host: host, at: time)
            }
            planted(second: second, base: base)
            slot.sort { $0.timestamp < $1.timestamp }
            for (timestamp, frame) in slot { writer.write(frame, timestamp: timestamp) }
            summary.packets += slot.count
            slot.removeAll(keepingCapacity: true)
        }
    }

    // MARK: Actions

    private mutating func action(host: IPAddress, at time: Int64) {
        let roll = next(1000)
        switch roll {
        case 0..<10:  // never answered
            lookup(host, name: "timeout-\(next(1000)).slow.example", type: .a, at: time, answered: false)
        case 10..<40:
            summary.nxdomain += 1
            lookup(host, name: "nx\(next(100_000)).invalid-host.example", type: .a, at: time, responseCode: 3)
        case 40..<60:
            tcpLookup(host, at: time)
        case 60..<65:
            summary.fragmented += 1
            lookup(host, name: "keys-\(next(50)).big.example", type: .txt, at: time, large: true)
        case 65..<75:
            lookup(host, name: popularDomain(), type: .mx, at: time)
        case 75..<80:
            emit(time + 1_000_000, PacketBuilder.icmp(from: host, to: Self.resolver, type: 8, code: 0))
            emit(time + 1_400_000, PacketBuilder.icmp(from: Self.resolver, to: host, type: 0, code: 0))
        case 80..<160:
            lookup(host, name: popularDomain(), type: .aaaa, at: time)
        default:
            let name = popularDomain()
            let address = lookup(host, name: name, type: .a, at: time, cname: roll < 300)
            if let address, Double(next(1000)) < configuration.connectionShare * 1000 {
                connect(host, to: address, at: time + 30_000_000)
            }
        }
    }

    private mutating func planted(second: Int, base: Int64) {
        // The first planted domain: the first three hosts, each every five minutes, then a connection.
        let (name, address) = Self.plantedDomains[0]
        for (index, host) in hosts.prefix(3).enumerated() where (second + index * 97) % 300 == 17 {
            summary.plantedLookups[name, default: []].insert(host.description)
            let asked = configuration.plantedVariants ? mixedCase(name) : name
            _ = lookup(host, name: asked, type: .a, at: base + 100_000_000, fixedAddress: IPAddress(address)!)
            connect(host, to: IPAddress(address)!, at: base + 150_000_000)
        }
        if configuration.plantedVariants, (second + 3 * 97) % 300 == 17 {
            if hosts.count > 4 {
                let host = hosts[3]
                summary.plantedLookups[name, default: []].insert(host.description)
                tcpLookup(host, name: mixedCase(name), type: .a, address: IPAddress(address)!, at: base + 120_000_000)
                connect(host, to: IPAddress(address)!, at: base + 400_000_000)
            }
            let host = Self.ipv6Host
            let v6 = IPAddress(Self.plantedIPv6Address)!
            summary.plantedLookups[name, default: []].insert(host.description)
            _ = lookup(
                host,
                name: mixedCase(name),
                type: .aaaa,
                at: base + 130_000_000,
                resolver: Self.resolverIPv6,
                fixedAddress: v6
            )
            connect(host, to: v6, at: base + 180_000_000)
        }
        // The second: one host in the middle, every ten minutes.
        if second % 600 == 311 {
            let host = hosts[hosts.count / 2]
            let (name, address) = Self.plantedDomains[1]
            summary.plantedLookups[name, default: []].insert(host.description)
            _ = lookup(host, name: name, type: .a, at: base + 200_000_000, fixedAddress: IPAddress(address)!)
            connect(host, to: IPAddress(address)!, at: base + 250_000_000)
        }
        // A host that connects without asking DNS, every seven minutes.
        if second % 420 == 200 {
            summary.silentConnections += 1
            connect(silentConnector, to: IPAddress(Self.plantedDomains[0].address)!, at: base + 300_000_000)
        }
    }

    /// `name` with each ASCII letter's case chosen at random and the first letter upper case, as a resolver using
    /// 0x20 randomisation sends it.
    private mutating func mixedCase(_ name: String) -> String {
        var first = true
        return String(
            String.UnicodeScalarView(
                name.unicodeScalars.map { scalar in
                    guard scalar.properties.isAlphabetic, scalar.isASCII else { return scalar }
                    let upper = first || next(2) == 0
                    first = false
                    return upper ? Unicode.Scalar(UInt8(scalar.value) & 0xDF) : scalar
                }
            )
        )
    }

    private mutating func popularDomain() -> String {
        let domains = DNSDocumentGenerator.popularDomains
        return domains[zipfRank(count: domains.count, uniform: Double(next(1_000_000)) / 1_000_000)]
    }

    private func address(for name: String, type: DNSType) -> IPAddress {
        let v4 = IPAddress(DNSDocumentGenerator.address(for: name))!
        guard type == .aaaa else { return v4 }
        let bytes = v4.bytes.suffix(4)
        return IPAddress(bytes: [0x20, 0x01, 0x0D, 0xB8, 0, 0x93, 0, 0, 0, 0, 0, 0] + bytes)!
    }

    /// A UDP lookup; returns the address the answer gives (A records), if any.
    @discardableResult
    private mutating func lookup(
        _ host: IPAddress,
        name: String,
        type: DNSType,
        at time: Int64,
        answered: Bool = true,
        responseCode: UInt8 = 0,
        cname: Bool = false,
        large: Bool = false,
        resolver: IPAddress = resolver,
        fixedAddress: IPAddress? = nil
    ) -> IPAddress? {
        summary.transactions += 1
        let port = UInt16(32_768 + next(28_000))
        let id = UInt16(next(65_536))
        let owner = DNSName(name)!
        var query = DNSMessage(id: id, questions: [DNSQuestion(name: owner, type: type)])
        let edns = large || next(2) == 0
        if edns { query.additionals = [EDNS(udpPayloadSize: 1232).record] }
        emit(time, PacketBuilder.udp(from: host, port: port, to: resolver, port: 53, payload: query.encode()))
        guard answered else {
            summary.unanswered += 1
            return nil
        }
        var response = query
        response.isResponse = true
        response.recursionAvailable = true
        response.headerResponseCode = responseCode
        var resolved: IPAddress?
        if responseCode == 3 {
            response.authorities = [
                DNSResourceRecord(
                    name: DNSName("example.")!,
                    type: .soa,
                    ttl: 900,
                    data: .soa(
                        .init(
                            primary: DNSName("ns.example.")!,
                            mailbox: DNSName("hostmaster.example.")!,
                            serial: 2_026_112_901,
                            refresh: 7200,
                            retry: 3600,
                            expire: 1_209_600,
                            minimum: 900
                        )
                    )
                )
            ]
        } else {
            var target = owner
            if cname {
                target = DNSName("edge-\(next(40)).cdn.example.net")!
                response.answers.append(DNSResourceRecord(name: owner, type: .cname, ttl: 300, data: .cname(target)))
            }
            switch type {
            case .a, .aaaa:
                let address = fixedAddress ?? address(for: name, type: type)
                resolved = type == .a ? address : nil
                response.answers.append(
                    DNSResourceRecord(
                        name: target,
                        type: type,
                        ttl: UInt32(60 + next(240)),
                        data: type == .a ? .a(address) : .aaaa(address)
                    )
                )
            case .mx:
                response.answers.append(
                    DNSResourceRecord(
                        name: owner,
                        type: .mx,
                        ttl: 3600,
                        data: .mx(preference: 10, exchange: DNSName("mx1.\(name)")!)
                    )
                )
            case .txt:
                // Large enough (about 3 KB) to be fragmented at a 1,500-byte MTU.
                let strings = (0..<12).map { index in
                    Array("v=key\(index); k=rsa; p=\(String(repeating: "A", count: 230))".utf8)
                }
                response.answers.append(DNSResourceRecord(name: owner, type: .txt, ttl: 300, data: .txt(strings)))
            default:
                break
            }
        }
        let delay = Int64(200_000 + next(30_000_000))
        let packet = PacketBuilder.udp(
            from: resolver,
            port: 53,
            to: host,
            port: port,
            payload: response.encode(),
            identification: nextIdentification()
        )
        if packet.count > 1500 {
            for (index, fragment) in PacketBuilder.fragments(
                of: packet,
                mtu: 1500,
                identification: UInt32(nextIdentification())
            ).enumerated() {
                emit(time + delay + Int64(index) * 10_000, fragment)
            }
        } else {
            emit(time + delay, packet)
        }
        return resolved
    }

    /// A lookup over TCP: handshake, the length-prefixed query, a response split over two segments (sometimes sent
    /// out of order, sometimes with a retransmission), and the close. Without `name` it asks for a random TXT policy
    /// record; with it, for `type` answered by `address`.
    private mutating func tcpLookup(
        _ host: IPAddress,
        name asked: String? = nil,
        type: DNSType = .txt,
        address: IPAddress? = nil,
        at time: Int64
    ) {
        summary.transactions += 1
        summary.overTCP += 1
        let port = UInt16(32_768 + next(28_000))
        let name = DNSName(asked ?? "_policy-\(next(200)).txt.example")!
        let query = DNSMessage(id: UInt16(next(65_536)), questions: [DNSQuestion(name: name, type: type)])
        var response = query
        response.isResponse = true
        response.recursionAvailable = true
        if let address {
            let data: DNSRecordData = address.isIPv4 ? .a(address) : .aaaa(address)
            response.answers = [DNSResourceRecord(name: name, type: type, ttl: 300, data: data)]
        } else {
            response.answers = [
                DNSResourceRecord(
                    name: name,
                    type: .txt,
                    ttl: 300,
                    data: .txt((0..<4).map { _ in Array(String(repeating: "policy=strict; ", count: 12).utf8) })
                )
            ]
        }
        var exchange = Connection(client: host, clientPort: port, server: Self.resolver, serverPort: 53, start: time)
        exchange.open(&self)
        let request = query.encode()
        exchange.send(
            &self,
            fromClient: true,
            payload: [UInt8(request.count >> 8), UInt8(request.count & 0xFF)] + request
        )
        let answer = response.encode()
        let framed = [UInt8(answer.count >> 8), UInt8(answer.count & 0xFF)] + answer
        let split = framed.count / 2
        let mode = next(4)
        exchange.send(
            &self,
            fromClient: false,
            payload: Array(framed[..<split]),
            rest: Array(framed[split...]),
            outOfOrder: mode == 0,
            retransmit: mode == 1
        )
        exchange.close(&self)
    }

    /// A TCP connection to port 443 with some data each way.
    private mutating func connect(_ host: IPAddress, to address: IPAddress, at time: Int64) {
        summary.connections += 1
        var connection = Connection(
            client: host,
            clientPort: UInt16(32_768 + next(28_000)),
            server: address,
            serverPort: 443,
            start: time
        )
        connection.open(&self)
        connection.send(&self, fromClient: true, payload: [UInt8](repeating: 0x16, count: 200 + next(400)))
        connection.send(&self, fromClient: false, payload: [UInt8](repeating: 0x17, count: 1000 + next(3000)))
        connection.close(&self)
    }

    fileprivate mutating func nextIdentification() -> UInt16 {
        ipIdentification &+= 1
        return ipIdentification
    }

    fileprivate mutating func emit(_ time: Int64, _ packet: [UInt8]) {
        let mac: (IPAddress) -> UInt64 = { 0x02_00_00_00_00_00 | UInt64($0.low & 0xFFFF_FFFF) }
        let source = packet.first.map { $0 >> 4 } == 4 ? IPAddress(bytes: packet[12..<16]) : nil
        let frame = PacketBuilder.frame(
            packet,
            linkType: configuration.linkType,
            vlans: configuration.vlans,
            sourceMAC: source.map(mac) ?? 0x02_00_00_00_00_01,
            destinationMAC: 0x02_00_00_00_00_fe
        )
        slot.append((time, frame))
    }
}

/// One TCP connection's packets, with sequence numbers kept right.
private struct Connection {
    var client: IPAddress
    var clientPort: UInt16
    var server: IPAddress
    var serverPort: UInt16
    var time: Int64
    var clientSequence: UInt32 = 1000
    var serverSequence: UInt32 = 5000

    init(client: IPAddress, clientPort: UInt16, server: IPAddress, serverPort: UInt16, start: Int64) {
        self.client = client
        self.clientPort = clientPort
        self.server = server
        self.serverPort = serverPort
        time = start
    }

    private mutating func packet(
        _ generator: inout CaptureGenerator,
        fromClient: Bool,
        flags: PacketBuilder.TCPFlags,
        payload: [UInt8] = [],
        sequence: UInt32? = nil,
        advance: Int64 = 2_000_000
    ) {
        time += advance
        let segment = PacketBuilder.tcp(
            from: fromClient ? client : server,
            port: fromClient ? clientPort : serverPort,
            to: fromClient ? server : client,
            port: fromClient ? serverPort : clientPort,
            sequence: sequence ?? (fromClient ? clientSequence : serverSequence),
            acknowledgment: fromClient ? serverSequence : clientSequence,
            flags: flags,
            payload: payload,
            identification: generator.nextIdentification()
        )
        generator.emit(time, segment)
    }

    mutating func open(_ generator: inout CaptureGenerator) {
        packet(&generator, fromClient: true, flags: .syn)
        clientSequence &+= 1
        packet(&generator, fromClient: false, flags: [.syn, .ack], advance: 15_000_000)
        serverSequence &+= 1
        packet(&generator, fromClient: true, flags: .ack)
    }

    /// Sends `payload` (and `rest` as a second segment); optionally the two segments arrive in reverse order, or the
    /// first is sent twice.
    mutating func send(
        _ generator: inout CaptureGenerator,
        fromClient: Bool,
        payload: [UInt8],
        rest: [UInt8] = [],
        outOfOrder: Bool = false,
        retransmit: Bool = false
    ) {
        var segments: [[UInt8]] = []
        var remaining = payload[...]
        while !remaining.isEmpty {
            segments.append(Array(remaining.prefix(1460)))
            remaining = remaining.dropFirst(1460)
        }
        if !rest.isEmpty { segments.append(rest) }
        var start = fromClient ? clientSequence : serverSequence
        var planned: [(UInt32, [UInt8])] = []
        for segment in segments {
            planned.append((start, segment))
            start &+= UInt32(segment.count)
        }
        if outOfOrder && planned.count >= 2 { planned.swapAt(0, 1) }
        if retransmit, let first = planned.first { planned.insert(first, at: 1) }
        for (sequence, segment) in planned {
            packet(&generator, fromClient: fromClient, flags: [.psh, .ack], payload: segment, sequence: sequence)
        }
        if fromClient { clientSequence = start } else { serverSequence = start }
        packet(&generator, fromClient: !fromClient, flags: .ack)
    }

    mutating func close(_ generator: inout CaptureGenerator) {
        packet(&generator, fromClient: true, flags: [.fin, .ack])
        clientSequence &+= 1
        packet(&generator, fromClient: false, flags: [.fin, .ack])
        serverSequence &+= 1
        packet(&generator, fromClient: true, flags: .ack)
    }
}
