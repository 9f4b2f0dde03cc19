public import QuarryCapture
import QuarryCore
import QuarryDNS

/// Turns decoded packets into Packetbeat's documents: DNS transactions (`type: dns`) and flows (`type: flow`), with
/// Packetbeat's field names, value formats and transaction semantics, so that stories written for Packetbeat's data
/// run on these documents unchanged.
///
/// Transactions pair a query with its response by transport, client and server address and port, and DNS id. A
/// query unanswered within ``PacketbeatOptions/transactionTimeout`` (capture time) is published with
/// "No response to this query was received"; a response without its query with "Response: received without an
/// associated Query"; a second query with the same id closes the first with Packetbeat's duplicate-query note. Each
/// of these has `status: Error` and the note in `error.message`, as Packetbeat writes them.
public final class PacketbeatProcessor {
    public let options: PacketbeatOptions
    public private(set) var statistics = PacketbeatStatistics()
    private let emit: (PacketbeatDocument) -> Void
    private var transactions: [TransactionKey: Transaction] = [:]
    private var streams: [StreamKey: TCPStream] = [:]
    private var flows: [FlowKey: Flow] = [:]
    private var lastTransactionSweep: Int64 = 0
    private var nextFlowReport: Int64?

    /// `emit` receives each document as it completes.
    public init(options: PacketbeatOptions = PacketbeatOptions(), emit: @escaping (PacketbeatDocument) -> Void) {
        self.options = options
        self.emit = emit
    }

    // MARK: Keys

    struct TransactionKey: Hashable {
        var transport: UInt8
        var client: IPAddress
        var clientPort: UInt16
        var server: IPAddress
        var serverPort: UInt16
        var id: UInt16
    }

    struct StreamKey: Hashable {
        var source: IPAddress
        var sourcePort: UInt16
        var destination: IPAddress
        var destinationPort: UInt16
    }

    struct FlowKey: Hashable {
        var vlans: [UInt16]
        var ipProtocol: UInt8
        var low: IPAddress
        var lowPort: UInt16
        var high: IPAddress
        var highPort: UInt16
    }

    /// A DNS message as seen on the wire.
    struct Seen {
        var message: DNSMessage
        var timestamp: Int64
        var length: Int
        var source: IPAddress
        var sourcePort: UInt16
        var destination: IPAddress
        var destinationPort: UInt16
        var isIPv6: Bool
    }

    final class Transaction {
        var key: TransactionKey
        var request: Seen?
        var response: Seen?
        var notes: [String] = []
        init(key: TransactionKey) { self.key = key }
    }

    final class Flow {
        let id: String
        let key: FlowKey
        let ipProtocol: UInt8
        let source: IPAddress
        let sourcePort: UInt16?
        let destination: IPAddress
        let destinationPort: UInt16?
        let isIPv6: Bool
        var sourceMAC: UInt64?
        var destinationMAC: UInt64?
        var start: Int64
        var last: Int64
        var sourcePackets = 0
        var sourceBytes = 0
        var destinationPackets = 0
        var destinationBytes = 0
        /// Reports published so far; numbers each report for its document id (an idle flow's periodic reports are
        /// otherwise identical).
        var reports = 0
        let communityID: String
        /// Text that every report of the flow repeats, made once.
        let sourceText: String
        let destinationText: String
        let startText: String
        /// The unchanging parts of its reports, made at the first one.
        var template: PacketbeatDocuments.FlowTemplate?

        init(id: String, key: FlowKey, packet: DecodedPacket) {
            self.id = id
            self.key = key
            ipProtocol = packet.ipProtocol
            source = packet.source
            destination = packet.destination
            sourcePort = packet.hasPorts ? packet.sourcePort : nil
            destinationPort = packet.hasPorts ? packet.destinationPort : nil
            isIPv6 = packet.isIPv6
            sourceMAC = packet.sourceMAC
            destinationMAC = packet.destinationMAC
            start = packet.timestamp
            last = packet.timestamp
            sourceText = packet.source.description
            destinationText = packet.destination.description
            startText = timestampText(packet.timestamp)
            communityID = CommunityID.compute(
                source: packet.source,
                destination: packet.destination,
                protocolNumber: packet.ipProtocol,
                sourcePort: packet.hasPorts ? packet.sourcePort : nil,
                destinationPort: packet.hasPorts ? packet.destinationPort : nil
            )
        }
    }

    // MARK: Packets

    /// Counts a packet the decoder could not read (so that the summary has every packet).
    public func countUndecoded(bytes: Int) {
        statistics.packets += 1
        statistics.bytes += Int64(bytes)
    }

    public func process(_ packet: DecodedPacket) {
        statistics.packets += 1
        statistics.bytes += Int64(packet.frameLength)
        expireTransactions(now: packet.timestamp)
        if options.flows { track(packet) }

        let isDNSPort =
            options.dnsPorts.contains(packet.sourcePort) || options.dnsPorts.contains(packet.destinationPort)
        guard packet.hasPorts, isDNSPort else { return }
        switch packet.ipProtocol {
        case 17:
            guard !packet.payload.isEmpty else { return }
            receive(packet.payload, packet: packet, transport: 17)
        case 6:
            let key = StreamKey(
                source: packet.source,
                sourcePort: packet.sourcePort,
                destination: packet.destination,
                destinationPort: packet.destinationPort
            )
            var stream = streams.removeValue(forKey: key) ?? TCPStream()
            let events = stream.add(
                sequence: packet.tcpSequence,
                payload: packet.payload,
                syn: packet.tcpFlags & DecodedPacket.tcpSYN != 0
            )
            let closing = packet.tcpFlags & (DecodedPacket.tcpFIN | DecodedPacket.tcpRST) != 0
            if closing {
                if stream.incompleteBytes > 0 { statistics.count("dns over tcp: message's data is incomplete") }
            } else {
                streams[key] = stream
            }
            for event in events {
                switch event {
                case .message(let bytes):
                    bytes.withUnsafeBufferPointer { receive($0, packet: packet, transport: 6) }
                case .zeroLength:
                    statistics.count("dns over tcp: message's length was set to zero")
                }
            }
        default:
            return
        }
    }

    private func receive(_ bytes: UnsafeBufferPointer<UInt8>, packet: DecodedPacket, transport: UInt8) {
        let message: DNSMessage
        do {
            message = try DNSMessage.decode(bytes)
        } catch {
            statistics.count("dns: message's data could not be decoded as DNS")
            return
        }
        statistics.dnsMessages += 1
        let seen = Seen(
            message: message,
            timestamp: packet.timestamp,
            length: bytes.count,
            source: packet.source,
            sourcePort: packet.sourcePort,
            destination: packet.destination,
            destinationPort: packet.destinationPort,
            isIPv6: packet.isIPv6
        )
        if message.isResponse {
            let key = TransactionKey(
                transport: transport,
                client: packet.destination,
                clientPort: packet.destinationPort,
                server: packet.source,
                serverPort: packet.sourcePort,
                id: message.id
            )
            let transaction: Transaction
            if let pending = transactions.removeValue(forKey: key) {
                transaction = pending
            } else {
                transaction = Transaction(key: key)
                transaction.notes.append("Response: received without an associated Query")
            }
            transaction.response = seen
            if transport == 17 {
                let responseEDNS = message.edns != nil
                if !responseEDNS && bytes.count > 512 {
                    transaction.notes.append("Response: Non-EDNS packet has size greater than 512")
                }
                if let request = transaction.request {
                    let requestEDNS = request.message.edns != nil
                    if requestEDNS && !responseEDNS { transaction.notes.append("Responder does not support EDNS") }
                    if !requestEDNS && responseEDNS { transaction.notes.append("Unexpected EDNS answer") }
                }
            }
            publish(transaction)
        } else {
            let key = TransactionKey(
                transport: transport,
                client: packet.source,
                clientPort: packet.sourcePort,
                server: packet.destination,
                serverPort: packet.destinationPort,
                id: message.id
            )
            if let earlier = transactions.removeValue(forKey: key) {
                earlier.notes.append(
                    "Another query with the same DNS ID from this client was received so this query was closed without receiving a response"
                )
                publish(earlier)
            }
            let transaction = Transaction(key: key)
            transaction.request = seen
            if transport == 17 && message.edns != nil && bytes.count > 512 {
                transaction.notes.append("Non-EDNS packet has size greater than 512")
            }
            transactions[key] = transaction
        }
    }

    private func expireTransactions(now: Int64) {
        guard elapsed(from: lastTransactionSweep, to: now) >= 1_000_000_000 else { return }
        lastTransactionSweep = now
        for (key, transaction) in transactions {
            guard let request = transaction.request,
                elapsed(from: request.timestamp, to: now) > options.transactionTimeout
            else {
                continue
            }
            transactions[key] = nil
            transaction.notes.append("No response to this query was received")
            publish(transaction)
        }
        reportFlows(now: now)
    }

    /// Publishes what is still open: unanswered queries and every flow's final report. The processor can go on with
    /// another capture afterwards.
    public func finish() {
        for transaction in transactions.values.sorted(by: {
            ($0.request?.timestamp ?? 0) < ($1.request?.timestamp ?? 0)
        }) {
            transaction.notes.append("No response to this query was received")
            publish(transaction)
        }
        transactions.removeAll()
        for (_, stream) in streams where stream.incompleteBytes > 0 {
            statistics.count("dns over tcp: message's data is incomplete")
        }
        streams.removeAll()
        for flow in flows.values.sorted(by: { $0.start < $1.start }) { publishFlow(flow, final: true) }
        flows.removeAll()
        nextFlowReport = nil
        lastTransactionSweep = 0
        drain()
    }

    // MARK: Flows

    private func track(_ packet: DecodedPacket) {
        let forward =
            packet.source < packet.destination
            || (packet.source == packet.destination && packet.sourcePort <= packet.destinationPort)
        var key = FlowKey(
            vlans: packet.vlans,
            ipProtocol: packet.ipProtocol,
            low: forward ? packet.source : packet.destination,
            lowPort: packet.hasPorts ? (forward ? packet.sourcePort : packet.destinationPort) : 0,
            high: forward ? packet.destination : packet.source,
            highPort: packet.hasPorts ? (forward ? packet.destinationPort : packet.sourcePort) : 0
        )
        if packet.ipProtocol == 1 || packet.ipProtocol == 58 {
            // ICMP's "ports" are its type and code; Packetbeat keys an echo exchange by the address pair and the
            // echo identifier, so that a request and its reply are one flow, and other ICMP by the addresses.
            let echo: Set<UInt16> = packet.ipProtocol == 1 ? [0, 8] : [128, 129]
            let identifier =
                echo.contains(packet.sourcePort) && packet.payload.count >= 2
                ? UInt16(packet.payload[0]) << 8 | UInt16(packet.payload[1]) : 0
            key.lowPort = identifier
            key.highPort = identifier
        }
        let flow: Flow
        if let existing = flows[key] {
            flow = existing
        } else {
            flow = Flow(id: flowIdentifier(key, packet), key: key, packet: packet)
            flows[key] = flow
            if nextFlowReport == nil, let period = options.flowPeriod {
                nextFlowReport = packet.timestamp.addingReportingOverflow(period).partialValue
            }
        }
        flow.last = max(flow.last, packet.timestamp)
        if packet.source == flow.source && (!packet.hasPorts || packet.sourcePort == flow.sourcePort) {
            flow.sourcePackets += 1
            flow.sourceBytes += packet.frameLength
        } else {
            flow.destinationPackets += 1
            flow.destinationBytes += packet.frameLength
            if flow.destinationMAC == nil { flow.destinationMAC = packet.sourceMAC }
        }
    }

    /// A short identifier from what the flow is, not the order it was met in (so that the same packets read again,
    /// or in an overlapping file, give the same id): its start time and a hash of its key, base-36.
    private func flowIdentifier(_ key: FlowKey, _ packet: DecodedPacket) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in DocumentID.description(key).utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(UInt64(bitPattern: packet.timestamp), radix: 36) + "-" + String(hash >> 24, radix: 36)
    }

    private func reportFlows(now: Int64) {
        guard options.flows else { return }
        for (key, flow) in flows where elapsed(from: flow.last, to: now) > options.flowTimeout {
            flows[key] = nil
            publishFlow(flow, final: true)
        }
        if let period = options.flowPeriod, let due = nextFlowReport, now >= due {
            for flow in flows.values.sorted(by: { $0.start < $1.start }) { publishFlow(flow, final: false) }
            // The next period boundary after now (a damaged capture can jump far ahead).
            let behind = elapsed(from: due, to: now)
            let (next, overflow) = now.addingReportingOverflow(period - behind % period)
            nextFlowReport = overflow ? Int64.max : next
        }
    }

    private func publishFlow(_ flow: Flow, final: Bool) {
        statistics.flowReports += 1
        flow.reports += 1
        let report = FlowReport(
            number: flow.reports,
            last: flow.last,
            sourcePackets: flow.sourcePackets,
            sourceBytes: flow.sourceBytes,
            destinationPackets: flow.destinationPackets,
            destinationBytes: flow.destinationBytes,
            final: final
        )
        enqueue(.flow(flow, report))
    }

    private func publish(_ transaction: Transaction) {
        statistics.dnsTransactions += 1
        enqueue(.dns(transaction))
    }

    // MARK: Building documents

    /// A published transaction or flow report whose document is not built yet.
    enum Pending {
        case dns(Transaction)
        case flow(Flow, FlowReport)
    }

    /// A flow's counters at the moment of a report (the flow goes on counting).
    struct FlowReport {
        /// 1 for the flow's first report, 2 for the next…
        var number: Int
        var last: Int64
        var sourcePackets: Int
        var sourceBytes: Int
        var destinationPackets: Int
        var destinationBytes: Int
        var final: Bool
    }

    /// Documents are built in batches on every core, then emitted in the order they were published: building them
    /// costs more than decoding the packets.
    private var pending: [Pending] = []
    static let batchSize = 8_192

    private func enqueue(_ item: Pending) {
        pending.append(item)
        if pending.count >= Self.batchSize { drain() }
    }

    /// Builds and emits every pending document.
    func drain() {
        guard !pending.isEmpty else { return }
        let batch = Batch(items: pending, options: options)
        pending.removeAll(keepingCapacity: true)
        // Flow templates first, one per flow, so that building never writes a flow twice at once.
        var needing: [Flow] = []
        var seen = Set<ObjectIdentifier>()
        for case .flow(let flow, _) in batch.items where flow.template == nil {
            if seen.insert(ObjectIdentifier(flow)).inserted { needing.append(flow) }
        }
        let flows = FlowList(flows: needing, options: options)
        let templates = parallelChunks(count: needing.count, initial: PacketbeatDocuments.FlowTemplate?.none) {
            range,
            store in
            for position in range {
                store(position, PacketbeatDocuments.FlowTemplate(flows.flows[position], options: flows.options))
            }
        }
        for (flow, template) in zip(needing, templates) { flow.template = template }
        let documents = parallelChunks(count: batch.items.count, initial: PacketbeatDocument(bytes: [], timestamp: 0)) {
            range,
            store in
            for position in range {
                switch batch.items[position] {
                case .dns(let transaction):
                    store(position, PacketbeatDocuments.dns(transaction, options: batch.options))
                case .flow(let flow, let report):
                    store(position, PacketbeatDocuments.flow(flow, report: report))
                }
            }
        }
        for document in documents { emit(document) }
    }

    /// `@unchecked Sendable`: published transactions and flows are not changed while their documents are built
    /// (building happens between packets), and each is read by one worker.
    private struct Batch: @unchecked Sendable {
        var items: [Pending]
        var options: PacketbeatOptions
    }

    /// `@unchecked Sendable`: each flow is given its template by exactly one worker.
    private struct FlowList: @unchecked Sendable {
        var flows: [Flow]
        var options: PacketbeatOptions
    }
}
